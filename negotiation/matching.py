"""The cost-optimal transfer plan: which offers fill which requests, over which lanes.

Pure: a `MatchingProblem` in, a `TransferPlan` out. docs/matching.md is the model an auditor re-runs.

Solving (docs/matching.md, "Solving"; figures in docs/benchmarks.md, "Matching"): without minimum order
quantities and fixed lane costs the problem is a min-cost flow, solved exactly by OR-Tools'
SimpleMinCostFlow. With them it is a MIP, solved by HiGHS (or CBC, if asked) per independent component,
warm-started from a fixed-cost-aware greedy plan that `solve` never does worse than. `time_limit` is the
wall-clock budget of the whole call. The search stops at a proven relative gap, which is deterministic, so
an auditor re-running the same input gets the same plan; only a run cut by the budget can depend on the
machine, and the plan says so.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import math
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version as _package_version
from typing import Any, Literal, ParamSpec, TypeVar

import numpy as np
from ortools.graph.python import min_cost_flow
from ortools.linear_solver import pywraplp

from chain.canonical import canonical_json
from negotiation.errors import NegotiationError

# Both MIP solvers' versions: a plan is reproducible only with the same ones.
SOLVER_VERSION = f"ortools {_package_version('ortools')}, highspy {_package_version('highspy')}"

Status = Literal["optimal", "feasible", "infeasible"]
_T = TypeVar("_T")
_P = ParamSpec("_P")


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
    # The MIP solver: HiGHS (default) or CBC, measured side by side in docs/benchmarks.md, "Matching".
    solver: Literal["highs", "cbc"] = "highs"

    def as_dict(self) -> dict[str, Any]:
        # Integers only: the parameters are hashed, and hashed data holds no floats. The solver is always
        # named: parameters without one were recorded before HiGHS became the default, by CBC
        # (settlement/plans.py parameters_of reads them so).
        return {
            "relative_gap_ppm": round(self.relative_gap * 1_000_000),
            "time_limit_ms": round(self.time_limit * 1000),
            "solver": self.solver,
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


# Costs, quantities and their sums are int64 in the matcher (numpy columns, OR-Tools' flow, the plan's
# evaluation): a problem whose cost could reach this bound is refused as malformed, never wrapped around.
MAX_COST = 1 << 62


def cost_bound(problem: MatchingProblem) -> int:
    """An upper bound on the cost of any plan of `problem` and on every partial sum the matcher forms: every
    request short (sum of quantity x shortage_penalty), plus every unit requested moved at the dearest
    per-unit cost any arc can have (largest lane cost per unit + largest unit price + largest preference),
    plus every lane's fixed cost. Exact (Python integers)."""
    requested = sum(r.quantity for r in problem.requests)
    per_unit = sum(
        max((getattr(x, name) for x in items), default=0)
        for items, name in (
            (problem.lanes, "cost_per_unit"),
            (problem.offers, "unit_price"),
            (problem.preferences, "per_unit"),
        )
    )
    shortages = sum(r.quantity * r.shortage_penalty for r in problem.requests)
    return shortages + requested * per_unit + sum(ln.fixed_cost for ln in problem.lanes)


def check_bounds(problem: MatchingProblem) -> MatchingProblem:
    """`problem`, or ProblemError if its cost or its quantities could exceed MAX_COST (they would wrap)."""
    bound = cost_bound(problem)
    if bound >= MAX_COST:
        raise ProblemError(f"the problem's cost could reach {bound}, above the bound 2**62 = {MAX_COST}")
    offered = sum(o.quantity for o in problem.offers)
    if offered >= MAX_COST:
        raise ProblemError(f"offers add up to {offered} units, above the bound 2**62 = {MAX_COST}")
    return problem


def parse_problem(data: Any) -> MatchingProblem:
    """The problem in `data` (its JSON form), checked: fields, unique ids, known references, and a cost bound
    below MAX_COST (`check_bounds`). ProblemError names what is wrong."""
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
    return check_bounds(MatchingProblem(radius, requests, offers, lanes, preferences))


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


_INT = np.int64


@dataclass(frozen=True, eq=False)
class ArcTable:
    """The allowed arcs as columns (one numpy int64 array per field, sorted by request then offer): what the
    solver works on. At 30,000 requests x 150,000 offers a list of `Arc` objects alone would cost seconds and
    hundreds of MB; these columns cost 48 bytes an arc."""

    request: np.ndarray
    offer: np.ndarray
    lane: np.ndarray
    unit_cost: np.ndarray
    capacity: np.ndarray
    preference: np.ndarray

    def __len__(self) -> int:
        return len(self.request)

    def arcs(self) -> list[Arc]:
        columns = (self.request, self.offer, self.lane, self.unit_cost, self.capacity, self.preference)
        return [Arc(*row) for row in zip(*(c.tolist() for c in columns), strict=True)]


