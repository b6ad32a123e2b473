"""A real node process over HTTP: the pool, bad input refused with nothing changed, records anchored."""

from __future__ import annotations

import time

import httpx
import pytest

from chain.merkle import fold_proof
from tests.helpers import race_for_stock, seed, snapshot, wait_anchored, workers_share_writes_and_anchor_once
from tests.helpers.nodes import NodeFactory

BAD_REQUESTS = [
    (
        "unknown SKU",
        "/ledger/movements",
        {"type": "receipt", "sku": "NOPE", "lot": "F1", "location": "WH", "quantity": 1, "expires_on": "2027-01-01"},
        404,
    ),
    (
        "negative quantity",
        "/ledger/movements",
        {"type": "issue", "sku": "FORMULA-900G", "lot": "F1", "location": "WH", "quantity": -5},
        422,
    ),
    (
        "fractional quantity",
        "/ledger/movements",
        {"type": "issue", "sku": "FORMULA-900G", "lot": "F1", "location": "WH", "quantity": 1.5},
        422,
    ),
    (
        "quantity as text",
        "/ledger/movements",
        {"type": "issue", "sku": "FORMULA-900G", "lot": "F1", "location": "WH", "quantity": "5"},
        422,
    ),
    (
        "missing quantity",
        "/ledger/movements",
        {"type": "issue", "sku": "FORMULA-900G", "lot": "F1", "location": "WH"},
        422,
    ),
    (
        "unknown location",
        "/ledger/movements",
        {"type": "move", "sku": "FORMULA-900G", "lot": "F1", "location": "WH", "to_location": "MARS", "quantity": 1},
        404,
    ),
    (
        "more than in stock",
        "/ledger/movements",
        {"type": "issue", "sku": "FORMULA-900G", "lot": "F1", "location": "WH", "quantity": 101},
        409,
    ),
    (
        "adjustment with one piece of evidence",
        "/ledger/movements",
        {
            "type": "adjustment",
            "sku": "FORMULA-900G",
            "lot": "F1",
            "location": "WH",
            "quantity": -2,
            "evidence": [{"source": "count", "reference": "C-1"}],
        },
        422,
    ),
    (
        "bad owner address",
        "/ledger/movements",
        {"type": "receipt", "sku": "FORMULA-900G", "lot": "F1", "location": "WH", "quantity": 1, "owner": "0x123"},
        422,
    ),
    ("latitude out of range", "/locations", {"code": "X", "name": "X", "lat": 91, "lon": 120}, 422),
    ("latitude not a number", "/locations", {"code": "X", "name": "X", "lat": "north", "lon": 120}, 422),
    ("coordinates too precise", "/locations", {"code": "X", "name": "X", "lat": "30.1234567", "lon": 120}, 422),
    ("duplicate SKU", "/skus", {"code": "FORMULA-900G", "name": "again"}, 409),
    (
        "a receipt's expiry that is no date",
        "/ledger/movements",
        {
            "type": "receipt",
            "sku": "FORMULA-900G",
            "lot": "F9",
            "location": "WH",
            "quantity": 1,
            "expires_on": "2026-13-45",
        },
        422,
    ),
    (
        "a quantity beyond what a JSON reader holds exactly",
        "/ledger/movements",
        {
            "type": "receipt",
            "sku": "FORMULA-900G",
            "lot": "F7",
            "location": "WH",
            "quantity": 2**53,
            "expires_on": "2027-01-01",
        },
        422,
    ),
    (
        "corrects beyond 2^64",
        "/ledger/movements",
        {
            "type": "adjustment",
            "sku": "FORMULA-900G",
            "lot": "F1",
            "location": "WH",
            "quantity": -1,
            "corrects": 2**64 + 1,
            "evidence": [{"source": "a", "reference": "1"}, {"source": "b", "reference": "2"}],
        },
        422,
    ),
    ("a lot's expiry in year 0", "/lots", {"sku": "FORMULA-900G", "code": "F8", "expires_on": "0000-01-01"}, 422),
    (
        "a request's day that is no date",
        "/negotiation/replenishment",
        {"sku": "FORMULA-900G", "location": "WH", "quantity": 1, "requested_on": "9999-99-99"},
        422,
    ),
    (
        "a check's day that does not exist",
        "/negotiation/replenishment/check",
        {"today": "2026-02-30"},
        422,
    ),
]


