"""The matcher (pure): the model's rules, optimality against brute force, determinism, the CLI."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from negotiation.matching import (
    MAX_COST,
    MatchingProblem,
    ProblemError,
    Request,
    SolverParameters,
    TransferPlan,
    cost_bound,
    cost_breakdown,
    greedy,
    parse_problem,
    plan_hashes,
    plan_to_json,
    problem_to_json,
    solve,
)
from node.cli import app


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


def allocations(plan: TransferPlan) -> dict[tuple[str, str], int]:
    return {(a.request, a.offer): a.quantity for a in plan.allocations}


# -- the spec, written again independently of negotiation/matching.py, for the checks below ---------------


def legal_pairs(p: MatchingProblem) -> dict[tuple[int, int], tuple[int, int, str]]:
    """(request, offer) -> (capacity, unit cost, lane key) for every pair the issue's rules allow."""
    lanes = {(ln.from_node, ln.to_node): ln for ln in p.lanes}
    pairs = {}
    for i, r in enumerate(p.requests):
        for j, o in enumerate(p.offers):
            ln = lanes.get((o.node, r.node))
            if (
                o.sku == r.sku
                and ln is not None
                and ln.distance_km <= p.radius_km
                and ln.transit_hours <= r.max_transit_hours
                and o.shelf_life_days >= r.min_shelf_life_days
            ):
                pairs[(i, j)] = (min(o.quantity, r.quantity), ln.cost_per_unit + o.unit_price, o.node + ">" + r.node)
    return pairs


def spec_cost(p: MatchingProblem, plan: TransferPlan) -> int:
    """The objective of the issue computed from a plan's allocations; also asserts the plan is legal."""
    pairs = legal_pairs(p)
    req_index = {r.id: i for i, r in enumerate(p.requests)}
    off_index = {o.id: j for j, o in enumerate(p.offers)}
    lane_fixed = {ln.from_node + ">" + ln.to_node: ln.fixed_cost for ln in p.lanes}
    filled = [0] * len(p.requests)
    taken = [0] * len(p.offers)
    used: set[str] = set()
    cost = 0
    for a in plan.allocations:
        i, j = req_index[a.request], off_index[a.offer]
        assert (i, j) in pairs, f"{a} is not an allowed pair"
        assert a.quantity >= max(1, p.offers[j].min_order_quantity), f"{a} is below the minimum order quantity"
        _, unit, key = pairs[(i, j)]
        cost += a.quantity * unit
        used.add(key)
        filled[i] += a.quantity
        taken[j] += a.quantity
    assert all(t <= o.quantity for t, o in zip(taken, p.offers, strict=True)), "an offer is over-allocated"
    assert all(f <= r.quantity for f, r in zip(filled, p.requests, strict=True)), "a request is over-filled"
    shortages = {s.request: s.quantity for s in plan.shortages}
    for i, r in enumerate(p.requests):
        assert shortages.get(r.id, 0) == r.quantity - filled[i], f"shortage of {r.id} is misreported"
    cost += sum(lane_fixed[k] for k in used)
    cost += sum((r.quantity - filled[i]) * r.shortage_penalty for i, r in enumerate(p.requests))
    return cost


def brute_force(p: MatchingProblem) -> int:
    """The least cost over every legal integer allocation, by depth-first enumeration of the pairs."""
    pairs = sorted(legal_pairs(p).items())
    lane_fixed = {ln.from_node + ">" + ln.to_node: ln.fixed_cost for ln in p.lanes}
    best = sum(r.quantity * r.shortage_penalty for r in p.requests)

    def visit(k: int, left_req: list[int], left_off: list[int], used: frozenset[str], cost: int) -> None:
        nonlocal best
        if k == len(pairs):
            total = cost + sum(lane_fixed[x] for x in used)
            total += sum(q * r.shortage_penalty for q, r in zip(left_req, p.requests, strict=True))
            best = min(best, total)
            return
        (i, j), (_, unit, key) = pairs[k]
        visit(k + 1, left_req, left_off, used, cost)
        for q in range(max(1, p.offers[j].min_order_quantity), min(left_req[i], left_off[j]) + 1):
            left_req[i] -= q
            left_off[j] -= q
            visit(k + 1, left_req, left_off, used | {key}, cost + q * unit)
            left_req[i] += q
            left_off[j] += q

    visit(0, [r.quantity for r in p.requests], [o.quantity for o in p.offers], frozenset(), 0)
    return best


