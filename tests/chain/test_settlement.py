"""Closing a period across real nodes (docs/settlement.md): one node proposes, every member recomputes the
statement from the others' verified records and awaits its operator's approval; once every member approved the
same hash, each records the final statement as an anchored `settlement` record; tampered records are named, a
differing statement is disputed. The rest of the life cycle: tests/chain/test_statement_lifecycle.py."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from chain.canonical import canonical_json, leaf_hash_of_canonical
from chain.deploy import Deployment
from negotiation.messages import Domain, sign
from negotiation.messages import new_id as new_message_id
from negotiation.rules.book import load_book
from settlement.realised import proposal_id
from settlement.statement import statement_hash
from tests.helpers import (
    DEALER_PURCHASE_PRICE,
    STORE_SALE_PRICE,
    anchor_all,
    approve_everywhere,
    approve_statement,
    closing_period,
    consortium,
    final_on_all,
    moved,
    pair_with_an_offer,
    receive_all,
    statement_on,
    statement_status,
    transfers,
    wait_anchored,
)
from tests.helpers.nodes import TEST_RULEBOOK, NodeFactory, RunningNode, until

TODAY = datetime.now(UTC).date().isoformat()


def test_a_closed_period_awaits_every_members_approval_then_is_recorded_and_anchored(
    nodes: NodeFactory, tmp_path: Path
) -> None:
    members = moved(nodes, "settle")
    hz = members[0]
    with hz.client() as c:
        r = c.post("/settlement/periods", json=closing_period())
        assert r.status_code == 201, r.text
        closed = r.json()
    assert closed["status"] == "awaiting_approval"  # closing a period is not approving it
    sid = closed["id"]
    # Every member recomputes it and waits for its operator: nobody's node approves by itself.
    until(lambda: all(statement_status(n, sid) == "awaiting_approval" for n in members), timeout=60)
    waiting = statement_on(hz, sid)
    assert waiting is not None and waiting["signatures"] == [] and "approval_due_at" in waiting
    for node in members[:-1]:
        assert approve_statement(node, sid)["status"] == "approved"
    with hz.client() as c:  # an approval is given once
        again = c.post(f"/settlement/statements/{sid}/approve")
    assert (again.status_code, again.json()["error"]) == (422, "wrong_status")
    # Two of three approved: final nowhere, whatever signatures have arrived.
    until(lambda: len((statement_on(members[-1], sid) or {}).get("signatures", [])) == 2)
    assert {statement_status(n, sid) for n in members} == {"approved", "awaiting_approval"}
    approve_statement(members[-1], sid)

    docs = until(lambda: final_on_all(members, sid), timeout=60)
    assert [d["approval"]["by"] for d in docs] == ["operator"] * 3
    addresses = sorted((n.address for n in members), key=str.lower)
    for doc in docs:
        assert doc["statement_hash"] == closed["statement_hash"] == statement_hash(doc)
        assert sorted((s["signer"] for s in doc["signatures"]), key=str.lower) == addresses
        assert [m["member"] for m in doc["members"]] == addresses
    doc = docs[0]
    assert doc["format"] == "consortium-settlement/2" and doc["proposer"] == hz.address
    assert doc["surplus"] > 0 and sum(m["share"] for m in doc["members"]) == doc["surplus"]
    assert sum(m["net"] for m in doc["members"]) == 0
    assert doc["core_check"]["scope"] == "all coalitions" and len(doc["coalitions"]) == 7
    assert doc["core_check"]["in_core"] is True
    kinds = {f["kind"] for f in doc["flows"]}
    assert {"transfer_price", "freight_compensation", "profit_split"} <= kinds
    # Money paid is money made: each transfer's gain is its units' value at the store's sale price over the
    # dealer's cost and the freight, half to each; all flows of it included, the store pays no more than the
    # goods are worth to it, and the split names the acceptance it settles.
    for line in doc["transfers"]:
        assert line["unit_value"] == STORE_SALE_PRICE and line["cost_basis"] == DEALER_PURCHASE_PRICE
        assert line["gain"] == line["units"] * (STORE_SALE_PRICE - DEALER_PURCHASE_PRICE) - line["freight"] > 0
        assert line["supplier_gain"] == line["gain"] // 2
        paid = sum(
            f["amount"] for f in doc["flows"] if f["reference"] == line["acceptance"] and f["from"] == hz.address
        )
        paid -= sum(f["amount"] for f in doc["flows"] if f["reference"] == line["acceptance"] and f["to"] == hz.address)
        assert paid == line["units"] * DEALER_PURCHASE_PRICE + line["freight"] + line["supplier_gain"]
        assert paid <= line["units"] * STORE_SALE_PRICE
    assert {f["reference"] for f in doc["flows"] if f["kind"] == "profit_split"} <= {
        t["acceptance"] for t in doc["transfers"]
    }
    # The requester received 120 units from two suppliers and paid for them: it owes, they are owed.
    net = {m["member"]: m["net"] for m in doc["members"]}
    assert net[hz.address] < 0 < min(net[n.address] for n in members[1:])
    assert {(p["from"], p["to"]) for p in doc["payments"]} == {(hz.address, n.address) for n in members[1:]}

    # Every member wrote the final statement as a `settlement` record, anchored, and the audit passes.
    for node in members:
        with node.client() as c:
            c.post("/anchoring/flush")
        records = until(lambda node=node: _anchored_settlement_records(node))
        assert [r["record"]["settlement"]["statement_hash"] for r in records] == [closed["statement_hash"]]
        assert records[0]["record"]["memo"].endswith("approved here by the member's operator")
        assert len(records[0]["record"]["settlement"]["signatures"]) == 3
        audit = consortium("audit", "verify", "--rpc", nodes.anvil.rpc_url, "--node", node.url, "--kind", "settlement")
        assert audit.returncode == 0, audit.stdout + audit.stderr

    # An auditor recomputes it from the members' records and checks every signature; an edited copy fails.
    rpc = nodes.anvil.rpc_url
    verified = consortium("settle", "verify", "--rpc", rpc, "--node", members[1].url, "--id", sid)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    edited = {
        **doc,
        "members": [
            {**m, "share": m["share"] + (1 if i == 0 else -1 if i == 1 else 0)} for i, m in enumerate(doc["members"])
        ],
    }
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(edited))
    failed = consortium(
        "settle", "verify", "--rpc", rpc, "--statement", str(path), "--contract", nodes.deployment.anchors
    )
    assert failed.returncode == 1 and f"member {doc['members'][0]['member']}: share" in failed.stderr, failed.stderr

    # The same days closed again settle none of what is settled: no transfer, no flow.
    with hz.client() as c:
        again = c.post("/settlement/periods", json=closing_period())
        assert again.status_code == 201, again.text
        tomorrow = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
        ahead = c.post("/settlement/periods", json={"from": closing_period()["from"], "to": tomorrow})
    assert (ahead.status_code, ahead.json()["error"]) == (422, "invalid_request") and "after today" in ahead.text
    redo = until(lambda: statement_on(hz, again.json()["id"]))
    assert redo["after"] == [sid] and redo["transfers"] == [] and redo["flows"] == [] and redo["surplus"] == 0
    # Approved too, both are final: an auditor checks every final statement and that each reference is
    # settled once across them.
    approve_everywhere(members, redo["id"])
    until(lambda: final_on_all(members, redo["id"]), timeout=60)
    every = consortium("settle", "verify", "--rpc", rpc, "--node", hz.url, "--all")
    assert every.returncode == 0, every.stdout + every.stderr
    assert sorted(json.loads(every.stdout)["statements"]) == sorted([sid, redo["id"]])


def _anchored_settlement_records(node: RunningNode) -> list[dict[str, Any]]:
    docs = httpx.get(f"{node.url}/audit/records", params={"kind": "settlement"}).json()["items"]
    return docs if docs and all(d["status"] == "anchored" for d in docs) else []


def test_a_tampered_record_is_named_and_no_statement_is_proposed(nodes: NodeFactory) -> None:
    hz, xs = moved(nodes, "tamper", suppliers=1)
    with sqlite3.connect(xs.db_path) as db:
        seq, body = db.execute("SELECT seq, body FROM record WHERE type = 'transfer_out'").fetchone()
        db.execute("UPDATE record SET body = ? WHERE seq = ?", (body.replace('"unit_price":', '"unit_price":1'), seq))
    with hz.client() as c:
        r = c.post("/settlement/periods", json=closing_period())
    assert (r.status_code, r.json()["error"]) == (409, "settlement_inputs"), r.text
    assert xs.address in r.json()["message"] and f"record {seq}" in r.json()["message"]
    with hz.client() as c:
        assert c.get("/settlement/statements").json() == []


def test_a_member_disputes_a_statement_it_computes_differently(nodes: NodeFactory, deployment: Deployment) -> None:
    hz, xs = moved(nodes, "dispute", suppliers=1)
    with hz.client() as c:
        real = c.post("/settlement/periods", json=closing_period()).json()
    approve_everywhere([hz, xs], real["id"])
    until(lambda: (d := statement_on(xs, real["id"])) is not None and d["status"] == "final")
    # The proposer's node serves a statement for the next day with the surplus of today (as a dishonest or
    # broken proposer would) and proposes it, signed with its key.
    honest = statement_on(hz, real["id"])
    assert honest is not None
    forged = {k: v for k, v in honest.items() if k not in ("status", "signatures", "statement_hash")}
    forged["period"] = {"from": "2999-12-31", "to": "2999-12-31"}
    forged["statement_hash"] = statement_hash(forged)
    forged["id"] = proposal_id(hz.address, forged["statement_hash"])
    with sqlite3.connect(hz.db_path) as db:
        db.execute(
            "INSERT INTO settlementstatement (id, period_from, period_to, rule_version, proposer, statement_hash,"
            " status, created_at, document) VALUES (?, ?, ?, ?, ?, ?, 'awaiting_approval', ?, ?)",
            (
                forged["id"], "2999-12-31", "2999-12-31", forged["rule_version"], hz.address,
                forged["statement_hash"], TODAY, json.dumps(forged),
            ),
        )  # fmt: skip
    proposal = sign(
        Domain("consortium-inventory", 31337, deployment.registry),
        "StatementProposal",
        {
            "id": new_message_id(),
            "statement": forged["id"],
            "proposer": hz.address,
            "periodFrom": "2999-12-31",
            "periodTo": "2999-12-31",
            "ruleVersion": load_book(TEST_RULEBOOK).version,
            "statementHash": forged["statement_hash"],
            "nonce": 7,
            "deadline": int(time.time()) + 600,
        },
        hz.key,
    )
    assert httpx.post(f"{xs.url}/negotiation/messages", json=proposal.as_json()).status_code == 202

    def disputed() -> dict[str, Any] | None:
        with xs.client() as c:
            rows = c.get("/settlement/statements").json()
        return next((r for r in rows if r["id"] == forged["id"] and r["status"] == "disputed"), None)

    row = until(disputed)
    assert "surplus" in row["problem"]
    # ...told every member why, signed: the proposer shows it on the statement, with the flows it does not hold.
    shown = until(lambda: (d := statement_on(hz, forged["id"])) is not None and d.get("disputes") and d)
    (told,) = shown["disputes"]
    assert told["member"] == xs.address and told["reason"].startswith("this node computes another statement: ")
    keys = ("kind", "reference", "from", "to")
    assert sorted(tuple(x[k] for k in keys) for x in told["lines"]) == sorted(
        tuple(f[k] for k in keys) for f in forged["flows"]
    )
    assert shown["status"] == "disputed"
    # ...and it told the proposer: a dispute on the statement, recorded on both sides.
    until(lambda: [d for d in _disputes(hz) if d["subject"] == forged["id"]])
    assert [d["opener"] for d in _disputes(xs) if d["subject"] == forged["id"]] == [xs.address]
    assert statement_on(xs, forged["id"]) is None  # it never agreed to a document for it


def _disputes(node: RunningNode) -> list[dict[str, Any]]:
    with node.client() as c:
        return list(c.get("/negotiation/disputes").json())


def test_consigned_stock_sold_by_its_holder_leaves_the_owners_books_and_is_owed_at_the_consignment_price(
    nodes: NodeFactory, deployment: Deployment
) -> None:
    hz, xs = pair_with_an_offer(nodes, "consign-sale", consignment=True)
    assert hz.client().post("/negotiation/plan").status_code == 200
    (t,) = until(lambda: transfers(hz, "shipped"))
    with hz.client() as c:
        c.post(f"/negotiation/transfers/{t['id']}/receive", json={"quantity": 30, "location": "WH"}).raise_for_status()
    until(lambda: [x["status"] for x in transfers(xs)] == ["settled"])
    lot = t["lot"]
    with hz.client() as c:  # the store sells 12 of the units it holds for Xiaoshan
        sale = {
            "type": "issue",
            "sku": "FORMULA-900G",
            "lot": lot,
            "location": "WH",
            "quantity": 12,
            "owner": xs.address,
        }
        assert c.post("/ledger/movements", json=sale).status_code == 201

    def at_store() -> int:
        with xs.client() as c:
            rows = c.get("/stock", params={"location": f"partner:{hz.address}"}).json()
        return sum(b["quantity"] for b in rows)

    assert until(lambda: at_store() == 18)
    with hz.client() as c:  # and buys 8 more outright: they stay on its shelf, now its own
        buy = {**sale, "type": "buy_out", "quantity": 8}
        assert c.post("/ledger/movements", json=buy).status_code == 201
        owners = {(b["owner"], b["quantity"]) for b in c.get("/stock", params={"sku": "FORMULA-900G"}).json()}
    assert owners == {(xs.address, 10), (hz.address, 8)}
    assert until(lambda: at_store() == 10)
    # A sale of more than the owner shows at the holder is refused and changes nothing.
    too_many = sign(
        Domain("consortium-inventory", 31337, deployment.registry),
        "ConsignmentSale",
        {"id": new_message_id(), "holder": hz.address, "owner": xs.address, "sku": "FORMULA-900G", "lot": lot,
         "quantity": 11, "unitPrice": 1, "nonce": 5, "deadline": int(time.time()) + 600},
        hz.key,
    )  # fmt: skip
    r = httpx.post(f"{xs.url}/negotiation/messages", json=too_many.as_json())
    assert (r.status_code, r.json()["error"]) == (409, "insufficient_stock") and at_store() == 10
    for node in (hz, xs):
        with node.client() as c:
            c.post("/anchoring/flush")
        wait_anchored(node)
    with hz.client() as c:
        closed = c.post("/settlement/periods", json=closing_period()).json()
    approve_everywhere([hz, xs], closed["id"])
    doc = until(lambda: (d := statement_on(xs, closed["id"])) is not None and d["status"] == "final" and d)
    sales = [f for f in doc["flows"] if f["kind"] == "consignment_sale"]
    assert sorted(f["amount"] for f in sales) == [8 * t["unit_price"], 12 * t["unit_price"]]
    assert {(f["from"], f["to"]) for f in sales} == {(hz.address, xs.address)}
    assert not [f for f in doc["flows"] if f["kind"] == "transfer_price"]  # lent to the shelf, not sold to it


def test_an_offer_the_plan_did_not_use_earns_nothing(nodes: NodeFactory) -> None:
    """Both dealers offer 80 for the store's 60: the plan takes them from one. The other offered, reserved and
    was released; under format 1's Shapley value it still took a share of the surplus. Nothing now."""
    members = moved(nodes, "unused", need=60)
    hz = members[0]
    with hz.client() as c:
        closed = c.post("/settlement/periods", json=closing_period())
        assert closed.status_code == 201, closed.text
    sid = closed.json()["id"]
    approve_everywhere(members, sid)
    doc = until(lambda: final_on_all(members, sid), timeout=60)[0]
    (line,) = doc["transfers"]
    (unused,) = [n.address for n in members[1:] if n.address != line["supplier"]]
    share = next(m for m in doc["members"] if m["member"] == unused)
    assert (share["share"], share["exact_share"], share["net"]) == (0, "0", 0)
    assert all(unused not in (f["from"], f["to"]) for f in doc["flows"])
    assert all(unused not in p["players"] for p in doc["plans"]) and doc["surplus"] == line["gain"] > 0


