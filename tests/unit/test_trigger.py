"""Pure trigger rule: requests unmet for N consecutive days become one invitation per SKU."""

from datetime import date

from negotiation.trigger import OpenRequest, due_needs

TODAY = date(2026, 11, 25)


def req(i: int, day: int, sku: str = "F", qty: int = 10, shelf: int = 0) -> OpenRequest:
    return OpenRequest(i, sku, "SHOP", qty, date(2026, 11, day), shelf)


def test_three_days_unmet_triggers_and_two_do_not() -> None:
    assert due_needs([req(1, 24), req(2, 25)], TODAY, 3, set()) == []
    (need,) = due_needs([req(1, 23, shelf=90), req(2, 24), req(3, 25, qty=5)], TODAY, 3, set())
    assert (need.sku, need.quantity, need.min_shelf_life_days, need.requests, need.unmet_days) == (
        "F",
        25,
        90,
        (1, 2, 3),
        3,
    )


def test_no_second_invitation_while_one_is_out_and_skus_are_separate() -> None:
    requests = [req(1, 20, "F"), req(2, 20, "G")]
    assert [n.sku for n in due_needs(requests, TODAY, 3, {"F"})] == ["G"]
