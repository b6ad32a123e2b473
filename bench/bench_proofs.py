"""Proof documents served per second by a real node process over HTTP (100k anchored records)."""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path

import httpx
from eth_account import Account

from bench.bench_anchoring import fill
from bench.chainkit import bench_chain
from bench.common import machine, timed
from chain.anchor_client import AnchorWriter
from node.launch.process import NodeProcess, free_port
from node.services.anchoring import AnchoringService, AnchorPolicy
from node.store.engine import make_engine


def run(n: int = 100_000, page: int = 5000) -> dict[str, object]:
    with bench_chain() as chain, tempfile.TemporaryDirectory() as tmp:
        key = chain.new_member("served")
        node = Account.from_key(key).address
        db = Path(tmp) / "node.db"
        engine = make_engine(f"sqlite:///{db}", "NORMAL")
        fill(engine, node, n)
        AnchoringService(
            engine,
            lambda: AnchorWriter(chain.anvil.rpc_url, chain.deployment.anchors, key),
            AnchorPolicy(10_000, 3600, 10_000),
        ).step(force=True)
        engine.dispose()
        proc = NodeProcess(
            "served",
            free_port(),
            {
                "CONSORTIUM_DATABASE_URL": f"sqlite:///{db}",
                "CONSORTIUM_PRIVATE_KEY": key,
                "CONSORTIUM_API_TOKEN": secrets.token_hex(8),  # a node serves only with one; proofs need none
                "CONSORTIUM_ANCHOR_ENABLED": "false",
            },
            Path(tmp) / "node.log",
        )
        proc.start()
        try:

            def fetch_all() -> int:
                count, after = 0, 0
                with httpx.Client(base_url=proc.url, timeout=60) as http:
                    while True:
                        body = http.get("/audit/records", params={"after": after, "limit": page}).json()
                        count += len(body["items"])
                        if body["next_after"] is None:
                            return count
                        after = body["next_after"]

            fetch_all()  # warm the page cache
            served, seconds = timed(fetch_all)
        finally:
            proc.stop()
    assert served == n
    return {"documents": served, "page": page, "seconds": round(seconds, 2), "documents_per_s": round(n / seconds)}


if __name__ == "__main__":
    print(machine())
    print(run())
