"""Story 1 end to end, timed: from the trigger to a received, anchored transfer across 4 real nodes.

Anvil mines each transaction at once (as `make run`'s does); every node runs with the defaults `make run` uses
(node/settings.py: anchoring interval and batch size); the requester plans by itself 0.3 s after inviting (standing in
for the operator who plans on the console); the bench confirms receipt as soon as the shipment arrives (the
step a person does in real life, excluded from nothing: it is timed too).
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from bench.chainkit import bench_chain
from bench.common import machine
from node.settings import NodeSettings
from tests.helpers.nodes import (
    HANGZHOU,
    JIAXING,
    SHAOXING,
    TEST_RULEBOOK,
    XIAOSHAN,
    NodeFactory,
    genesis_of,
    soon,
    stock_up,
    until,
)


def run(rounds: int = 3) -> list[dict[str, object]]:
    rows = []
    # The nodes decide under the test rule book, so the chain must hold it in force (a RuleRegistry genesis).
    with bench_chain(genesis_of(TEST_RULEBOOK)) as chain, tempfile.TemporaryDirectory(prefix="story-") as tmp:
        for k in range(rounds):
            factory = NodeFactory(chain.anvil, chain.deployment, Path(tmp) / f"round{k}")
            # NodeFactory's own settings are the tests' (faster anchoring, quicker retries): back to the defaults.
            defaults = {
                "CONSORTIUM_ANCHOR_INTERVAL_SECONDS": str(NodeSettings.model_fields["anchor_interval_seconds"].default),
                "CONSORTIUM_CHAIN_RETRY_MAX_SECONDS": str(NodeSettings.model_fields["chain_retry_max_seconds"].default),
            }
            try:
                hz = factory.new(
                    "hz", lat_e6=HANGZHOU[0], lon_e6=HANGZHOU[1], CONSORTIUM_AUTO_PLAN_AFTER_SECONDS="0.3", **defaults
                )
                others = [
                    factory.new(n, lat_e6=p[0], lon_e6=p[1], **defaults)
                    for n, p in (("xs", XIAOSHAN), ("sx", SHAOXING), ("jx", JIAXING))
                ]
                stock_up(hz, [])
                for node in others:
                    stock_up(node, [("L1", soon(400), 200)])
                today = datetime.now(UTC).date()
                with hz.client() as c:
                    for d in (2, 1, 0):
                        c.post(
                            "/negotiation/replenishment",
                            json={
                                "sku": "FORMULA-900G",
                                "location": "WH",
                                "quantity": 40,
                                "requested_on": (today - timedelta(days=d)).isoformat(),
                            },
                        ).raise_for_status()
                    t0 = time.perf_counter()
                    c.post("/negotiation/replenishment/check", json={}).raise_for_status()
                    (t,) = until(lambda c=c: c.get("/negotiation/transfers", params={"status": "shipped"}).json())
                    t_shipped = time.perf_counter()
                    seq = c.post(
                        f"/negotiation/transfers/{t['id']}/receive", json={"quantity": t["shipped"], "location": "WH"}
                    ).json()["record_seq"]

                    def anchored(seq: int = seq, url: str = hz.url) -> bool:
                        page = httpx.get(f"{url}/audit/records", params={"after": seq - 1, "limit": 1}).json()
                        return bool(page["items"]) and page["items"][0]["status"] == "anchored"

                    until(anchored)
                    t1 = time.perf_counter()
                rows.append(
                    {
                        "round": k,
                        "trigger_to_shipped_s": round(t_shipped - t0, 2),
                        "trigger_to_received_and_anchored_s": round(t1 - t0, 2),
                    }
                )
            finally:
                factory.stop_all()
    return rows


if __name__ == "__main__":
    print(machine())
    for row in run():
        print(row, flush=True)