def _ranges(starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each i, the positions starts[i] .. starts[i] + counts[i] - 1, concatenated, with the i they belong to."""
    owner = np.repeat(np.arange(len(counts), dtype=_INT), counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    return owner, np.repeat(starts, counts) + (np.arange(len(owner), dtype=_INT) - first)


def _codes(values: Sequence[str], known: dict[str, int]) -> np.ndarray:
    return np.fromiter((known.setdefault(v, len(known)) for v in values), dtype=_INT, count=len(values))


# Pairs expanded at once while building arcs: bounds the scratch memory (~100 bytes a pair) whatever the size.
_PAIRS_PER_CHUNK = 1 << 20


@dataclass(frozen=True, eq=False)
class _ArcIndex:
    """Where a request's candidate offers are found: nodes and SKUs as integer codes, the lanes within the
    radius grouped by destination node, and the offers grouped by (SKU, node), offer index ascending inside
    a group."""

    n_nodes: int
    request_node: np.ndarray  # node code of each request
    request_sku: np.ndarray  # SKU code of each request
    lane_from: np.ndarray  # node code of each lane's origin
    near: np.ndarray  # the lanes within the radius, by destination node
    into_start: np.ndarray  # per node: where the lanes into it start in `near`
    into_count: np.ndarray  # per node: how many lanes of `near` lead into it
    offer_order: np.ndarray  # the offers by (SKU, node)
    group_key: np.ndarray  # each (SKU, node) group as sku * n_nodes + node, ascending
    group_start: np.ndarray  # each group's first position in `offer_order`
    group_count: np.ndarray


@dataclass(frozen=True, eq=False)
class _RuleFields:
    """The fields the rules compare along an arc (docs/matching.md, "Model"), one array each."""

    request_quantity: np.ndarray
    min_shelf_life_days: np.ndarray
    max_transit_hours: np.ndarray
    offer_quantity: np.ndarray
    shelf_life_days: np.ndarray
    min_order_quantity: np.ndarray
    transit_hours: np.ndarray  # of each lane


@dataclass(frozen=True, eq=False)
class _Pairs:
    """Allowed arcs, not yet sorted or priced: request, offer, lane and capacity of each."""

    request: np.ndarray
    offer: np.ndarray
    lane: np.ndarray
    capacity: np.ndarray

    @staticmethod
    def joined(parts: Sequence[_Pairs]) -> _Pairs:
        def column(f: str) -> np.ndarray:
            return np.concatenate([getattr(p, f) for p in parts]) if parts else np.zeros(0, _INT)

        return _Pairs(column("request"), column("offer"), column("lane"), column("capacity"))


def _arc_index(problem: MatchingProblem) -> _ArcIndex:
    nodes: dict[str, int] = {}
    skus: dict[str, int] = {}
    reqs, offs = problem.requests, problem.offers
    r_node, o_node = _codes([r.node for r in reqs], nodes), _codes([o.node for o in offs], nodes)
    l_from = _codes([ln.from_node for ln in problem.lanes], nodes)
    l_to = _codes([ln.to_node for ln in problem.lanes], nodes)
    r_sku, o_sku = _codes([r.sku for r in reqs], skus), _codes([o.sku for o in offs], skus)
    n_nodes = max(1, len(nodes))
    near = np.flatnonzero(_column(problem.lanes, "distance_km") <= problem.radius_km)
    near = near[np.argsort(l_to[near], kind="stable")]
    into_start = np.searchsorted(l_to[near], np.arange(n_nodes))
    into_count = np.searchsorted(l_to[near], np.arange(n_nodes), side="right") - into_start
    o_key = o_sku * n_nodes + o_node
    o_order = np.argsort(o_key, kind="stable")
    group_key, group_start, group_count = np.unique(o_key[o_order], return_index=True, return_counts=True)
    return _ArcIndex(
        n_nodes, r_node, r_sku, l_from, near, into_start, into_count, o_order, group_key, group_start, group_count
    )


def _rule_fields(problem: MatchingProblem) -> _RuleFields:
    reqs, offs = problem.requests, problem.offers
    return _RuleFields(
        request_quantity=_column(reqs, "quantity"),
        min_shelf_life_days=_column(reqs, "min_shelf_life_days"),
        max_transit_hours=_column(reqs, "max_transit_hours"),
        offer_quantity=_column(offs, "quantity"),
        shelf_life_days=_column(offs, "shelf_life_days"),
        min_order_quantity=_column(offs, "min_order_quantity"),
        transit_hours=_column(problem.lanes, "transit_hours"),
    )


def _request_chunks(index: _ArcIndex, n_requests: int) -> Iterator[np.ndarray]:
    """The requests in consecutive runs of about _PAIRS_PER_CHUNK (request, lane) pairs each."""
    lanes_per_request = index.into_count[index.request_node] if n_requests else np.zeros(0, dtype=_INT)
    bounds = np.unique(
        np.searchsorted(np.cumsum(lanes_per_request), np.arange(0, lanes_per_request.sum() + 1, _PAIRS_PER_CHUNK))
    )
    for lo, hi in zip(bounds.tolist(), [*bounds[1:].tolist(), n_requests], strict=True):
        yield np.arange(lo, hi, dtype=_INT)


def _allowed_pairs(index: _ArcIndex, rules: _RuleFields, chunk: np.ndarray) -> _Pairs:
    """The allowed arcs of the requests in `chunk`: through each lane into a request's node within its transit
    time, each offer of its SKU at that lane's origin with shelf life enough and stock for its minimum order."""
    owner, pos = _ranges(index.into_start[index.request_node[chunk]], index.into_count[index.request_node[chunk]])
    rq, ln = chunk[owner], index.near[pos]
    fast = rules.transit_hours[ln] <= rules.max_transit_hours[rq]
    rq, ln = rq[fast], ln[fast]
    key = index.request_sku[rq] * index.n_nodes + index.lane_from[ln]
    g = np.minimum(np.searchsorted(index.group_key, key), max(0, len(index.group_key) - 1))
    found = index.group_key[g] == key if len(index.group_key) else np.zeros(len(key), dtype=bool)
    rq, ln, g = rq[found], ln[found], g[found]
    owner, pos = _ranges(index.group_start[g], index.group_count[g])
    rq, ln, of = rq[owner], ln[owner], index.offer_order[pos]
    cap = np.minimum(rules.offer_quantity[of], rules.request_quantity[rq])
    ok = (rules.shelf_life_days[of] >= rules.min_shelf_life_days[rq]) & (
        cap >= np.maximum(1, rules.min_order_quantity[of])
    )
    return _Pairs(rq[ok], of[ok], ln[ok], cap[ok])


def _preference_per_unit(problem: MatchingProblem, request: np.ndarray, offer: np.ndarray) -> np.ndarray:
    """The rule book's preference on each (request, offer) arc, per unit; 0 where it states none."""
    if not problem.preferences:
        return np.zeros(len(request), dtype=_INT)
    n_offers = len(problem.offers)
    r_index = {r.id: i for i, r in enumerate(problem.requests)}
    o_index = {o.id: j for j, o in enumerate(problem.offers)}
    wanted = {r_index[p.request] * n_offers + o_index[p.offer]: p.per_unit for p in problem.preferences}
    keys = np.fromiter(wanted, dtype=_INT, count=len(wanted))
    values = np.fromiter(wanted.values(), dtype=_INT, count=len(wanted))
    sort = np.argsort(keys)
    keys, values = keys[sort], values[sort]
    pair = request * n_offers + offer
    at = np.minimum(np.searchsorted(keys, pair), len(keys) - 1)
    return np.where(keys[at] == pair, values[at], 0)


def arc_table(problem: MatchingProblem) -> ArcTable:
    """The allowed arcs (docs/matching.md, "Model") found through an index instead of a scan of every
    request x offer of a SKU: a request looks only at the lanes into its node that are within the radius and
    its transit time, and through each lane only at the offers of its SKU at that lane's origin. Vectorised
    with numpy, in chunks of requests so scratch memory stays bounded."""
    index, rules = _arc_index(problem), _rule_fields(problem)
    pairs = _Pairs.joined(
        [_allowed_pairs(index, rules, chunk) for chunk in _request_chunks(index, len(problem.requests))]
    )
    order = np.lexsort((pairs.offer, pairs.request))
    rq, of, ln, cap = pairs.request[order], pairs.offer[order], pairs.lane[order], pairs.capacity[order]
    pref = _preference_per_unit(problem, rq, of)
    unit_cost = _column(problem.lanes, "cost_per_unit")[ln] + _column(problem.offers, "unit_price")[of] + pref
    return ArcTable(rq, of, ln, unit_cost, cap, pref)


def allowed_arcs(problem: MatchingProblem) -> list[Arc]:
    """Every (request, offer) pair the rules allow; nothing else enters the model."""
    return arc_table(problem).arcs()


def _as_table(arcs: Sequence[Arc] | ArcTable) -> ArcTable:
    if isinstance(arcs, ArcTable):
        return arcs
    fields = ("request", "offer", "lane", "unit_cost", "capacity", "preference")
    return ArcTable(*(np.fromiter((getattr(a, f) for a in arcs), dtype=_INT, count=len(arcs)) for f in fields))


_COLUMNS: dict[tuple[int, str], tuple[Sequence[Any], np.ndarray]] = {}


def _column(items: Sequence[Any], name: str) -> np.ndarray:
    """One field of every request, offer or lane as an array (a fresh copy: callers may change it). Cached
    for the tuples of the problem in hand, as a solve reads each field dozens of times (0.3 s at 10,000
    requests); an entry is used only for the very same tuple object, which it keeps alive until the public
    call that made it returns (`_forget_columns`)."""
    key = (id(items), name)
    hit = _COLUMNS.get(key)
    if hit is None or hit[0] is not items:
        if len(_COLUMNS) > 64:
            _COLUMNS.clear()
        hit = _COLUMNS[key] = (items, np.fromiter((getattr(x, name) for x in items), dtype=_INT, count=len(items)))
    return hit[1].copy()


def _forget_columns(fn: Callable[_P, _T]) -> Callable[_P, _T]:
    """Empty the column cache when `fn` returns, so that no problem outlives its solve."""

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return fn(*args, **kwargs)
        finally:
            _COLUMNS.clear()

    return wrapper


def evaluate(
    problem: MatchingProblem,
    arcs: Sequence[Arc] | ArcTable,
    flows: Sequence[int] | np.ndarray,
    fixed_costs: bool = True,
) -> int:
    """Total cost of a solution given as a flow per arc (the objective, written once).

    Without fixed costs, evaluated on the min-cost-flow optimum (which also ignores minimum order
    quantities), it is a proven lower bound of the full problem: both relaxations only remove costs or
    constraints."""
    table = _as_table(arcs)
    q = np.asarray(flows, dtype=_INT)
    if len(q) != len(table):
        raise ValueError("one flow per arc")
    filled = np.zeros(len(problem.requests), dtype=_INT)
    np.add.at(filled, table.request, q)
    cost = int((q * table.unit_cost).sum())
    if fixed_costs:
        used = np.unique(table.lane[q > 0])
        cost += int(_column(problem.lanes, "fixed_cost")[used].sum()) if len(used) else 0
    shortage = _column(problem.requests, "quantity") - filled
    return cost + int((shortage * _column(problem.requests, "shortage_penalty")).sum())


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
    table: ArcTable,
    flows: np.ndarray,
    status: Status,
    bound: int,
    solver: str,
    started: float,
) -> TransferPlan:
    used = np.flatnonzero(flows)
    allocations = sorted(
        (
            Allocation(problem.requests[i].id, problem.offers[j].id, q)
            for i, j, q in zip(
                table.request[used].tolist(), table.offer[used].tolist(), flows[used].tolist(), strict=True
            )
        ),
        key=lambda a: (a.request, a.offer),
    )
    filled = np.zeros(len(problem.requests), dtype=_INT)
    np.add.at(filled, table.request, flows)
    shortages = sorted(
        (
            Shortage(r.id, r.quantity - f)
            for r, f in zip(problem.requests, filled.tolist(), strict=True)
            if r.quantity > f
        ),
        key=lambda s: s.request,
    )
    cost = evaluate(problem, table, flows)
    return TransferPlan(
        status,
        cost,
        tuple(allocations),
        tuple(shortages),
        min(bound, cost),
        solver,
        time.perf_counter() - started,
        int((table.preference * flows).sum()),
    )