def test_bad_input_gets_a_clear_error_and_changes_nothing(nodes: NodeFactory) -> None:
    node = nodes.new("bad-input")
    seed(node)
    before = snapshot(node)
    with node.client() as c:
        locations_before = c.get("/locations").json()
        for label, path, body, status in BAD_REQUESTS:
            r = c.post(path, json=body)
            assert r.status_code == status, (label, r.text)
            err = r.json()
            assert err["error"] and err["message"], label
        assert c.get("/locations").json() == locations_before
        for path in ("/ledger/records", "/audit/records"):  # beyond any seq: a clear 422, never an overflow
            r = c.get(path, params={"after": 2**63})
            assert r.status_code == 422 and r.json()["error"] == "invalid_request", (path, r.text)
    assert snapshot(node) == before


def test_operator_endpoints_need_the_bearer_token(nodes: NodeFactory) -> None:
    node = nodes.new("auth")
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        r = httpx.post(f"{node.url}/skus", json={"code": "A", "name": "A"}, headers=headers)
        assert r.status_code == 401
        assert r.json()["error"] == "unauthorized"
    with node.client() as c:
        assert c.get("/skus").json() == []


def test_movements_keep_three_dimensions_and_consignment_ownership(nodes: NodeFactory) -> None:
    node = nodes.new("pool")
    seed(node)
    consignor = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    with node.client() as c:
        c.post(
            "/ledger/movements",
            json={
                "type": "move",
                "sku": "FORMULA-900G",
                "lot": "F1",
                "location": "WH",
                "to_location": "SHOP",
                "quantity": 30,
            },
        ).raise_for_status()
        c.post(
            "/ledger/movements",
            json={
                "type": "status_change",
                "sku": "FORMULA-900G",
                "lot": "F1",
                "location": "SHOP",
                "quantity": 2,
                "status": "available",
                "to_status": "damaged",
            },
        ).raise_for_status()
        c.post(
            "/ledger/movements",
            json={
                "type": "receipt",
                "sku": "FORMULA-900G",
                "lot": "F2",
                "location": "SHOP",
                "quantity": 12,
                "owner": consignor,
                "expires_on": "2027-06-01",
            },
        ).raise_for_status()
        stock = {(s["location"], s["lot"], s["status"], s["owner"]): s["quantity"] for s in c.get("/stock").json()}
    me = node.address
    assert stock == {
        ("WH", "F1", "available", me): 70,
        ("SHOP", "F1", "available", me): 28,
        ("SHOP", "F1", "damaged", me): 2,
        ("SHOP", "F2", "available", consignor): 12,
    }


def test_records_are_anchored_and_every_proof_folds_to_its_root(nodes: NodeFactory) -> None:
    node = nodes.new("anchored")
    seed(node)
    with node.client() as c:
        for _ in range(5):
            c.post(
                "/ledger/movements",
                json={"type": "issue", "sku": "FORMULA-900G", "lot": "F1", "location": "WH", "quantity": 1},
            ).raise_for_status()
    docs = wait_anchored(node)
    assert [d["record"]["seq"] for d in docs] == list(range(1, 7))
    for d in docs:
        assert fold_proof(bytes.fromhex(d["leaf"]), d["proof"]).hex() == d["root"]
        assert d["anchor"]["contract"] == nodes.deployment.anchors
        assert d["anchor"]["tx_hash"].startswith("0x")
    batches = httpx.get(f"{node.url}/audit/batches").json()
    assert [b["seq"] for b in batches] == list(range(1, len(batches) + 1))
    assert sum(b["leaf_count"] for b in batches) == 6


@pytest.mark.parametrize("since", ["2000-01-01", "2000-01-01T00:00:00Z"])
def test_audit_records_filter_by_time(nodes: NodeFactory, since: str) -> None:
    node = nodes.new(f"time-{len(since)}")
    seed(node)
    assert len(httpx.get(f"{node.url}/audit/records", params={"since": since}).json()["items"]) == 1
    assert httpx.get(f"{node.url}/audit/records", params={"until": since}).json()["items"] == []
    assert httpx.get(f"{node.url}/audit/records", params={"since": "yesterday"}).status_code == 422


