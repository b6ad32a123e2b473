"""A period's statement from ledger records (settlement/): the plan games, the shares by each method, the core
check, the money flows and their netting, worked out by hand for a small period, and invariants for random
ones."""

from __future__ import annotations

from datetime import date
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from negotiation.matching import SolverParameters, parse_problem, plan_to_json, solve
from settlement.contribution import Period, contributions
from settlement.plans import PlanRecordError, plan_game
from settlement.statement import SettlementTerms, build_statement, statement_hash

R, S1, S2 = "0x" + "a1" * 20, "0x" + "b2" * 20, "0x" + "c3" * 20
PERIOD = Period(date(2026, 11, 1), date(2026, 11, 30))


class Books:
    """Each member's ledger records, appended in time order as nodes write them."""

    def __init__(self, *members: str) -> None:
        self.records: dict[str, list[dict[str, Any]]] = {m: [] for m in members}

    def add(self, node: str, type_: str, at: str, **body: Any) -> dict[str, Any]:
        record = {"kind": "ledger", "node": node, "seq": len(self.records[node]) + 1, "type": type_, "at": at}
        record |= {"lines": [], "evidence": [], "memo": "", "corrects": None, **body}
        self.records[node].append(record)
        return record


def line(sku: str, qty: int, owner: str, holder: str, status: str = "available", lot: str = "L1") -> dict[str, Any]:
    return {
        "sku": sku,
        "lot": lot,
        "location": "WH",
        "owner": owner,
        "holder": holder,
        "status": status,
        "quantity": qty,
    }


def plan_record(books: Books, at: str, requester: str, need: int, offers: list[tuple[str, int, int]]) -> dict[str, Any]:
    problem = {
        "radius_km": 50,
        "requests": [
            {
                "id": f"req-{at}",
                "node": requester,
                "sku": "F",
                "quantity": need,
                "min_shelf_life_days": 0,
                "max_transit_hours": 24,
                "shortage_penalty": 1000,
            }
        ],
        "offers": [
            {
                "id": f"off-{node}-{at}",
                "node": node,
                "sku": "F",
                "quantity": q,
                "shelf_life_days": 300,
                "min_order_quantity": 1,
                "unit_price": price,
            }
            for node, q, price in offers
        ],
        "lanes": [
            {"from": node, "to": requester, "distance_km": 10, "transit_hours": 2, "cost_per_unit": 10, "fixed_cost": 0}
            for node, _q, _p in offers
        ],
    }
    params = SolverParameters()
    answer = plan_to_json(solve(parse_problem(problem), params))
    answer.pop("gap")
    plan = {"problem": problem, "parameters": params.as_dict(), "answer": answer, "rule_version": "0x01"}
    return books.add(requester, "plan", at, plan=plan)


def transfer(
    books: Books, at: str, supplier: str, requester: str, offer: str, qty: int, price: int, freight: int
) -> None:
    acceptance = f"acc-{offer}"
    t = {"acceptance": acceptance, "supplier": supplier, "requester": requester, "messages": []}
    ev = [{"source": "acceptance", "reference": acceptance}, {"source": "offer", "reference": offer}]
    books.add(
        supplier,
        "transfer_out",
        at,
        lines=[line("F", -qty, supplier, supplier, "reserved"), line("F", qty, supplier, supplier, "in_transit")],
        evidence=ev,
        transfer={**t, "freight_compensation": freight, "unit_price": price},
    )
    books.add(
        requester,
        "transfer_in",
        at,
        lines=[line("F", qty, requester, requester)],
        evidence=ev,
        transfer={**t, "shipped": qty, "received": qty, "freight_compensation": freight},
    )


def story() -> Books:
    """R needs 100 units (shortage 10.00 each); S1 offers 60 at 5.00, S2 60 at 6.00; freight 0.10 a unit.
    The plan takes 60 from S1 and 40 from S2; an arbitrator awards R 5.00 from S1."""
    books = Books(R, S1, S2)
    books.add(S1, "receipt", "2026-10-01T00:00:00.000000Z", lines=[line("F", 200, S1, S1)])
    books.add(S2, "receipt", "2026-10-01T00:00:00.000000Z", lines=[line("F", 200, S2, S2)])
    plan_record(books, "2026-11-05T10:00:00.000000Z", R, 100, [(S1, 60, 500), (S2, 60, 600)])
    transfer(books, "2026-11-06T10:00:00.000000Z", S1, R, "off-" + S1 + "-2026-11-05T10:00:00.000000Z", 60, 500, 600)
    transfer(books, "2026-11-06T11:00:00.000000Z", S2, R, "off-" + S2 + "-2026-11-05T10:00:00.000000Z", 40, 600, 400)
    ruling = {"id": "0xr1", "award": "500", "payer": S1, "payee": R, "dispute": "0xd1"}
    books.add(R, "ruling", "2026-11-20T00:00:00.000000Z", ruling=ruling)
    books.add(S1, "ruling", "2026-11-20T00:00:01.000000Z", ruling=ruling)  # both parties record it: counted once
    return books


