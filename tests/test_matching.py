"""The matcher (pure): the model's rules, optimality against brute force, determinism, the CLI."""

from __future__ import annotations

import itertools
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from negotiation.matching import (
    MatchingProblem,
    ProblemError,
    allowed_arcs,
    evaluate,
    greedy,
    parse_problem,
    plan_to_json,
    solve,
)


def problem(
    requests: list[dict[str, Any]], offers: list[dict[str, Any]], lanes: list[dict[str, Any]], radius: int = 50
) -> MatchingProblem:
    return parse_problem({"radius_km": radius, "requests": requests, "offers": offers, "lanes": lanes})


def req(
    id_: str, node: str, qty: int, penalty: int = 1000, shelf: int = 0, transit: int = 48, sku: str = "S"
) -> dict[str, Any]:
    return {
        "id": id_,
        "node": node,
        "sku": sku,
        "quantity": qty,
        "min_shelf_life_days": shelf,
        "max_transit_hours": transit,
        "shortage_penalty": penalty,
    }


def off(
    id_: str, node: str, qty: int, price: int = 10, moq: int = 1, shelf: int = 365, sku: str = "S"
) -> dict[str, Any]:
    return {
        "id": id_,
        "node": node,
        "sku": sku,
        "quantity": qty,
        "shelf_life_days": shelf,
        "min_order_quantity": moq,
        "unit_price": price,
    }


def lane(a: str, b: str, km: int = 10, hours: int = 2, per_unit: int = 1, fixed: int = 0) -> dict[str, Any]:
    return {
        "from": a,
        "to": b,
        "distance_km": km,
        "transit_hours": hours,
        "cost_per_unit": per_unit,
        "fixed_cost": fixed,
    }


def allocations(plan: Any) -> dict[tuple[str, str], int]:
    return {(a.request, a.offer): a.quantity for a in plan.allocations}


def test_cheapest_offer_fills_first_and_the_rest_comes_from_the_next() -> None:
    p = problem(
        [req("r", "A", 100)],
        [off("cheap", "B", 60, price=5), off("dear", "C", 100, price=9)],
        [lane("B", "A"), lane("C", "A")],
    )
    plan = solve(p)
    assert plan.status == "optimal"
    assert allocations(plan) == {("r", "cheap"): 60, ("r", "dear"): 40}
    assert plan.total_cost == 60 * 6 + 40 * 10


def test_minimum_order_quantity_turns_a_tiny_allocation_into_a_shortage() -> None:
    p = problem([req("r", "A", 5, penalty=30)], [off("o", "B", 100, price=10, moq=20)], [lane("B", "A")])
    plan = solve(p)
    assert plan.allocations == () and [(s.request, s.quantity) for s in plan.shortages] == [("r", 5)]
    assert plan.total_cost == 150


def test_a_fixed_lane_cost_is_paid_once_so_two_requests_share_the_truck() -> None:
    p = problem(
        [req("r1", "A", 10, penalty=200), req("r2", "A", 10, penalty=200)],
        [off("near", "B", 20, price=10), off("other", "C", 20, price=12)],
        [lane("B", "A", fixed=500), lane("C", "A", fixed=500)],
    )
    plan = solve(p)
    assert plan.status == "optimal"
    assert {o for _, o in allocations(plan)} == {"near"}
    assert plan.total_cost == 20 * 11 + 500


@pytest.mark.parametrize(
    ("lanes", "r", "o"),
    [
        ([lane("B", "A", km=51)], req("r", "A", 5), off("o", "B", 5)),  # beyond the radius
        ([lane("B", "A", hours=49)], req("r", "A", 5, transit=48), off("o", "B", 5)),  # too slow
        ([lane("B", "A")], req("r", "A", 5, shelf=200), off("o", "B", 5, shelf=199)),  # too close to expiry
        ([lane("B", "A")], req("r", "A", 5, sku="S"), off("o", "B", 5, sku="T")),  # another SKU
        ([lane("A", "B")], req("r", "A", 5), off("o", "B", 5)),  # lane runs the wrong way
    ],
)
def test_pruning_rules_exclude_an_offer(lanes: list[dict[str, Any]], r: dict[str, Any], o: dict[str, Any]) -> None:
    plan = solve(problem([r], [o], lanes))
    assert plan.allocations == () and plan.shortages[0].quantity == 5


