"""`consortium up` (what `make run` starts): Anvil, contracts, 3 partner nodes with demo data; resumable."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account

from chain.anvil import DEFAULT_PRIVATE_KEYS
from chain.registry_client import MemberRegistryClient, Role
from tests.helpers.up import read_until, start, stop, wait_up


def ledger_counts(manifest: dict[str, Any]) -> dict[str, int]:
    counts = {}
    auditor = {"Authorization": f"Bearer {manifest['audit_token']}"}
    for n in manifest["nodes"]:
        docs = httpx.get(f"{n['url']}/audit/records", params={"limit": 10000}, headers=auditor).json()["items"]
        counts[n["name"]] = len(docs)
    return counts


def test_up_starts_three_anchored_partners_and_resumes_the_same_state(tmp_path: Path) -> None:
    proc = start(tmp_path)
    try:
        banner = wait_up(proc)
        manifest = json.loads((tmp_path / "consortium.json").read_text())
        assert len(manifest["nodes"]) == 3 and manifest["chain_id"] == 31337
        assert manifest["rpc_url"] in banner
        # No publicly known secret: fresh keys (none of Anvil's), files only their owner reads, audit behind a token.
        keys = json.loads((tmp_path / "keys.json").read_text())
        public = {Account.from_key(k).address for k in DEFAULT_PRIVATE_KEYS}
        assert not public & {Account.from_key(k).address for k in keys.values()}
        assert manifest["headquarters"] == Account.from_key(keys["admin"]).address
        for secret in ("keys.json", "consortium.json"):
            assert stat.S_IMODE((tmp_path / secret).stat().st_mode) == 0o600, secret
        assert httpx.get(f"{manifest['nodes'][0]['url']}/audit/records").status_code == 401
        registry = MemberRegistryClient(manifest["rpc_url"], manifest["registry"])
        on_chain = {m.address: m for m in registry.members()}
        for n in manifest["nodes"]:
            assert on_chain[n["address"]].node_url == n["url"] and on_chain[n["address"]].active
            stock = httpx.get(f"{n['url']}/stock", headers={"Authorization": f"Bearer {n['api_token']}"}).json()
            assert sum(s["quantity"] for s in stock) > 0
            verify = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "node",
                    "audit",
                    "verify",
                    "--rpc",
                    manifest["rpc_url"],
                    "--node",
                    n["url"],
                    "--token",
                    manifest["audit_token"],
                ],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert verify.returncode == 0, verify.stderr
        # Headquarters runs a node of its own: the registry's HQ member, signing with the admin key.
        hq = manifest["headquarters_node"]
        assert hq["address"] == manifest["headquarters"] and on_chain[hq["address"]].role == Role.HEADQUARTERS
        assert on_chain[hq["address"]].node_url == hq["url"] and on_chain[hq["address"]].active
        assert httpx.get(f"{hq['url']}/health").json()["address"] == manifest["headquarters"]
        # The demo's dealings between members: the distributor's joint purchase, accepted by both stores'
        # nodes, and the store's loan of two stroller wheels from the dealer, one given back.
        store, dealer, distributor = manifest["nodes"]
        op = {"Authorization": f"Bearer {store['api_token']}"}
        (bought,) = httpx.get(f"{store['url']}/joint-purchases", headers=op).json()
        assert bought["buyer"] == distributor["address"]
        assert [(s["share"], s["status"]) for s in bought["shares"]] == [(200_000, "accepted")]
        (lent,) = httpx.get(f"{store['url']}/loans", headers=op).json()
        assert (lent["lender"], lent["status"], lent["quantity"], lent["returned"]) == (dealer["address"], "lent", 2, 1)
        # The demo's master data carries the prices transfers are valued from (node/demo/pool.yaml).
        formula = next(k for k in httpx.get(f"{store['url']}/skus", headers=op).json() if k["code"] == "FORMULA-900G")
        assert (formula["purchase_price"], formula["sale_price"]) == (19650, 24800)
        counts = ledger_counts(manifest)
    finally:
        out = stop(proc)
    assert "stopped" in out
    proc = start(tmp_path)
    try:
        wait_up(proc)
        manifest = json.loads((tmp_path / "consortium.json").read_text())
        assert ledger_counts(manifest) == counts  # same state, demo data not loaded twice
        active = httpx.get(f"{manifest['nodes'][0]['url']}/rules/active").json()
        assert active["version"] == manifest["rule_book"]  # the demo rule book is in force
    finally:
        stop(proc)

    # State from an older version (no rule registry in its manifest): set aside, never deleted, and a
    # new consortium starts in its place.
    manifest.pop("rule_registry")
    (tmp_path / "consortium.json").write_text(json.dumps(manifest))
    proc = start(tmp_path)
    try:
        out = wait_up(proc)
        assert "moved the state of hangzhou-store aside" in out
        assert [p.name for p in tmp_path.glob("hangzhou-store.stale-*")]
        fresh = json.loads((tmp_path / "consortium.json").read_text())
        assert fresh["rule_registry"] and fresh["registry"] != manifest["registry"]
        assert all(httpx.get(f"{n['url']}/health").json()["status"] == "ok" for n in fresh["nodes"])
    finally:
        stop(proc)


def test_up_shows_progress_and_restarts_a_node_or_anvil_that_died(tmp_path: Path) -> None:
    proc = start(tmp_path)
    try:
        banner = wait_up(proc)
        for step in ("starting Anvil", "deploying the contracts", "starting node hangzhou-store", "loading demo"):
            assert step in banner
        manifest = json.loads((tmp_path / "consortium.json").read_text())
        first = manifest["nodes"][0]
        os.kill(int((tmp_path / f"{first['name']}.pid").read_text()), signal.SIGKILL)
        said = read_until(proc, f"{first['name']} is back at {first['url']}")
        assert f"{first['name']} exited (code -9); restarting in 1 s" in said
        assert httpx.get(f"{first['url']}/health").json()["status"] == "ok"

        os.kill(int((tmp_path / "anvil.pid").read_text()), signal.SIGKILL)
        said = read_until(proc, f"anvil is back at {manifest['rpc_url']}")
        assert "anvil exited (code -9)" in said
        head = httpx.post(manifest["rpc_url"], json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber"})
        assert int(head.json()["result"], 16) > 0  # the chain came back with its state
    finally:
        stop(proc)


def readme_block(heading: str) -> str:
    """The first ```sh block under a README heading, as a new user would paste it."""
    return readme_blocks(heading)[0]


def readme_blocks(heading: str) -> list[str]:
    """Every ```sh block under a README heading (up to the next heading of its level), in order."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return [part.split("```", 1)[0] for part in section.split("```sh\n")[1:]]


