"""A plan's sub-problems solved by enumeration (settlement/plans.py) give the matcher's optimum exactly."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from negotiation.matching import MatchingProblem, SolverParameters, allowed_arcs, parse_problem, solve
from settlement.plans import _cheapest, _enumerable, baseline, plan_game, restricted

R = "0x" + "a1" * 20
SUPPLIERS = ["0x" + f"{i:02x}" * 20 for i in range(2, 7)]


@st.composite
def problems(draw: Any) -> dict[str, Any]:
    skus = draw(st.lists(st.sampled_from(["A", "B", "C"]), min_size=1, max_size=2, unique=True))
    suppliers = draw(st.lists(st.sampled_from(SUPPLIERS), min_size=1, max_size=4, unique=True))
    requests = [
        {"id": f"r-{sku}", "node": R, "sku": sku, "quantity": draw(st.integers(1, 300)), "min_shelf_life_days": 0,
         "max_transit_hours": 24, "shortage_penalty": draw(st.integers(100, 2000))}
        for sku in skus
    ]  # fmt: skip
    offers = [
        {"id": f"o{i}", "node": draw(st.sampled_from(suppliers)), "sku": draw(st.sampled_from(skus)),
         "quantity": draw(st.integers(1, 200)), "shelf_life_days": 100, "min_order_quantity": 1,
         "unit_price": draw(st.integers(0, 1500))}
        for i in range(draw(st.integers(1, 5)))
    ]  # fmt: skip
    lanes = [
        {"from": s, "to": R, "distance_km": 10, "transit_hours": 2, "cost_per_unit": draw(st.integers(0, 300)),
         "fixed_cost": draw(st.sampled_from([0, 0, 5_000, 40_000, draw(st.integers(0, 100_000))]))}
        for s in suppliers
    ]  # fmt: skip
    problem = {"radius_km": 50, "requests": requests, "offers": offers, "lanes": lanes}
    if draw(st.booleans()):
        problem["preferences"] = [{"request": f"r-{o['sku']}", "offer": o["id"], "per_unit": draw(st.integers(0, 90))}
                                  for o in offers]  # fmt: skip
    return problem


@given(problems())
@settings(max_examples=150, deadline=None)
def test_enumeration_finds_the_matchers_optimum(raw: dict[str, Any]) -> None:
    problem = parse_problem(raw)
    solved = solve(problem, SolverParameters())
    assert solved.status == "optimal"
    assert _enumerable(problem)
    assert _cheapest(problem, allowed_arcs(problem), range(len(problem.requests))) == solved.total_cost


def test_what_enumeration_does_not_cover_goes_to_the_matcher() -> None:
    # Two requests for one SKU, a minimum order of 20; a second supplier so that a coalition other than the
    # plan's own (whose cost is the recorded one) has a problem to solve.
    raw = {
        "radius_km": 50,
        "requests": [
            {"id": "r1", "node": R, "sku": "A", "quantity": 50, "min_shelf_life_days": 0, "max_transit_hours": 9,
             "shortage_penalty": 900},
            {"id": "r2", "node": R, "sku": "A", "quantity": 30, "min_shelf_life_days": 0, "max_transit_hours": 9,
             "shortage_penalty": 700},
        ],
        "offers": [{"id": "o1", "node": SUPPLIERS[0], "sku": "A", "quantity": 60, "shelf_life_days": 9,
                    "min_order_quantity": 20, "unit_price": 100},
                   {"id": "o2", "node": SUPPLIERS[1], "sku": "A", "quantity": 40, "shelf_life_days": 9,
                    "min_order_quantity": 20, "unit_price": 150}],
        "lanes": [{"from": SUPPLIERS[0], "to": R, "distance_km": 5, "transit_hours": 1, "cost_per_unit": 10,
                   "fixed_cost": 1000},
                  {"from": SUPPLIERS[1], "to": R, "distance_km": 5, "transit_hours": 1, "cost_per_unit": 10,
                   "fixed_cost": 0}],
    }  # fmt: skip
    problem = parse_problem(raw)
    assert not _enumerable(problem)
    assert_values_are_the_matchers(problem, raw)


@given(problems())
@settings(max_examples=60, deadline=None)
def test_a_plan_games_values_are_the_matchers_on_each_restricted_problem(raw: dict[str, Any]) -> None:
    assert_values_are_the_matchers(parse_problem(raw), raw)


def assert_values_are_the_matchers(problem: MatchingProblem, raw: dict[str, Any]) -> None:
    """Each coalition's value in the plan's game is its baseline less the matcher's optimum of its problem."""
    params = SolverParameters()
    answer = {"total_cost": solve(problem, params).total_cost}
    game = plan_game({"node": R, "seq": 1, "plan": {"problem": raw, "parameters": params.as_dict(), "answer": answer}})
    for mask in range(1, len(game.values)):
        coalition = frozenset(p for i, p in enumerate(game.players) if mask >> i & 1)
        sub = restricted(problem, coalition)
        expected = (
            0 if not sub.requests or not sub.offers else baseline(problem, coalition) - solve(sub, params).total_cost
        )
        assert game.values[mask] == expected, coalition