def random_problem(rng: random.Random) -> MatchingProblem:
    """Small enough to enumerate; every rule (SKU, radius, transit, shelf life, MOQ, fixed cost) can bite."""
    nodes = ["A", "B", "C"]
    skus = ["S", "S", "T"]
    requests = [
        req(
            f"r{i}",
            rng.choice(nodes),
            rng.randint(1, 4),
            penalty=rng.randint(5, 40),
            shelf=rng.choice([0, 0, 100]),
            transit=rng.choice([4, 48]),
            sku=rng.choice(skus),
        )
        for i in range(rng.randint(2, 3))
    ]
    offers = [
        off(
            f"o{j}",
            rng.choice(nodes),
            rng.randint(1, 4),
            price=rng.randint(1, 20),
            moq=rng.choice([1, 1, 2, 3]),
            shelf=rng.choice([50, 365]),
            sku=rng.choice(skus),
        )
        for j in range(rng.randint(2, 3))
    ]
    lanes = [
        lane(
            a,
            b,
            km=rng.choice([0, 20, 49, 50, 51]),
            hours=rng.choice([1, 4, 5]),
            per_unit=rng.randint(0, 5),
            fixed=rng.choice([0, 0, 10, 30]),
        )
        for a in nodes
        for b in nodes
        if rng.random() < 0.8
    ]
    return problem(requests, offers, lanes)


# -- hand-computed optima ---------------------------------------------------------------------------------


def test_cheapest_offer_fills_first_and_the_rest_comes_from_the_next() -> None:
    p = problem(
        [req("r", "A", 100)],
        [off("cheap", "B", 60, price=5), off("dear", "C", 100, price=9)],
        [lane("B", "A"), lane("C", "A")],
    )
    plan = solve(p)
    assert plan.status == "optimal" and plan.solver == "min_cost_flow"
    assert allocations(plan) == {("r", "cheap"): 60, ("r", "dear"): 40}
    assert plan.total_cost == 60 * 6 + 40 * 10 == plan.lower_bound


def test_preferences_steer_the_plan_by_their_money_worth_and_are_reported_apart() -> None:
    # lane() costs 1 a unit: the short-dated offer costs 11 a unit delivered, the fresh one 12.
    offers = [off("short", "B", 100, price=10, shelf=60), off("long", "C", 100, price=11, shelf=700)]
    data = {
        "radius_km": 50,
        "requests": [req("r", "A", 100)],
        "offers": offers,
        "lanes": [lane("B", "A"), lane("C", "A")],
    }
    assert allocations(solve(parse_problem(data))) == {("r", "short"): 100}

    def with_preference(offer: str, per_unit: int) -> TransferPlan:
        return solve(parse_problem({**data, "preferences": [{"request": "r", "offer": offer, "per_unit": per_unit}]}))

    # The requester's weights make the short-dated offer 2 a unit worse: the dearer, fresher one wins.
    fresh = with_preference("short", 2)
    assert allocations(fresh) == {("r", "long"): 100}
    assert (fresh.total_cost, fresh.preference_cost) == (100 * 12, 0)
    # Worth less than the price difference, a preference changes nothing, and is reported apart from money.
    kept = with_preference("long", 5)
    assert allocations(kept) == {("r", "short"): 100} and kept.preference_cost == 0
    dearer = with_preference("short", 1)  # now a tie at 12 a unit: the total counts the preference
    assert dearer.total_cost == 100 * 12
    assert dearer.preference_cost in (0, 100)
    # No preferences: the problem's JSON (and so its hash) is what it was before preferences existed.
    assert "preferences" not in problem_to_json(parse_problem(data))
    with pytest.raises(ProblemError, match="preferences"):
        parse_problem({**data, "preferences": [{"request": "nope", "offer": "short", "per_unit": 1}]})


