"""Joint purchases and spare-part loans across real nodes (docs/protocol.md, section 4, steps 10 and 11): the buyer's
shares by the rule book's formula, accepted by the participant; parts lent within the borrower's bounds,
given back before the due time or sold at it on both sides; and the period's statement owing all of it."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from chain.deploy import Deployment
from negotiation.messages import Domain, new_id, sign
from negotiation.rules.book import load_book
from tests.helpers import approve_everywhere, closing_period, wait_anchored
from tests.helpers.nodes import HANGZHOU, TEST_RULEBOOK, XIAOSHAN, NodeFactory, RunningNode, soon, stock_up, until


def stock(node: RunningNode, **where: str) -> set[tuple[str, str, int]]:
    with node.client() as c:
        rows = c.get("/stock", params={"sku": "FORMULA-900G", **where}).json()
    return {(b["location"], b["owner"], b["quantity"]) for b in rows if b["quantity"]}


def in_seconds(seconds: int) -> str:
    return datetime.fromtimestamp(time.time() + seconds, UTC).isoformat()


def loan_on(node: RunningNode, loan_id: str) -> dict[str, Any] | None:
    with node.client() as c:
        r = c.get(f"/loans/{loan_id}")
    return r.json() if r.status_code == 200 else None


def test_a_joint_purchase_and_two_loans_are_owed_in_the_period_statement(
    nodes: NodeFactory, deployment: Deployment
) -> None:
    hz = nodes.new("hz-deal", lat_e6=HANGZHOU[0], lon_e6=HANGZHOU[1])
    xs = nodes.new("xs-deal", lat_e6=XIAOSHAN[0], lon_e6=XIAOSHAN[1])
    stock_up(hz, [])
    stock_up(xs, [("X1", soon(400), 50)])

    # Xiaoshan bought 10 units for 1,000.00 for itself (4) and Hangzhou (6): Hangzhou's share is 600.00.
    with xs.client() as c:
        body = {
            "sku": "FORMULA-900G",
            "lot": "J1",
            "reference": "PO-2026-0117",
            "total_cost": 100_000,
            "participants": [{"member": xs.address, "units": 4}, {"member": hz.address, "units": 6}],
        }
        made = c.post("/joint-purchases", json=body)
        assert made.status_code == 201, made.text
        purchase = made.json()["id"]
    assert {(s["participant"], s["share"]) for s in made.json()["shares"]} == {
        (xs.address, 40_000),
        (hz.address, 60_000),
    }

    def proposed() -> list[dict[str, Any]]:
        with hz.client() as c:
            return [p for p in c.get("/joint-purchases").json() if p["id"] == purchase]

    (seen,) = until(proposed)
    assert [(s["share"], s["status"]) for s in seen["shares"]] == [(60_000, "proposed")]
    # A share the rule book does not give is refused, and nothing is kept of it.
    book = load_book(TEST_RULEBOOK)
    forged = sign(
        Domain("consortium-inventory", 31337, deployment.registry),
        "JointPurchase",
        {"id": new_id(), "purchase": new_id(), "buyer": xs.address, "participant": hz.address, "sku": "FORMULA-900G",
         "lot": "J1", "reference": "PO-X", "units": 6, "totalUnits": 10, "participants": 2, "totalCost": 100_000,
         "share": 70_000, "ruleVersion": book.version, "nonce": 77, "deadline": int(time.time()) + 600},
        xs.key,
    )  # fmt: skip
    r = httpx.post(f"{hz.url}/negotiation/messages", json=forged.as_json())
    assert (r.status_code, r.json()["error"]) == (422, "wrong_share")
    assert len(hz.client().get("/joint-purchases").json()) == 1
    with hz.client() as c:
        accepted = c.post(f"/joint-purchases/{purchase}/accept")
        assert accepted.status_code == 200, accepted.text
        assert c.post(f"/joint-purchases/{purchase}/accept").status_code == 409  # once

    def accepted_at_buyer() -> bool:
        with xs.client() as c:
            (p,) = c.get("/joint-purchases").json()
        return {s["participant"]: s["status"] for s in p["shares"]}[hz.address] == "accepted"

    assert until(accepted_at_buyer)

    # Hangzhou borrows 5 units for an hour (gives 2 back) and 3 units due in a few seconds (keeps them).
    asked = {"lender": xs.address, "sku": "FORMULA-900G", "location": "WH", "max_fee_per_unit_day": 200,
             "max_unit_sale_price": 6000}  # fmt: skip
    with hz.client() as c:
        long_loan = c.post("/loans", json={**asked, "quantity": 5, "return_by": in_seconds(3600)}).json()["id"]
        short_loan = c.post("/loans", json={**asked, "quantity": 3, "return_by": in_seconds(10)}).json()["id"]
    until(lambda: loan_on(xs, long_loan) and loan_on(xs, short_loan))
    terms = {"lot": "X1", "from_location": "WH", "fee_per_unit_day": 150, "unit_sale_price": 5500}
    with xs.client() as c:
        too_dear = c.post(f"/loans/{long_loan}/lend", json={**terms, "fee_per_unit_day": 201})
        assert (too_dear.status_code, too_dear.json()["error"]) == (422, "invalid_request")
        for loan_id in (short_loan, long_loan):
            lent = c.post(f"/loans/{loan_id}/lend", json=terms)
            assert lent.status_code == 200, lent.text
    assert stock(xs) == {("WH", xs.address, 42), (f"partner:{hz.address}", xs.address, 8)}
    until(lambda: stock(hz) == {("WH", xs.address, 8)})
    with hz.client() as c:
        back = c.post(f"/loans/{long_loan}/return", json={"quantity": 2})
        assert back.status_code == 200, back.text
        # Lent parts are not sold on: given back, or kept to the due time.
        sale = {
            "type": "issue",
            "sku": "FORMULA-900G",
            "lot": "X1",
            "location": "WH",
            "quantity": 1,
            "owner": xs.address,
        }
        refused = c.post("/ledger/movements", json=sale)
        assert (refused.status_code, refused.json()["error"]) == (422, "invalid_movement")
    until(lambda: stock(xs) == {("WH", xs.address, 44), (f"partner:{hz.address}", xs.address, 6)})

    # The short loan's due time passes: each side turns the 3 units still out into a sale, by itself.
    until(lambda: all((x := loan_on(n, short_loan)) and x["status"] == "sold" for n in (hz, xs)), timeout=60)
    assert stock(hz) == {("WH", xs.address, 3), ("WH", hz.address, 3)}
    assert stock(xs) == {("WH", xs.address, 44), (f"partner:{hz.address}", xs.address, 3)}
    assert loan_on(hz, long_loan)["status"] == "lent"  # type: ignore[index]

    for node in (hz, xs):
        with node.client() as c:
            c.post("/anchoring/flush")
        wait_anchored(node)
    with hz.client() as c:
        closed = c.post("/settlement/periods", json=closing_period())
        assert closed.status_code == 201, closed.text
    sid = closed.json()["id"]
    approve_everywhere([hz, xs], sid)

    def final(node: RunningNode) -> dict[str, Any] | None:
        r = httpx.get(f"{node.url}/settlement/statements/{sid}")
        return r.json() if r.status_code == 200 and r.json()["status"] == "final" else None

    doc = until(lambda: final(xs))
    assert until(lambda: final(hz))["statement_hash"] == doc["statement_hash"]
    flows = sorted((f["kind"], f["from"], f["to"], f["amount"]) for f in doc["flows"])
    assert flows == [
        ("joint_purchase_share", hz.address, xs.address, 60_000),
        ("loan_fee", hz.address, xs.address, 2 * 150 * 1),  # two units back within a day
        ("loan_fee", hz.address, xs.address, 3 * 150 * 1),  # three kept to the due time, a day begun
        ("loan_sale", hz.address, xs.address, 3 * 5500),
    ]
    assert doc["payments"] == [{"from": hz.address, "to": xs.address, "amount": 60_000 + 300 + 450 + 16_500}]


def test_a_loan_the_borrower_refuses_comes_back_to_the_lenders_shelf(nodes: NodeFactory) -> None:
    hz = nodes.new("hz-refuse", lat_e6=HANGZHOU[0], lon_e6=HANGZHOU[1])
    xs = nodes.new("xs-refuse", lat_e6=XIAOSHAN[0], lon_e6=XIAOSHAN[1])
    stock_up(hz, [])
    stock_up(xs, [("X1", soon(400), 50)])
    asked = {"lender": xs.address, "sku": "FORMULA-900G", "location": "WH", "max_fee_per_unit_day": 200,
             "max_unit_sale_price": 6000, "quantity": 4, "return_by": in_seconds(3600)}  # fmt: skip
    with hz.client() as c:
        loan_id = c.post("/loans", json=asked).json()["id"]
    until(lambda: loan_on(xs, loan_id))
    with sqlite3.connect(hz.db_path) as db:  # the borrower's node forgets it asked (as one restored from a backup)
        db.execute("DELETE FROM loan WHERE id = ?", (loan_id,))
    with xs.client() as c:
        terms = {"lot": "X1", "from_location": "WH", "fee_per_unit_day": 150, "unit_sale_price": 5500}
        assert c.post(f"/loans/{loan_id}/lend", json=terms).status_code == 200
    # Refused for good (unknown_subject): the four units come back from the borrower's shelf to the lender's.
    until(lambda: (x := loan_on(xs, loan_id)) is not None and x["status"] == "refused")
    assert stock(xs) == {("WH", xs.address, 50)}
    assert stock(hz) == set()
    with xs.client() as c:
        types = [r["record"]["type"] for r in c.get("/ledger/records", params={"limit": 100}).json()]
    assert types[-2:] == ["lend", "loan_refused"]
    # The lender's operator sees it on the node's health: one message refused for good, none waiting.
    with xs.client() as c:
        outbox = c.get("/health").json()["outbox"]
    assert (outbox["waiting_messages"], outbox["refused_messages"]) == (0, 1)
