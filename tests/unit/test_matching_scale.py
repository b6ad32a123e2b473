"""The matcher at scale (issue 12): the indexed arcs equal the plain scan, the plan is never dearer than the
fixed-cost-aware heuristic, the heuristic is a legal plan, and the budget reaches the solver."""

from __future__ import annotations

import random
import time
from collections import defaultdict
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from negotiation import matching
from negotiation.matching import (
    Arc,
    MatchingProblem,
    SolverParameters,
    allowed_arcs,
    arc_table,
    evaluate,
    fixed_cost_heuristic,
    parse_problem,
    solve,
)
from settlement.plans import parameters_of
from tests.unit.test_matching import brute_force, random_problem, spec_cost


def reference_arcs(problem: MatchingProblem) -> list[Arc]:
    """The arc list as the matcher built it before the index: a scan of every request x offer of a SKU."""
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


def medium_problem(seed: int, n_requests: int = 40, n_offers: int = 120, n_nodes: int = 9) -> MatchingProblem:
    """Bigger than brute force can check, with every rule biting, trucks, MOQs and preferences."""
    rng = random.Random(seed)
    nodes = [f"N{k}" for k in range(n_nodes)]
    skus = [f"S{k}" for k in range(rng.randint(1, 6))]
    requests = [
        {
            "id": f"r{i}",
            "node": rng.choice(nodes),
            "sku": rng.choice(skus),
            "quantity": rng.randint(1, 60),
            "min_shelf_life_days": rng.choice([0, 30, 200]),
            "max_transit_hours": rng.choice([1, 3, 48]),
            "shortage_penalty": rng.randint(10, 200),
        }
        for i in range(n_requests)
    ]
    offers = [
        {
            "id": f"o{j}",
            "node": rng.choice(nodes),
            "sku": rng.choice(skus),
            "quantity": rng.randint(1, 80),
            "shelf_life_days": rng.randint(10, 400),
            "min_order_quantity": rng.choice([1, 1, 5, 20]),
            "unit_price": rng.randint(1, 120),
        }
        for j in range(n_offers)
    ]
    lanes = [
        {
            "from": a,
            "to": b,
            "distance_km": rng.choice([0, 10, 50, 51, 90]),
            "transit_hours": rng.randint(0, 4),
            "cost_per_unit": rng.randint(0, 30),
            "fixed_cost": rng.choice([0, 100, 400, 2_000]),
        }
        for a in nodes
        for b in nodes
        if rng.random() < 0.7
    ]
    data: dict[str, Any] = {"radius_km": 50, "requests": requests, "offers": offers, "lanes": lanes}
    if rng.random() < 0.5:
        data["preferences"] = [
            {"request": f"r{rng.randrange(n_requests)}", "offer": f"o{j}", "per_unit": rng.randint(0, 40)}
            for j in rng.sample(range(n_offers), 10)  # distinct offers, so no (request, offer) twice
        ]
    return parse_problem(data)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n_nodes=st.integers(1, 12))
def test_indexed_arcs_equal_the_plain_scan(seed: int, n_nodes: int) -> None:
    p = medium_problem(seed, n_nodes=n_nodes)
    assert allowed_arcs(p) == reference_arcs(p)


def test_indexed_arcs_equal_the_plain_scan_on_the_small_random_problems_and_in_chunks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(17)
    for _ in range(100):
        p = random_problem(rng)
        assert allowed_arcs(p) == reference_arcs(p)
    # Requests are expanded a bounded number of pairs at a time: tiny chunks must change nothing.
    monkeypatch.setattr(matching, "_PAIRS_PER_CHUNK", 3)
    for seed in range(5):
        p = medium_problem(seed)
        assert allowed_arcs(p) == reference_arcs(p)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_the_plan_is_never_dearer_than_the_heuristic_and_both_are_legal(seed: int) -> None:
    p = medium_problem(seed)
    heuristic = fixed_cost_heuristic(p)
    # Legal (limits, MOQ, rules: spec_cost asserts them) and costed right (the spec knows no preferences).
    assert heuristic.total_cost == spec_cost(p, heuristic) + heuristic.preference_cost
    for solver in ("highs", "cbc"):
        plan = solve(p, SolverParameters(time_limit=5.0, solver=solver))
        assert plan.total_cost == spec_cost(p, plan) + plan.preference_cost
        assert plan.total_cost <= heuristic.total_cost
        assert plan.lower_bound <= plan.total_cost


