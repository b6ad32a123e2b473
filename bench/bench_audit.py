"""A full audit of 1M anchored records from an export file, against a real Anvil.

Records are synthetic ledger issues/receipts of the documented shape, anchored in batches of 100k
(10 transactions); the audit recomputes every leaf and every batch root and compares with the events.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from eth_account import Account

from bench.chainkit import bench_chain
from bench.common import machine, timed
from chain.anchor_client import AnchorWriter
from chain.audit import AuditInput, BatchClaim
from chain.auditor import Source, audit_source, read_export, write_export
from chain.canonical import leaf_hash
from chain.merkle import merkle_root


def synthetic_records(node: str, n: int) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for seq in range(1, n + 1):
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


def run(total: int = 1_000_000, batch: int = 100_000) -> dict[str, object]:
    with bench_chain() as chain:
        key = chain.new_member("auditee")
        node = Account.from_key(key).address
        writer = AnchorWriter(chain.anvil.rpc_url, chain.deployment.anchors, key)
        records = synthetic_records(node, total)
        claims, prev = [], b"\x00" * 32
        for k, start in enumerate(range(0, total, batch), start=1):
            chunk = records[start : start + batch]
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
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "export.jsonl"
            write_export(Source(AuditInput("ledger", node, claims, []), None, None, chain.deployment.anchors), path)
            size_mb = path.stat().st_size / 1e6
            source, read_s = timed(lambda: read_export(path))
            report, verify_s = timed(lambda: audit_source(source, chain.anvil.rpc_url, chain.deployment.anchors))
        assert report.ok and report.records_verified == total, report.findings[:3]
        return {
            "records": total,
            "batches": len(claims),
            "export_mb": round(size_mb),
            "read_s": round(read_s, 2),
            "verify_s": round(verify_s, 2),
            "total_s": round(read_s + verify_s, 2),
        }


if __name__ == "__main__":
    print(machine())
    print(run())
