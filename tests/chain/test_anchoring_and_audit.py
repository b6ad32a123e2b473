"""Anchoring and auditing with the real parts: Anvil, node processes, SQLite files, the CLI."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import httpx
from sqlmodel import select

from chain.anchor_client import AnchorReader, AnchorWriter
from chain.anvil import AnvilProcess
from node.services.anchoring import form_batch, send_batch
from node.store.engine import make_engine, session_scope
from node.store.tables import AnchorBatch
from tests.helpers import consortium, issue, seed, wait_anchored
from tests.helpers.nodes import NodeFactory, until


def test_audit_verify_passes_on_an_honest_node(nodes: NodeFactory) -> None:
    node = nodes.new("honest")
    seed(node)
    issue(node, 4)
    wait_anchored(node)
    result = consortium("audit", "verify", "--rpc", nodes.anvil.rpc_url, "--node", node.url, "--check-paths")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and report["records_verified"] == 5 and report["findings"] == []


def test_record_edited_in_the_database_after_anchoring_is_caught(nodes: NodeFactory) -> None:
    node = nodes.new("tampered")
    seed(node)
    issue(node, 3)
    wait_anchored(node)
    with sqlite3.connect(node.db_path) as db:
        body = db.execute("SELECT body FROM record WHERE seq = 3").fetchone()[0]
        db.execute("UPDATE record SET body = ? WHERE seq = 3", (body.replace('"quantity":-1', '"quantity":-9'),))
    result = consortium("audit", "verify", "--rpc", nodes.anvil.rpc_url, "--node", node.url)
    assert result.returncode == 1
    assert "record 3" in result.stderr
    report = json.loads(result.stdout)
    assert not report["ok"]
    assert {f["record_seq"] for f in report["findings"] if f["record_seq"]} == {3}


def test_record_deleted_after_anchoring_is_caught(nodes: NodeFactory) -> None:
    node = nodes.new("deleted")
    seed(node)
    issue(node, 3)
    wait_anchored(node)
    with sqlite3.connect(node.db_path) as db:
        db.execute("DELETE FROM recordproof WHERE record_id = (SELECT id FROM record WHERE seq = 2)")
        db.execute("DELETE FROM record WHERE seq = 2")
    result = consortium("audit", "verify", "--rpc", nodes.anvil.rpc_url, "--node", node.url)
    assert result.returncode == 1
    assert "record sequence gap" in result.stderr


def test_export_then_verify_offline_and_a_forged_export_fails(nodes: NodeFactory, tmp_path: Path) -> None:
    node = nodes.new("exported")
    seed(node)
    issue(node, 2)
    wait_anchored(node)
    export = tmp_path / "export.jsonl"
    assert consortium("audit", "export", "--node", node.url, "--out", str(export)).returncode == 0
    ok = consortium(
        "audit", "verify", "--rpc", nodes.anvil.rpc_url, "--export", str(export), "--contract", nodes.deployment.anchors
    )
    assert ok.returncode == 0, ok.stderr
    lines = export.read_text().splitlines()
    batch = json.loads(lines[1])
    batch["records"][0]["lines"][0]["quantity"] += 1
    lines[1] = json.dumps(batch)
    forged = tmp_path / "forged.jsonl"
    forged.write_text("\n".join(lines) + "\n")
    bad = consortium(
        "audit", "verify", "--rpc", nodes.anvil.rpc_url, "--export", str(forged), "--contract", nodes.deployment.anchors
    )
    assert bad.returncode == 1
    assert "root recomputed from the records" in bad.stderr


def test_replay_rebuilds_balances_as_of_a_moment(nodes: NodeFactory) -> None:
    node = nodes.new("replayed")
    seed(node)
    wait_anchored(node)
    time.sleep(0.05)
    moment = httpx.get(f"{node.url}/audit/records").json()["items"][-1]["record"]["at"]
    issue(node, 7)
    wait_anchored(node)
    before = consortium(
        "audit", "replay", "--rpc", nodes.anvil.rpc_url, "--node", node.url, "--until", moment, "--sku", "FORMULA-900G"
    )
    now = consortium(
        "audit",
        "replay",
        "--rpc",
        nodes.anvil.rpc_url,
        "--node",
        node.url,
        "--until",
        "2999-01-01",
        "--sku",
        "FORMULA-900G",
    )
    assert before.returncode == 0 and now.returncode == 0, before.stderr + now.stderr
    assert [b["quantity"] for b in json.loads(before.stdout)["balances"]] == [100]
    replayed = json.loads(now.stdout)
    assert [b["quantity"] for b in replayed["balances"]] == [93]
    assert [t["balance"] for t in replayed["trace"]] == [100, 99, 98, 97, 96, 95, 94, 93]


def test_chain_outage_loses_nothing_and_anchors_nothing_twice(nodes: NodeFactory) -> None:
    node = nodes.new("outage")
    seed(node)
    wait_anchored(node)
    nodes.anvil.stop()
    try:
        issue(node, 6)  # the node keeps taking records while the chain is down
        time.sleep(1.0)
        docs = httpx.get(f"{node.url}/audit/records").json()["items"]
        assert [d["status"] for d in docs] == ["anchored"] + ["pending"] * 6
        assert httpx.get(f"{node.url}/health").json()["anchoring"]["last_error"]
    finally:
        nodes.anvil.start()
    docs = wait_anchored(node)
    assert len(docs) == 7
    reader = AnchorReader(nodes.anvil.rpc_url, nodes.deployment.anchors)
    events = reader.anchored_events(node.address, "ledger")
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert sum(e.leaf_count for e in events) == 7


def test_node_restart_with_records_pending_anchors_them(nodes: NodeFactory) -> None:
    node = nodes.new("restarted")
    seed(node)
    wait_anchored(node)
    nodes.anvil.stop()
    try:
        issue(node, 3)
        node.process.kill()  # a crash while records wait for the chain
    finally:
        nodes.anvil.start()
    node.process.start()
    docs = wait_anchored(node)
    assert [d["record"]["seq"] for d in docs] == [1, 2, 3, 4]
    result = consortium("audit", "verify", "--rpc", nodes.anvil.rpc_url, "--node", node.url)
    assert result.returncode == 0, result.stderr


def test_crash_after_sending_before_recording_does_not_anchor_twice(nodes: NodeFactory) -> None:
    node = nodes.new("crash-after-send", CONSORTIUM_ANCHOR_ENABLED="false")
    seed(node)
    issue(node, 2)
    node.process.stop()
    engine = make_engine(f"sqlite:///{node.db_path}")
    writer = AnchorWriter(nodes.anvil.rpc_url, nodes.deployment.anchors, node.key)
    batch = form_batch(engine, "ledger", 1000)
    assert batch is not None
    # The transaction goes out, then the node "dies" before writing the receipt down.
    writer.anchor("ledger", batch.seq, bytes.fromhex(batch.root), bytes.fromhex(batch.prev_root), batch.leaf_count)
    recorded = send_batch(engine, writer, batch)
    assert recorded.status == "anchored" and recorded.tx_hash
    assert writer.last_seq(writer.member, "ledger") == 1
    assert len(writer.anchored_events(writer.member, "ledger")) == 1
    with session_scope(engine) as s:
        assert [b.status for b in s.exec(select(AnchorBatch)).all()] == ["anchored"]


def test_anvil_restart_keeps_state(anvil: AnvilProcess, nodes: NodeFactory) -> None:
    node = nodes.new("persisted")
    seed(node)
    wait_anchored(node)
    anvil.stop()
    anvil.start()
    reader = AnchorReader(anvil.rpc_url, nodes.deployment.anchors)
    assert reader.last_seq(node.address, "ledger") >= 1


def test_an_edited_balance_is_named_by_the_audit_and_by_the_node_at_start(nodes: NodeFactory) -> None:
    node = nodes.new("edited-balance")
    seed(node)
    issue(node, 2)
    wait_anchored(node)
    assert consortium("audit", "verify", "--rpc", nodes.anvil.rpc_url, "--node", node.url).returncode == 0
    # Behind the node's back: the projection says 5 more than the records add up to. No record changed.
    with sqlite3.connect(node.db_path) as db:
        db.execute("UPDATE stockbalance SET quantity = quantity + 5 WHERE lot = 'F1' AND location = 'WH'")
    result = consortium("audit", "verify", "--rpc", nodes.anvil.rpc_url, "--node", node.url)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "balance FORMULA-900G/F1/WH" in result.stderr and "add up to 98, the node shows 103" in result.stderr

    node.process.stop()
    node.process.start()
    health = until(lambda: (h := httpx.get(f"{node.url}/health").json())["projection"]["checked"] and h)
    assert health["status"] == "degraded"
    [difference] = health["projection"]["differences"]
    assert "FORMULA-900G/F1/WH" in difference and "the node shows 103" in difference
