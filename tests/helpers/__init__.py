"""Helpers the chain tests share: set-ups over a node's HTTP API and waits on what it makes visible."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.helpers.nodes import HANGZHOU, SHAOXING, XIAOSHAN, NodeFactory, RunningNode, soon, stock_up, until


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


def statement_row(node: RunningNode, statement: str) -> dict[str, Any] | None:
    """The statement as the node's list shows it (its status and this member's approval), from its first
    `verifying` on: GET /settlement/statements/{id} serves only statements the node has computed."""
    rows = httpx.get(f"{node.url}/settlement/statements").json()
    return next((r for r in rows if r["id"] == statement), None)


def statement_status(node: RunningNode, statement: str) -> str | None:
    row = statement_row(node, statement)
    return None if row is None else str(row["status"])


def approve_statement(node: RunningNode, statement: str, timeout: float = 60) -> dict[str, Any]:
    """The node's operator approves the statement once the node has recomputed it and awaits its approval."""
    until(lambda: statement_status(node, statement) == "awaiting_approval", timeout=timeout)
    with node.client() as c:
        r = c.post(f"/settlement/statements/{statement}/approve")
    assert r.status_code == 200, r.text
    return dict(r.json())


def approve_everywhere(members: list[RunningNode], statement: str) -> None:
    """Every member's operator approves the statement (closing a period is not approving it)."""
    for node in members:
        approve_statement(node, statement)


STORE_SALE_PRICE = 5980
DEALER_PURCHASE_PRICE = 4650


def closing_period() -> dict[str, str]:
    """The period the settlement tests close: yesterday and today, as the clock reads now (a period that ends
    after today is refused; one that ends today covers what a suite wrote either side of midnight UTC)."""
    today = datetime.now(UTC).date()
    return {"from": (today - timedelta(days=1)).isoformat(), "to": today.isoformat()}


def moved(
    nodes: NodeFactory,
    tag: str,
    suppliers: int = 2,
    need: int = 120,
    requester_env: dict[str, str] | None = None,
    before_anchoring: Callable[[RunningNode], None] | None = None,
    receive: bool = True,
) -> list[RunningNode]:
    """A period to settle: Hangzhou needs 120; Xiaoshan (and Shaoxing) offer; the plan runs, everything arrives;
    all anchored. Returns [requester, supplier(s)]."""
    hz = nodes.new(f"hz-{tag}", lat_e6=HANGZHOU[0], lon_e6=HANGZHOU[1], **(requester_env or {}))
    others = [nodes.new(f"xs-{tag}", lat_e6=XIAOSHAN[0], lon_e6=XIAOSHAN[1])]
    if suppliers > 1:
        others.append(nodes.new(f"sx-{tag}", lat_e6=SHAOXING[0], lon_e6=SHAOXING[1]))
    # Real prices: the store sells at 59.80; the dealers paid 46.50 for what they sell on at 52.00.
    stock_up(hz, [], {"sale_price": STORE_SALE_PRICE})
    if before_anchoring is not None:  # a first batch now: the next records wait for the anchoring interval
        with hz.client() as c:
            receipt = {"type": "receipt", "sku": "FORMULA-900G", "lot": "Z1", "location": "WH", "quantity": 1}
            c.post("/ledger/movements", json={**receipt, "expires_on": soon(300)}).raise_for_status()
        wait_anchored(hz)
    for node, lot in zip(others, ("X1", "S1"), strict=False):
        stock_up(node, [(lot, soon(300), 80)], {"purchase_price": DEALER_PURCHASE_PRICE})
    with hz.client() as c:
        body = {"sku": "FORMULA-900G", "quantity": need, "needed_by": soon(3), "min_shelf_life_days": 90}
        assert c.post("/negotiation/invitations", json=body).status_code == 201
    until(lambda: len(hz.client().get("/negotiation/offers").json()) == len(others))
    with hz.client() as c:
        assert c.post("/negotiation/plan").status_code == 200
    expected = len(others) if need > 80 else 1  # each supplier offers 80: one is enough for 80 or fewer
    shipped = until(lambda: t if len(t := transfers(hz, "shipped")) == expected else [])
    if receive:
        receive_all(hz, others, shipped)
    if before_anchoring is not None:
        before_anchoring(hz)
    anchor_all([hz, *others])
    return [hz, *others]


def receive_all(hz: RunningNode, suppliers: list[RunningNode], shipped: list[dict[str, Any]]) -> None:
    """The requester counts in everything shipped; each supplier's side of the transfer settles."""
    with hz.client() as c:
        for t in shipped:
            r = c.post(f"/negotiation/transfers/{t['id']}/receive", json={"quantity": t["shipped"], "location": "WH"})
            assert r.status_code == 200, r.text
    until(lambda: sum(len(transfers(n, "settled")) for n in suppliers) == len(shipped))


def anchor_all(members: list[RunningNode]) -> None:
    for node in members:
        with node.client() as c:
            c.post("/anchoring/flush")
        wait_anchored(node)


def statement_on(node: RunningNode, sid: str) -> dict[str, Any] | None:
    """The statement as the node computed it, with its life cycle there; None before it has computed it."""
    r = httpx.get(f"{node.url}/settlement/statements/{sid}")
    return r.json() if r.status_code == 200 else None


def final_on_all(members: list[RunningNode], statement: str) -> list[dict[str, Any]]:
    """The statement as each member's node serves it once it is final on all of them; [] before."""
    docs = [statement_on(n, statement) for n in members]
    final = [d for d in docs if d is not None and d["status"] == "final"]
    return final if len(final) == len(members) else []


def settlement_records(node: RunningNode) -> list[dict[str, Any]]:
    """The node's `settlement` records (its final statements) as its audit pages serve them."""
    return list(httpx.get(f"{node.url}/audit/records", params={"kind": "settlement"}).json()["items"])