def _min_cost_flow(problem: MatchingProblem, table: ArcTable, surcharge: np.ndarray | None = None) -> np.ndarray:
    """Exact when no MOQ and no fixed costs bind: requests are sinks, shortage is an arc at the penalty.
    `surcharge` adds a cost per unit to each arc (the slope-scaling heuristic's share of a truck)."""
    n_req, n_off = len(problem.requests), len(problem.offers)
    if not len(table):
        return np.zeros(0, dtype=_INT)
    source, sink = n_req + n_off, n_req + n_off + 1
    r_qty, penalty = _column(problem.requests, "quantity"), _column(problem.requests, "shortage_penalty")
    smcf = min_cost_flow.SimpleMinCostFlow()
    requests = np.arange(n_req, dtype=_INT)
    tails = np.concatenate([np.full(n_off, source), n_req + table.offer, np.full(n_req, source), requests])
    heads = np.concatenate([n_req + np.arange(n_off, dtype=_INT), table.request, requests, np.full(n_req, sink)])
    caps = np.concatenate([_column(problem.offers, "quantity"), table.capacity, r_qty, r_qty])
    # Filling a request saves its penalty: cost of an offer arc is unit cost minus the request's penalty,
    # and the "shortage" path source -> request -> sink costs 0, so unfilled quantity costs nothing extra.
    arc_cost = table.unit_cost - penalty[table.request] + (0 if surcharge is None else surcharge)
    costs = np.concatenate([np.zeros(n_off, _INT), arc_cost, np.zeros(2 * n_req, _INT)])
    smcf.add_arcs_with_capacity_and_unit_cost(tails, heads, caps, costs)
    total = int(r_qty.sum())
    smcf.set_node_supply(source, total)
    smcf.set_node_supply(sink, -total)
    if smcf.solve() != smcf.OPTIMAL:
        raise RuntimeError("min-cost flow did not solve a feasible network")
    return np.asarray(smcf.flows(np.arange(n_off, n_off + len(table))), dtype=_INT)


def _repair(problem: MatchingProblem, table: ArcTable, flows: np.ndarray) -> np.ndarray:
    """Make a relaxed solution respect minimum order quantities (drop sub-MOQ allocations)."""
    moq = _column(problem.offers, "min_order_quantity")[table.offer]
    return np.where(flows >= moq, flows, 0)


# -- the fixed-cost-aware heuristic ---------------------------------------------------------------------


@dataclass(eq=False)
class _GreedyFill:
    """The greedy fill's working state, as Python lists: its loop reads a few entries a step, where numpy's
    per-element indexing would cost more than the step."""

    request: list[int]  # per arc: its request, offer and lane
    offer: list[int]
    lane: list[int]
    saving: list[int]  # per arc: penalty saved less unit cost, per unit
    rank: list[int]  # per arc: the heap's order before any truck (saving, or shifted by request for by_cost)
    fixed: list[int]  # per arc: its lane's fixed cost
    moq: list[int]  # per arc: its offer's minimum order quantity (at least 1)
    room: list[int]  # per arc: capacity not yet used
    has: list[bool]  # per arc: carries something already
    offer_left: list[int]
    request_left: list[int]
    paid: list[bool]  # per lane: its truck is paid for (or it has none)
    by_lane: dict[int, list[int]]  # the useful arcs of each lane
    heap: list[tuple[float, int]]  # (-worth per unit, arc), lazily re-valued