def test_the_heuristic_shares_a_paid_truck_and_refuses_one_that_does_not_pay() -> None:
    def lane(a: str, b: str, fixed: int) -> dict[str, Any]:
        return {"from": a, "to": b, "distance_km": 5, "transit_hours": 1, "cost_per_unit": 1, "fixed_cost": fixed}

    def req(i: str, qty: int, penalty: int) -> dict[str, Any]:
        return {
            "id": i, "node": "A", "sku": "S", "quantity": qty,
            "min_shelf_life_days": 0, "max_transit_hours": 9, "shortage_penalty": penalty,
        }  # fmt: skip

    def off(j: str, node: str, qty: int, price: int, moq: int = 1) -> dict[str, Any]:
        return {
            "id": j, "node": node, "sku": "S", "quantity": qty,
            "shelf_life_days": 99, "min_order_quantity": moq, "unit_price": price,
        }  # fmt: skip

    # C's truck pays for r1 (10 units save 10 * 90 > 500); r2 and r3 then ride on it instead of paying B's;
    # no request is big enough for D's MOQ of 15; E's truck would carry 4 units for r4 (4 * 50 < 300).
    p = parse_problem(
        {
            "radius_km": 50,
            "requests": [req("r1", 10, 100), req("r2", 10, 100), req("r3", 2, 100), {**req("r4", 4, 60), "sku": "T"}],
            "offers": [
                off("b", "B", 40, 10), off("c", "C", 40, 9), off("d", "D", 40, 1, moq=15),
                {**off("e", "E", 9, 9), "sku": "T"},
            ],
            "lanes": [lane("B", "A", 500), lane("C", "A", 500), lane("D", "A", 0), lane("E", "A", 300)],
        }
    )  # fmt: skip
    plan = fixed_cost_heuristic(p)
    assert {(a.request, a.offer): a.quantity for a in plan.allocations} == {
        ("r1", "c"): 10,
        ("r2", "c"): 10,
        ("r3", "c"): 2,
    }
    assert [(s.request, s.quantity) for s in plan.shortages] == [("r4", 4)]
    assert plan.total_cost == spec_cost(p, plan) == solve(p).total_cost == brute_force(p)


def test_the_budget_reaches_the_solver_and_a_tiny_one_still_gives_a_legal_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.bench_matching import hard

    p = parse_problem(hard(200, 1_000, 60, seed=3))
    heuristic = fixed_cost_heuristic(p)
    deadlines: list[float] = []
    real = matching._MIP_SOLVERS["highs"]

    def spy(*args: Any) -> Any:
        deadlines.append(args[-1])
        return real(*args)

    monkeypatch.setitem(matching._MIP_SOLVERS, "highs", spy)
    called = time.perf_counter()
    plan = solve(p, SolverParameters(time_limit=3.0))
    # The solver is told to stop before the whole call's budget is spent, not given the whole budget anew.
    assert len(deadlines) == 1 and called < deadlines[0] < called + 3.0
    assert plan.total_cost == spec_cost(p, plan) <= heuristic.total_cost
    # A budget used up before the search starts: the heuristic's plan, named as such, with the relaxation's bound.
    tiny = solve(p, SolverParameters(time_limit=0.001))
    assert tiny.solver == "heuristic" and tiny.status == "feasible"
    assert tiny.total_cost == spec_cost(p, tiny) == heuristic.total_cost
    assert 0 < tiny.lower_bound <= tiny.total_cost


def test_evaluate_agrees_on_arc_lists_and_tables() -> None:
    rng = random.Random(4)
    for seed in range(10):
        p = medium_problem(seed)
        table = arc_table(p)
        flows = [rng.choice([0, 0, 1, 3]) for _ in range(len(table))]
        assert evaluate(p, table, flows) == evaluate(p, allowed_arcs(p), flows)
        assert evaluate(p, table, flows, fixed_costs=False) <= evaluate(p, table, flows)


def test_cbc_is_selectable_and_named_in_the_parameters() -> None:
    rng = random.Random(23)
    for _ in range(30):
        p = random_problem(rng)
        plan = solve(p, SolverParameters(solver="cbc"))
        assert plan.total_cost == brute_force(p) and plan.status == "optimal"
    assert SolverParameters().as_dict()["solver"] == "highs"
    assert SolverParameters(solver="cbc").as_dict()["solver"] == "cbc"
    # A plan recorded before the solver was named was solved by CBC, and is re-run by CBC.
    assert parameters_of({"parameters": {"relative_gap_ppm": 4000, "time_limit_ms": 10000}}).solver == "cbc"
    assert parameters_of({"parameters": SolverParameters().as_dict()}).solver == "highs"
