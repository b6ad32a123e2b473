"""`consortium up` (what `make run` starts): Anvil, contracts, 3 partner nodes with demo data; resumable."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from chain.registry_client import MemberRegistryClient


def start(data_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "node", "up", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def wait_up(proc: subprocess.Popen[str], timeout: float = 90) -> str:
    assert proc.stdout is not None
    out = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        out.append(line)
        if line.startswith("Try:"):
            return "".join(out)
    proc.kill()
    raise AssertionError("consortium did not come up:\n" + "".join(out))


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    return out


def ledger_counts(manifest: dict[str, Any]) -> dict[str, int]:
    counts = {}
    for n in manifest["nodes"]:
        docs = httpx.get(f"{n['url']}/audit/records", params={"limit": 10000}).json()["items"]
        counts[n["name"]] = len(docs)
    return counts


def test_up_starts_three_anchored_partners_and_resumes_the_same_state(tmp_path: Path) -> None:
    proc = start(tmp_path)
    try:
        banner = wait_up(proc)
        manifest = json.loads((tmp_path / "consortium.json").read_text())
        assert len(manifest["nodes"]) == 3 and manifest["chain_id"] == 31337
        assert manifest["rpc_url"] in banner
        registry = MemberRegistryClient(manifest["rpc_url"], manifest["registry"])
        on_chain = {m.address: m for m in registry.members()}
        for n in manifest["nodes"]:
            assert on_chain[n["address"]].node_url == n["url"] and on_chain[n["address"]].active
            stock = httpx.get(f"{n['url']}/stock", headers={"Authorization": f"Bearer {n['api_token']}"}).json()
            assert sum(s["quantity"] for s in stock) > 0
            verify = subprocess.run(
                [sys.executable, "-m", "node", "audit", "verify", "--rpc", manifest["rpc_url"], "--node", n["url"]],
                capture_output=True, text=True, timeout=60,
            )
            assert verify.returncode == 0, verify.stderr
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
