"""A node's write path beside its ceiling, in the same run: `POST /ledger/movements` (one receipt per request)
and `POST /ledger/movements/batch` (a WMS syncing many at once) on a real node process (uvicorn, one worker,
SQLite WAL, synchronous FULL, anchoring on Anvil at the default interval), against bench/ceiling.py (bare
FastAPI + SQLModel + SQLite inserting one row per POST), measured alternately with the same load client.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.chainkit import bench_chain
from bench.common import machine
from bench.load import measure, receipt
from chain.processes import free_port
from node.launch.nodes import TEST_RULEBOOK, NodeFactory, genesis_of, stock_up
from node.settings import NodeSettings


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
    clients: tuple[int, ...] = (1, 8, 32), seconds: float = 10.0, batch_sizes: tuple[int, ...] = (100,)
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with bench_chain(genesis_of(TEST_RULEBOOK)) as chain, tempfile.TemporaryDirectory(prefix="writes-") as tmp:
        factory = NodeFactory(chain.anvil, chain.deployment, Path(tmp))
        ceiling, ceiling_url = _ceiling(Path(tmp) / "ceiling.db")
        try:
            interval = NodeSettings.model_fields["anchor_interval_seconds"].default  # the default, not the tests'
            node = factory.new("writer", CONSORTIUM_ANCHOR_INTERVAL_SECONDS=str(interval))
            stock_up(node, [])
            warm = min(1.0, seconds / 5)
            for n in clients:
                got = measure(node.url, node.token, n, seconds, warm)
                bare = measure(ceiling_url, "-", n, seconds, warm)
                ceiling_figures = {"ceiling_per_s": bare["per_s"], "ceiling_p99_ms": bare["p99_ms"]}
                ratio = round(got["per_s"] / bare["per_s"], 2)
                rows.append({"what": "receipt", **got, **ceiling_figures, "ratio": ratio})
            for size in batch_sizes:
                got = measure(node.url, node.token, 1, seconds, warm, batch_of(size), "/ledger/movements/batch")
                rows.append({"what": f"batch of {size}", **got, "movements_per_s": round(got["per_s"] * size, 1)})
        finally:
            ceiling.terminate()
            ceiling.wait()
            factory.stop_all()
    return rows


if __name__ == "__main__":
    print(machine())
    for row in run():
        print(json.dumps(row), flush=True)