def test_minimum_order_quantity_turns_a_tiny_allocation_into_a_shortage() -> None:
    # 5 units at 11 would cost 55 < 150, but the offer sells no fewer than 20 and the request takes at most 5.
    p = problem([req("r", "A", 5, penalty=30)], [off("o", "B", 100, price=10, moq=20)], [lane("B", "A")])
    plan = solve(p)
    assert plan.allocations == () and [(s.request, s.quantity) for s in plan.shortages] == [("r", 5)]
    assert plan.total_cost == 150 and plan.status == "optimal"


def test_minimum_order_quantity_is_met_by_the_sum_of_a_single_allocation_not_split_below_it() -> None:
    # 30 units wanted by two requests of 15; an MOQ of 20 per allocation means only one request can be served.
    p = problem(
        [req("r1", "A", 15, penalty=100), req("r2", "A", 15, penalty=90)],
        [off("o", "B", 30, price=10, moq=20)],
        [lane("B", "A")],
    )
    plan = solve(p)
    assert plan.allocations == ()  # 15 < 20: neither allocation is allowed
    assert plan.total_cost == 15 * 100 + 15 * 90


def test_a_fixed_lane_cost_is_paid_once_so_two_requests_share_the_truck() -> None:
    # Split: r1 from near (11/unit), r2 from other (13/unit) would pay two trucks; one truck on B->A is cheaper.
    p = problem(
        [req("r1", "A", 10, penalty=200), req("r2", "A", 10, penalty=200)],
        [off("near", "B", 20, price=10), off("other", "C", 20, price=12)],
        [lane("B", "A", fixed=500), lane("C", "A", fixed=500)],
    )
    plan = solve(p)
    assert plan.status == "optimal" and plan.solver.startswith("mip_highs")
    assert allocations(plan) == {("r1", "near"): 10, ("r2", "near"): 10}
    assert plan.total_cost == 20 * 11 + 500


def test_a_fixed_cost_not_worth_paying_for_a_small_quantity_leaves_a_shortage() -> None:
    # 3 units save 3 * (50 - 11) = 117 of penalty, less than the 200 truck.
    p = problem([req("r", "A", 3, penalty=50)], [off("o", "B", 10, price=10)], [lane("B", "A", fixed=200)])
    plan = solve(p)
    assert plan.allocations == () and plan.total_cost == 150


@pytest.mark.parametrize(
    ("lanes", "r", "o"),
    [
        ([lane("B", "A", km=51)], req("r", "A", 5), off("o", "B", 5)),  # beyond the radius
        ([lane("B", "A", hours=49)], req("r", "A", 5, transit=48), off("o", "B", 5)),  # too slow
        ([lane("B", "A")], req("r", "A", 5, shelf=200), off("o", "B", 5, shelf=199)),  # too close to expiry
        ([lane("B", "A")], req("r", "A", 5, sku="S"), off("o", "B", 5, sku="T")),  # another SKU
        ([lane("A", "B")], req("r", "A", 5), off("o", "B", 5)),  # lane runs the wrong way
        ([], req("r", "A", 5), off("o", "A", 5)),  # same node, but no A -> A lane given
    ],
)
def test_pruning_rules_exclude_an_offer(lanes: list[dict[str, Any]], r: dict[str, Any], o: dict[str, Any]) -> None:
    plan = solve(problem([r], [o], lanes))
    assert plan.allocations == () and plan.shortages[0].quantity == 5


def test_limits_are_inclusive() -> None:
    p = problem(
        [req("r", "A", 5, shelf=200, transit=6)], [off("o", "B", 5, shelf=200)], [lane("B", "A", km=50, hours=6)]
    )
    assert allocations(solve(p)) == {("r", "o"): 5}


