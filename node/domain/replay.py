"""Timeline replay for auditors: balances at a moment, and the records that moved a bucket."""

from __future__ import annotations

from typing import Any

from chain.audit import AuditInput
from node.domain.ledger import Posting, replay
from node.domain.times import normalize_time


def replay_source(
    audit: AuditInput, until: str, sku: str | None, location: str | None, include_pending: bool
) -> dict[str, Any]:
    limit = normalize_time(until)
    records = [r for b in audit.batches for r in b.records]
    if include_pending:
        records += audit.pending
    records = sorted((r for r in records if str(r.get("at", "")) <= limit), key=lambda r: int(r["seq"]))
    result = replay(records)

    def wanted(p: Posting) -> bool:
        return (sku is None or p.bucket.sku == sku) and (location is None or p.bucket.location == location)

    trace = []
    running: dict[Any, int] = {}
    for r in records:
        for line in r.get("lines", []):
            p = Posting.from_record(line)
            if (sku or location) and wanted(p):
                running[p.bucket] = running.get(p.bucket, 0) + p.quantity
                trace.append({"seq": r["seq"], "at": r["at"], "type": r["type"], **line, "balance": running[p.bucket]})
    balances = [{**b.__dict__, "quantity": q} for b, q in sorted(result.balances.items()) if wanted(Posting(b, q))]
    return {
        "until": limit,
        "records_applied": len(records),
        "last_record_seq": records[-1]["seq"] if records else None,
        "balances": balances,
        "violations": [{"seq": s, "problem": m} for s, m in result.violations],
        "trace": trace,
    }
