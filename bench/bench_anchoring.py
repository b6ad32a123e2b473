"""Anchoring throughput and gas: batched (one transaction per batch) against one record per transaction.

Records are written through the node's own pool code into a real SQLite file, then the anchoring
service anchors them on a real Anvil, as a node's background thread would.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from eth_account import Account
from sqlmodel import select
from web3 import Web3

from bench.chainkit import bench_chain
from bench.common import machine, timed
from chain.anchor_client import AnchorWriter
from node.domain.ledger import Movement, MovementType
from node.services.anchoring import AnchoringService, AnchorPolicy
from node.store.engine import make_engine, session_scope
from node.store.pool import add_location, add_sku, record_movement
from node.store.tables import AnchorBatch, Location, Sku
from node.store.writers import ledger_transaction


def fill(engine: object, node: str, n: int) -> float:
    def write() -> None:
        with session_scope(engine) as s:  # type: ignore[arg-type]
            add_sku(s, Sku(code="S", name="s"))
            add_location(s, Location(code="WH", name="wh", lat_e6=0, lon_e6=0))
        with ledger_transaction(engine) as s:  # type: ignore[arg-type]
            for i in range(n):
                m = Movement(MovementType.RECEIPT, "S", f"L{i % 10}", "WH", 1, node, node)
                record_movement(s, node, m, expires_on="2030-01-01")

    return timed(write)[1]


def anchor_all(chain_rpc: str, anchors: str, key: str, n: int, batch_size: int, tmp: Path) -> dict[str, object]:
    node = Account.from_key(key).address
    engine = make_engine(f"sqlite:///{tmp / f'node-{batch_size}.db'}", "NORMAL")
    write_s = fill(engine, node, n)
    service = AnchoringService(
        engine, lambda: AnchorWriter(chain_rpc, anchors, key), AnchorPolicy(batch_size, 3600, batch_size)
    )
    anchored, seconds = timed(lambda: service.step(force=True))
    w3 = Web3(Web3.HTTPProvider(chain_rpc))
    with session_scope(engine) as s:
        txs = [b.tx_hash for b in s.exec(select(AnchorBatch)).all()]
    gas = [w3.eth.get_transaction_receipt(t)["gasUsed"] for t in txs]  # type: ignore[arg-type]
    return {
        "records": n,
        "batch_size": batch_size,
        "transactions": anchored,
        "write_records_s": round(write_s, 2),
        "anchor_s": round(seconds, 2),
        "records_anchored_per_s": round(n / seconds),
        "gas_per_anchor_tx": round(sum(gas) / len(gas)),
        "gas_per_record": round(sum(gas) / n, 1),
    }


def run(
    sizes: tuple[tuple[int, int], ...] = ((100_000, 100_000), (10_000, 500), (1_000, 1)),
) -> list[dict[str, object]]:
    """`sizes`: (records, batch size) pairs."""
    rows = []
    with bench_chain() as chain, tempfile.TemporaryDirectory() as tmp:
        for n, batch in sizes:
            key = chain.new_member(f"bench-{batch}")
            rows.append(anchor_all(chain.anvil.rpc_url, chain.deployment.anchors, key, n, batch, Path(tmp)))
    return rows


if __name__ == "__main__":
    print(machine())
    for row in run():
        print(row)