def _greedy_fill(
    problem: MatchingProblem, table: ArcTable, flows: np.ndarray, saving: np.ndarray, rank: np.ndarray
) -> _GreedyFill:
    """The state before the first step: what `flows` leaves of every offer, request, arc and lane, and every
    useful arc (one that saves something) queued at its rank less, while its lane has no truck yet, the
    truck spread over the arc's capacity."""
    useful = np.flatnonzero(saving > 0)
    fixed = _column(problem.lanes, "fixed_cost")[table.lane]
    left_offer = _column(problem.offers, "quantity")
    np.subtract.at(left_offer, table.offer, flows)
    left_request = _column(problem.requests, "quantity")
    np.subtract.at(left_request, table.request, flows)
    paid_lanes = _column(problem.lanes, "fixed_cost") == 0
    paid_lanes[table.lane[flows > 0]] = True
    by_lane: dict[int, list[int]] = defaultdict(list)
    lane = table.lane.tolist()
    for k in useful.tolist():
        by_lane[lane[k]].append(k)
    spread = np.where(paid_lanes[table.lane[useful]], 0, fixed[useful] / table.capacity[useful])
    heap = [(-w, k) for w, k in zip((rank[useful] - spread).tolist(), useful.tolist(), strict=True)]
    heapq.heapify(heap)
    return _GreedyFill(
        request=table.request.tolist(),
        offer=table.offer.tolist(),
        lane=lane,
        saving=saving.tolist(),
        rank=rank.tolist(),
        fixed=fixed.tolist(),
        moq=np.maximum(1, _column(problem.offers, "min_order_quantity"))[table.offer].tolist(),
        room=(table.capacity - flows).tolist(),
        has=(flows > 0).tolist(),
        offer_left=left_offer.tolist(),
        request_left=left_request.tolist(),
        paid=paid_lanes.tolist(),
        by_lane=by_lane,
        heap=heap,
    )


def _take_best_first(state: _GreedyFill, flows: np.ndarray) -> None:
    """Pop arcs best first and give each what its offer and request have left, into `flows` (docs/matching.md,
    "Heuristic"); a newly paid truck re-queues its lane's arcs at their plain rank."""
    # Locals, not attributes, in the loop: it runs once per heap step.
    lo, lr, paid, room, has = state.offer_left, state.request_left, state.paid, state.room, state.has
    req, off, lane, sav, fix = state.request, state.offer, state.lane, state.saving, state.fixed
    low, rnk, heap, by_lane = state.moq, state.rank, state.heap, state.by_lane
    while heap:
        key, k = heapq.heappop(heap)
        q = min(lo[off[k]], lr[req[k]], room[k])
        if q < (1 if has[k] else low[k]):  # a first allocation meets the MOQ; a top-up may be any size
            continue
        ln = lane[k]
        if not paid[ln] and q * sav[k] <= fix[k]:  # exact, in integers: the truck must pay for itself
            continue  # (and never will with less stock; paying the lane re-queues the arc)
        now = rnk[k] if paid[ln] else rnk[k] - fix[k] / q
        if now < -key - 1e-9:  # stale: stock ran out since it was queued
            heapq.heappush(heap, (-now, k))
            continue
        flows[k] += q
        has[k] = True
        lo[off[k]] -= q
        lr[req[k]] -= q
        room[k] -= q
        if not paid[ln]:
            paid[ln] = True
            for other in by_lane[ln]:
                heapq.heappush(heap, (-rnk[other], other))


def _fill(problem: MatchingProblem, table: ArcTable, flows: np.ndarray, by_cost: bool = False) -> np.ndarray:
    """Greedy by saving per unit, counting trucks, from the plan `flows` (docs/matching.md, "Heuristic").

    An arc's worth per unit is the shortage penalty it saves minus its unit cost minus, while its lane has no
    truck yet, the lane's fixed cost spread over the whole quantity it could carry now. Arcs are taken best
    first, each for as much as its offer and request have left (never below the minimum order quantity, and
    a new truck only when the quantity pays for it); once a truck is paid for, the other arcs of its lane
    come back at their plain unit cost, so lanes already paid for are reused before new ones are opened.
    Estimates only grow worse as stock runs out, except through a newly paid lane, which re-queues its arcs:
    a lazy heap is therefore exact about the order.

    `by_cost` orders by delivered cost per unit (truck spread included) instead of saving per unit: the
    cheapest supply first whatever the request's penalty. Neither order wins everywhere (measured in
    docs/benchmarks.md, "Matching"), so the heuristic runs both."""
    flows = flows.copy()
    penalty = _column(problem.requests, "shortage_penalty")[table.request]
    saving = penalty - table.unit_cost  # per unit, before any truck
    if not (saving > 0).any():  # an arc costing its penalty or more never lowers the cost
        return flows
    # The heap's order: saving per unit, or (by cost) the same shifted by a constant per request.
    rank = saving + (int(penalty.max()) - penalty if by_cost else 0)
    _take_best_first(_greedy_fill(problem, table, flows, saving, rank), flows)
    return flows


def _drop_trucks_not_worth_it(problem: MatchingProblem, table: ArcTable, flows: np.ndarray) -> np.ndarray:
    """Empty every arc that costs its request's penalty or more, then every lane whose loads save less than
    its truck costs: each step lowers the cost (a plan from the flow relaxation, which knows no trucks, has
    many such lanes)."""
    penalty = _column(problem.requests, "shortage_penalty")[table.request]
    flows = np.where(table.unit_cost < penalty, flows, 0)
    lane_fixed = _column(problem.lanes, "fixed_cost")
    saved = np.bincount(table.lane, weights=flows * (penalty - table.unit_cost), minlength=len(lane_fixed))
    used = np.bincount(table.lane, weights=flows, minlength=len(lane_fixed)) > 0
    losing = used & (lane_fixed > 0) & (saved < lane_fixed)
    return np.where(losing[table.lane], 0, flows)


def _improve(problem: MatchingProblem, table: ArcTable, flows: np.ndarray) -> np.ndarray:
    """Drop the trucks that do not pay, then fill what they freed, a few rounds (each round never costs more)."""
    for _ in range(3):
        dropped = _drop_trucks_not_worth_it(problem, table, flows)
        if (dropped == flows).all():
            break
        flows = _fill(problem, table, dropped)
    return flows


def _heuristic_flows(problem: MatchingProblem, table: ArcTable) -> np.ndarray:
    """The cheaper of the two greedy orders, each improved (docs/matching.md, "Heuristic")."""
    empty = np.zeros(len(table), dtype=_INT)
    plans = [_improve(problem, table, _fill(problem, table, empty, by_cost)) for by_cost in (False, True)]
    return min(plans, key=lambda flows: evaluate(problem, table, flows))


# Slope scaling's rounds: at most this many, and no more than the budget affords at about 30 us an arc a
# round (measured on 2 loaded cores) within 12 % of it; it also stops after two rounds without a cheaper
# plan. Counted from the input and the parameters, never from a clock, so the same input and parameters
# give the same incumbent on any machine.
_SLOPE_ROUNDS = 6
_SLOPE_ARCS_PER_SECOND = 4_000


