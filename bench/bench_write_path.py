"""A node's write path beside its ceiling, in the same run: `POST /ledger/movements` (one receipt per request)
and `POST /ledger/movements/batch` (a WMS syncing many at once) on a real node process (uvicorn, one worker,
SQLite WAL, synchronous FULL, anchoring on Anvil at the default interval), against bench/ceiling.py (bare
FastAPI + SQLModel + SQLite inserting one row per POST), measured alternately with the same load client.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.chainkit import bench_nodes
from bench.common import machine, profiler
from bench.load import measure, receipt
from chain.processes import free_port
from node.settings import NodeSettings
from tests.helpers.nodes import stock_up

# The node's own defaults, not the tests' (NodeFactory anchors every 0.2 s).
DEFAULTS = {"CONSORTIUM_ANCHOR_INTERVAL_SECONDS": str(NodeSettings.model_fields["anchor_interval_seconds"].default)}


def _ceiling(db: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.ceiling", str(port), str(db)])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/docs", timeout=1)
            return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the ceiling server did not start")


def batch_of(size: int) -> Any:
    def body(k: int) -> bytes:
        start = k * size
        return json.dumps({"movements": [json.loads(receipt(start + i)) for i in range(size)]}).encode()

    return body


def run(
    clients: tuple[int, ...] = (1, 8, 32),
    seconds: float = 10.0,
    batch_sizes: tuple[int, ...] = (100,),
    profile: str | None = None,
) -> list[dict[str, Any]]:
    """The node on SQLite, one worker, beside the ceiling. `profile`: a file to write a py-spy profile of the
    node to, taken while the first of `clients` posts receipts."""
    rows: list[dict[str, Any]] = []
    with bench_nodes("writes-") as (_chain, factory, tmp):
        ceiling, ceiling_url = _ceiling(tmp / "ceiling.db")
        try:
            node = factory.new("writer", **DEFAULTS)
            stock_up(node, [])
            warm = min(1.0, seconds / 5)
            node_pid = node.process.proc.pid if node.process.proc is not None else None
            for n in clients:
                spy = profiler(node_pid, profile, seconds + warm) if profile and node_pid and n == clients[0] else None
                got = measure(node.url, node.token, n, seconds, warm, pid=node_pid)
                if spy is not None:
                    spy.wait()
                bare = measure(ceiling_url, "-", n, seconds, warm, pid=ceiling.pid)
                ceiling_figures = {
                    "ceiling_per_s": bare["per_s"],
                    "ceiling_p99_ms": bare["p99_ms"],
                    "ceiling_cpu_ms": bare["server_cpu_ms"],
                }
                ratio = round(got["per_s"] / bare["per_s"], 2)
                rows.append({"what": "receipt", **got, **ceiling_figures, "ratio": ratio})
            for size in batch_sizes:
                got = measure(node.url, node.token, 1, seconds, warm, batch_of(size), "/ledger/movements/batch")
                rows.append({"what": f"batch of {size}", **got, "movements_per_s": round(got["per_s"] * size, 1)})
        finally:
            ceiling.terminate()
            ceiling.wait()
    return rows


def scale_out(
    database_url: str, workers: tuple[int, ...] = (1, 2), clients: tuple[int, ...] = (8, 32), seconds: float = 10.0
) -> list[dict[str, Any]]:
    """Receipts on one database (e.g. PostgreSQL) served by 1, 2, ... worker processes (CONSORTIUM_WORKERS)."""
    rows: list[dict[str, Any]] = []
    with bench_nodes("workers-") as (_chain, factory, _tmp):
        for n_workers in workers:
            db = {"CONSORTIUM_DATABASE_URL": database_url, "DATABASE_URL": database_url}
            node = factory.new(f"workers-{n_workers}", CONSORTIUM_WORKERS=str(n_workers), **db, **DEFAULTS)
            if n_workers == workers[0]:
                stock_up(node, [])
            for n in clients:
                got = measure(node.url, node.token, n, seconds, min(1.0, seconds / 5))
                rows.append({"what": "receipt", "database": database_url.split(":")[0], "workers": n_workers, **got})
            node.process.stop()
    return rows


if __name__ == "__main__":
    print(machine())
    for row in run():
        print(json.dumps(row), flush=True)