def member(statement: dict[str, Any], address: str) -> dict[str, Any]:
    return next(m for m in statement["members"] if m["member"] == address)


def test_the_plan_game_is_what_each_coalition_saves_against_no_transfer_at_all() -> None:
    books = story()
    g = plan_game(books.records[R][0])
    # No transfer: 100 x 10.00 = 100,000. With S1: 60 x 5.10 + 40 x 10.00 = 70,600. With S2: 60 x 6.10 + 40 x
    # 10.00 = 76,600. With both (the recorded plan): 60 x 5.10 + 40 x 6.10 = 55,000.
    assert (g.value({R, S1}), g.value({R, S2}), g.value({R, S1, S2})) == (29_400, 23_400, 45_000)
    assert g.value({S1, S2}) == g.value({R}) == 0 and g.requester == R


def test_shapley_statement_worked_by_hand() -> None:
    s = build_statement(story().records, PERIOD, "0x01", SettlementTerms(method="shapley"))
    assert s["surplus"] == 45_000
    # Marginal contributions over the six orders of arrival: R 142,800 / 6, S1 72,600 / 6, S2 54,600 / 6.
    assert [(member(s, m)["share"], member(s, m)["captured"]) for m in (R, S1, S2)] == [
        (23_800, 45_000),
        (12_100, 0),
        (9_100, 0),
    ]
    kinds = sorted((f["kind"], f["from"], f["to"], f["amount"]) for f in s["flows"])
    assert kinds == sorted(
        [
            ("transfer_price", R, S1, 30_000),
            ("transfer_price", R, S2, 24_000),
            ("freight_compensation", R, S1, 600),
            ("freight_compensation", R, S2, 400),
            ("arbitration_award", S1, R, 500),
            ("profit_split", R, S1, 12_100),
            ("profit_split", R, S2, 9_100),
        ]
    )
    assert [member(s, m)["net"] for m in (R, S1, S2)] == [-75_700, 42_200, 33_500]
    assert s["payments"] == [{"from": R, "to": S1, "amount": 42_200}, {"from": R, "to": S2, "amount": 33_500}]
    # In the core: every proper coalition gets at least its value; the tightest is {R, S1} (29,400 vs 35,900).
    assert s["core_check"] == {
        "in_core": True,
        "worst_coalition": [R, S1],
        "deficit": "-6500",
        "scope": "all coalitions",
    }
    assert len(s["coalitions"]) == 7 and s["coalitions"][-1] == {"members": [R, S1, S2], "value": 45_000}


def test_proportional_shares_can_leave_the_core_and_the_statement_says_which_coalition_loses() -> None:
    terms = SettlementTerms(method="proportional", weights={"value_supplied": Fraction(1)})
    s = build_statement(story().records, PERIOD, "0x01", terms)
    # Value supplied: S1 30,000, S2 24,000, R 0: the surplus 45,000 split 25,000 / 20,000 / 0.
    assert [member(s, m)["share"] for m in (R, S1, S2)] == [0, 25_000, 20_000]
    # R and S1 alone would save 29,400 but get 25,000: 4,400 short.
    assert s["core_check"]["in_core"] is False
    assert (s["core_check"]["worst_coalition"], s["core_check"]["deficit"]) == ([R, S1], "4400")


def test_the_core_method_gives_an_allocation_in_the_core() -> None:
    s = build_statement(story().records, PERIOD, "0x01", SettlementTerms(method="core"))
    # Excesses: x_R, x_S1, x_S2, x_R + x_S1 - 29,400 = 15,600 - x_S2, x_R + x_S2 - 23,400 = 21,600 - x_S1, ...
    # The smallest is largest at x_S2 = 7,800 (= 15,600 - x_S2), then x_S1 = 10,800 (= 21,600 - x_S1).
    assert [member(s, m)["share"] for m in (R, S1, S2)] == [26_400, 10_800, 7_800]
    assert s["core_check"]["in_core"] is True and s["core_check"]["deficit"] == "-7800"


