"""Two-sided transfers across real node processes: plan, accept, ship, receive, settle, all anchored."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from tests.helpers import consortium, pair_with_an_offer, stock, transfers, wait_anchored
from tests.helpers.nodes import HANGZHOU, JIAXING, SHAOXING, XIAOSHAN, NodeFactory, RunningNode, soon, stock_up, until


def test_story_one_invite_offer_plan_ship_receive_and_both_books_verify(nodes: NodeFactory) -> None:
    hz = nodes.new("hz-store", lat_e6=HANGZHOU[0], lon_e6=HANGZHOU[1])
    xs = nodes.new("xs-dealer", lat_e6=XIAOSHAN[0], lon_e6=XIAOSHAN[1], CONSORTIUM_SAFETY_STOCK="20")
    sx = nodes.new("sx-dealer", lat_e6=SHAOXING[0], lon_e6=SHAOXING[1])
    jx = nodes.new("jx-distributor", lat_e6=JIAXING[0], lon_e6=JIAXING[1])
    stock_up(hz, [])
    stock_up(xs, [("X1", soon(400), 100)])
    stock_up(sx, [("S1", soon(300), 100)])
    stock_up(jx, [("J1", soon(400), 500)])
    with hz.client() as c:
        inv = c.post(
            "/negotiation/invitations",
            json={"sku": "FORMULA-900G", "quantity": 120, "needed_by": soon(3), "min_shelf_life_days": 90},
        ).json()
    assert {m["address"] for m in inv["invited"]} == {xs.address, sx.address}
    until(lambda: len(hz.client().get("/negotiation/offers").json()) == 2)

    with hz.client() as c:
        r = c.post("/negotiation/plan")
        assert r.status_code == 200, r.text
        plan = r.json()
    assert plan["plan"]["status"] == "optimal" and plan["plan"]["shortages"] == []
    # Xiaoshan (15 km, 80 spare above its safety stock) is nearer and cheaper: it goes first, Shaoxing fills the rest.
    got = {a["supplier"]: a["quantity"] for a in plan["acceptances"]}
    assert got == {xs.address: 80, sx.address: 40}
    assert any(line.startswith("transfer 80 units of FORMULA-900G lot X1 from xs-dealer") for line in plan["actions"])
    assert all(a["freight_compensation"] > 0 for a in plan["acceptances"])

    incoming = until(lambda: [t for t in transfers(hz, "shipped")] if len(transfers(hz, "shipped")) == 2 else [])
    with hz.client() as c:
        for t in incoming:
            r = c.post(f"/negotiation/transfers/{t['id']}/receive", json={"quantity": t["shipped"], "location": "WH"})
            assert r.status_code == 200, r.text
    until(
        lambda: (
            [t["status"] for t in transfers(xs)] == ["settled"] and [t["status"] for t in transfers(sx)] == ["settled"]
        )
    )

    assert stock(hz) == {("X1", "available"): 80, ("S1", "available"): 40}
    assert stock(xs) == {("X1", "available"): 20}
    # Shaoxing offered 100 (all spare), 40 were accepted: the other 60 went back to available.
    assert stock(sx) == {("S1", "available"): 60}
    hz_owner = {b["owner"] for b in hz.client().get("/stock").json()}
    assert hz_owner == {hz.address}
    for node in (hz, xs, sx):
        wait_anchored(node)
        result = consortium("audit", "verify", "--rpc", nodes.anvil.rpc_url, "--node", node.url)
        assert result.returncode == 0, result.stderr
    # Both sides wrote records of the same transfer carrying both partners' signatures.
    with hz.client() as c:
        incoming_records = [r["record"] for r in c.get("/ledger/records", params={"type": "transfer_in"}).json()]
    signers = {m["signer"] for r in incoming_records for m in r["transfer"]["messages"]}
    assert signers == {hz.address, xs.address, sx.address}


def test_short_delivery_becomes_a_discrepancy_on_both_sides(nodes: NodeFactory) -> None:
    hz, xs = pair_with_an_offer(nodes, "short")
    assert hz.client().post("/negotiation/plan").status_code == 200
    (t,) = until(lambda: transfers(hz, "shipped"))
    # Shipped but not yet received: the supplier's books hold a transfer the requester's do not (yet).
    wait_anchored(xs)
    half = consortium("audit", "reconcile", "--node", hz.url, "--node", xs.url, "--rpc", nodes.anvil.rpc_url)
    assert half.returncode == 1
    assert json.loads(half.stdout)["differences"] == [
        {"what": "transfer", "transfer": t["id"], "field": "records", "left": "missing", "right": "present"}
    ]
    with hz.client() as c:
        assert (
            c.post(f"/negotiation/transfers/{t['id']}/receive", json={"quantity": 27, "location": "WH"}).status_code
            == 200
        )
        again = c.post(f"/negotiation/transfers/{t['id']}/receive", json={"quantity": 27, "location": "WH"})
        # received already: confirming twice changes nothing
        assert (again.status_code, again.json()["error"]) == (422, "wrong_status")
    until(lambda: [x["status"] for x in transfers(xs)] == ["settled"])
    for node in (hz, xs):
        with node.client() as c:
            (d,) = [r["record"] for r in c.get("/ledger/records", params={"type": "discrepancy"}).json()]
        assert (d["transfer"]["shipped"], d["transfer"]["received"], d["transfer"]["difference"]) == (30, 27, 3)
    assert stock(hz) == {("X1", "available"): 27}
    assert stock(xs) == {("X1", "available"): 20}
    assert json.dumps(stock(xs, status="in_transit")) == "{}"
    for node in (hz, xs):
        wait_anchored(node)
    # Once settled, both books agree, the shortfall included.
    ok = consortium("audit", "reconcile", "--node", hz.url, "--node", xs.url, "--rpc", nodes.anvil.rpc_url)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["transfers"] == [t["id"]] and json.loads(ok.stdout)["differences"] == []


def test_a_transfer_records_what_a_unit_cost_the_supplier_and_is_worth_to_the_requester(nodes: NodeFactory) -> None:
    # The supplier's purchase price and the requester's sale price, each from its own master data: the records
    # carry them, so anyone holding the records values the transfer.
    hz, xs = pair_with_an_offer(
        nodes, "prices", requester_prices={"sale_price": 5980}, supplier_prices={"purchase_price": 4650}
    )
    assert hz.client().post("/negotiation/plan").status_code == 200
    (t,) = until(lambda: transfers(hz, "shipped"))
    with hz.client() as c:
        r = c.post(f"/negotiation/transfers/{t['id']}/receive", json={"quantity": 30, "location": "WH"})
        assert r.status_code == 200, r.text
    until(lambda: [x["status"] for x in transfers(xs)] == ["settled"])
    (shipped,) = records(xs, "transfer_out")
    (arrived,) = records(hz, "transfer_in")
    (settled,) = records(xs, "transfer_settled")
    assert shipped["transfer"]["cost_basis"] == 4650 and "sale_price" not in shipped["transfer"]
    assert arrived["transfer"]["sale_price"] == 5980 and "cost_basis" not in arrived["transfer"]
    assert "sale_price" not in settled["transfer"] and "cost_basis" not in settled["transfer"]
    assert shipped["transfer"]["acceptance"] == arrived["transfer"]["acceptance"] == t["id"]


def records(node: RunningNode, type_: str) -> list[dict[str, Any]]:
    with node.client() as c:
        return [r["record"] for r in c.get("/ledger/records", params={"type": type_}).json()]


def test_story_one_three_days_unmet_trigger_the_invitation_and_the_plan_runs_by_itself(nodes: NodeFactory) -> None:
    from datetime import UTC, datetime, timedelta

    hz = nodes.new("hz-trigger", lat_e6=HANGZHOU[0], lon_e6=HANGZHOU[1], CONSORTIUM_AUTO_PLAN_AFTER_SECONDS="1")
    xs = nodes.new("xs-trigger", lat_e6=XIAOSHAN[0], lon_e6=XIAOSHAN[1])
    sx = nodes.new("sx-trigger", lat_e6=SHAOXING[0], lon_e6=SHAOXING[1])
    jx = nodes.new("jx-trigger", lat_e6=JIAXING[0], lon_e6=JIAXING[1])
    stock_up(hz, [])
    stock_up(xs, [("X1", soon(400), 100)])
    stock_up(sx, [("S1", soon(300), 100)])
    stock_up(jx, [("J1", soon(400), 500)])
    today = datetime.now(UTC).date()
    with hz.client() as c:
        c.post(
            "/locations", json={"code": "SHOP", "name": "Shop floor", "lat": 30.26, "lon": 120.13}
        ).raise_for_status()
        for days_ago, qty in ((1, 20), (0, 30)):
            c.post(
                "/negotiation/replenishment",
                json={
                    "sku": "FORMULA-900G",
                    "location": "SHOP",
                    "quantity": qty,
                    "requested_on": (today - timedelta(days=days_ago)).isoformat(),
                },
            ).raise_for_status()
        # Two days unmet: not yet.
        assert c.post("/negotiation/replenishment/check", json={}).json() == []
        c.post(
            "/negotiation/replenishment",
            json={
                "sku": "FORMULA-900G",
                "location": "SHOP",
                "quantity": 10,
                "requested_on": (today - timedelta(days=2)).isoformat(),
            },
        ).raise_for_status()
        triggered = c.post("/negotiation/replenishment/check", json={}).json()
        # The node's own worker checks every half second too: whichever ran first made the one invitation.
        [inv] = until(lambda: [i for i in c.get("/negotiation/invitations").json() if i["mine"]])
    assert inv["quantity"] == 60 and set(json.loads(inv["invited"])) == {xs.address, sx.address}
    assert all(t["unmet_days"] == 3 and t["invitation"] == inv["id"] for t in triggered) and len(triggered) <= 1
    # Offers arrive, the requester plans by itself after its 1 s window: one truck from the nearest
    # partner who can fill it all is cheapest; Shaoxing's offer is declined and its reservation released.
    shipped = until(lambda: transfers(hz, "shipped"), timeout=30)
    assert [(t["supplier"], t["quantity"]) for t in shipped] == [(xs.address, 60)]
    with hz.client() as c:
        (plan,) = [r["record"] for r in c.get("/ledger/records", params={"type": "plan"}).json()]
    sources = [e["source"] for e in plan["evidence"]]
    assert sources.count("replenishment_request") == 3 and sources.count("offer") == 2
    assert plan["plan"]["problem"]["requests"][0]["quantity"] == 60
    # An auditor re-runs the recorded problem with `consortium match` and gets the same plan, hash for hash.
    problem_file = nodes.base / "plan-problem.json"
    problem_file.write_text(json.dumps(plan["plan"]["problem"]))
    rerun = subprocess.run(
        [sys.executable, "-m", "node", "match", "--problem", str(problem_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["hashes"] == plan["plan"]["answer"]["hashes"]
    until(lambda: stock(sx) == {("S1", "available"): 100})
    with hz.client() as c:
        for t in shipped:
            c.post(
                f"/negotiation/transfers/{t['id']}/receive", json={"quantity": t["shipped"], "location": "SHOP"}
            ).raise_for_status()
        assert {r["status"] for r in c.get("/negotiation/replenishment").json()} == {"fulfilled"}
    assert stock(hz, location="SHOP") == {("X1", "available"): 60}
    until(lambda: [x["status"] for x in transfers(xs)] == ["settled"])
    for node in (hz, xs, sx):
        wait_anchored(node)
        assert consortium("audit", "verify", "--rpc", nodes.anvil.rpc_url, "--node", node.url).returncode == 0
    # A clean transfer: both books agree, so reconcile finds no difference.
    reconciled = consortium("audit", "reconcile", "--node", hz.url, "--node", xs.url, "--rpc", nodes.anvil.rpc_url)
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
    assert json.loads(reconciled.stdout)["differences"] == []


def test_two_requesters_competing_for_one_suppliers_stock_never_over_allocate(nodes: NodeFactory) -> None:
    from concurrent.futures import ThreadPoolExecutor

    a = nodes.new("req-a", lat_e6=HANGZHOU[0], lon_e6=HANGZHOU[1])
    b = nodes.new("req-b", lat_e6=HANGZHOU[0] + 10_000, lon_e6=HANGZHOU[1])
    xs = nodes.new("contested", lat_e6=XIAOSHAN[0], lon_e6=XIAOSHAN[1])
    for node in (a, b):
        stock_up(node, [])
    stock_up(xs, [("X1", soon(400), 100)])

    def invite(node: RunningNode) -> int:
        with node.client() as c:
            return c.post(
                "/negotiation/invitations", json={"sku": "FORMULA-900G", "quantity": 80, "needed_by": soon(2)}
            ).status_code

    with ThreadPoolExecutor(2) as pool:
        assert list(pool.map(invite, (a, b))) == [201, 201]
    # 80 to the first, the 20 left to the second: nothing is offered twice.
    until(lambda: stock(xs) == {("X1", "reserved"): 100})
    offers = [
        o["quantity"]
        for node in (a, b)
        for o in until(lambda node=node: node.client().get("/negotiation/offers").json())
    ]
    assert sorted(offers) == [20, 80]
    for node in (a, b):
        assert node.client().post("/negotiation/plan").status_code == 200
    shipped = until(lambda: transfers(a, "shipped") and transfers(b, "shipped") and transfers(xs, "shipped"))
    assert sorted(t["quantity"] for t in transfers(xs)) == [20, 80] and shipped
    assert stock(xs) == {("X1", "in_transit"): 100}


def test_supplier_down_when_accepted_ships_after_it_restarts(nodes: NodeFactory) -> None:
    hz, xs = pair_with_an_offer(nodes, "crash")
    xs.process.kill()  # the supplier crashes before the acceptance reaches it
    assert hz.client().post("/negotiation/plan").status_code == 200
    time.sleep(1.0)
    assert transfers(hz, "accepted") and not transfers(hz, "shipped")
    xs.process.start()  # same database, same key: the requester's outbox delivers, the supplier ships
    (t,) = until(lambda: transfers(hz, "shipped"), timeout=40)
    assert t["shipped"] == 30
    assert stock(xs) == {("X1", "available"): 20, ("X1", "in_transit"): 30}


def test_consignment_transfer_moves_custody_but_not_ownership(nodes: NodeFactory) -> None:
    hz, xs = pair_with_an_offer(nodes, "consign", consignment=True)
    assert hz.client().post("/negotiation/plan").status_code == 200
    (t,) = until(lambda: transfers(hz, "shipped"))
    assert t["consignment"] is True
    with hz.client() as c:
        c.post(f"/negotiation/transfers/{t['id']}/receive", json={"quantity": 30, "location": "WH"}).raise_for_status()
        held = c.get("/stock").json()
    assert [(b["owner"], b["holder"], b["quantity"]) for b in held] == [(xs.address, hz.address, 30)]
    until(lambda: [x["status"] for x in transfers(xs)] == ["settled"])
    with xs.client() as c:
        books = {(b["location"], b["holder"], b["status"]): b["quantity"] for b in c.get("/stock").json()}
    assert books == {("WH", xs.address, "available"): 20, (f"partner:{hz.address}", hz.address, "available"): 30}


def test_a_resent_acceptance_is_refused_as_a_replay_and_ships_nothing_twice(nodes: NodeFactory) -> None:
    import sqlite3

    import httpx

    hz, xs = pair_with_an_offer(nodes, "resend")
    assert hz.client().post("/negotiation/plan").status_code == 200
    until(lambda: transfers(xs, "shipped"))
    with sqlite3.connect(hz.db_path) as db:
        (envelope,) = db.execute("SELECT envelope FROM negotiationmessage WHERE type = 'Acceptance'").fetchone()
    before = stock(xs)
    again = httpx.post(f"{xs.url}/negotiation/messages", content=envelope, headers={"Content-Type": "application/json"})
    assert again.status_code == 409 and again.json()["error"] == "replayed"
    assert stock(xs) == before == {("X1", "available"): 20, ("X1", "in_transit"): 30}
    assert len(transfers(xs)) == 1