def _overstate_the_plan_cost(hz: RunningNode) -> None:
    """The requester's node writes a plan record whose total cost its own allocations do not bear out (as
    faulty or dishonest software would), before anchoring it: the record verifies on chain as written."""
    with sqlite3.connect(hz.db_path) as db:
        seq, body = db.execute("SELECT seq, body FROM record WHERE type = 'plan'").fetchone()
        record = json.loads(body)
        record["plan"]["answer"]["total_cost"] += 4_400_000
        changed = canonical_json(record)
        db.execute("UPDATE record SET body = ?, leaf = ? WHERE seq = ? AND type = 'plan'",
                   (changed.decode(), leaf_hash_of_canonical(changed).hex(), seq))  # fmt: skip


def test_a_plan_whose_recorded_cost_does_not_hold_stops_the_statement_named(nodes: NodeFactory) -> None:
    """Format 1 trusted the recorded cost: shares went negative and an uninvolved supplier paid. The plan's
    cost is now recomputed from its own allocations, and the statement stops, naming the plan."""
    hz, _xs = moved(
        nodes,
        "overstated",
        suppliers=1,
        requester_env={"CONSORTIUM_ANCHOR_INTERVAL_SECONDS": "3600"},  # anchored only when flushed
        before_anchoring=_overstate_the_plan_cost,
    )
    audit = consortium("audit", "verify", "--rpc", nodes.anvil.rpc_url, "--node", hz.url)
    assert audit.returncode == 0, audit.stdout + audit.stderr  # the record verifies as anchored
    with hz.client() as c:
        r = c.post("/settlement/periods", json=closing_period())
    assert (r.status_code, r.json()["error"]) == (409, "settlement_stopped"), r.text
    assert f"plan {hz.address}#" in r.json()["message"] and "its own allocations cost" in r.json()["message"]
    with hz.client() as c:
        assert c.get("/settlement/statements").json() == []


