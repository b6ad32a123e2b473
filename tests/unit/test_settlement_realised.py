"""Statements of format 2 (settlement/realised.py): only delivered goods create value, valued at real prices;
each reference is settled once; plans are checked, not trusted; no member ends worse off in cash. A period
worked by hand, then each control."""

from __future__ import annotations

from datetime import date
from fractions import Fraction
from typing import Any, cast

import pytest

from settlement.contribution import Period
from settlement.document import REALISED_FORMAT, Statement
from settlement.realised import (
    Cut,
    StatementStopped,
    ValueTerms,
    build_realised_statement,
    pair_commitment,
    proposal_id,
    settled_twice,
)
from settlement.statement import Method, SettlementTerms, statement_hash
from tests.unit.test_settlement_statement import Books, line, member, plan_record

R, S1, S2, IDLE = "0x" + "a1" * 20, "0x" + "b2" * 20, "0x" + "c3" * 20, "0x" + "d4" * 20
PERIOD = Period(date(2026, 11, 1), date(2026, 11, 30))
CUT = "2026-12-01T08:00:00.000000Z"
BOOKS = {"0x01": ValueTerms({"F": 700})}
PLAN_AT = "2026-11-05T10:00:00.000000Z"


def offer_of(supplier: str, at: str = PLAN_AT) -> str:
    return f"off-{supplier}-{at}"


def deliver(
    books: Books, at: str, supplier: str, offer: str, qty: int, price: int, freight: int, basis: int, sale: int = 800
) -> str:
    """A transfer as both books record it now: the supplier's cost basis and the requester's sale price."""
    acceptance = f"acc-{offer}"
    t = {"acceptance": acceptance, "supplier": supplier, "requester": R, "messages": []}
    ev = [{"source": "acceptance", "reference": acceptance}, {"source": "offer", "reference": offer}]
    out = {**t, "freight_compensation": freight, "unit_price": price, "cost_basis": basis}
    books.add(supplier, "transfer_out", at, lines=[line("F", -qty, supplier, supplier)], evidence=ev, transfer=out)
    received = {**t, "shipped": qty, "received": qty, "freight_compensation": freight, "sale_price": sale}
    books.add(R, "transfer_in", at, lines=[line("F", qty, R, R)], evidence=ev, transfer=received)
    return acceptance


def story(members: tuple[str, ...] = (R, S1, S2)) -> tuple[Books, str, str]:
    """R needs 100 units; the plan takes 60 from S1 at 5.00 and 40 from S2 at 6.00. R sells at 8.00, the book
    says the brand would deliver for 7.00; S1 paid 4.20 a unit, S2 4.50; freight 6.00 and 4.00."""
    books = Books(*members)
    plan_record(books, PLAN_AT, R, 100, [(S1, 60, 500), (S2, 60, 600)])
    a1 = deliver(books, "2026-11-06T10:00:00.000000Z", S1, offer_of(S1), 60, 500, 600, 420)
    a2 = deliver(books, "2026-11-06T11:00:00.000000Z", S2, offer_of(S2), 40, 600, 400, 450)
    return books, a1, a2


def build(books: Books, method: Method = "core", cut: Cut | None = None, **kw: Any) -> Statement:
    terms = SettlementTerms(method=method, **kw)
    return build_realised_statement(books.records, PERIOD, "0x01", terms, BOOKS, cut or Cut(R, CUT))


def flows_of(s: Statement, kind: str) -> list[tuple[str, str, int, str]]:
    return [(f["from"], f["to"], f["amount"], f["reference"]) for f in s["flows"] if f["kind"] == kind]


def test_each_delivered_transfer_makes_its_real_gain_and_its_two_parties_share_it() -> None:
    books, a1, a2 = story()
    s = build(books)
    # S1: 60 x (7.00 - 4.20) - 6.00 = 162.00; S2: 40 x (7.00 - 4.50) - 4.00 = 96.00; half each.
    assert [(t["acceptance"], t["gain"], t["supplier_gain"], t["requester_gain"]) for t in s["transfers"]] == [
        (a1, 16_200, 8_100, 8_100),
        (a2, 9_600, 4_800, 4_800),
    ]
    assert s["surplus"] == 25_800 and s["format"] == REALISED_FORMAT
    assert [(member(s, m)["share"]) for m in (R, S1, S2)] == [12_900, 8_100, 4_800]
    # The invoice gave S1 60 x 0.80 = 48.00 of margin: R pays 33.00 more. It gave S2 60.00: S2 gives 12.00 back.
    assert sorted(flows_of(s, "profit_split")) == sorted([(R, S1, 3_300, a1), (S2, R, 1_200, a2)])
    gains = member(s, R)["gains"]
    assert gains == {"from_transfers_received": 11_400 + 3_600, "from_stock_supplied": 0, "share_of_joint_gain": 12_900}


