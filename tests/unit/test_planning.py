"""Pure planning: problem from invitations and offers, shared truck cost, actions with reasons."""

from pathlib import Path

from negotiation.matching import solve
from negotiation.planning import OpenNeed, ReceivedOffer, build_problem, plan_actions, split_fixed_cost
from negotiation.rules.book import load_book
from negotiation.rules.engine import Policy

# The test rule book's freight: 0.50 + 0.02/km per unit, 80.00 + 3.00/km per truck.
F = Policy(load_book(Path(__file__).resolve().parents[2] / "testdata" / "rulebook.yaml"))


def test_truck_cost_is_split_pro_rata_in_whole_units() -> None:
    assert split_fixed_cost(100, [1, 1, 1]) == [34, 33, 33]
    assert split_fixed_cost(12_500, [80, 40]) == [8_333, 4_167]  # 8333.33 and 4166.67
    assert sum(split_fixed_cost(9_999, [7, 13, 29])) == 9_999


def test_plan_accepts_the_cheaper_supplier_and_declines_the_rest() -> None:
    need = OpenNeed("inv-1", "F", 100, 90)
    near = ReceivedOffer("o-near", "0xA", "Xiaoshan dealer", "F", "X1", 80, 300, 1, 5_200)
    far = ReceivedOffer("o-far", "0xB", "Shaoxing dealer", "F", "S1", 60, 300, 1, 5_200)
    spare = ReceivedOffer("o-spare", "0xB", "Shaoxing dealer", "F", "S2", 10, 10, 1, 5_200)  # too short-dated
    offers = [near, far, spare]
    distances = {"0xA": 15, "0xB": 40}
    problem = build_problem("0xME", [need], offers, distances, F, 50, 24, 100_000)
    plan = solve(problem)
    actions = plan_actions(plan, offers, distances, F, "Hangzhou store", {"inv-1": "F"})
    assert [(a.offer.id, a.quantity) for a in actions.acceptances] == [("o-far", 20), ("o-near", 80)]
    near_acc = next(a for a in actions.acceptances if a.offer.id == "o-near")
    assert near_acc.freight_compensation == (50 + 2 * 15) * 80 + 8_000 + 300 * 15
    assert [o.id for o in actions.declined] == ["o-spare"]
    assert actions.suggestions[1].startswith("transfer 80 units of F lot X1 from Xiaoshan dealer to Hangzhou store")
    assert "release the 10 units reserved at Shaoxing dealer" in actions.suggestions[2]