def test_a_cheaper_offer_beyond_the_radius_loses_to_a_dearer_near_one() -> None:
    p = problem(
        [req("r", "A", 10)],
        [off("far", "F", 10, price=1), off("near", "N", 10, price=50)],
        [lane("F", "A", km=80, per_unit=1), lane("N", "A", km=30, per_unit=1)],
        radius=50,
    )
    plan = solve(p)
    assert allocations(plan) == {("r", "near"): 10} and plan.total_cost == 510
    assert allocations(greedy(p)) == {("r", "near"): 10}


def test_an_offer_serves_its_own_node_when_a_lane_to_itself_is_given() -> None:
    p = problem([req("r", "A", 5)], [off("o", "A", 5, price=10)], [lane("A", "A", km=0, per_unit=0)])
    assert allocations(solve(p)) == {("r", "o"): 5}


def test_an_offer_dearer_than_the_shortage_penalty_is_left_alone() -> None:
    p = problem([req("r", "A", 5, penalty=10)], [off("o", "B", 5, price=10)], [lane("B", "A", per_unit=1)])
    plan = solve(p)
    assert plan.allocations == () and plan.total_cost == 50


def test_no_requests_is_an_optimal_empty_plan() -> None:
    plan = solve(problem([], [off("o", "B", 5)], [lane("B", "A")]))
    assert (plan.status, plan.total_cost, plan.allocations, plan.shortages, plan.gap) == ("optimal", 0, (), (), 0.0)


def test_plans_are_canonical() -> None:
    p = problem(
        [req("rb", "A", 10), req("ra", "A", 10), req("rc", "A", 3, penalty=1)],
        [off("o2", "B", 6), off("o1", "B", 6), off("o3", "B", 1)],
        [lane("B", "A")],
    )
    plan = solve(p)
    keys = [(a.request, a.offer) for a in plan.allocations]
    assert keys == sorted(keys) and all(a.quantity > 0 for a in plan.allocations)
    assert [s.request for s in plan.shortages] == sorted(s.request for s in plan.shortages)
    assert all(s.quantity > 0 for s in plan.shortages)


# -- random instances against the spec ------------------------------------------------------------------


def test_solver_matches_brute_force_on_small_random_problems() -> None:
    rng = random.Random(11)
    solvers = set()
    for _ in range(150):
        p = random_problem(rng)
        plan = solve(p)
        solvers.add(plan.solver)
        assert plan.status == "optimal"
        assert plan.total_cost == spec_cost(p, plan) == brute_force(p) == plan.lower_bound
    assert "min_cost_flow" in solvers and any(s.startswith("mip_highs") for s in solvers)  # both paths ran


def test_plans_never_over_allocate_or_over_fill() -> None:
    rng = random.Random(5)
    for _ in range(100):
        p = random_problem(rng)
        for plan in (solve(p), greedy(p)):
            spec_cost(p, plan)  # asserts offer and request limits, MOQ and the rules on every allocation


def test_greedy_is_never_cheaper_than_the_solver() -> None:
    rng = random.Random(7)
    for _ in range(100):
        p = random_problem(rng)
        base = greedy(p)
        assert base.total_cost == spec_cost(p, base)
        assert base.total_cost >= solve(p).total_cost


def test_a_time_limited_plan_is_valid_and_states_its_gap() -> None:
    from bench.bench_matching import synthetic

    p = parse_problem(synthetic(100, 500, 100, seed=2))
    plan = solve(p, SolverParameters(time_limit=0.2))
    assert plan.total_cost == spec_cost(p, plan)
    assert plan.lower_bound <= plan.total_cost
    assert plan.gap == pytest.approx((plan.total_cost - plan.lower_bound) / plan.total_cost)
    assert (plan.status == "optimal") == (plan.gap == 0)


