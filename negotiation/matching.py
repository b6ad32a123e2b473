"""The cost-optimal transfer plan: which offers fill which requests, over which lanes.

Pure: a `MatchingProblem` in, a `TransferPlan` out. docs/matching.md is the model an auditor re-runs.

Solver choice (measured on 2 cores, docs/matching.md): without minimum order quantities and fixed lane
costs the problem is a min-cost flow, solved exactly by OR-Tools' SimpleMinCostFlow. With them it is a
MIP; on our instances CBC (through pywraplp) closed the gap far faster than CP-SAT (0.35 % in 12 s at
1,000 x 5,000, where CP-SAT was still at 5 % after 190 s) and faster than SCIP's bound. The search stops
at a proven relative gap, which is deterministic, so an auditor re-running the same input gets the same
plan; only a run cut by the wall-clock limit can depend on the machine, and the plan says so.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version as _package_version
from typing import Any, Literal

import numpy as np
from ortools.graph.python import min_cost_flow
from ortools.linear_solver import pywraplp

from chain.canonical import canonical_json
from negotiation.errors import NegotiationError

SOLVER_VERSION = f"ortools {_package_version('ortools')}"

Status = Literal["optimal", "feasible", "infeasible"]


class ProblemError(NegotiationError, ValueError):
    """A malformed matching problem; the message names the field, e.g. requests[3].quantity."""


@dataclass(frozen=True)
class Request:
    id: str
    node: str
    sku: str
    quantity: int
    min_shelf_life_days: int
    max_transit_hours: int
    shortage_penalty: int


@dataclass(frozen=True)
class Offer:
    id: str
    node: str
    sku: str
    quantity: int
    shelf_life_days: int
    min_order_quantity: int
    unit_price: int


@dataclass(frozen=True)
class Lane:
    from_node: str
    to_node: str
    distance_km: int
    transit_hours: int
    cost_per_unit: int
    fixed_cost: int


@dataclass(frozen=True)
class Preference:
    """A per-unit cost (minor units, >= 0) the requester's rule book puts on serving `request` from `offer`:
    its objective weights (shelf life first, first in, nearby...) turned into money, so they steer the plan
    without ever being a hard switch."""

    request: str
    offer: str
    per_unit: int


@dataclass(frozen=True)
class MatchingProblem:
    radius_km: int
    requests: tuple[Request, ...]
    offers: tuple[Offer, ...]
    lanes: tuple[Lane, ...]
    preferences: tuple[Preference, ...] = ()


@dataclass(frozen=True)
class Allocation:
    request: str
    offer: str
    quantity: int


@dataclass(frozen=True)
class Shortage:
    request: str
    quantity: int


@dataclass(frozen=True)
class SolverParameters:
    # The search stops at this proven relative gap (deterministic: the same input gives the same plan on
    # any machine) or at the wall-clock limit, whichever comes first; only the latter can vary by machine.
    relative_gap: float = 0.0
    time_limit: float = 10.0

    def as_dict(self) -> dict[str, Any]:
        # Integers only: the parameters are hashed, and hashed data holds no floats.
        return {
            "relative_gap_ppm": round(self.relative_gap * 1_000_000),
            "time_limit_ms": round(self.time_limit * 1000),
        }


@dataclass(frozen=True)
class TransferPlan:
    status: Status
    total_cost: int
    allocations: tuple[Allocation, ...]
    shortages: tuple[Shortage, ...]
    lower_bound: int
    solver: str
    seconds: float = field(default=0.0, compare=False)
    preference_cost: int = 0  # the part of total_cost that is preference, not money paid

    @property
    def gap(self) -> float:
        """Relative distance to the proven lower bound (0 when optimal)."""
        if self.total_cost == 0:
            return 0.0
        return max(0.0, (self.total_cost - self.lower_bound) / self.total_cost)


# -- parsing ------------------------------------------------------------------------------------------

_REQUEST_FIELDS = ("id", "node", "sku", "quantity", "min_shelf_life_days", "max_transit_hours", "shortage_penalty")
_OFFER_FIELDS = ("id", "node", "sku", "quantity", "shelf_life_days", "min_order_quantity", "unit_price")
_LANE_FIELDS = ("from", "to", "distance_km", "transit_hours", "cost_per_unit", "fixed_cost")
_PREFERENCE_FIELDS = ("request", "offer", "per_unit")
_TEXT = {"id", "node", "sku", "from", "to", "request", "offer"}
_POSITIVE = {"quantity"}


def _field(item: Any, name: str, where: str) -> Any:
    if not isinstance(item, Mapping):
        raise ProblemError(f"{where} must be an object")
    if name not in item:
        raise ProblemError(f"{where}.{name} is missing")
    value = item[name]
    if name in _TEXT:
        if not isinstance(value, str) or not value:
            raise ProblemError(f"{where}.{name} must be a non-empty string")
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProblemError(f"{where}.{name} must be an integer (money in minor units), got {value!r}")
    if value < 0 or (name in _POSITIVE and value == 0):
        raise ProblemError(f"{where}.{name} must be {'positive' if name in _POSITIVE else 'non-negative'}")
    return value


def _items(data: Mapping[str, Any], key: str) -> list[Any]:
    items = data.get(key)
    if not isinstance(items, list):
        raise ProblemError(f"{key} must be a list")
    return items


def parse_problem(data: Any) -> MatchingProblem:
    if not isinstance(data, Mapping):
        raise ProblemError("a problem is a JSON object")
    radius = _field(data, "radius_km", "problem")
    requests = tuple(
        Request(*(_field(r, f, f"requests[{i}]") for f in _REQUEST_FIELDS))
        for i, r in enumerate(_items(data, "requests"))
    )
    offers = tuple(
        Offer(*(_field(o, f, f"offers[{i}]") for f in _OFFER_FIELDS)) for i, o in enumerate(_items(data, "offers"))
    )
    lanes = tuple(
        Lane(*(_field(ln, f, f"lanes[{i}]") for f in _LANE_FIELDS)) for i, ln in enumerate(_items(data, "lanes"))
    )
    for label, ids in (("requests", [r.id for r in requests]), ("offers", [o.id for o in offers])):
        seen: set[str] = set()
        for i, x in enumerate(ids):
            if x in seen:
                raise ProblemError(f"{label}[{i}].id {x!r} is not unique")
            seen.add(x)
    lane_keys: set[tuple[str, str]] = set()
    for i, ln in enumerate(lanes):
        if (ln.from_node, ln.to_node) in lane_keys:
            raise ProblemError(f"lanes[{i}] repeats the lane {ln.from_node} -> {ln.to_node}")
        lane_keys.add((ln.from_node, ln.to_node))
    preferences = tuple(
        Preference(*(_field(p, f, f"preferences[{i}]") for f in _PREFERENCE_FIELDS))
        for i, p in enumerate(_items(data, "preferences") if "preferences" in data else [])
    )
    request_ids, offer_ids = {r.id for r in requests}, {o.id for o in offers}
    for i, pref in enumerate(preferences):
        if pref.request not in request_ids or pref.offer not in offer_ids:
            raise ProblemError(f"preferences[{i}] names an unknown request or offer")
    return MatchingProblem(radius, requests, offers, lanes, preferences)


def plan_to_json(plan: TransferPlan) -> dict[str, Any]:
    return {
        "status": plan.status,
        "total_cost": plan.total_cost,
        "allocations": [{"request": a.request, "offer": a.offer, "quantity": a.quantity} for a in plan.allocations],
        "shortages": [{"request": s.request, "quantity": s.quantity} for s in plan.shortages],
        "lower_bound": plan.lower_bound,
        "gap": round(plan.gap, 6),
        "solver": plan.solver,
        **({"preference_cost": plan.preference_cost} if plan.preference_cost else {}),
    }


def problem_to_json(problem: MatchingProblem) -> dict[str, Any]:
    """The problem in its documented JSON form (extra keys of the input dropped): what gets hashed."""
    out: dict[str, Any] = {
        "radius_km": problem.radius_km,
        "requests": [{f: getattr(r, f) for f in _REQUEST_FIELDS} for r in problem.requests],
        "offers": [{f: getattr(o, f) for f in _OFFER_FIELDS} for o in problem.offers],
        "lanes": [
            {
                "from": ln.from_node,
                "to": ln.to_node,
                "distance_km": ln.distance_km,
                "transit_hours": ln.transit_hours,
                "cost_per_unit": ln.cost_per_unit,
                "fixed_cost": ln.fixed_cost,
            }
            for ln in problem.lanes
        ],
    }
    if problem.preferences:  # absent when empty, so problems without preferences keep their hash
        out["preferences"] = [
            {"request": p.request, "offer": p.offer, "per_unit": p.per_unit} for p in problem.preferences
        ]
    return out


def plan_hashes(problem: MatchingProblem, params: SolverParameters, plan: TransferPlan) -> dict[str, str]:
    """sha256 of the canonical JSON of input, parameters and output: an auditor re-runs and compares."""
    answer = plan_to_json(plan)
    answer.pop("gap")  # derived from the other fields, and a float
    return {
        "problem": hashlib.sha256(canonical_json(problem_to_json(problem))).hexdigest(),
        "parameters": hashlib.sha256(
            canonical_json({**params.as_dict(), "solver_version": SOLVER_VERSION})
        ).hexdigest(),
        "plan": hashlib.sha256(canonical_json(answer)).hexdigest(),
    }


# -- the model ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Arc:
    request: int
    offer: int
    lane: int
    unit_cost: int  # lane cost per unit + offer unit price + preference
    capacity: int
    preference: int = 0


def allowed_arcs(problem: MatchingProblem) -> list[Arc]:
    """Every (request, offer) pair the rules allow; nothing else enters the model."""
    lanes = {(ln.from_node, ln.to_node): i for i, ln in enumerate(problem.lanes)}
    preference = {(p.request, p.offer): p.per_unit for p in problem.preferences}
    by_sku: dict[str, list[int]] = defaultdict(list)
    for j, o in enumerate(problem.offers):
        by_sku[o.sku].append(j)
    arcs = []
    for i, r in enumerate(problem.requests):
        for j in by_sku.get(r.sku, ()):
            o = problem.offers[j]
            li = lanes.get((o.node, r.node))
            if li is None:
                continue
            ln = problem.lanes[li]
            if ln.distance_km > problem.radius_km or ln.transit_hours > r.max_transit_hours:
                continue
            if o.shelf_life_days < r.min_shelf_life_days:
                continue
            cap = min(o.quantity, r.quantity)
            if cap < max(1, o.min_order_quantity):
                continue
            pref = preference.get((r.id, o.id), 0)
            arcs.append(Arc(i, j, li, ln.cost_per_unit + o.unit_price + pref, cap, pref))
    return arcs


def evaluate(problem: MatchingProblem, arcs: Sequence[Arc], flows: Sequence[int], fixed_costs: bool = True) -> int:
    """Total cost of a solution given as a flow per arc (the objective, written once).

    Without fixed costs, evaluated on the min-cost-flow optimum (which also ignores minimum order
    quantities), it is a proven lower bound of the full problem: both relaxations only remove costs or
    constraints."""
    filled = [0] * len(problem.requests)
    used: set[int] = set()
    cost = 0
    for arc, q in zip(arcs, flows, strict=True):
        if q:
            cost += q * arc.unit_cost
            filled[arc.request] += q
            used.add(arc.lane)
    if fixed_costs:
        cost += sum(problem.lanes[li].fixed_cost for li in used)
    cost += sum((r.quantity - filled[i]) * r.shortage_penalty for i, r in enumerate(problem.requests))
    return cost


def cost_breakdown(problem: MatchingProblem, allocations: Sequence[Allocation]) -> dict[str, int]:
    """A plan's cost by what it pays for (docs/matching.md, "Objective"): the goods at the offers' prices,
    freight per unit, one truck per lane used, the rule book's preferences, and the shortages' penalties; the
    parts add up to the objective, `total`."""
    offers = {o.id: o for o in problem.offers}
    requests = {r.id: r for r in problem.requests}
    lanes = {(ln.from_node, ln.to_node): ln for ln in problem.lanes}
    preference = {(p.request, p.offer): p.per_unit for p in problem.preferences}
    out = dict.fromkeys(("goods", "freight_per_unit", "trucks", "preferences", "shortages"), 0)
    filled: dict[str, int] = defaultdict(int)
    used: set[tuple[str, str]] = set()
    for a in allocations:
        o, r = offers[a.offer], requests[a.request]
        lane = lanes[(o.node, r.node)]
        out["goods"] += a.quantity * o.unit_price
        out["freight_per_unit"] += a.quantity * lane.cost_per_unit
        out["preferences"] += a.quantity * preference.get((r.id, o.id), 0)
        filled[r.id] += a.quantity
        if a.quantity:
            used.add((o.node, r.node))
    out["trucks"] = sum(lanes[key].fixed_cost for key in used)
    out["shortages"] = sum((r.quantity - filled[r.id]) * r.shortage_penalty for r in problem.requests)
    out["total"] = sum(out.values())
    return out


def _plan(
    problem: MatchingProblem,
    arcs: Sequence[Arc],
    flows: Sequence[int],
    status: Status,
    bound: int,
    solver: str,
    started: float,
) -> TransferPlan:
    allocations = sorted(
        (
            Allocation(problem.requests[a.request].id, problem.offers[a.offer].id, q)
            for a, q in zip(arcs, flows, strict=True)
            if q
        ),
        key=lambda a: (a.request, a.offer),
    )
    filled: dict[str, int] = defaultdict(int)
    for a in allocations:
        filled[a.request] += a.quantity
    shortages = sorted(
        (Shortage(r.id, r.quantity - filled[r.id]) for r in problem.requests if r.quantity > filled[r.id]),
        key=lambda s: s.request,
    )
    cost = evaluate(problem, arcs, flows)
    preference_cost = sum(a.preference * q for a, q in zip(arcs, flows, strict=True))
    return TransferPlan(
        status,
        cost,
        tuple(allocations),
        tuple(shortages),
        min(bound, cost),
        solver,
        time.perf_counter() - started,
        preference_cost,
    )


def _min_cost_flow(problem: MatchingProblem, arcs: Sequence[Arc]) -> list[int]:
    """Exact when no MOQ and no fixed costs bind: requests are sinks, shortage is an arc at the penalty."""
    n_req, n_off = len(problem.requests), len(problem.offers)
    source, sink = n_req + n_off, n_req + n_off + 1
    smcf = min_cost_flow.SimpleMinCostFlow()
    tails = np.array(
        [source] * n_off + [n_req + a.offer for a in arcs] + [source] * n_req + list(range(n_req)), dtype=np.int64
    )
    heads = np.array(
        [n_req + j for j in range(n_off)] + [a.request for a in arcs] + list(range(n_req)) + [sink] * n_req,
        dtype=np.int64,
    )
    caps = np.array(
        [o.quantity for o in problem.offers]
        + [a.capacity for a in arcs]
        + [r.quantity for r in problem.requests]
        + [r.quantity for r in problem.requests],
        dtype=np.int64,
    )
    # Filling a request saves its penalty: cost of an offer arc is unit cost minus the request's penalty,
    # and the "shortage" path source -> request -> sink costs 0, so unfilled quantity costs nothing extra.
    costs = np.array(
        [0] * n_off
        + [a.unit_cost - problem.requests[a.request].shortage_penalty for a in arcs]
        + [0] * n_req
        + [0] * n_req,
        dtype=np.int64,
    )
    smcf.add_arcs_with_capacity_and_unit_cost(tails, heads, caps, costs)
    total = sum(r.quantity for r in problem.requests)
    smcf.set_node_supply(source, total)
    smcf.set_node_supply(sink, -total)
    # Shortage path: source -> request directly (capacity r.quantity) then request -> sink.
    if smcf.solve() != smcf.OPTIMAL:
        raise RuntimeError("min-cost flow did not solve a feasible network")
    first = n_off
    return [int(smcf.flow(first + k)) for k in range(len(arcs))]


def _repair(problem: MatchingProblem, arcs: Sequence[Arc], flows: list[int]) -> list[int]:
    """Make a relaxed solution respect minimum order quantities (drop sub-MOQ allocations)."""
    return [
        q if q == 0 or q >= problem.offers[a.offer].min_order_quantity else 0 for a, q in zip(arcs, flows, strict=True)
    ]


def solve(problem: MatchingProblem, params: SolverParameters | None = None) -> TransferPlan:
    params = params or SolverParameters()
    started = time.perf_counter()
    arcs = allowed_arcs(problem)
    if not problem.requests:
        return _plan(problem, arcs, [0] * len(arcs), "optimal", 0, "none", started)
    relaxed = _min_cost_flow(problem, arcs) if arcs else []
    moq_binds = any(problem.offers[a.offer].min_order_quantity > 1 for a in arcs)
    fixed_binds = any(problem.lanes[a.lane].fixed_cost > 0 for a in arcs)
    if not moq_binds and not fixed_binds:
        bound = evaluate(problem, arcs, relaxed)
        return _plan(problem, arcs, relaxed, "optimal", bound, "min_cost_flow", started)
    flow_bound = evaluate(problem, arcs, relaxed, fixed_costs=False)
    return _mip(problem, arcs, _repair(problem, arcs, relaxed), flow_bound, params, started)


def _mip(
    problem: MatchingProblem,
    arcs: Sequence[Arc],
    fallback: Sequence[int],
    flow_bound: int,
    params: SolverParameters,
    started: float,
) -> TransferPlan:
    """MOQ as semi-continuous arcs (x = 0 or moq <= x <= cap), fixed costs with one switch per lane and
    the strong per-arc link x <= cap * lane_used; solved by CBC through pywraplp."""
    s = pywraplp.Solver.CreateSolver("CBC")
    x = [s.IntVar(0, a.capacity, f"x{k}") for k, a in enumerate(arcs)]
    by_offer: dict[int, list[int]] = defaultdict(list)
    by_request: dict[int, list[int]] = defaultdict(list)
    by_lane: dict[int, list[int]] = defaultdict(list)
    objective = s.Objective()
    for k, a in enumerate(arcs):
        by_offer[a.offer].append(k)
        by_request[a.request].append(k)
        by_lane[a.lane].append(k)
        # Filling a unit saves the request's shortage penalty; the constant part is added back below.
        objective.SetCoefficient(x[k], a.unit_cost - problem.requests[a.request].shortage_penalty)
        moq = problem.offers[a.offer].min_order_quantity
        if moq > 1:
            use = s.BoolVar(f"u{k}")
            s.Add(x[k] >= moq * use)
            s.Add(x[k] <= a.capacity * use)
    for j, ks in by_offer.items():
        s.Add(sum(x[k] for k in ks) <= problem.offers[j].quantity)
    for i, ks in by_request.items():
        s.Add(sum(x[k] for k in ks) <= problem.requests[i].quantity)
    limits = ([r.quantity for r in problem.requests], [o.quantity for o in problem.offers])
    for li, ks in by_lane.items():
        fixed = problem.lanes[li].fixed_cost
        if fixed > 0:
            used = s.BoolVar(f"z{li}")
            objective.SetCoefficient(used, fixed)
            for k in ks:
                s.Add(x[k] <= arcs[k].capacity * used)
            _add_group_links(s, arcs, ks, x, used, limits)
    constant = sum(r.quantity * r.shortage_penalty for r in problem.requests)
    # With the constant in, the solver's relative gap is relative to the plan's true total cost.
    objective.SetOffset(constant)
    objective.SetMinimization()
    # The limit covers the whole call: pruning and the flow relaxation have already used some of it, and
    # CBC overruns its own limit (it checks it between search steps), so it gets 95 % of what is left.
    left = 0.95 * params.time_limit - (time.perf_counter() - started)
    s.SetTimeLimit(max(1, round(left * 1000)))
    mip = pywraplp.MPSolverParameters()
    mip.SetDoubleParam(mip.RELATIVE_MIP_GAP, params.relative_gap)
    code = s.Solve(mip)
    if code not in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE):
        # No incumbent within the limit: the repaired flow solution is still a valid plan.
        return _plan(problem, arcs, list(fallback), "feasible", flow_bound, "mip_cbc_fallback", started)
    flows = [round(v.solution_value()) for v in x]
    bound = max(flow_bound, math.ceil(objective.BestBound() - 1e-6))
    cost = evaluate(problem, arcs, flows)
    status: Status = "optimal" if cost <= bound else "feasible"
    return _plan(problem, arcs, flows, status, bound, "mip_cbc", started)


def _add_group_links(
    s: pywraplp.Solver,
    arcs: Sequence[Arc],
    lane_arcs: Sequence[int],
    x: Sequence[pywraplp.Variable],
    used: pywraplp.Variable,
    limits: tuple[Sequence[int], Sequence[int]],
) -> None:
    """Valid inequalities sum x <= min(quantity, sum cap) * lane_used per request and per offer on a lane.

    With lane_used relaxed to a fraction, the per-arc links let a request draw on several offers over one
    lane while paying only a fraction of the truck; these close that. They cut nothing integral (with the
    lane used they repeat the request or offer limit) and, measured on five seeded 1,000 x 5,000 instances
    at a 9.2 s limit, took CBC's proven gap from 0.31-0.79 % to 0.16-0.42 %."""
    for key, limit in ((lambda a: a.request, limits[0]), (lambda a: a.offer, limits[1])):
        groups: dict[int, list[int]] = defaultdict(list)
        for k in lane_arcs:
            groups[key(arcs[k])].append(k)
        for g, ks in groups.items():
            if len(ks) > 1:  # a single arc's link is already there
                s.Add(sum(x[k] for k in ks) <= min(limit[g], sum(arcs[k].capacity for k in ks)) * used)


def greedy(problem: MatchingProblem) -> TransferPlan:
    """Baseline: cheapest arc first, whole MOQ or nothing, ignoring that trucks could be shared."""
    started = time.perf_counter()
    arcs = allowed_arcs(problem)
    left_offer = [o.quantity for o in problem.offers]
    left_request = [r.quantity for r in problem.requests]
    flows = [0] * len(arcs)
    for k in sorted(range(len(arcs)), key=lambda k: (arcs[k].unit_cost, k)):
        a = arcs[k]
        if a.unit_cost >= problem.requests[a.request].shortage_penalty:
            continue
        q = min(left_offer[a.offer], left_request[a.request])
        if q <= 0 or q < problem.offers[a.offer].min_order_quantity:
            continue
        flows[k] = q
        left_offer[a.offer] -= q
        left_request[a.request] -= q
    return _plan(problem, arcs, flows, "feasible", 0, "greedy", started)