def _slope_rounds(n_arcs: int, time_limit: float) -> int:
    return max(1, min(_SLOPE_ROUNDS, int(time_limit * _SLOPE_ARCS_PER_SECOND / max(1, n_arcs))))


def _slope_scaling(problem: MatchingProblem, table: ArcTable, rounds: int) -> np.ndarray:
    """Dynamic slope scaling (docs/matching.md, "Solving"): the min-cost flow with each lane's truck charged
    per unit, at first over all the lane could carry, then over what the previous round carried on it;
    each round's flow made legal (sub-MOQ allocations dropped) and improved like the heuristic's plan."""
    lane_fixed = _column(problem.lanes, "fixed_cost")
    could_carry = np.bincount(table.lane, weights=table.capacity, minlength=len(lane_fixed))
    slope = lane_fixed / np.maximum(could_carry, 1)
    best, best_cost, stale = np.zeros(len(table), dtype=_INT), math.inf, 0
    for _ in range(rounds):
        flows = _min_cost_flow(problem, table, np.ceil(slope[table.lane]).astype(_INT))
        plan = _improve(problem, table, _fill(problem, table, _repair(problem, table, flows)))
        if (cost := evaluate(problem, table, plan)) < best_cost:
            best, best_cost, stale = plan, cost, 0
        else:
            stale += 1
            if stale == 2:
                break
        carried = np.bincount(table.lane, weights=flows, minlength=len(lane_fixed))
        slope = np.where(carried > 0, lane_fixed / np.maximum(carried, 1), slope)
    return best


@_forget_columns
def fixed_cost_heuristic(problem: MatchingProblem) -> TransferPlan:
    """The fixed-cost-aware greedy plan (docs/matching.md, "Heuristic"): what `solve` never does worse than."""
    started = time.perf_counter()
    table = arc_table(problem)
    return _plan(problem, table, _heuristic_flows(problem, table), "feasible", 0, "heuristic", started)


@_forget_columns
def greedy(problem: MatchingProblem) -> TransferPlan:
    """Baseline: cheapest arc first, whole MOQ or nothing, ignoring that trucks could be shared."""
    started = time.perf_counter()
    table = arc_table(problem)
    left_offer = _column(problem.offers, "quantity").tolist()
    left_request = _column(problem.requests, "quantity").tolist()
    penalty = _column(problem.requests, "shortage_penalty").tolist()
    moq = _column(problem.offers, "min_order_quantity").tolist()
    flows = np.zeros(len(table), dtype=_INT)
    req, off, unit = table.request.tolist(), table.offer.tolist(), table.unit_cost.tolist()
    for k in np.lexsort((np.arange(len(table)), table.unit_cost)).tolist():
        if unit[k] >= penalty[req[k]]:
            continue
        q = min(left_offer[off[k]], left_request[req[k]])
        if q <= 0 or q < moq[off[k]]:
            continue
        flows[k] = q
        left_offer[off[k]] -= q
        left_request[req[k]] -= q
    return _plan(problem, table, flows, "feasible", 0, "greedy", started)


# -- the MIP --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Model:
    """The MIP of docs/matching.md as a sparse matrix: columns x (one per useful arc), then u (one per arc
    with a minimum order quantity above 1), then z (one per lane with a fixed cost); rows lower <= A.v <= upper."""

    arcs: np.ndarray  # the table's index of each x column
    n_cols: int
    cost: np.ndarray
    upper: np.ndarray
    row_lower: np.ndarray
    row_upper: np.ndarray
    rows: np.ndarray  # COO triplets
    cols: np.ndarray
    values: np.ndarray
    offset: int
    moq_arc: np.ndarray  # x index of each u column
    lane_of_z: np.ndarray  # lane index of each z column
    z_of_arc: np.ndarray  # z column of each x (-1: no fixed cost)

    def start(self, flows: np.ndarray) -> np.ndarray:
        """A full solution vector from arc flows (the warm start)."""
        x = flows[self.arcs].astype(np.float64)
        u = (x[self.moq_arc] > 0).astype(np.float64)
        z = np.zeros(len(self.lane_of_z))
        z[self.z_of_arc[(x > 0) & (self.z_of_arc >= 0)] - len(x) - len(u)] = 1
        return np.concatenate([x, u, z])


@dataclass(frozen=True, eq=False)
class _ModelColumns:
    """The MIP's columns over one part and what its rows read of the arcs: x per arc, then u per arc with a
    minimum order quantity above 1, then z per lane with a fixed cost (docs/matching.md, "Model")."""

    arcs: np.ndarray  # the table's index of each x column
    request: np.ndarray  # per x: its request, offer, lane, capacity and minimum order quantity
    offer: np.ndarray
    lane: np.ndarray
    capacity: np.ndarray
    moq: np.ndarray
    moq_arc: np.ndarray  # x index of each u column
    lane_of_z: np.ndarray  # lane index of each z column
    z_of_arc: np.ndarray  # z column of each x (-1: no fixed cost)

    @property
    def n_x(self) -> int:
        return len(self.arcs)

    @property
    def n_u(self) -> int:
        return len(self.moq_arc)

    @property
    def u_col(self) -> np.ndarray:
        return self.n_x + np.arange(self.n_u, dtype=_INT)


def _model_columns(problem: MatchingProblem, table: ArcTable, arcs: np.ndarray) -> _ModelColumns:
    lane_fixed = _column(problem.lanes, "fixed_cost")
    req, off, lane, cap = table.request[arcs], table.offer[arcs], table.lane[arcs], table.capacity[arcs]
    n_x = len(arcs)
    moq = _column(problem.offers, "min_order_quantity")[off]
    moq_arc = np.flatnonzero(moq > 1)
    fixed_lanes, z_local = np.unique(lane[lane_fixed[lane] > 0], return_inverse=True)
    z_of_arc = np.full(n_x, -1, dtype=_INT)
    z_of_arc[lane_fixed[lane] > 0] = n_x + len(moq_arc) + z_local
    return _ModelColumns(arcs, req, off, lane, cap, moq, moq_arc, fixed_lanes, z_of_arc)


class _Rows:
    """The constraint rows lower <= A.v <= upper, added block by block, A as COO triplets."""

    def __init__(self) -> None:
        self.entries: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (row, column, coefficient)
        self.lower: list[np.ndarray] = []
        self.upper: list[np.ndarray] = []
        self.count = 0

    def add(self, lo: float | np.ndarray, up: float | np.ndarray, count: int) -> int:
        """Append `count` rows lo <= . <= up; returns the first one's index."""
        self.lower.append(np.broadcast_to(np.asarray(lo, dtype=np.float64), (count,)))
        self.upper.append(np.broadcast_to(np.asarray(up, dtype=np.float64), (count,)))
        self.count += count
        return self.count - count

    def put(self, row: np.ndarray, col: np.ndarray, value: float | np.ndarray) -> None:
        self.entries.append((row, col, np.broadcast_to(np.asarray(value, dtype=np.float64), (len(row),))))