# -- determinism ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("moq_and_fixed", [False, True])
def test_same_input_gives_the_same_plan(moq_and_fixed: bool) -> None:
    rng = random.Random(3)
    moq, fixed = (3, 40) if moq_and_fixed else (1, 0)
    offers = [off(f"o{j}", f"N{j % 5}", rng.randint(5, 40), rng.randint(5, 30), moq=moq) for j in range(12)]
    requests = [req(f"r{i}", f"N{i % 4}", rng.randint(5, 40), penalty=rng.randint(20, 60)) for i in range(8)]
    lanes = [lane(f"N{a}", f"N{b}", fixed=fixed) for a in range(5) for b in range(5)]
    p = problem(requests, offers, lanes)
    first, second = solve(p), solve(p)
    assert first.solver.startswith("mip_highs" if moq_and_fixed else "min_cost_flow")
    assert first.status == "optimal"  # proven, so no time limit decides which plan comes out
    assert plan_to_json(first) == plan_to_json(second)
    params = SolverParameters()
    assert plan_hashes(p, params, first) == plan_hashes(p, params, second)


# -- malformed problems ---------------------------------------------------------------------------------


def good_data() -> dict[str, Any]:
    return {"radius_km": 50, "requests": [req("r", "A", 5)], "offers": [off("o", "B", 5)], "lanes": [lane("B", "A")]}


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda d: d["requests"][0].__setitem__("quantity", 1.5), "requests[0].quantity"),
        (lambda d: d["requests"][0].__setitem__("quantity", 5.0), "requests[0].quantity"),
        (lambda d: d["requests"][0].__setitem__("quantity", 0), "requests[0].quantity"),
        (lambda d: d["requests"][0].__setitem__("shortage_penalty", "9"), "requests[0].shortage_penalty"),
        (lambda d: d["offers"][0].__setitem__("unit_price", -1), "offers[0].unit_price"),
        (lambda d: d["offers"][0].__setitem__("quantity", 0), "offers[0].quantity"),
        (lambda d: d["offers"][0].pop("sku"), "offers[0].sku"),
        (lambda d: d["lanes"][0].__setitem__("fixed_cost", True), "lanes[0].fixed_cost"),
        (lambda d: d["lanes"][0].__setitem__("distance_km", 12.5), "lanes[0].distance_km"),
        (lambda d: d.__setitem__("radius_km", 50.0), "radius_km"),
        (lambda d: d.pop("radius_km"), "radius_km"),
        (lambda d: d.__setitem__("requests", {}), "requests"),
        (lambda d: d.__setitem__("lanes", [7]), "lanes[0]"),
        (lambda d: d["offers"].append(dict(d["offers"][0])), "offers[1].id"),
        (lambda d: d["requests"].append(dict(d["requests"][0])), "requests[1].id"),
    ],
)
def test_malformed_problems_name_the_field(mutate: Any, where: str) -> None:
    data = good_data()
    mutate(data)
    with pytest.raises(ProblemError) as err:
        parse_problem(data)
    assert where in str(err.value)


@pytest.mark.parametrize(
    "data",
    [
        # 4 units short at 2^62 each: the shortage cost alone is 2^64 (it came out as 0).
        {"radius_km": 50, "requests": [req("r", "A", 4, penalty=2**62)], "offers": [], "lanes": []},
        # 3 x 2^61 of shortage plus a price of 2^61 a unit: just over the bound, each field fine alone.
        {
            "radius_km": 50,
            "requests": [req("r", "A", 3, penalty=2**61)],
            "offers": [off("o", "B", 2, price=2**61)],
            "lanes": [lane("B", "A")],
        },
        # Per-unit costs times quantities: 2^31 units requested at a lane cost of 2^31 a unit, plus the rest.
        {
            "radius_km": 50,
            "requests": [req("r", "A", 2**31, penalty=1)],
            "offers": [off("o", "B", 5, price=0)],
            "lanes": [lane("B", "A", per_unit=2**31, fixed=2**62 - 2**31)],
        },
    ],
)
def test_a_problem_whose_cost_could_pass_2_to_the_62_is_refused_never_wrapped(data: dict[str, Any]) -> None:
    with pytest.raises(ProblemError, match=r"2\*\*62"):
        parse_problem(data)


def test_solve_refuses_a_problem_built_in_code_past_the_bound() -> None:
    # Planning and the sandbox build problems without parsing them: `solve` checks the bound too.
    built = MatchingProblem(50, (Request("r", "A", "S", 4, 0, 48, 2**62),), (), ())
    with pytest.raises(ProblemError, match=r"2\*\*62"):
        solve(built)


