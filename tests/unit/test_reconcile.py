"""Pure reconciliation of two partners' transfer records."""

from typing import Any

from settlement.reconcile import reconcile

S, R = "0xSupplier", "0xRequester"


def rec(seq: int, type_: str, qty: int | None = None, status: str = "in_transit", **transfer: Any) -> dict[str, Any]:
    lines = (
        []
        if qty is None
        else [{"sku": "F", "lot": "L1", "location": "WH", "owner": S, "holder": S, "status": status, "quantity": qty}]
    )
    return {
        "seq": seq,
        "type": type_,
        "lines": lines,
        "transfer": {"acceptance": "0xT1", "supplier": S, "requester": R, **transfer},
    }


def supplier_books(received: int) -> list[dict[str, Any]]:
    return [
        rec(1, "transfer_out", 30, freight_compensation=900),
        rec(2, "transfer_settled", -30, shipped=30, received=received, freight_compensation=900),
    ]


def requester_books(received: int, compensation: int = 900) -> list[dict[str, Any]]:
    return [
        rec(
            7,
            "transfer_in",
            received,
            status="available",
            shipped=30,
            received=received,
            freight_compensation=compensation,
        )
    ]


def test_matching_books_show_no_difference() -> None:
    transfers, diffs = reconcile(S, supplier_books(30), R, requester_books(30))
    assert transfers == ["0xT1"] and diffs == []


def test_every_disagreement_is_listed() -> None:
    _, diffs = reconcile(S, supplier_books(30), R, requester_books(27, compensation=1200))
    assert {(d.field, d.left, d.right) for d in diffs} == {("received", 30, 27), ("freight_compensation", 900, 1200)}


def test_a_transfer_missing_on_one_side_is_listed() -> None:
    _, diffs = reconcile(S, supplier_books(30), R, [])
    assert [(d.field, d.left, d.right) for d in diffs] == [("records", "present", "missing")]