def json_documents(out: str) -> list[Any]:
    """The JSON documents a run printed one after another (one a line, or pretty-printed over several)."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while (at := _next_document(out, at)) < len(out):
        document, at = decoder.raw_decode(out, at)
        found.append(document)
    return found


def _next_document(out: str, at: int) -> int:
    starts = [i for i in (out.find("{", at), out.find("[", at)) if i >= 0]
    return min(starts) if starts else len(out)


def _store_pays_no_more_than_the_packs_are_worth(doc: dict[str, Any], store: str) -> None:
    """Story 1's transfer in the statement: the packs are worth the book's emergency-order price to the store
    (below its sale price); all flows of the transfer included, it pays no more than that, and the split is
    half of the real gain."""
    (line,) = doc["transfers"]
    assert line["unit_value"] == 9200 and line["cost_basis"] == 7600 and line["unit_price"] == 8900
    assert line["gain"] == line["units"] * (9200 - 7600) - line["freight"] > 0
    own = [f for f in doc["flows"] if f["reference"] == line["acceptance"]]
    paid = sum(f["amount"] for f in own if f["from"] == store) - sum(f["amount"] for f in own if f["to"] == store)
    assert paid == line["units"] * 7600 + line["freight"] + line["supplier_gain"]
    assert paid <= line["units"] * 9200 < line["units"] * 9900
    assert {f["kind"] for f in own} == {"transfer_price", "freight_compensation", "profit_split"}


def test_the_readme_story_one_block_pasted_in_one_go_does_what_it_says(tmp_path: Path) -> None:
    proc = start(tmp_path / ".consortium")
    try:
        wait_up(proc)
        script = readme_block("Story 1 on the demo consortium")
        # Pasted in one go into a shell whose working directory holds `.consortium/`, as after `make run`.
        run = subprocess.run(["bash", "-eu", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        manifest = json.loads((tmp_path / ".consortium" / "consortium.json").read_text())
        hz, xs = manifest["nodes"][0], manifest["nodes"][1]
        auth = {"Authorization": f"Bearer {hz['api_token']}"}
        moves = httpx.get(f"{hz['url']}/ledger/records", params={"type": "move"}, headers=auth).json()
        moved = sum(r["record"]["lines"][1]["quantity"] for r in moves if r["record"]["memo"].startswith("own stock"))
        assert moved == 497  # what the store's own warehouse held went to the shop first
        transfers = httpx.get(f"{hz['url']}/negotiation/transfers", headers=auth).json()
        assert [(t["supplier"], t["status"]) for t in transfers] == [(xs["address"], "received")]
        assert sum(t["received"] for t in transfers) == 600 - 497  # partners were asked for the rest only
        shop = httpx.get(f"{hz['url']}/stock", params={"sku": "DIAPER-L-60", "location": "SHOP"}, headers=auth).json()
        assert sum(b["quantity"] for b in shop) == 600  # everything the store asked for is on its shop floor
        requests = httpx.get(f"{hz['url']}/negotiation/replenishment", headers=auth).json()
        assert {r["status"] for r in requests} == {"fulfilled"}
        # Every command answered with JSON, one document a line (the receipt last).
        answers = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
        assert answers[-1]["received"] == 600 - 497

        # The next block, pasted in the same shell (its variables and `c` from story 1's first lines).
        (tmp_path / ".venv").symlink_to(sys.prefix)  # the checkout's .venv, as the blocks run it
        settle = "\n".join(script.splitlines()[:2]) + "\n" + readme_block("Settling the day")
        run = subprocess.run(["bash", "-eu", "-c", settle], cwd=tmp_path, capture_output=True, text=True, timeout=180)
        assert run.returncode == 0, run.stderr
        waiting, summary, ahead, again, withdrawn = json_documents(run.stdout)
        members = {n["address"] for n in manifest["nodes"]} | {manifest["headquarters"]}
        assert waiting == {"status": "awaiting_approval"}  # closing is not approving
        assert summary["status"] == "final" and set(summary["signed"]) == members  # headquarters' node too
        assert ahead == {"error": "invalid_request"}  # a period ending tomorrow
        assert again == {"after": [again["after"][0]], "transfers": 0, "flows": 0}  # nothing settled twice
        assert withdrawn == {"status": "withdrawn"}
        report = run.stdout
        assert "200000" not in report and ": final" in report
        # What the demo loaded between members is owed too, as the README says, as money.
        assert "joint_purchase_share" in report and "CNY 2,000.00" in report and "CNY 2.50" in report
        found = re.search(r"^Statement (0x[0-9a-f]{64}) ", report, re.M)
        assert found is not None, report
        doc = httpx.get(f"{hz['url']}/settlement/statements/{found.group(1)}", headers=auth).json()
        _store_pays_no_more_than_the_packs_are_worth(doc, hz["address"])

        # The rule books block, in the same shell: the change comes into force on every node.
        rules = "\n".join(script.splitlines()[:2]) + "\n" + readme_block("Rule books")
        run = subprocess.run(["bash", "-eu", "-c", rules], cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        lines = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
        checked, tried, tried_on_db, *approvals = lines[:6]
        assert checked["label"] == "2026.11-2" and checked["conflicts"] == []
        assert tried["records_replayed"] > 0 and tried_on_db["records_replayed"] > 0  # today's history
        assert [a["version"] for a in approvals] == [checked["version"]] * 3
        assert [a["activates_at_block"] is None for a in approvals] == [True, True, False]
        assert approvals[2]["activates_at_block"] == approvals[2]["approved_at_block"] + 2  # the demo's delay
        running = lines[6 : 6 + len(manifest["nodes"]) + 1]  # every partner's node, then headquarters'
        in_force = {"version": checked["version"], "label": "2026.11-2"}
        assert [{k: a[k] for k in in_force} for a in running] == [in_force] * len(running)
        assert {a["in_force_since_block"] for a in running} == {approvals[2]["activates_at_block"]}
        assert all(a["block"] >= a["in_force_since_block"] for a in running)
        history = {line["version"]: line for line in lines[6 + len(running) :]}
        assert history[checked["version"]]["file"] == "proposed.yaml"
        assert len(history[checked["version"]]["approvals"]) == 3

        # The auditing blocks, in the same shell, with `set -u`: each command exits 0 on the demo's history.
        (tmp_path / "docs").symlink_to(Path(__file__).resolve().parents[2] / "docs")  # as in the checkout
        audit, rerun = readme_blocks("Auditing")
        run = subprocess.run(["bash", "-eu", "-c", audit], cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        verified = [d for d in json_documents(run.stdout) if isinstance(d, dict) and "records_verified" in d]
        assert len(verified) == 2 and all(d["ok"] and d["records_verified"] > 0 for d in verified)  # node, export
        assert (tmp_path / "hz.jsonl").stat().st_size > 0
        run = subprocess.run(
            ["bash", "-eu", "-c", audit + rerun], cwd=tmp_path, capture_output=True, text=True, timeout=300
        )
        assert run.returncode == 0, run.stderr
        plan = json_documents(run.stdout)[-1]
        assert sum(a["quantity"] for a in plan["allocations"]) == 120  # docs/matching.md: 120 of 200 tins
    finally:
        stop(proc)