def test_the_cost_bound_counts_shortages_per_unit_costs_and_trucks() -> None:
    p = problem(
        [req("r", "A", 5, penalty=100), req("q", "A", 2, penalty=7)],
        [off("o", "B", 5, price=10)],
        [lane("B", "A", per_unit=3, fixed=50)],
    )
    # every request short, every unit requested at the dearest lane + price, every truck
    assert cost_bound(p) == 5 * 100 + 2 * 7 + 7 * (3 + 10) + 50
    just = {"radius_km": 50, "requests": [req("r", "A", 1, penalty=MAX_COST - 1)], "offers": [], "lanes": []}
    assert solve(parse_problem(just)).total_cost == MAX_COST - 1


def test_problem_error_is_a_value_error() -> None:
    assert issubclass(ProblemError, ValueError)


def test_unknown_keys_are_ignored() -> None:
    data = good_data()
    data["comment"] = "from node 7"
    data["requests"][0]["note"] = 1.5
    data["lanes"][0]["road"] = "A4"
    assert parse_problem(data) == parse_problem(good_data())


# -- the CLI --------------------------------------------------------------------------------------------


def test_match_command_prints_the_plan_as_json(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    data = good_data()
    data["offers"][0]["quantity"] = 9
    path.write_text(json.dumps(data))
    result = CliRunner().invoke(app, ["match", "--problem", str(path)])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["status"] == "optimal" and answer["allocations"] == [{"request": "r", "offer": "o", "quantity": 5}]
    assert answer["total_cost"] == 55 and answer["shortages"] == [] and answer["lower_bound"] == 55
    assert answer["gap"] == 0 and answer["solver"] == "min_cost_flow"


def test_match_command_reads_stdin_and_runs_greedy() -> None:
    result = CliRunner().invoke(app, ["match", "--problem", "-", "--greedy"], input=json.dumps(good_data()))
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["solver"] == "greedy" and answer["total_cost"] == 55


def test_match_command_exits_2_naming_the_field_of_a_malformed_problem(tmp_path: Path) -> None:
    data = good_data()
    data["offers"][0]["unit_price"] = 9.99
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data))
    result = CliRunner().invoke(app, ["match", "--problem", str(path)])
    assert result.exit_code == 2 and "offers[0].unit_price" in result.stderr and result.stdout == ""


def test_match_process_exits_0_on_a_problem_and_2_on_a_broken_file(tmp_path: Path) -> None:
    good = tmp_path / "p.json"
    good.write_text(json.dumps(good_data()))
    ok = subprocess.run([sys.executable, "-m", "node", "match", "--problem", str(good)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["total_cost"] == 55
    bad = tmp_path / "bad.json"
    bad.write_text('{"radius_km": 50, "requests": [')
    out = subprocess.run([sys.executable, "-m", "node", "match", "--problem", str(bad)], capture_output=True, text=True)
    assert out.returncode == 2 and "error" in out.stderr and out.stdout == ""


def test_a_plans_cost_breaks_down_into_goods_freight_trucks_preferences_and_shortages() -> None:
    rng = random.Random(20261126)
    for _ in range(40):
        p = random_problem(rng)
        plan = solve(p)
        parts = cost_breakdown(p, plan.allocations)
        assert parts["total"] == plan.total_cost == sum(v for k, v in parts.items() if k != "total")
        short = sum(s.quantity for s in plan.shortages)
        assert (parts["shortages"] > 0) == (short > 0 and any(r.shortage_penalty for r in p.requests))
    p = problem([req("r1", "R", 10, penalty=100)], [off("o1", "S", 6, price=7)], [lane("S", "R", per_unit=2, fixed=50)])
    plan = solve(p)
    assert cost_breakdown(p, plan.allocations) == {
        "goods": 42, "freight_per_unit": 12, "trucks": 50, "preferences": 0, "shortages": 400, "total": 504,
    }  # fmt: skip
