"""The game of one recorded plan (docs/settlement.md, section 2): what the transfers of that plan created for
each coalition of the members it involved, recomputed from the plan record alone.

A plan record (type `plan`, docs/protocol.md) holds the matching problem the requester solved, the solver
parameters and the answer. For a coalition S of the plan's players (its requester and the suppliers whose
offers it saw):

    baseline(S) = sum over requests of members of S of quantity x shortage_penalty   (no transfer at all)
    cost(S)     = the money cost of the problem restricted to S's requests and S's offers, solved again
                  (total_cost - preference_cost: preferences are the requester's weights, not money)
    v_p(S)      = baseline(S) - cost(S)

For the plan's own players (the grand coalition of the plan) cost is the recorded answer's: the plan that
was carried out, not a new solve. v_p is 0 for a coalition without requests or without offers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from negotiation.matching import MatchingProblem, SolverParameters, parse_problem, solve
from settlement.games import PlanGame


class PlanRecordError(ValueError):
    """A plan record that does not hold what a plan game needs (it names the record)."""


def parameters_of(plan: Mapping[str, Any]) -> SolverParameters:
    p = plan.get("parameters") or {}
    return SolverParameters(
        relative_gap=int(p.get("relative_gap_ppm", 0)) / 1_000_000,
        time_limit=int(p.get("time_limit_ms", 10_000)) / 1000,
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


def plan_game(record: Mapping[str, Any]) -> PlanGame:
    """The game of the plan in `record` (a ledger record of type `plan`)."""
    where = f"plan record {record.get('node')}#{record.get('seq')}"
    try:
        plan = record["plan"]
        problem = parse_problem(plan["problem"])
        answer = plan["answer"]
        recorded_cost = int(answer["total_cost"]) - int(answer.get("preference_cost", 0))
    except (KeyError, TypeError, ValueError) as exc:
        raise PlanRecordError(f"{where}: {exc}") from exc
    params = parameters_of(plan)
    players = {r.node for r in problem.requests} | {o.node for o in problem.offers}
    grand = frozenset(players)

    def value(coalition: frozenset[str]) -> int:
        sub = restricted(problem, coalition)
        if not sub.requests or not sub.offers:
            return 0
        if coalition == grand:
            cost = recorded_cost
        else:
            solved = solve(sub, params)
            cost = solved.total_cost - solved.preference_cost
        return baseline(problem, coalition) - cost

    return PlanGame.of(f"{record.get('node')}#{record.get('seq')}", players, value, str(record.get("node")))
