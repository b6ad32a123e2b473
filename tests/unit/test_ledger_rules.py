"""Pure ledger rules: postings per movement type, never-negative balances, evidence, replay."""

import pytest

from node.domain.ledger import Bucket, Evidence, Movement, MovementType, Posting, apply_postings, postings_for, replay
from node.errors import EvidenceRequired, InsufficientStock, InvalidMovement

A = "0x000000000000000000000000000000000000000A"
B = "0x000000000000000000000000000000000000000B"


def mv(type_: MovementType, qty: int, **kw: object) -> Movement:
    return Movement(type=type_, sku="S", lot="L", location="WH", quantity=qty, owner=A, holder=A, **kw)  # type: ignore[arg-type]


def test_move_takes_from_source_and_puts_on_target() -> None:
    p = postings_for(mv(MovementType.MOVE, 5, to_location="SHOP"))
    assert [(x.bucket.location, x.quantity) for x in p] == [("WH", -5), ("SHOP", 5)]


def test_status_change_keeps_place_and_changes_status() -> None:
    p = postings_for(mv(MovementType.STATUS_CHANGE, 2, to_status="damaged"))
    assert [(x.bucket.status, x.quantity) for x in p] == [("available", -2), ("damaged", 2)]


def test_a_buy_out_hands_consigned_stock_to_its_holder_where_it_stands() -> None:
    bought = Movement(type=MovementType.BUY_OUT, sku="S", lot="L", location="WH", quantity=4, owner=B, holder=A)
    assert [(x.bucket.owner, x.bucket.holder, x.bucket.location, x.quantity) for x in postings_for(bought)] == [
        (B, A, "WH", -4),
        (A, A, "WH", 4),
    ]
    with pytest.raises(InvalidMovement, match="name its owner"):
        postings_for(mv(MovementType.BUY_OUT, 4))  # its own stock: nothing to buy


@pytest.mark.parametrize("qty", [0, -1])
def test_non_positive_quantities_are_refused_for_receipts(qty: int) -> None:
    with pytest.raises(InvalidMovement):
        postings_for(mv(MovementType.RECEIPT, qty))


def test_move_to_the_same_place_is_refused() -> None:
    with pytest.raises(InvalidMovement):
        postings_for(mv(MovementType.MOVE, 1, to_location="WH"))


def test_adjustment_needs_two_distinct_pieces_of_evidence() -> None:
    one = (Evidence("count", "C-1"),)
    same_twice = (Evidence("count", "C-1"), Evidence("count", "C-1"))
    two = (Evidence("count", "C-1"), Evidence("cctv", "CAM-2"))
    for evidence in [(), one, same_twice]:
        with pytest.raises(EvidenceRequired):
            postings_for(mv(MovementType.ADJUSTMENT, -3, evidence=evidence))
    assert postings_for(mv(MovementType.ADJUSTMENT, -3, evidence=two))[0].quantity == -3


def test_balances_never_go_negative() -> None:
    bucket = Bucket("S", "L", "WH", A, A, "available")
    with pytest.raises(InsufficientStock) as err:
        apply_postings({bucket: 4}, [Posting(bucket, -5)])
    assert err.value.detail["shortfall"] == 1
    assert apply_postings({bucket: 4}, [Posting(bucket, -4)]) == {bucket: 0}


def test_replay_rebuilds_balances_and_names_records_that_overdraw() -> None:
    consigned = {"sku": "S", "lot": "L", "location": "SHOP", "owner": B, "holder": A, "status": "available"}
    records = [
        {"seq": 1, "lines": [{**consigned, "quantity": 10}]},
        {"seq": 2, "lines": [{**consigned, "quantity": -4}]},
        {"seq": 3, "lines": [{**consigned, "quantity": -7}]},
    ]
    result = replay(records[:2])
    assert result.balances == {Bucket("S", "L", "SHOP", B, A, "available"): 6}
    assert result.violations == []
    assert [seq for seq, _ in replay(records).violations] == [3]
