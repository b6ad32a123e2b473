"""Timeline replay for auditors: balances at a moment, and the records that moved a bucket."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from chain.audit import AuditInput
from node.domain.ledger import Bucket, Posting, replay
from node.domain.times import normalize_time

BUCKET_FIELDS = ("sku", "lot", "location", "owner", "holder", "status")


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


def projection_differences(records: Iterable[Mapping[str, Any]], served: Iterable[Mapping[str, Any]]) -> list[str]:
    """Where the balances a node serves differ from the balances its own records add up to (records in seq
    order). An edited `stockbalance` row makes `/stock` lie while every record still verifies: this finds it."""
    replayed = replay(records).balances
    shown: dict[Bucket, int] = {}
    for row in served:
        bucket = Bucket(*(str(row[f]) for f in BUCKET_FIELDS))
        shown[bucket] = shown.get(bucket, 0) + int(row["quantity"])
    differences = []
    for bucket in sorted(set(replayed) | set(shown)):
        want, got = replayed.get(bucket, 0), shown.get(bucket, 0)
        if want != got:
            where = "/".join(getattr(bucket, f) for f in BUCKET_FIELDS)
            differences.append(f"balance {where}: the records add up to {want}, the node shows {got}")
    return differences