def test_the_requester_never_pays_more_than_the_goods_are_worth_to_it() -> None:
    books, a1, _ = story()
    s = build(books)
    paid = sum(f["amount"] for f in s["flows"] if f["reference"] == a1 and f["from"] == R)
    paid -= sum(f["amount"] for f in s["flows"] if f["reference"] == a1 and f["to"] == R)
    assert paid == 60 * 500 + 600 + 3_300
    assert paid <= 60 * 700 <= 60 * 800


def test_shapley_the_nucleolus_and_the_pairwise_split_agree_on_a_plan_of_own_lanes() -> None:
    books, _, _ = story()
    by_method = {m: build(books, cast(Method, m)) for m in ("shapley", "core")}
    assert [x["share"] for x in by_method["shapley"]["members"]] == [x["share"] for x in by_method["core"]["members"]]
    assert member(by_method["core"], S1)["exact_share"] == "8100"
    assert by_method["core"]["core_check"]["in_core"] is True


def test_an_offer_not_used_or_not_delivered_earns_nothing() -> None:
    books = Books(R, S1, S2)
    plan_record(books, PLAN_AT, R, 100, [(S1, 60, 500), (S2, 60, 600)])
    deliver(books, "2026-11-06T10:00:00.000000Z", S1, offer_of(S1), 60, 500, 600, 420)  # S2 never ships
    for method in ("shapley", "core", "proportional"):
        s = build(books, cast(Method, method))
        assert member(s, S2)["share"] == 0 and member(s, S2)["exact_share"] == "0"
        assert all(S2 not in (f["from"], f["to"]) for f in s["flows"])


def test_a_request_planned_twice_is_counted_once_what_was_delivered() -> None:
    books, _, _ = story()
    plan_record(books, "2026-11-05T12:00:00.000000Z", R, 100, [(S1, 60, 500), (S2, 60, 600)])  # planned again
    assert build(books)["surplus"] == 25_800


def test_proportional_with_no_weights_gives_members_with_no_dealings_nothing() -> None:
    books, _, _ = story((R, S1, S2, IDLE))
    s = build(books, "proportional", weights={"value_supplied": Fraction(0)})
    assert member(s, IDLE)["share"] == 0
    assert sum(m["share"] for m in s["members"]) == s["surplus"]


def test_a_recorded_plan_cost_that_its_allocations_do_not_bear_out_stops_the_statement() -> None:
    books, _, _ = story()
    books.records[R][0]["plan"]["answer"]["total_cost"] = 9_900_000
    with pytest.raises(StatementStopped, match=rf"plan {R}#1: recorded total_cost 9900000, its own allocations cost"):
        build(books)


def test_a_transfer_that_lost_money_stops_the_statement_naming_who_would_pay_for_it() -> None:
    books = Books(R, S1)
    plan_record(books, PLAN_AT, R, 10, [(S1, 10, 900)])
    deliver(books, "2026-11-06T10:00:00.000000Z", S1, offer_of(S1), 10, 900, 600, 750)  # worth 7.00, cost 7.50
    with pytest.raises(StatementStopped, match=rf"member {R} would be 1100 minor units worse off.*plan {R}#1"):
        build(books)


def test_a_second_statement_over_the_same_days_settles_only_what_is_still_unsettled() -> None:
    books, a1, a2 = story()
    first = build(books, cut=Cut(R, "2026-11-07T00:00:00.000000Z"))
    assert f"transfer:{a1}" in first["settles"] and f"transfer:{a2}" in first["settles"]
    late = deliver(books, "2026-11-07T09:00:00.000000Z", S1, "off-late", 10, 500, 0, 420)
    again = build(books, cut=Cut(S1, CUT, after={first["id"]: first["settles"]}))
    assert again["after"] == [first["id"]]
    assert {t["acceptance"] for t in again["transfers"]} == {late}
    assert again["surplus"] == 10 * (700 - 420)
    assert {f["reference"] for f in again["flows"]} == {late}


def test_a_receipt_after_the_cut_waits_for_the_next_statement() -> None:
    books, _, _ = story()
    cut_early = Cut(R, "2026-11-06T10:30:00.000000Z")
    s = build(books, cut=cut_early)
    assert len(s["transfers"]) == 1
    later = build(books, cut=Cut(R, CUT, after={s["id"]: s["settles"]}))
    assert len(later["transfers"]) == 1 and later["transfers"][0]["supplier"] == S2


def test_a_correcting_statement_gives_back_the_flows_it_corrects_and_restates_them() -> None:
    books, _, _ = story()
    first = build(books)
    fix = build(books, cut=Cut(R, CUT, after={first["id"]: first["settles"]}, corrects=first))
    assert fix["corrects"] == first["id"]
    reversals = [f for f in fix["flows"] if f["kind"] == "reversal"]
    assert len(reversals) == len(first["flows"])
    assert all(m["net"] == 0 for m in fix["members"])  # restated as it was: the two cancel out


