"""A full audit of 1M anchored records from an export file, against a real Anvil.

Records are synthetic ledger issues/receipts of the documented shape, anchored in batches of 100k
(10 transactions); the audit recomputes every leaf and every batch root and compares with the events.

Each way of auditing runs in a fresh process, one after the other on the same export and chain, so that its
peak RSS is its own and every figure stands beside the others measured in the same run:

- `floor`: parse + hash + Merkle root of every batch, one process, no checks, no chain: what one core cannot
  go below with orjson and hashlib;
- `whole`: `read_export` (the whole file into memory) then `audit_source`, as `audit replay` still reads it;
- `stream`: `digest_export` then `audit_digest` (`audit_export`), once with one worker process and once with
  one per core.

`python -m bench.bench_audit [records] [batch]`; run() takes the sizes too (tests/chain runs it tiny).
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
from eth_account import Account

from bench.chainkit import bench_chain
from bench.common import machine
from chain.anchor_client import AnchorWriter
from chain.audit import AuditInput, BatchClaim
from chain.auditor import Source, write_export
from chain.canonical import LEAF_PREFIX, leaf_hash
from chain.merkle import merkle_root

ROOT = Path(__file__).resolve().parent.parent
MODES = ("floor", "whole", "stream")


def synthetic_records(node: str, n: int, first: int = 1) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for seq in range(first, first + n):
        out.append(
            {
                "kind": "ledger",
                "node": node,
                "seq": seq,
                "type": "receipt" if seq % 2 else "issue",
                "at": f"2026-11-{1 + seq // 100_000:02d}T00:00:00.{seq % 1_000_000:06d}Z",
                "lines": [
                    {
                        "sku": f"SKU-{seq % 977}",
                        "lot": f"L{seq % 31}",
                        "location": "WH",
                        "owner": node,
                        "holder": node,
                        "status": "available",
                        "quantity": 5 if seq % 2 else -5,
                    }
                ],
                "evidence": [],
                "memo": "",
                "corrects": None,
            }
        )
    return out


def _rss_mb(who: int) -> float:
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)  # KiB on Linux


def _cpu_s() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _tree_rss_mb(pid: int) -> float:
    """Resident memory of process `pid` and its children (the auditor's workers), summed: pages a forked
    worker shares with its parent count twice, so this is an upper bound. 0 where /proc is missing."""
    pids = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                pids += [int(p) for p in f.read().split()]
    except OSError:
        pass
    kib = 0
    for one in pids:
        try:
            with open(f"/proc/{one}/status") as f:
                kib += next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
        except OSError:  # a worker that just exited
            pass
    return kib / 1024


def _reset_peak_rss() -> bool:
    """Start the high-water mark afresh (Linux), so that imports (web3 alone peaks above 170 MB) do not hide
    what the audit itself needs."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _export_lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        f.readline()  # the header
        yield from f


def floor(path: Path) -> int:
    """Parse + leaf hash + Merkle root of every batch line, nothing else: the single-core floor of an audit."""
    sha, dumps, sort = hashlib.sha256, orjson.dumps, orjson.OPT_SORT_KEYS
    gc.disable()  # as the auditor does while records are alive (chain/auditor.py)
    count = 0
    for line in _export_lines(path):
        item = orjson.loads(line)
        records = item.get("records")
        if records:
            merkle_root([sha(LEAF_PREFIX + dumps(r, option=sort)).digest() for r in records])
            count += len(records)
    gc.enable()
    return count


def measure(
    mode: str, path: Path, rpc_url: str, contract: str, workers: int, mark: Callable[[str], None] = print
) -> dict[str, Any]:
    """One way of auditing `path`, timed in two steps, with this process's (and its workers') peak RSS.

    Run it in a fresh process (`measure_in_child`). The sampling is done from outside: a thread in here
    would make the auditor start its workers by spawning instead of forking (chain/auditor.py, `_map_in`).
    """
    gc.collect()
    rss_before = _status_mb("VmRSS") or _rss_mb(resource.RUSAGE_SELF)
    reset = _reset_peak_rss()
    mark("start")  # the parent samples this process tree's memory between the marks (measure_in_child)
    cpu0 = _cpu_s()
    t0, t1, t2, ok, verified = _audit(mode, path, rpc_url, contract, workers)
    cpu = _cpu_s() - cpu0
    mark("end")
    return {
        "mode": mode if mode != "stream" else f"stream x{workers}",
        "ok": ok,
        "records_verified": verified,
        "read_s": round(t1 - t0, 2),  # parse + hash + roots (for `stream`, in the workers)
        "verify_s": round(t2 - t1, 2),  # registry, events, comparisons (for `whole`, also every leaf and root)
        "total_s": round(t2 - t0, 2),
        # CPU seconds of this process and its (finished) workers: on a machine shared with other jobs the wall
        # clock tells how much of the cores this run got as much as how much work it did.
        "cpu_s": round(cpu, 2),
        "rss_before_mb": rss_before,  # the interpreter and its imports, before reading anything
        "peak_rss_mb": (_status_mb("VmHWM") if reset else None) or _rss_mb(resource.RUSAGE_SELF),
        "load_1min": round(os.getloadavg()[0], 2),
    }


def _audit(mode: str, path: Path, rpc_url: str, contract: str, workers: int) -> tuple[float, float, float, bool, int]:
    ok, verified = True, 0
    t0 = time.perf_counter()
    if mode == "floor":
        verified = floor(path)
        t1 = t2 = time.perf_counter()
    elif mode == "whole":
        from chain.auditor import audit_source, read_export

        source = read_export(path)
        t1 = time.perf_counter()
        report = audit_source(source, rpc_url, contract)
        t2 = time.perf_counter()
        ok, verified = report.ok, report.records_verified
    elif mode == "stream":
        from chain.auditor import audit_digest, digest_export

        digest = digest_export(path, workers)
        t1 = time.perf_counter()
        report = audit_digest(digest, rpc_url, contract)
        t2 = time.perf_counter()
        ok, verified = report.ok, report.records_verified
    else:
        raise ValueError(f"unknown mode {mode!r}")
    return t0, t1, t2, ok, verified


def measure_in_child(mode: str, path: Path, rpc_url: str, contract: str, workers: int = 1) -> dict[str, Any]:
    """`measure` in a fresh process, adding `tree_peak_rss_mb`: its RSS with its workers', sampled every 10 ms
    between its start and end marks (so its imports, which peak above what a streamed audit needs, are left out)."""
    cmd = [sys.executable, "-m", "bench.bench_audit", "--measure", mode, str(path), rpc_url, contract, str(workers)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    lines: list[str] = []
    sampling = threading.Event()

    with subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as child:

        def read() -> None:
            assert child.stdout is not None
            for line in child.stdout:
                if line == "start\n":
                    sampling.set()
                elif line == "end\n":
                    sampling.clear()
                else:
                    lines.append(line)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        peak = 0.0
        while child.poll() is None:
            if sampling.is_set():
                peak = max(peak, _tree_rss_mb(child.pid))
            time.sleep(0.01)
        reader.join()
        errors = child.stderr.read() if child.stderr else ""
    if child.returncode != 0 or not lines:
        raise RuntimeError(f"{mode} failed: {errors[-2000:]}")
    row: dict[str, Any] = json.loads(lines[-1])
    return {**row, "tree_peak_rss_mb": round(peak, 1)}


def write_anchored_export(rpc_url: str, anchors: str, key: str, path: Path, total: int, batch: int) -> None:
    """Anchor `total` synthetic records in batches of `batch` and export them, as a node and `audit export` do."""
    node = Account.from_key(key).address
    writer = AnchorWriter(rpc_url, anchors, key)
    claims, prev = [], b"\x00" * 32
    for k, start in enumerate(range(0, total, batch), start=1):
        chunk = synthetic_records(node, min(batch, total - start), first=start + 1)
        root = merkle_root([leaf_hash(r) for r in chunk])
        receipt = writer.anchor("ledger", k, root, prev, len(chunk))
        prev = root
        claims.append(
            BatchClaim(
                k,
                root.hex(),
                writer.chain_id,
                writer.address,
                receipt.tx_hash,
                receipt.block_number,
                len(chunk),
                chunk,
                list(range(len(chunk))),
            )
        )
    write_export(Source(AuditInput("ledger", node, claims, []), None, None, anchors), path)


def run(
    total: int = 1_000_000, batch: int = 100_000, workers: tuple[int, ...] = (1, 2), rounds: int = 1
) -> list[dict[str, Any]]:
    """One row per way of auditing and round, each measured in its own process against the same chain."""
    rows: list[dict[str, Any]] = []
    with bench_chain() as chain, tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "export.jsonl"
        key = chain.new_member("auditee")
        write_anchored_export(chain.anvil.rpc_url, chain.deployment.anchors, key, path, total, batch)
        gc.collect()
        size_mb = round(path.stat().st_size / 1e6)
        for _ in range(rounds):  # rounds interleave the modes, so that a burst of load hits all alike
            plan = [("floor", 1), ("whole", 1)] + [("stream", w) for w in workers]
            for mode, w in plan:
                row = measure_in_child(mode, path, chain.anvil.rpc_url, chain.deployment.anchors, w)
                rows.append({"records": total, "batches": -(-total // batch), "export_mb": size_mb, **row})
    return rows


def main(argv: list[str]) -> None:
    if argv[:1] == ["--measure"]:
        mode, path, rpc_url, contract, workers = argv[1:6]
        row = measure(mode, Path(path), rpc_url, contract, int(workers), lambda m: print(m, flush=True))
        print(json.dumps(row))
        return
    total = int(argv[0]) if argv else 1_000_000
    batch = int(argv[1]) if len(argv) > 1 else 100_000
    print(machine())
    for row in run(total, batch):
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