def _stock_rows(rows: _Rows, c: _ModelColumns, r_qty: np.ndarray, o_qty: np.ndarray) -> None:
    """No offer over-allocated, no request over-filled."""
    x_col = np.arange(c.n_x, dtype=_INT)
    for who, qty in ((c.offer, o_qty), (c.request, r_qty)):
        values, index = np.unique(who, return_inverse=True)
        first = rows.add(-np.inf, qty[values], len(values))
        rows.put(first + index.astype(_INT), x_col, 1.0)


def _moq_rows(rows: _Rows, c: _ModelColumns) -> None:
    """x = 0 or moq <= x <= cap, as x - moq u >= 0 and x - cap u <= 0."""
    if not c.n_u:
        return
    first = rows.add(0.0, np.inf, c.n_u)
    rows.put(first + np.arange(c.n_u), c.moq_arc, 1.0)
    rows.put(first + np.arange(c.n_u), c.u_col, -c.moq[c.moq_arc])
    first = rows.add(-np.inf, 0.0, c.n_u)
    rows.put(first + np.arange(c.n_u), c.moq_arc, 1.0)
    rows.put(first + np.arange(c.n_u), c.u_col, -c.capacity[c.moq_arc])


def _truck_rows(rows: _Rows, c: _ModelColumns) -> None:
    """A lane's truck is paid when any arc on it carries: x <= cap z, or u <= z for an arc with an MOQ (with
    x <= cap u it implies x <= cap z, and is as strong)."""
    on_fixed = c.z_of_arc >= 0
    plain = np.flatnonzero(on_fixed & (c.moq <= 1))
    first = rows.add(-np.inf, 0.0, len(plain))
    rows.put(first + np.arange(len(plain)), plain, 1.0)
    rows.put(first + np.arange(len(plain)), c.z_of_arc[plain], -c.capacity[plain])
    linked = np.flatnonzero(on_fixed[c.moq_arc])
    first = rows.add(-np.inf, 0.0, len(linked))
    rows.put(first + np.arange(len(linked)), c.u_col[linked], 1.0)
    rows.put(first + np.arange(len(linked)), c.z_of_arc[c.moq_arc[linked]], -1.0)


def _shared_truck_cuts(rows: _Rows, c: _ModelColumns, r_qty: np.ndarray, o_qty: np.ndarray) -> None:
    """Valid inequalities per (lane, request) and (lane, offer) with several arcs: sum x <= min(quantity,
    sum cap) z. With z fractional, the per-arc links let a request draw on several offers over one lane
    while paying a fraction of the truck; these close that, and cut nothing integral (with the truck paid
    they repeat the request's or offer's limit)."""
    fixed_arcs = np.flatnonzero(c.z_of_arc >= 0)
    for who, qty in ((c.request, r_qty), (c.offer, o_qty)):
        _, index, size = np.unique(
            c.lane[fixed_arcs] * (len(qty) + 1) + who[fixed_arcs], return_inverse=True, return_counts=True
        )
        keep = np.flatnonzero(size[index] > 1)
        if not len(keep):
            continue
        _, local = np.unique(index[keep], return_inverse=True)
        members = fixed_arcs[keep]
        g = int(local.max()) + 1
        room = np.zeros(g, dtype=_INT)
        np.add.at(room, local, c.capacity[members])
        one = np.zeros(g, dtype=_INT)
        one[local] = members  # any member names the group's lane and its request or offer
        first = rows.add(-np.inf, 0.0, g)
        rows.put(first + local.astype(_INT), members, 1.0)
        rows.put(first + np.arange(g), c.z_of_arc[one], -np.minimum(room, qty[who[one]]))


def _build_model(problem: MatchingProblem, table: ArcTable, arcs: np.ndarray) -> _Model:
    """The MIP over `arcs` (indices into `table`: arcs worth using, whole components of the problem); its
    objective's constant counts the penalties of the requests those arcs serve."""
    penalty = _column(problem.requests, "shortage_penalty")
    r_qty, o_qty = _column(problem.requests, "quantity"), _column(problem.offers, "quantity")
    c = _model_columns(problem, table, arcs)
    rows = _Rows()
    _stock_rows(rows, c, r_qty, o_qty)
    _moq_rows(rows, c)
    _truck_rows(rows, c)
    _shared_truck_cuts(rows, c, r_qty, o_qty)
    n_z = len(c.lane_of_z)
    cost = np.concatenate(
        [
            (table.unit_cost[arcs] - penalty[c.request]).astype(np.float64),
            np.zeros(c.n_u),
            _column(problem.lanes, "fixed_cost")[c.lane_of_z],
        ]
    ).astype(np.float64)
    upper = np.concatenate([c.capacity.astype(np.float64), np.ones(c.n_u + n_z)])
    return _Model(
        arcs=arcs,
        n_cols=c.n_x + c.n_u + n_z,
        cost=cost,
        upper=upper,
        row_lower=np.concatenate(rows.lower),
        row_upper=np.concatenate(rows.upper),
        rows=np.concatenate([e[0] for e in rows.entries]).astype(_INT),
        cols=np.concatenate([e[1] for e in rows.entries]).astype(_INT),
        values=np.concatenate([e[2] for e in rows.entries]),
        offset=int((r_qty * penalty)[np.unique(c.request)].sum()),
        moq_arc=c.moq_arc,
        lane_of_z=c.lane_of_z,
        z_of_arc=c.z_of_arc,
    )


@dataclass(frozen=True)
class _MipResult:
    flows: np.ndarray | None  # per arc of the table; None: no solution found
    bound: float  # proven lower bound of the objective (-inf: none)


_highs_banner_shown = False


def quiet_highs() -> Any:
    """A quiet HiGHS instance. HiGHS prints its banner on stdout when the first instance is made, before
    any option can be set; `consortium match` writes the plan's JSON on stdout, so that one line is sent
    to stderr instead."""
    global _highs_banner_shown
    import highspy

    if _highs_banner_shown:
        h = highspy.Highs()  # type: ignore[no-untyped-call]  # highspy ships no annotations for it
    else:
        sys.stdout.flush()
        saved = os.dup(1)
        try:
            os.dup2(2, 1)
            h = highspy.Highs()  # type: ignore[no-untyped-call]
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        _highs_banner_shown = True
    h.setOptionValue("output_flag", False)
    return h


