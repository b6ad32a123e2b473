"""The game of one recorded plan (docs/settlement.md, section 2): what the transfers of that plan created for
each coalition of the members it involved, recomputed from the plan record alone.

A plan record (type `plan`, docs/protocol.md) holds the matching problem the requester solved, the solver
parameters and the answer. For a coalition S of the plan's players (its requester and the suppliers whose
offers it saw):

    baseline(S) = sum over requests of members of S of quantity x shortage_penalty   (no transfer at all)
    cost(S)     = the optimal cost (docs/matching.md's objective) of the problem restricted to S's requests
                  and S's offers
    v_p(S)      = baseline(S) - cost(S)

For the plan's own players (the grand coalition of the plan) cost is the recorded answer's `total_cost`: the
plan that was carried out, not a new solve. v_p is 0 for a coalition without requests or without offers.

The optimal cost of a sub-problem is unique whoever computes it. Plans are small, so it is found exactly
without a MIP whenever each SKU has one request and no offer has a minimum order above 1: for every set of
the lanes with a truck cost (at most MAX_TRUCK_LANES of them), fill each request from its cheapest allowed
offers while they cost less than its shortage penalty; the cheapest total over the sets is the optimum.
Otherwise the matcher solves it (negotiation/matching.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal

from negotiation.matching import Arc, MatchingProblem, SolverParameters, allowed_arcs, parse_problem, solve
from settlement.games import PlanGame


class PlanRecordError(ValueError):
    """A plan record that does not hold what a plan game needs (it names the record)."""


def parameters_of(plan: Mapping[str, Any]) -> SolverParameters:
    p = plan.get("parameters") or {}
    # A plan recorded without a solver was solved by CBC, the only solver before HiGHS became the default.
    solver: Literal["highs", "cbc"] = "highs" if p.get("solver") == "highs" else "cbc"
    return SolverParameters(
        relative_gap=int(p.get("relative_gap_ppm", 0)) / 1_000_000,
        time_limit=int(p.get("time_limit_ms", 10_000)) / 1000,
        solver=solver,
    )


def restricted(problem: MatchingProblem, coalition: frozenset[str]) -> MatchingProblem:
    """The problem with only the coalition's requests and offers (lanes and preferences as they were,
    preferences of dropped requests or offers left out)."""
    requests = tuple(r for r in problem.requests if r.node in coalition)
    offers = tuple(o for o in problem.offers if o.node in coalition)
    kept_r, kept_o = {r.id for r in requests}, {o.id for o in offers}
    preferences = tuple(p for p in problem.preferences if p.request in kept_r and p.offer in kept_o)
    return replace(problem, requests=requests, offers=offers, preferences=preferences)


def baseline(problem: MatchingProblem, coalition: frozenset[str]) -> int:
    return sum(r.quantity * r.shortage_penalty for r in problem.requests if r.node in coalition)


MAX_TRUCK_LANES = 10


# A sub-problem the enumeration does not cover is solved to a proven optimum within this much time: a value
# that depended on a machine's speed could make two members compute different statements.
PROOF_SECONDS = 60.0


def proven_optimum(problem: MatchingProblem, params: SolverParameters, where: str) -> int:
    """The matcher's optimum with a gap of 0; refused (named) if it cannot prove it in PROOF_SECONDS."""
    solved = solve(problem, SolverParameters(relative_gap=0.0, time_limit=max(params.time_limit, PROOF_SECONDS)))
    if solved.status != "optimal":
        raise PlanRecordError(f"{where}: a coalition's problem was not solved to a proven optimum ({solved.status})")
    return solved.total_cost


def _enumerable(problem: MatchingProblem) -> bool:
    skus = [r.sku for r in problem.requests]
    return len(skus) == len(set(skus)) and all(o.min_order_quantity <= 1 for o in problem.offers)


def _cheapest(problem: MatchingProblem, arcs: Sequence[Arc], requests: Iterable[int]) -> int | None:
    """The optimum over `arcs` for the requests given (each SKU one request, no minimum order above 1): the
    cheapest, over every set of open truck lanes, of filling each request cheapest-first while an arc costs
    less than the request's shortage penalty. None with more truck lanes than MAX_TRUCK_LANES."""
    trucks = sorted({a.lane for a in arcs if problem.lanes[a.lane].fixed_cost > 0})
    if len(trucks) > MAX_TRUCK_LANES:
        return None
    by_request: dict[int, list[Arc]] = {}
    for a in sorted(arcs, key=lambda a: (a.unit_cost, a.offer)):
        by_request.setdefault(a.request, []).append(a)
    wanted = list(requests)
    best: int | None = None
    for mask in range(1 << len(trucks)):
        opened = {lane for i, lane in enumerate(trucks) if mask >> i & 1}
        cost = sum(problem.lanes[lane].fixed_cost for lane in opened)
        for i in wanted:
            r = problem.requests[i]
            left = r.quantity
            for a in by_request.get(i, ()):
                if left == 0 or a.unit_cost >= r.shortage_penalty:
                    break
                if problem.lanes[a.lane].fixed_cost > 0 and a.lane not in opened:
                    continue
                take = min(left, a.capacity)
                cost += take * a.unit_cost
                left -= take
            cost += left * r.shortage_penalty
        best = cost if best is None else min(best, cost)
    return best


def plan_game(record: Mapping[str, Any]) -> PlanGame:
    """The game of the plan in `record` (a ledger record of type `plan`)."""
    where = f"plan record {record.get('node')}#{record.get('seq')}"
    try:
        plan = record["plan"]
        problem = parse_problem(plan["problem"])
        answer = plan["answer"]
        recorded_cost = int(answer["total_cost"])
    except (KeyError, TypeError, ValueError) as exc:
        raise PlanRecordError(f"{where}: {exc}") from exc
    if any(r.node != record.get("node") for r in problem.requests):
        raise PlanRecordError(f"{where}: a plan holds its own node's requests only")
    params = parameters_of(plan)
    players = {r.node for r in problem.requests} | {o.node for o in problem.offers}
    grand = frozenset(players)
    # Whether an arc is allowed depends on its request and offer alone: computed once, filtered per coalition.
    arcs = allowed_arcs(problem) if _enumerable(problem) else None

    def value(coalition: frozenset[str]) -> int:
        requests = [i for i, r in enumerate(problem.requests) if r.node in coalition]
        if not requests or not any(o.node in coalition for o in problem.offers):
            return 0
        cost: int | None = recorded_cost if coalition == grand else None
        if cost is None and arcs is not None:
            kept = [a for a in arcs if problem.offers[a.offer].node in coalition and a.request in requests]
            cost = _cheapest(problem, kept, requests)
        if cost is None:
            cost = proven_optimum(restricted(problem, coalition), params, where)
        return baseline(problem, coalition) - cost

    return PlanGame.of(f"{record.get('node')}#{record.get('seq')}", players, value, str(record.get("node")))
