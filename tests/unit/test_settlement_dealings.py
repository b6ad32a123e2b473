"""Joint purchases and spare-part loans in a statement (settlement/joint_purchase.py, lending.py,
contribution.py): shares by the rule book's formula, fees and sales by the loan's terms, each counted only
when both members' books show it, worked out by hand; and the invariants for random periods."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from negotiation.rules.expr import compile_expression
from negotiation.rules.names import names_for
from settlement.contribution import Period
from settlement.joint_purchase import SharesInvalid, cost_shares, share_of
from settlement.lending import loan_days
from settlement.reconcile import reconcile_dealings
from settlement.statement import SettlementTerms, build_statement
from tests.unit.test_settlement_statement import Books, line, member

B, P1, P2 = "0x" + "a1" * 20, "0x" + "b2" * 20, "0x" + "c3" * 20
PERIOD = Period(date(2026, 11, 1), date(2026, 11, 30))
BY_UNITS = "purchase.total_cost * participant.units / purchase.total_units"


def formula(source: str = BY_UNITS) -> Any:
    return compile_expression(source, names_for("joint_purchase", ()), None)


def unix(at: str) -> int:
    return int(datetime.fromisoformat(at).replace(tzinfo=UTC).timestamp())


def test_shares_by_units_round_down_and_the_buyer_bears_the_rest() -> None:
    # 100.00 for 3 units: a third each is 33.333..., rounded down to 33.33; the buyer bears 33.34.
    shares = cost_shares(formula(), 2, 10_000, B, {B: 1, P1: 1, P2: 1})
    assert shares == {P1: 3333, P2: 3333, B: 3334}
    # A buyer that takes no units bears only the rounding: 66.666... is 66.66 for P2, and 0.01 is left.
    assert cost_shares(formula(), 2, 10_000, B, {P1: 1, P2: 2}) == {P1: 3333, P2: 6666, B: 1}


def test_any_formula_of_the_rule_language_splits_the_cost() -> None:
    equal = formula("purchase.total_cost / purchase.participants")
    assert cost_shares(equal, 2, 90_00, B, {B: 1, P1: 5, P2: 30}) == {P1: 3000, P2: 3000, B: 3000}
    # A handling charge of 1.00 a unit on top of the unit cost, for the members the buyer buys for.
    handled = formula("purchase.total_cost * participant.units / purchase.total_units + participant.units * 1.00")
    assert share_of(handled, 2, 10_000, 10, 2, 4) == 4000 + 400


def test_shares_that_cannot_be_are_refused() -> None:
    with pytest.raises(SharesInvalid, match="negative"):
        cost_shares(formula("0 - purchase.total_cost"), 2, 100, B, {P1: 1})
    with pytest.raises(SharesInvalid, match="more than the cost"):
        cost_shares(formula("purchase.total_cost"), 2, 100, B, {P1: 1, P2: 1})


def test_loan_days_count_each_day_begun_and_at_least_one() -> None:
    assert [loan_days(0, t) for t in (0, 1, 86_400, 86_401, 3 * 86_400)] == [1, 1, 1, 2, 3]


def joint_purchase(books: Books, at: str, shares: dict[str, int], units: dict[str, int], accepted: list[str]) -> None:
    purchase = {"id": "0xp1", "buyer": B, "sku": "F", "lot": "J1", "reference": "PO-1", "total_units": 10}
    parts = [{"participant": m, "units": units[m], "share": s} for m, s in shares.items()]
    books.add(B, "joint_purchase", at, joint_purchase={**purchase, "total_cost": 1000, "shares": parts})
    for m in accepted:
        message = {"id": f"0xm-{m}", "purchase": "0xp1", "buyer": B, "participant": m, "share": str(shares[m])}
        books.add(m, "joint_purchase_share", at.replace("T09", "T10"), joint_purchase=message)


def test_a_joint_purchase_share_is_owed_once_the_participant_accepted_it() -> None:
    books = Books(B, P1, P2)
    joint_purchase(books, "2026-11-03T09:00:00.000000Z", {B: 200, P1: 300, P2: 500}, {B: 2, P1: 3, P2: 5}, [P1])
    s = build_statement(books.records, PERIOD, "0x01", SettlementTerms())
    assert [(f["kind"], f["from"], f["to"], f["amount"]) for f in s["flows"]] == [("joint_purchase_share", P1, B, 300)]
    assert member(s, P1)["metrics"]["joint_purchase_paid"] == 300
    assert member(s, B)["metrics"]["joint_purchase_received"] == 300


def test_a_participant_record_the_buyer_never_claimed_or_with_another_share_counts_for_nothing() -> None:
    books = Books(B, P1, P2)
    joint_purchase(books, "2026-11-03T09:00:00.000000Z", {B: 200, P1: 300, P2: 500}, {B: 2, P1: 3, P2: 5}, [P1, P2])
    books.records[P2][-1]["joint_purchase"]["share"] = "499"  # P2's copy says another amount
    forged = {**books.records[P1][-1], "node": P2, "seq": 9}  # P1's record in P2's books speaks not for P2
    books.records[P2].append(forged)
    s = build_statement(books.records, PERIOD, "0x01", SettlementTerms())
    assert [(f["from"], f["amount"]) for f in s["flows"]] == [(P1, 300)]


LENT_AT = "2026-11-02T08:00:00.000000Z"
DUE_AT = "2026-11-09T08:00:00.000000Z"  # seven days


def loan(books: Books, lender: str, borrower: str, quantity: int) -> dict[str, Any]:
    terms = {
        "id": "0xloanmsg",
        "loan": "0xloan",
        "lender": lender,
        "borrower": borrower,
        "sku": "SEAL",
        "lot": "S1",
        "quantity": str(quantity),
        "feePerUnitDay": "120",
        "unitSalePrice": "8500",
        "lentAt": str(unix(LENT_AT[:-1])),
        "dueAt": str(unix(DUE_AT[:-1])),
    }
    books.add(lender, "lend", LENT_AT, loan=terms, lines=[line("SEAL", -quantity, lender, lender, lot="S1")])
    books.add(borrower, "borrow", LENT_AT, loan=terms, lines=[line("SEAL", quantity, lender, borrower, lot="S1")])
    return terms


def give_back(books: Books, lender: str, borrower: str, rid: str, quantity: int, at: str, lender_at: str) -> None:
    back = {"id": rid, "loan": "0xloan", "borrower": borrower, "quantity": str(quantity)}
    books.add(borrower, "loan_return", at, loan_return=back)
    books.add(lender, "loan_return", lender_at, loan_return=back)


def sell(books: Books, lender: str, borrower: str, units: int, borrower_units: int | None = None) -> None:
    sale = {"loan": "0xloan", "lender": lender, "borrower": borrower, "unit_sale_price": 8500}
    books.add(
        borrower, "loan_sale", "2026-11-09T08:00:01.000000Z", loan_sale={**sale, "units": borrower_units or units}
    )
    books.add(lender, "loan_sale", "2026-11-09T09:00:01.000000Z", loan_sale={**sale, "units": units})


def test_a_loan_charges_a_fee_per_unit_and_day_begun_for_units_back_and_sells_the_rest_at_the_due_time() -> None:
    books = Books(P1, P2)
    loan(books, P1, P2, 3)
    # One unit back after 2 days and 1 hour (3 days begun, by the lender's record), then the due time passes.
    give_back(books, P1, P2, "0xback1", 1, "2026-11-04T08:30:00.000000Z", "2026-11-04T09:00:00.000000Z")
    sell(books, P1, P2, 2)
    s = build_statement(books.records, PERIOD, "0x01", SettlementTerms())
    assert [(f["kind"], f["reference"], f["amount"]) for f in s["flows"]] == [
        ("loan_fee", "0xback1", 1 * 120 * 3),
        ("loan_fee", "0xloan", 2 * 120 * 7),
        ("loan_sale", "0xloan", 2 * 8500),
    ]
    assert {(f["from"], f["to"]) for f in s["flows"]} == {(P2, P1)}
    assert member(s, P1)["metrics"]["loan_fees_received"] == 360 + 1680
    assert member(s, P2)["metrics"]["consignment_unit_hours"] == 0  # borrowed for itself, not held for P1
    assert member(s, P1)["metrics"]["value_supplied"] == 17_000
    assert s["payments"] == [{"from": P2, "to": P1, "amount": 360 + 1680 + 17_000}]


def test_a_loan_event_only_one_side_recorded_counts_for_nothing() -> None:
    books = Books(P1, P2)
    loan(books, P1, P2, 3)
    books.add(P1, "loan_return", "2026-11-04T09:00:00.000000Z",
              loan_return={"id": "0xonly", "loan": "0xloan", "borrower": P2, "quantity": "1"})  # fmt: skip
    sale = {"loan": "0xloan", "lender": P1, "borrower": P2, "units": 3, "unit_sale_price": 8500}
    books.add(P1, "loan_sale", "2026-11-09T09:00:01.000000Z", loan_sale=sale)
    assert build_statement(books.records, PERIOD, "0x01", SettlementTerms())["flows"] == []


def test_a_loan_the_borrower_never_recorded_charges_nothing_whatever_the_lender_writes() -> None:
    books = Books(P1, P2)
    loan(books, P1, P2, 3)
    del books.records[P2][0]  # the borrower's `borrow`
    give_back(books, P1, P2, "0xback1", 1, "2026-11-04T08:30:00.000000Z", "2026-11-04T09:00:00.000000Z")
    sell(books, P1, P2, 2)
    assert build_statement(books.records, PERIOD, "0x01", SettlementTerms())["flows"] == []


def test_the_units_sold_are_those_the_confirmed_returns_leave_whatever_either_side_counts() -> None:
    books = Books(P1, P2)
    loan(books, P1, P2, 3)
    give_back(books, P1, P2, "0xback1", 1, "2026-11-04T08:30:00.000000Z", "2026-11-04T09:00:00.000000Z")
    sell(books, P1, P2, 3, borrower_units=0)  # both books' counts are wrong: neither decides
    s = build_statement(books.records, PERIOD, "0x01", SettlementTerms())
    assert [f["amount"] for f in s["flows"] if f["kind"] == "loan_sale"] == [2 * 8500]


def test_more_records_from_one_side_never_create_inflate_or_cancel_a_debt() -> None:
    books = Books(B, P1, P2)
    loan(books, P1, P2, 3)
    give_back(books, P1, P2, "0xback1", 1, "2026-11-04T08:30:00.000000Z", "2026-11-04T09:00:00.000000Z")
    sell(books, P1, P2, 2)
    joint_purchase(books, "2026-11-03T09:00:00.000000Z", {B: 200, P1: 300, P2: 500}, {B: 2, P1: 3, P2: 5}, [P1])
    books.add(
        B, "ruling", "2026-11-20T00:00:00.000000Z", ruling={"id": "0xr1", "award": "500", "payer": P1, "payee": B}
    )
    books.add(
        P1, "ruling", "2026-11-20T00:00:01.000000Z", ruling={"id": "0xr1", "award": "500", "payer": P1, "payee": B}
    )
    honest = build_statement(books.records, PERIOD, "0x01", SettlementTerms())["flows"]
    # The lender: a sale naming itself as borrower, and its copy of the return with more units.
    self_sale = {"loan": "0xloan", "lender": P1, "borrower": P1, "units": 1000, "unit_sale_price": 8500}
    books.add(P1, "loan_sale", "2026-11-09T09:30:00.000000Z", loan_sale=self_sale)
    books.add(P1, "loan_return", "2026-11-04T09:00:01.000000Z",
              loan_return={"id": "0xback1", "loan": "0xloan", "borrower": P2, "quantity": "500"})  # fmt: skip
    # The borrower: another Loan for the same loan; a participant: a purchase naming itself as buyer; the
    # payer: the ruling again with no award.
    books.add(P2, "borrow", "2026-11-02T08:00:01.000000Z", loan={**books.records[P2][0]["loan"], "id": "0xjunk"})
    own_claim = {"id": "0xp1", "buyer": P1, "shares": [{"participant": P1, "units": 3, "share": 0}]}
    books.add(P1, "joint_purchase", "2026-11-03T11:00:00.000000Z", joint_purchase=own_claim)
    books.add(P1, "ruling", "2026-11-20T00:00:02.000000Z", ruling={"id": "0xr1", "award": "0", "payer": P1, "payee": B})
    assert build_statement(books.records, PERIOD, "0x01", SettlementTerms())["flows"] == honest
    assert sorted(f["kind"] for f in honest) == [
        "arbitration_award", "joint_purchase_share", "loan_fee", "loan_fee", "loan_sale"
    ]  # fmt: skip


@given(
    st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=6),
    st.integers(min_value=0, max_value=10**9),
    st.lists(st.integers(min_value=0, max_value=3), min_size=3, max_size=3),
)
@settings(max_examples=50, deadline=None)
def test_shares_cover_the_cost_exactly_and_nets_add_to_zero_with_loans_and_purchases(
    units: list[int], total_cost: int, returns: list[int]
) -> None:
    members = [B, P1, P2, "0x" + "d4" * 20, "0x" + "e5" * 20, "0x" + "f6" * 20, "0x" + "07" * 20]
    taking = {members[i]: u for i, u in enumerate(units)}
    shares = cost_shares(formula(), 2, total_cost, B, taking)
    assert sum(shares.values()) == total_cost and min(shares.values()) >= 0
    books = Books(*members)
    joint_purchase(
        books,
        "2026-11-03T09:00:00.000000Z",
        shares,
        {m: taking.get(m, 0) for m in shares},
        [m for m in shares if m != B],
    )
    quantity = sum(returns) + 1
    loan(books, P1, P2, quantity)
    for i, q in enumerate(returns):
        if q:
            give_back(
                books, P1, P2, f"0xb{i}", q, f"2026-11-0{3 + i}T08:00:00.000000Z", f"2026-11-0{3 + i}T09:00:00.000000Z"
            )
    sell(books, P1, P2, 1)
    s = build_statement(books.records, PERIOD, "0x01", SettlementTerms())
    owed_to_buyer = sum(f["amount"] for f in s["flows"] if f["kind"] == "joint_purchase_share")
    assert owed_to_buyer == total_cost - shares[B]
    assert sum(m["net"] for m in s["members"]) == 0


def test_reconcile_names_each_loan_and_share_the_two_books_tell_differently() -> None:
    books = Books(B, P1, P2)
    loan(books, P1, P2, 3)
    give_back(books, P1, P2, "0xback1", 1, "2026-11-04T08:30:00.000000Z", "2026-11-04T09:00:00.000000Z")
    joint_purchase(books, "2026-11-03T09:00:00.000000Z", {B: 200, P1: 300, P2: 500}, {B: 2, P1: 3, P2: 5}, [P1])
    subjects, diffs = reconcile_dealings(P1, books.records[P1], P2, books.records[P2])
    assert (subjects, diffs) == (["0xloan"], [])
    # P2's share is proposed, not accepted: pending, not a difference; P1's agrees with the buyer's claim.
    assert reconcile_dealings(B, books.records[B], P2, books.records[P2])[1] == []
    assert reconcile_dealings(B, books.records[B], P1, books.records[P1]) == (["0xp1"], [])
    sell(books, P1, P2, 2, borrower_units=1)
    books.add(P2, "loan_return", "2026-11-05T08:30:00.000000Z",
              loan_return={"id": "0xback2", "loan": "0xloan", "borrower": P2, "quantity": "1"})  # fmt: skip
    books.records[P1][-2]["joint_purchase"]["share"] = "301"  # P1's copy of its share, altered
    _, diffs = reconcile_dealings(P1, books.records[P1], P2, books.records[P2])
    assert [(d.what, d.field, d.left, d.right) for d in diffs] == [
        ("loan", "returns", {"0xback1": 1}, {"0xback1": 1, "0xback2": 1}),
        ("loan", "sold", 2, 1),
    ]
    _, diffs = reconcile_dealings(B, books.records[B], P1, books.records[P1])
    assert [(d.what, d.transfer, d.field, d.left, d.right) for d in diffs] == [
        ("joint_purchase", "0xp1", "share", 300, 301)
    ]