def test_an_idle_node_anchors_at_once_then_waits_for_a_full_batch_or_the_interval(nodes: NodeFactory) -> None:
    node = nodes.new("size-trigger", CONSORTIUM_ANCHOR_BATCH_SIZE="3", CONSORTIUM_ANCHOR_INTERVAL_SECONDS="3600")
    seed(node)  # 1 record on a node that anchored nothing for an interval: anchored at once, alone
    (first,) = wait_anchored(node)
    assert first["anchor"]["seq"] == 1 and first["anchor"]["leaf_count"] == 1
    issue = {"type": "issue", "sku": "FORMULA-900G", "lot": "F1", "location": "WH", "quantity": 1}
    with node.client() as c:
        for _ in range(2):
            c.post("/ledger/movements", json=issue).raise_for_status()
        # Below the size trigger and an hour from the last batch: they wait, however often the thread steps.
        time.sleep(1.5)
        assert c.get("/health").json()["anchoring"]["waiting_records"] == 2
        assert [d["status"] for d in httpx.get(f"{node.url}/audit/records").json()["items"]] == [
            "anchored",
            "pending",
            "pending",
        ]
        c.post("/ledger/movements", json=issue).raise_for_status()  # the third fills a batch
    docs = wait_anchored(node)
    assert [d["anchor"]["seq"] for d in docs] == [1, 2, 2, 2] and docs[-1]["anchor"]["leaf_count"] == 3


def test_a_batch_of_movements_is_written_in_order_or_not_at_all(nodes: NodeFactory) -> None:
    node = nodes.new("batch")
    seed(node)  # 100 units of F1 at WH
    issue = {"type": "issue", "sku": "FORMULA-900G", "lot": "F1", "location": "WH", "quantity": 30}
    receipt = {"type": "receipt", "sku": "FORMULA-900G", "lot": "F2", "location": "WH", "quantity": 5,
               "expires_on": "2031-01-01"}  # fmt: skip
    with node.client() as c:
        before = snapshot(node)
        # The fourth would overdraw F1 (4 x 30 > 100): nothing of the batch is kept, and the refusal names it.
        refused = c.post("/ledger/movements/batch", json={"movements": [receipt, issue, issue, issue, issue]})
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"] == "insufficient_stock" and refused.json()["detail"]["index"] == 4
        assert refused.json()["detail"]["shortfall"] == 20
        assert snapshot(node) == before
        unknown = c.post("/ledger/movements/batch", json={"movements": [issue, {**issue, "lot": "NOPE"}]})
        assert unknown.status_code == 404 and unknown.json()["detail"]["index"] == 1
        assert snapshot(node) == before
        assert c.post("/ledger/movements/batch", json={"movements": []}).status_code == 422
        written = c.post("/ledger/movements/batch", json={"movements": [receipt, issue, issue, issue]})
        assert written.status_code == 201, written.text
        records = written.json()["records"]
        assert [r["record"]["type"] for r in records] == ["receipt", "issue", "issue", "issue"]
        assert [r["record"]["seq"] for r in records] == [2, 3, 4, 5]
        stock = {(b["lot"], b["location"]): b["quantity"] for b in c.get("/stock").json()}
        assert stock == {("F1", "WH"): 10, ("F2", "WH"): 5}
    assert len(wait_anchored(node)) == 5


def test_openapi_is_served(nodes: NodeFactory) -> None:
    node = nodes.new("openapi")
    assert httpx.get(f"{node.url}/docs").status_code == 200
    paths = httpx.get(f"{node.url}/openapi.json").json()["paths"]
    assert {"/ledger/movements", "/audit/records", "/stock"} <= set(paths)


def test_concurrent_requests_never_overdraw_stock(nodes: NodeFactory) -> None:
    race_for_stock(nodes.new("race"))


def test_two_workers_on_sqlite_share_the_writes_and_anchor_each_record_once(nodes: NodeFactory) -> None:
    workers_share_writes_and_anchor_once(nodes.new("sqlite-workers", CONSORTIUM_WORKERS="2"), workers=2)


def test_flush_on_a_node_without_anchoring_says_so(nodes: NodeFactory) -> None:
    node = nodes.new("no-anchoring", CONSORTIUM_ANCHOR_ENABLED="false")
    with node.client() as c:
        r = c.post("/anchoring/flush")
    assert r.status_code == 503 and r.json()["error"] == "not_configured"


def test_a_body_nested_100000_deep_never_takes_a_node_down(nodes: NodeFactory) -> None:
    node = nodes.new("deep")
    deep = b"[" * 100_000 + b"]" * 100_000  # 200 kB: it used to overflow the C stack while being parsed
    for path, headers in (("/negotiation/messages", {}), ("/skus", {}), ("/skus", {"Authorization": "Bearer x"})):
        r = httpx.post(f"{node.url}{path}", content=deep, headers={"Content-Type": "application/json", **headers})
        assert r.status_code in (401, 413, 422), (path, r.status_code)
        assert r.json()["error"] in ("unauthorized", "too_large", "too_deep")
    with node.client() as c:
        assert c.post("/skus", content=deep, headers={"Content-Type": "application/json"}).status_code in (413, 422)
        assert c.get("/health").json()["status"] == "ok"
    assert node.process.proc is not None and node.process.proc.poll() is None  # still running