def brute_force(p: MatchingProblem) -> int:
    arcs = allowed_arcs(p)
    best = evaluate(p, arcs, [0] * len(arcs))
    ranges = [range(a.capacity + 1) for a in arcs]
    for flows in itertools.product(*ranges):
        ok = all(q == 0 or q >= p.offers[a.offer].min_order_quantity for a, q in zip(arcs, flows, strict=True))
        for j, o in enumerate(p.offers):
            ok = ok and sum(q for a, q in zip(arcs, flows, strict=True) if a.offer == j) <= o.quantity
        for i, r in enumerate(p.requests):
            ok = ok and sum(q for a, q in zip(arcs, flows, strict=True) if a.request == i) <= r.quantity
        if ok:
            best = min(best, evaluate(p, arcs, list(flows)))
    return best


def random_problem(rng: random.Random) -> MatchingProblem:
    nodes = ["A", "B", "C"]
    requests = [req(f"r{i}", rng.choice(nodes), rng.randint(1, 4), penalty=rng.randint(5, 40)) for i in range(2)]
    offers = [
        off(f"o{j}", rng.choice(nodes), rng.randint(1, 4), price=rng.randint(1, 20), moq=rng.randint(1, 3))
        for j in range(rng.randint(2, 3))
    ]
    lanes = [
        lane(a, b, per_unit=rng.randint(0, 5), fixed=rng.choice([0, 0, 10, 30]))
        for a in nodes
        for b in nodes
        if rng.random() < 0.8
    ]
    return problem(requests, offers, lanes)


def test_solver_matches_brute_force_on_small_random_problems() -> None:
    rng = random.Random(11)
    for _ in range(60):
        p = random_problem(rng)
        plan = solve(p)
        assert plan.status == "optimal"
        assert plan.total_cost == brute_force(p)


def test_plans_never_over_allocate_and_greedy_is_never_cheaper() -> None:
    rng = random.Random(5)
    for _ in range(60):
        p = random_problem(rng)
        plan, base = solve(p), greedy(p)
        for j, o in enumerate(p.offers):
            assert sum(a.quantity for a in plan.allocations if a.offer == o.id) <= o.quantity, j
        for r in p.requests:
            filled = sum(a.quantity for a in plan.allocations if a.request == r.id)
            short = sum(s.quantity for s in plan.shortages if s.request == r.id)
            assert filled + short == r.quantity
        assert all(
            a.quantity >= next(o for o in p.offers if o.id == a.offer).min_order_quantity for a in plan.allocations
        )
        assert base.total_cost >= plan.total_cost


def test_same_input_gives_the_same_plan() -> None:
    rng = random.Random(3)
    p = random_problem(rng)
    assert plan_to_json(solve(p)) == plan_to_json(solve(p))


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda d: d["requests"][0].__setitem__("quantity", 1.5), "requests[0].quantity"),
        (lambda d: d["requests"][0].__setitem__("quantity", 0), "requests[0].quantity"),
        (lambda d: d["offers"][0].__setitem__("unit_price", -1), "offers[0].unit_price"),
        (lambda d: d["offers"][0].pop("sku"), "offers[0].sku"),
        (lambda d: d["lanes"][0].__setitem__("fixed_cost", True), "lanes[0].fixed_cost"),
        (lambda d: d.__setitem__("requests", {}), "requests"),
        (lambda d: d["offers"].append(dict(d["offers"][0])), "offers[1].id"),
    ],
)
def test_malformed_problems_name_the_field(mutate: Any, where: str) -> None:
    data = {"radius_km": 50, "requests": [req("r", "A", 5)], "offers": [off("o", "B", 5)], "lanes": [lane("B", "A")]}
    mutate(data)
    with pytest.raises(ProblemError) as err:
        parse_problem(data)
    assert where in str(err.value)


def test_match_command_prints_the_plan_and_exits_2_on_a_malformed_file(tmp_path: Path) -> None:
    good = tmp_path / "p.json"
    good.write_text(
        json.dumps(
            {"radius_km": 50, "requests": [req("r", "A", 5)], "offers": [off("o", "B", 9)], "lanes": [lane("B", "A")]}
        )
    )
    ok = subprocess.run([sys.executable, "-m", "node", "match", "--problem", str(good)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    answer = json.loads(ok.stdout)
    assert answer["status"] == "optimal" and answer["allocations"] == [{"request": "r", "offer": "o", "quantity": 5}]
    assert answer["total_cost"] == 55 and answer["shortages"] == []
    bad = tmp_path / "bad.json"
    bad.write_text('{"radius_km": 50, "requests": [')
    out = subprocess.run([sys.executable, "-m", "node", "match", "--problem", str(bad)], capture_output=True, text=True)
    assert out.returncode == 2 and "error" in out.stderr