def test_two_proposals_for_one_period_have_two_ids_and_the_id_is_not_hashed() -> None:
    books, _, _ = story()
    a, b = build(books, cut=Cut(R, CUT)), build(books, cut=Cut(S1, CUT))
    assert a["id"] != b["id"]
    assert a["id"] == proposal_id(R, a["statement_hash"])
    assert statement_hash({**a, "id": "0xother"}) == a["statement_hash"]


def test_a_cut_before_the_period_opens_settles_nothing_of_it() -> None:
    books, _, _ = story()
    s = build(books, cut=Cut(R, "2026-10-31T00:00:00.000000Z"))
    assert s["transfers"] == [] and s["flows"] == [] and s["settles"] == []


def test_across_final_statements_a_reference_settled_twice_is_named_unless_corrected() -> None:
    books, a1, _ = story()
    first = build(books)
    again = build(books, cut=Cut(S1, CUT))  # built without naming the first: settles the same transfers
    a, b = sorted((first["id"], again["id"]))  # the same cut: in id order
    assert f"transfer:{a1}: settled by {a} and again by {b}" in settled_twice([first, again])
    fix = build(books, cut=Cut(R, CUT, after={first["id"]: first["settles"]}, corrects=first))
    assert settled_twice([first, fix]) == []
    assert settled_twice([fix]) == [f"statement {fix['id']}: builds on {first['id']}, which is not final"]
    forged: Statement = {**first, "id": "0x" + "00" * 32}
    assert settled_twice([forged]) == [f"statement {forged['id']}: its id is not that of its proposer and hash"]


def test_beyond_twenty_members_each_plan_proves_the_shares_in_the_core() -> None:
    pairs = [("0x" + f"{i:02x}" * 20, "0x" + f"{i + 100:02x}" * 20) for i in range(11)]
    books = Books(*(m for pair in pairs for m in pair))
    for requester, supplier in pairs:
        plan_record(books, PLAN_AT, requester, 10, [(supplier, 10, 500)])
        offer = offer_of(supplier)
        t = {"acceptance": f"acc-{offer}", "supplier": supplier, "requester": requester, "messages": []}
        ev = [{"source": "offer", "reference": offer}]
        out = {**t, "freight_compensation": 100, "unit_price": 500, "cost_basis": 420}
        books.add(supplier, "transfer_out", "2026-11-06T10:00:00.000000Z", evidence=ev, transfer=out)
        received = {**t, "shipped": 10, "received": 10, "freight_compensation": 100, "sale_price": 800}
        books.add(requester, "transfer_in", "2026-11-06T10:00:00.000000Z", evidence=ev, transfer=received)
    for method in ("shapley", "proportional"):
        s = build(books, cast(Method, method))
        # No stock lines, so no SKU to look up an alternative for: valued at the sale price.
        assert len(s["members"]) == 22 and s["surplus"] == 11 * (10 * (800 - 420) - 100)
        assert s["core_check"] == {"in_core": True, "worst_coalition": [], "deficit": None, "scope": "each plan"}


def test_proportional_shares_are_rounded_in_the_plans_core_and_add_up_to_each_gain() -> None:
    books, _, _ = story()
    s = build(books, "proportional", weights={"units_supplied": Fraction(1)})  # R supplied nothing: 0 of it
    for transfer in s["transfers"]:
        assert transfer["requester_gain"] + transfer["supplier_gain"] == transfer["gain"]
    # S1 supplied 60 of 100 units, S2 40: the plan's 258.00 goes 154.80 and 103.20, more than either pair made
    # with S2, so the core check names the coalition that would do better alone.
    assert [member(s, m)["share"] for m in (R, S1, S2)] == [0, 15_480, 10_320]
    assert s["core_check"]["in_core"] is False


def test_each_pair_checks_its_own_section_and_the_pairs_add_up_to_every_members_net() -> None:
    books, a1, _ = story()
    s = build(books)
    assert [p["members"] for p in s["pairs"]] == [[R, S1], [R, S2]]
    for m in s["members"]:
        received = sum(
            p["net"] if p["members"][1] == m["member"] else -p["net"] for p in s["pairs"] if m["member"] in p["members"]
        )
        assert received == m["net"]
    # R and S1 check their section from their own two records: their line and their flows, nothing of S2's.
    mine = [t for t in s["transfers"] if t["acceptance"] == a1]
    flows = [f for f in s["flows"] if {f["from"], f["to"]} == {R, S1}]
    assert s["pairs"][0]["commitment"] == pair_commitment(mine, flows)
    assert s["pairs"][0]["net"] == 60 * 500 + 600 + 3_300  # what S1, second in address order, receives from R
