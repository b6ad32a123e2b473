"""Helpers the chain tests share: set-ups over a node's HTTP API and waits on what it makes visible."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.helpers.nodes import HANGZHOU, XIAOSHAN, NodeFactory, RunningNode, soon, stock_up, until


def consortium(*args: str) -> subprocess.CompletedProcess[str]:
    """The `consortium` command line, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "node", *args], capture_output=True, text=True, timeout=120)


def seed(node: RunningNode) -> None:
    """One SKU, a warehouse and a shop, and 100 units of lot F1 received at the warehouse."""
    with node.client() as c:
        assert c.post("/skus", json={"code": "FORMULA-900G", "name": "Infant formula"}).status_code == 201
        assert (
            c.post("/locations", json={"code": "WH", "name": "Warehouse", "lat": 30.259, "lon": "120.13"}).status_code
            == 201
        )
        assert (
            c.post("/locations", json={"code": "SHOP", "name": "Shop", "lat": 30.26, "lon": 120.131}).status_code == 201
        )
        r = c.post(
            "/ledger/movements",
            json={
                "type": "receipt",
                "sku": "FORMULA-900G",
                "lot": "F1",
                "location": "WH",
                "quantity": 100,
                "expires_on": "2027-12-01",
            },
        )
        assert r.status_code == 201, r.text


def issue(node: RunningNode, n: int) -> None:
    with node.client() as c:
        for _ in range(n):
            r = c.post(
                "/ledger/movements",
                json={"type": "issue", "sku": "FORMULA-900G", "lot": "F1", "location": "WH", "quantity": 1},
            )
            assert r.status_code == 201, r.text


def snapshot(node: RunningNode) -> tuple[Any, Any]:
    with node.client() as c:
        return c.get("/ledger/records", params={"limit": 5000}).json(), c.get("/stock").json()


def wait_anchored(node: RunningNode, timeout: float = 20.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        docs = httpx.get(f"{node.url}/audit/records", params={"limit": 10000}).json()["items"]
        if docs and all(d["status"] == "anchored" for d in docs):
            return list(docs)
        time.sleep(0.1)
    raise AssertionError(f"records not anchored within {timeout}s")


def stock(node: RunningNode, **filters: str) -> dict[tuple[str, str], int]:
    with node.client() as c:
        return {(b["lot"], b["status"]): b["quantity"] for b in c.get("/stock", params=filters).json()}


def transfers(node: RunningNode, status: str | None = None) -> list[dict[str, Any]]:
    with node.client() as c:
        return list(c.get("/negotiation/transfers", params={"status": status} if status else {}).json())


def pair_with_an_offer(
    nodes: NodeFactory,
    tag: str,
    requester_prices: dict[str, int] | None = None,
    supplier_prices: dict[str, int] | None = None,
    **invitation: Any,
) -> tuple[RunningNode, RunningNode]:
    """Hangzhou invites 30 units; Xiaoshan (50 in stock) offers them. Returns (requester, supplier)."""
    hz = nodes.new(f"hz-{tag}", lat_e6=HANGZHOU[0], lon_e6=HANGZHOU[1])
    xs = nodes.new(f"xs-{tag}", lat_e6=XIAOSHAN[0], lon_e6=XIAOSHAN[1])
    stock_up(hz, [], requester_prices)
    stock_up(xs, [("X1", soon(400), 50)], supplier_prices)
    body = {"sku": "FORMULA-900G", "quantity": 30, "needed_by": soon(2), **invitation}
    with hz.client() as c:
        c.post("/negotiation/invitations", json=body).raise_for_status()
    until(lambda: hz.client().get("/negotiation/offers").json())
    return hz, xs


def race_for_stock(node: RunningNode, stock: int = 100, requests: int = 140, receipts: int = 40) -> None:
    """Concurrent writers: issues against one bucket (exactly `stock` succeed, none overdraws) mixed with
    receipts into new buckets (all succeed); record seqs stay gapless."""
    seed(node)  # 100 units of FORMULA-900G lot F1 at WH

    def write(i: int) -> tuple[str, int]:
        if i % 4 == 0 and i // 4 < receipts:
            body = {
                "type": "receipt",
                "sku": "FORMULA-900G",
                "lot": f"R{i}",
                "location": "SHOP",
                "quantity": 1,
                "expires_on": "2028-01-01",
            }
        else:
            body = {"type": "issue", "sku": "FORMULA-900G", "lot": "F1", "location": "WH", "quantity": 1}
        with node.client() as c:
            return body["type"], c.post("/ledger/movements", json=body).status_code  # type: ignore[return-value]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(write, range(requests + receipts)))
    issues = [code for kind, code in results if kind == "issue"]
    assert [code for kind, code in results if kind == "receipt"] == [201] * receipts
    assert issues.count(201) == stock and issues.count(409) == len(issues) - stock
    records, balances = snapshot(node)
    assert [r["record"]["seq"] for r in records] == list(range(1, stock + receipts + 2))
    assert {(b["location"], b["quantity"]) for b in balances} == {("SHOP", 1)}
    assert len(balances) == receipts


def workers_share_writes_and_anchor_once(node: RunningNode, workers: int) -> None:
    """A node served by several worker processes: concurrent writes keep every promise (race_for_stock), every
    record is anchored exactly once in gapless batches, and one worker alone ran the background work."""
    race_for_stock(node)
    docs = wait_anchored(node)
    assert len(docs) == 141  # the seed's receipt, 100 issues, 40 receipts
    batches = httpx.get(f"{node.url}/audit/batches").json()
    assert [b["seq"] for b in batches] == list(range(1, len(batches) + 1))
    assert sum(b["leaf_count"] for b in batches) == len(docs)
    log = node.process.log_path.read_text()
    assert log.count(f"node {node.process.name} started") == workers
    assert log.count("runs the node's background work") == 1
    result = consortium("audit", "verify", "--rpc", node.process.env["CONSORTIUM_RPC_URL"], "--node", node.url)
    assert result.returncode == 0, result.stdout + result.stderr
