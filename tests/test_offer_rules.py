"""Pure offer rules: safety level, shelf-life floor, earliest expiry first; the freight formula."""

from datetime import date

from negotiation.offers import FreightFormula, LotStock, select_lots

NEEDED = date(2026, 12, 1)


def test_only_stock_above_the_safety_level_is_offered_earliest_expiry_first() -> None:
    stock = [LotStock("late", "WH", date(2027, 12, 1), 100), LotStock("early", "WH", date(2027, 3, 1), 50)]
    offers = select_lots(stock, safety_level=120, wanted=500, min_shelf_life_days=0, needed_by=NEEDED)
    assert [(o.lot, o.quantity) for o in offers] == [("early", 30)]


def test_lots_below_the_shelf_life_floor_are_not_offered() -> None:
    stock = [LotStock("short", "WH", date(2027, 1, 15), 100), LotStock("long", "WH", date(2027, 9, 1), 40)]
    offers = select_lots(stock, safety_level=0, wanted=500, min_shelf_life_days=90, needed_by=NEEDED)
    assert [(o.lot, o.quantity, o.shelf_life_days) for o in offers] == [("long", 40, 274)]


def test_never_more_than_wanted_and_nothing_when_at_the_safety_level() -> None:
    stock = [LotStock("a", "WH", None, 80)]
    assert [o.quantity for o in select_lots(stock, 0, 25, 0, NEEDED)] == [25]
    assert select_lots(stock, 80, 25, 0, NEEDED) == []


def test_freight_formula_is_integer_and_pays_the_truck_once() -> None:
    f = FreightFormula()
    assert f.compensation(15, 200) == (50 + 2 * 15) * 200 + 8_000 + 300 * 15
    assert f.transit_hours(15) == 2 and f.transit_hours(81) == 4