def _solve_highs(model: _Model, n_arcs: int, start: np.ndarray, gap: float, deadline: float) -> _MipResult:
    """HiGHS through highspy: the model passed as arrays (no per-coefficient Python call), the start given
    as a solution, a wall-clock limit (HiGHS times its run with a wall clock and checks it often)."""
    import highspy

    h = quiet_highs()
    h.setOptionValue("mip_rel_gap", gap)
    h.setOptionValue("threads", 1)  # deterministic, and polite on a shared machine
    h.setOptionValue("random_seed", 0)
    lp = highspy.HighsLp()
    lp.num_col_ = model.n_cols
    lp.num_row_ = len(model.row_lower)
    lp.col_cost_ = model.cost
    lp.col_lower_ = np.zeros(model.n_cols)
    lp.col_upper_ = model.upper
    lp.row_lower_ = model.row_lower
    lp.row_upper_ = model.row_upper
    lp.offset_ = float(model.offset)
    order = np.argsort(model.rows, kind="stable")
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = np.searchsorted(model.rows[order], np.arange(lp.num_row_ + 1)).astype(np.int32)
    lp.a_matrix_.index_ = model.cols[order].astype(np.int32)
    lp.a_matrix_.value_ = model.values[order]
    lp.integrality_ = [highspy.HighsVarType.kInteger] * model.n_cols
    h.passModel(lp)
    h.setSolution(model.n_cols, np.arange(model.n_cols, dtype=np.int32), start)
    seconds = deadline - time.perf_counter()
    if seconds <= 0.01:
        return _MipResult(None, -math.inf)
    h.setOptionValue("time_limit", seconds)
    h.run()
    info = h.getInfo()
    flows = None
    if info.primal_solution_status == 2:  # kSolutionStatusFeasible
        values = np.asarray(h.getSolution().col_value)
        flows = np.zeros(n_arcs, dtype=_INT)
        flows[model.arcs] = np.rint(values[: len(model.arcs)]).astype(_INT)
    bound = info.mip_dual_bound
    return _MipResult(flows, bound if math.isfinite(bound) else -math.inf)


def _solve_cbc(model: _Model, n_arcs: int, start: np.ndarray, gap: float, deadline: float) -> _MipResult:
    """CBC through pywraplp (one Python call per coefficient: seconds at 10,000 requests), the start as a
    hint. CBC counts CPU time, not wall-clock time, and checks it between search steps: it gets 80 % of
    what is left once its model is built."""
    s = pywraplp.Solver.CreateSolver("CBC")
    n_x = len(model.arcs)
    v = [s.IntVar(0, float(ub), f"v{c}") for c, ub in enumerate(model.upper.tolist())]
    order = np.argsort(model.rows, kind="stable")
    rows, cols, values = model.rows[order].tolist(), model.cols[order].tolist(), model.values[order].tolist()
    inf = s.infinity()
    constraints = [
        s.Constraint(lo if math.isfinite(lo) else -inf, up if math.isfinite(up) else inf)
        for lo, up in zip(model.row_lower.tolist(), model.row_upper.tolist(), strict=True)
    ]
    for r, c, a in zip(rows, cols, values, strict=True):
        constraints[r].SetCoefficient(v[c], a)
    objective = s.Objective()
    for c, a in enumerate(model.cost.tolist()):
        if a:
            objective.SetCoefficient(v[c], a)
    objective.SetOffset(float(model.offset))
    objective.SetMinimization()
    s.SetHint(v, start.tolist())
    seconds = 0.8 * (deadline - time.perf_counter())
    if seconds <= 0.01:
        return _MipResult(None, -math.inf)
    s.SetTimeLimit(max(1, round(seconds * 1000)))
    mip = pywraplp.MPSolverParameters()
    mip.SetDoubleParam(mip.RELATIVE_MIP_GAP, gap)
    code = s.Solve(mip)
    if code not in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE):
        return _MipResult(None, -math.inf)
    flows = np.zeros(n_arcs, dtype=_INT)
    flows[model.arcs] = np.rint([v[c].solution_value() for c in range(n_x)]).astype(_INT)
    return _MipResult(flows, objective.BestBound())


_MIP_SOLVERS = {"highs": _solve_highs, "cbc": _solve_cbc}


def _feasible(problem: MatchingProblem, table: ArcTable, flows: np.ndarray) -> bool:
    """A solver's answer is used only if it is a legal plan (rounding of a floating-point solution)."""
    if (flows < 0).any() or (flows > table.capacity).any():
        return False
    moq = _column(problem.offers, "min_order_quantity")[table.offer]
    if ((flows > 0) & (flows < moq)).any():
        return False
    taken = np.zeros(len(problem.offers), dtype=_INT)
    np.add.at(taken, table.offer, flows)
    filled = np.zeros(len(problem.requests), dtype=_INT)
    np.add.at(filled, table.request, flows)
    return bool(
        (taken <= _column(problem.offers, "quantity")).all() and (filled <= _column(problem.requests, "quantity")).all()
    )


def _components(problem: MatchingProblem, table: ArcTable, arcs: np.ndarray) -> list[np.ndarray]:
    """The arcs grouped by connected component of the graph whose vertices are requests, offers and lanes
    with a fixed cost, an arc joining its request, its offer and (if it has a fixed cost) its lane: no
    constraint and no truck couples two components, so each can be solved alone."""
    n_req, n_off = len(problem.requests), len(problem.offers)
    parent = list(range(n_req + n_off + len(problem.lanes)))

    def root(v: int) -> int:
        while parent[v] != v:
            parent[v] = parent[parent[v]]
            v = parent[v]
        return v

    fixed = _column(problem.lanes, "fixed_cost")[table.lane[arcs]] > 0
    for r, o, ln, has_truck in zip(
        table.request[arcs].tolist(), table.offer[arcs].tolist(), table.lane[arcs].tolist(), fixed.tolist(), strict=True
    ):
        a, b = root(r), root(n_req + o)
        if a != b:
            parent[a] = b
        if has_truck:
            a, c = root(b), root(n_req + n_off + ln)
            if a != c:
                parent[c] = a
    label = np.fromiter((root(r) for r in table.request[arcs].tolist()), dtype=_INT, count=len(arcs))
    order = np.argsort(label, kind="stable")
    _, first = np.unique(label[order], return_index=True)
    return np.split(arcs[order], first[1:]) if len(arcs) else []


# Components with fewer arcs than this are solved together in one model (a solver call costs milliseconds
# even for a trivial model, and there are thousands of tiny components); larger ones alone, so that each
# presolve and root LP stays small and the budget is shared by size.
_ALONE = 1_000


# A part whose share of the budget is below this per arc is not given to the solver (measured: HiGHS
# needed 50-80 us an arc before its first bound on 2 shared cores, and overran shorter limits).
_SECONDS_PER_ARC_AT_LEAST = 5e-5


def _parts(components: list[np.ndarray]) -> list[np.ndarray]:
    small = [c for c in components if len(c) < _ALONE]
    large = sorted((c for c in components if len(c) >= _ALONE), key=len)
    return ([np.sort(np.concatenate(small))] if small else []) + [np.sort(c) for c in large]