def test_contribution_metrics_of_the_story() -> None:
    m = contributions(story().records, PERIOD)
    assert m[S1].units_supplied == {"F": 60} and m[S2].units_supplied == {"F": 40}
    assert m[R].units_received == {"F": 100}
    assert (m[S1].value_supplied, m[S2].value_supplied, m[R].value_received) == (30_000, 24_000, 54_000)
    assert (m[R].freight_paid, m[S1].freight_compensated) == (1_000, 600)
    assert m[R].shortages_avoided == 100  # every unit received served a request
    # Format 1 valued them at the request's shortage penalty, 10.00 a unit: a planning weight, no money.
    assert contributions(story().records, PERIOD, penalty_valued=True)[R].shortages_avoided == 100 * 1000
    assert (m[S1].awards_paid, m[R].awards_received) == (500, 500)
    # S1 issued nothing in the period: its 60 units would have sat 90 days (the cap), at 8 % a year.
    assert m[S1].capital_freed == int(Fraction(30_000 * 90 * 8, 100 * 365))


def test_the_hash_covers_the_content_not_the_status_or_signatures() -> None:
    s = build_statement(story().records, PERIOD, "0x01", SettlementTerms())
    again = build_statement(story().records, PERIOD, "0x01", SettlementTerms())
    assert s == again and s["statement_hash"] == statement_hash(s)
    assert statement_hash({**s, "status": "final", "signatures": [{"signer": R}]}) == s["statement_hash"]
    assert statement_hash({**s, "surplus": 1}) != s["statement_hash"]


def test_a_period_holds_what_happened_on_its_days_only() -> None:
    s = build_statement(story().records, Period(date(2026, 12, 1), date(2026, 12, 31)), "0x01", SettlementTerms())
    assert s["surplus"] == 0 and s["flows"] == [] and s["payments"] == []
    with pytest.raises(ValueError):
        Period(date(2026, 12, 2), date(2026, 12, 1))


@given(
    st.lists(
        st.tuples(
            st.integers(20, 200),
            st.lists(
                st.tuples(st.sampled_from([S1, S2, "0x" + "d4" * 20]), st.integers(5, 150), st.integers(100, 1500)),
                min_size=1,
                max_size=3,
                unique_by=lambda o: o[0],
            ),
        ),
        min_size=1,
        max_size=4,
    ),
    st.sampled_from(["shapley", "core", "proportional"]),
)
@settings(max_examples=25, deadline=None)
def test_shares_add_up_to_the_surplus_and_nets_to_zero_for_random_periods(
    plans: list[tuple[int, list[tuple[str, int, int]]]], method: str
) -> None:
    books = Books(R, S1, S2, "0x" + "d4" * 20)
    for day, (need, offers) in enumerate(plans, start=1):
        at = f"2026-11-{day:02d}T08:00:00.000000Z"
        record = plan_record(books, at, R, need, offers)
        for a in record["plan"]["answer"]["allocations"]:
            supplier = next(o for o in record["plan"]["problem"]["offers"] if o["id"] == a["offer"])
            at = f"2026-11-{day:02d}T09:00:00.000000Z"
            transfer(books, at, supplier["node"], R, a["offer"], a["quantity"], supplier["unit_price"], 7)
    s = build_statement(books.records, PERIOD, "0x01", SettlementTerms(method=method))  # type: ignore[arg-type]
    assert sum(m["share"] for m in s["members"]) == s["surplus"] >= 0
    assert sum(m["net"] for m in s["members"]) == 0
    paid: dict[str, int] = {}
    for p in s["payments"]:
        paid[p["from"]] = paid.get(p["from"], 0) - p["amount"]
        paid[p["to"]] = paid.get(p["to"], 0) + p["amount"]
    assert {m["member"]: m["net"] for m in s["members"] if m["net"]} == {k: v for k, v in paid.items() if v}
    if method == "core":
        # The core of a plan's game is never empty (all to the requester is in it), so the nucleolus is in it;
        # rounding to whole minor units moves a coalition by less than a unit per member.
        assert Fraction(s["core_check"]["deficit"]) < len(s["members"])


