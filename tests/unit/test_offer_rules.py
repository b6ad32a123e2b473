"""What an invited node offers under the test rule book (the preset): stock above its safety level, lots
meeting the shelf-life floor, earliest expiry first; and the freight formula in whole minor units."""

from pathlib import Path

import pytest

from negotiation.rules.book import load_book
from negotiation.rules.engine import CalendarFacts, CandidateLot, Policy, RequestFacts, SkuFacts, StockFacts

SKU = SkuFacts("F", 5_200)


@pytest.fixture(scope="module")
def policy() -> Policy:
    return Policy(load_book(Path(__file__).resolve().parents[2] / "testdata" / "rulebook.yaml"))


def offer(policy: Policy, lots: list[CandidateLot], safety: int, wanted: int, floor: int) -> list[tuple[str, int]]:
    available = sum(lot.available for lot in lots)
    picks, _ = policy.pick_lots(
        lots, RequestFacts(wanted, floor), SKU, StockFacts(available, safety, available), CalendarFacts(), 15
    )
    return [(p.lot, p.quantity) for p in picks]


def test_only_stock_above_the_safety_level_is_offered_earliest_expiry_first(policy: Policy) -> None:
    lots = [CandidateLot("late", "WH", 365, 0, 100), CandidateLot("early", "WH", 90, 0, 50)]
    assert offer(policy, lots, safety=120, wanted=500, floor=0) == [("early", 30)]


def test_lots_below_the_shelf_life_floor_are_not_offered(policy: Policy) -> None:
    lots = [CandidateLot("short", "WH", 45, 0, 100), CandidateLot("long", "WH", 274, 0, 40)]
    assert offer(policy, lots, safety=0, wanted=500, floor=90) == [("long", 40)]


def test_never_more_than_wanted_and_nothing_when_at_the_safety_level(policy: Policy) -> None:
    lots = [CandidateLot("a", "WH", 3650, 0, 80)]
    assert offer(policy, lots, 0, 25, 0) == [("a", 25)]
    assert offer(policy, lots, 80, 25, 0) == []


def test_freight_formula_is_integer_and_pays_the_truck_once(policy: Policy) -> None:
    f = policy.freight(15)
    assert (f.per_unit, f.per_truck) == (50 + 2 * 15, 8_000 + 300 * 15)
    assert policy.freight(15).transit_hours == 2 and policy.freight(81).transit_hours == 4
