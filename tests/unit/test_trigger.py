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


def test_own_stock_elsewhere_covers_requests_first_oldest_request_first_earliest_expiry_first() -> None:
    from negotiation.trigger import InternalMove, OwnLot, cover_from_own_stock

    today = date(2026, 11, 26)
    requests = [
        OpenRequest(2, "DIAPER", "SHOP", 40, date(2026, 11, 25), 0),
        OpenRequest(1, "DIAPER", "SHOP", 50, date(2026, 11, 24), 30),
    ]
    own = [
        OwnLot("LATE", "WH", 100, date(2027, 6, 1)),
        OwnLot("SOON", "WH", 30, date(2026, 12, 10)),  # 14 days left: too short for request 1's 30 days
        OwnLot("HERE", "SHOP", 500, None),  # already where the requests are: not a move
    ]
    cover = cover_from_own_stock(requests, own, today)
    assert cover.moves == (
        InternalMove("DIAPER", "LATE", "WH", "SHOP", 50, 1),
        InternalMove("DIAPER", "SOON", "WH", "SHOP", 30, 2),
        InternalMove("DIAPER", "LATE", "WH", "SHOP", 10, 2),
    )
    assert cover.uncovered == {1: 0, 2: 0}
    short = cover_from_own_stock(requests, [OwnLot("LATE", "WH", 60, None)], today)
    assert short.uncovered == {1: 0, 2: 30} and sum(m.quantity for m in short.moves) == 60