def test_goods_create_value_when_they_arrive_not_when_the_plan_is_made(nodes: NodeFactory) -> None:
    """Format 1 counted a plan's value in the period it was made, before anything arrived. Planned and
    shipped but not received, a transfer creates nothing yet; received, the next statement over the same
    days settles it, and only it."""
    members = moved(nodes, "arrive", suppliers=1, receive=False)
    hz, xs = members

    def closed_and_final() -> dict[str, Any]:
        with hz.client() as c:
            r = c.post("/settlement/periods", json=closing_period())
            assert r.status_code == 201, r.text
        approve_everywhere(members, r.json()["id"])
        return until(lambda: final_on_all(members, r.json()["id"]), timeout=60)[0]

    before = closed_and_final()
    assert (before["surplus"], before["transfers"], before["plans"]) == (0, [], [])
    assert before["flows"] == [] and before["payments"] == []
    receive_all(hz, [xs], transfers(hz, "shipped"))
    anchor_all(members)
    after = closed_and_final()
    (line,) = after["transfers"]
    assert after["after"] == [before["id"]] and after["surplus"] == line["gain"] > 0
    assert {f["kind"] for f in after["flows"]} == {"transfer_price", "freight_compensation", "profit_split"}


def test_a_correcting_statement_gives_back_a_final_ones_flows_and_restates_them(nodes: NodeFactory) -> None:
    """The only way a settled reference comes back: a statement that names the final one it corrects."""
    members = moved(nodes, "correct", suppliers=1)
    hz = members[0]
    with hz.client() as c:
        first = c.post("/settlement/periods", json=closing_period()).json()["id"]
    approve_everywhere(members, first)
    original = until(lambda: final_on_all(members, first), timeout=60)[0]
    with hz.client() as c:
        r = c.post("/settlement/periods", json={**closing_period(), "corrects": first})
        assert r.status_code == 201, r.text
        unknown = c.post("/settlement/periods", json={**closing_period(), "corrects": "0x" + "ab" * 32})
    assert (unknown.status_code, unknown.json()["error"]) == (422, "invalid_request")
    fix_id = r.json()["id"]
    approve_everywhere(members, fix_id)
    fix = until(lambda: final_on_all(members, fix_id), timeout=60)[0]
    assert fix["corrects"] == first and fix["settles"] == original["settles"]
    reversals = sorted((f["from"], f["to"], f["amount"]) for f in fix["flows"] if f["kind"] == "reversal")
    assert reversals == sorted((f["to"], f["from"], f["amount"]) for f in original["flows"])
    assert all(m["net"] == 0 for m in fix["members"])  # restated as it was: the records did not change
    every = consortium("settle", "verify", "--rpc", nodes.anvil.rpc_url, "--node", members[1].url, "--all")
    assert every.returncode == 0, every.stdout + every.stderr