def test_a_malformed_plan_record_is_named_not_a_crash() -> None:
    books = story()
    del books.records[R][0]["plan"]["answer"]["total_cost"]
    with pytest.raises(PlanRecordError, match=f"plan record {R}#1"):
        build_statement(books.records, PERIOD, "0x01", SettlementTerms())


def test_consigned_stock_is_paid_for_when_the_holder_sells_it_at_the_consignment_price() -> None:
    books = Books(R, S1)
    t = {"acceptance": "acc-c1", "supplier": S1, "requester": R, "messages": []}
    ev = [{"source": "acceptance", "reference": "acc-c1"}, {"source": "offer", "reference": "off-c1"}]
    books.add(S1, "transfer_out", "2026-11-02T09:00:00.000000Z", evidence=ev,
              lines=[line("F", -40, S1, S1, "reserved"), line("F", 40, S1, S1, "in_transit")],
              transfer={**t, "freight_compensation": 0, "unit_price": 600})  # fmt: skip
    # Received on consignment: R holds the 40 units, S1 still owns them.
    books.add(R, "transfer_in", "2026-11-02T10:00:00.000000Z", evidence=ev, lines=[line("F", 40, S1, R)],
              transfer={**t, "shipped": 40, "received": 40, "freight_compensation": 0})  # fmt: skip
    books.add(R, "issue", "2026-11-10T12:00:00.000000Z", lines=[line("F", -25, S1, R)])
    s = build_statement(books.records, PERIOD, "0x01", SettlementTerms())
    assert [(f["kind"], f["from"], f["to"], f["amount"]) for f in s["flows"]] == [
        ("consignment_sale", R, S1, 25 * 600)
    ]  # nothing for the transfer itself: the stock was not sold to R, only lent to its shelves
    assert s["payments"] == [{"from": R, "to": S1, "amount": 15_000}]
    assert member(s, S1)["metrics"]["value_supplied"] == 15_000
    # Held for S1: 40 units from Nov 2 10:00 to Nov 10 12:00 (194 h), then 15 to the period's end (492 h).
    assert member(s, R)["metrics"]["consignment_unit_hours"] == 40 * 194 + 15 * 492


def test_a_member_speaks_only_for_its_own_side_of_a_transfer() -> None:
    books = story()
    forged = dict(books.records[S1][1])  # S1's transfer_out, copied into S2's books with another price
    forged["node"], forged["transfer"] = S2, {**forged["transfer"], "unit_price": 1}
    books.records[S2].append({**forged, "seq": len(books.records[S2]) + 1})
    s = build_statement(books.records, PERIOD, "0x01", SettlementTerms())
    prices = [f["amount"] for f in s["flows"] if f["kind"] == "transfer_price" and f["to"] == S1]
    assert prices == [30_000]


def test_a_ruling_recorded_on_both_sides_of_a_period_boundary_counts_once_in_the_later_period() -> None:
    books = story()
    books.records[R][-1]["at"] = "2026-10-31T23:59:59.000000Z"  # R recorded it first, in October
    november = build_statement(books.records, PERIOD, "0x01", SettlementTerms())
    october = build_statement(books.records, Period(date(2026, 10, 1), date(2026, 10, 31)), "0x01", SettlementTerms())
    assert [f["kind"] for f in november["flows"]].count("arbitration_award") == 1
    assert [f["kind"] for f in october["flows"]].count("arbitration_award") == 0


def test_an_award_only_its_payee_recorded_is_owed_by_nobody() -> None:
    books = story()
    del books.records[S1][-1]  # the payer's record of the ruling: without it, the payee's word alone
    s = build_statement(books.records, PERIOD, "0x01", SettlementTerms())
    assert "arbitration_award" not in [f["kind"] for f in s["flows"]]
    books = story()
    books.records[R][-1]["ruling"] = {**books.records[R][-1]["ruling"], "award": "50000"}  # another award
    s = build_statement(books.records, PERIOD, "0x01", SettlementTerms())
    assert "arbitration_award" not in [f["kind"] for f in s["flows"]]


def test_records_naming_someone_who_is_not_a_member_read_are_refused() -> None:
    books = story()
    del books.records[S2]  # S2's records were not read (say it left the registry): its deals name it
    with pytest.raises(ValueError, match=S2):
        build_statement(books.records, PERIOD, "0x01", SettlementTerms())