def _part_cost(
    problem: MatchingProblem, table: ArcTable, flows: np.ndarray, arcs: np.ndarray, fixed_costs: bool = True
) -> int:
    """The cost of `flows` on one part less the penalties of its requests: comparable between two plans."""
    q = flows[arcs]
    penalty = _column(problem.requests, "shortage_penalty")[table.request[arcs]]
    cost = int((q * (table.unit_cost[arcs] - penalty)).sum())
    if fixed_costs:
        cost += int(_column(problem.lanes, "fixed_cost")[np.unique(table.lane[arcs][q > 0])].sum())
    return cost


@dataclass(frozen=True, eq=False)
class _Incumbent:
    flows: np.ndarray  # per arc of the table
    name: Literal["heuristic", "slope_scaling"]  # which found it


def _incumbent(problem: MatchingProblem, table: ArcTable, params: SolverParameters, started: float) -> _Incumbent:
    """The plan before any search: the fixed-cost-aware heuristic's, or slope scaling's if cheaper (measured:
    up to 1.4 % cheaper on the benchmarks, where the MIP's search alone often finds nothing better than its
    start within the budget). Slope scaling is skipped when the budget is mostly spent already."""
    best = _Incumbent(_heuristic_flows(problem, table), "heuristic")
    if time.perf_counter() - started < 0.4 * params.time_limit:
        scaled = _slope_scaling(problem, table, _slope_rounds(len(table), params.time_limit))
        if evaluate(problem, table, scaled) < evaluate(problem, table, best.flows):
            best = _Incumbent(scaled, "slope_scaling")
    return best


@dataclass(frozen=True, eq=False)
class _PartOutcome:
    bound: int  # proven lower bound of the part's cost, its requests' penalties included
    flows: np.ndarray | None  # a legal plan cheaper than the incumbent on the part; None: none found


def _solve_part(
    problem: MatchingProblem,
    table: ArcTable,
    part: np.ndarray,
    relaxed: np.ndarray,
    best: np.ndarray,
    params: SolverParameters,
    deadline: float,
    share: float,
) -> _PartOutcome:
    """One part given to the MIP solver until `deadline` (`share` seconds from now), warm-started from `best`;
    its bound is the solver's, or the relaxation's on the part, which is exact for it as the relaxation
    decomposes the same way."""
    penalty = _column(problem.requests, "shortage_penalty")
    penalties = int((_column(problem.requests, "quantity") * penalty)[np.unique(table.request[part])].sum())
    relaxed_part = _part_cost(problem, table, relaxed, part, fixed_costs=False) + penalties
    if share < _SECONDS_PER_ARC_AT_LEAST * len(part):
        # Too short for HiGHS's presolve and first LP, which do not check the clock often: it would run
        # past its share and find neither a plan nor a bound. The part keeps the incumbent.
        return _PartOutcome(relaxed_part, None)
    model = _build_model(problem, table, part)
    result = _MIP_SOLVERS[params.solver](model, len(table), model.start(best), params.relative_gap, deadline)
    proven = math.ceil(result.bound - 1e-6 - 1e-9 * abs(result.bound)) if math.isfinite(result.bound) else 0
    found = result.flows
    cheaper = (
        found is not None
        and _feasible(problem, table, found)
        and _part_cost(problem, table, found, part) < _part_cost(problem, table, best, part)
    )
    return _PartOutcome(max(relaxed_part, proven), found if cheaper else None)


@dataclass(frozen=True, eq=False)
class _Search:
    flows: np.ndarray  # the incumbent, with every part the solver improved replaced by its plan
    bound: int  # proven lower bound of the whole problem's cost
    improved: bool  # the solver improved some part


def _search_parts(
    problem: MatchingProblem,
    table: ArcTable,
    relaxed: np.ndarray,
    best: np.ndarray,
    params: SolverParameters,
    deadline: float,
) -> _Search:
    """The MIP solver on each independent part of the arcs worth using, smallest first, until `deadline`."""
    penalty = _column(problem.requests, "shortage_penalty")
    useful = np.flatnonzero(table.unit_cost < penalty[table.request])  # never worth using otherwise
    parts = _parts(_components(problem, table, useful))
    # Lower bound: the penalties of requests no part serves (no arc is worth using for them), plus each
    # part's bound.
    served = np.zeros(len(problem.requests), dtype=bool)
    served[table.request[useful]] = True
    bound = int((_column(problem.requests, "quantity") * penalty)[~served].sum())
    improved = False
    left = sum(len(part) for part in parts)
    for part in parts:
        now = time.perf_counter()
        # Each part gets its share by size of what is left; time a part does not use goes to the next.
        part_deadline = now + (deadline - now) * len(part) / left
        left -= len(part)
        outcome = _solve_part(problem, table, part, relaxed, best, params, part_deadline, part_deadline - now)
        bound += outcome.bound
        if outcome.flows is not None:
            best = best.copy()
            best[part] = outcome.flows[part]
            improved = True
    return _Search(best, bound, improved)


@_forget_columns
def solve(problem: MatchingProblem, params: SolverParameters | None = None) -> TransferPlan:
    """The cheapest plan found within `params.time_limit` seconds of wall-clock time for the whole call
    (docs/matching.md, "Solving"); never dearer than `fixed_cost_heuristic`."""
    params = params or SolverParameters()
    started = time.perf_counter()
    deadline = started + params.time_limit
    check_bounds(problem)  # problems built in code (planning, the sandbox) were not parsed
    table = arc_table(problem)
    if not problem.requests:
        return _plan(problem, table, np.zeros(len(table), _INT), "optimal", 0, "none", started)
    relaxed = _min_cost_flow(problem, table)
    moq_binds = bool((_column(problem.offers, "min_order_quantity")[table.offer] > 1).any())
    fixed_binds = bool((_column(problem.lanes, "fixed_cost")[table.lane] > 0).any())
    if not moq_binds and not fixed_binds:
        bound = evaluate(problem, table, relaxed)
        return _plan(problem, table, relaxed, "optimal", bound, "min_cost_flow", started)
    flow_bound = evaluate(problem, table, relaxed, fixed_costs=False)
    name = f"mip_{params.solver}"
    incumbent = _incumbent(problem, table, params, started)
    if evaluate(problem, table, incumbent.flows) <= flow_bound:  # the relaxation's bound already proves it
        return _plan(problem, table, incumbent.flows, "optimal", flow_bound, f"{name}_{incumbent.name}", started)
    # The solver stops at what is left of the budget less a margin for reading its answers back and writing
    # the plan (a few microseconds an arc) and for its own last check of the clock.
    solver_deadline = deadline - (0.02 + 0.03 * params.time_limit + 3e-6 * len(table))
    if solver_deadline - time.perf_counter() <= 0.01:
        return _plan(problem, table, incumbent.flows, "feasible", flow_bound, incumbent.name, started)
    search = _search_parts(problem, table, relaxed, incumbent.flows, params, solver_deadline)
    bound = max(flow_bound, search.bound)
    cost = evaluate(problem, table, search.flows)
    status: Status = "optimal" if cost <= bound else "feasible"
    solver = name if search.improved else f"{name}_{incumbent.name}"
    return _plan(problem, table, search.flows, status, bound, solver, started)
