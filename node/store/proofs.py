"""Proof documents and batch listings, assembled from stored canonical text for speed.

The record body and the proof are stored as JSON text already; splicing them avoids parsing and
re-serialising thousands of records per page (docs/proof-format.md defines the document).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, col, select

from chain.audit import PROOF_FORMAT
from node.domain.times import normalize_time
from node.errors import InvalidRequest
from node.store.tables import AnchorBatch, Record

# Opens the page and every document in it: docs/proof-format.md section 5 (computed once, spliced as text).
_FORMAT_FIELD = f'"format":{json.dumps(PROOF_FORMAT)}'

ISO_TIME = r"^\d{4}-\d{2}-\d{2}([T ][0-9:.]+)?(Z|[+-]\d{2}:?\d{2})?$"

_PAGE_SQL = text(
    """
    SELECT r.seq, r.body, r.leaf, p.proof, p.leaf_index, b.root, b.seq, b.chain_id, b.contract,
           b.tx_hash, b.block_number, b.leaf_count, b.status
    FROM record r
    LEFT JOIN recordproof p ON p.record_id = r.id
    LEFT JOIN anchorbatch b ON b.id = p.batch_id
    WHERE r.kind = :kind AND r.seq > :after AND r.at >= :since AND r.at <= :until
    ORDER BY r.seq
    LIMIT :limit
    """
)


def record_out(record: Record) -> dict[str, Any]:
    return {"record": json.loads(record.body), "leaf": record.leaf}


def _time_bound(value: str | None, default: str) -> str:
    if value is None:
        return default
    try:
        return normalize_time(value)
    except ValueError as exc:
        raise InvalidRequest(f"not an ISO-8601 time: {value!r}", value=value) from exc


def proof_page(session: Session, kind: str, after: int, limit: int, since: str | None, until: str | None) -> str:
    """One page of proof documents as JSON text: {"format", "kind", "items": [...], "next_after"}."""
    params = {
        "kind": kind,
        "after": after,
        "limit": limit,
        "since": _time_bound(since, ""),
        "until": _time_bound(until, "~"),
    }
    rows = session.connection().execute(_PAGE_SQL, params).all()
    items = []
    for _seq, body, leaf, proof, index, root, bseq, chain_id, contract, tx, block, count, status in rows:
        if status == "anchored":
            anchor = json.dumps(
                {
                    "chain_id": chain_id,
                    "contract": contract,
                    "tx_hash": tx,
                    "block_number": block,
                    "kind": kind,
                    "seq": bseq,
                    "leaf_index": index,
                    "leaf_count": count,
                },
                separators=(",", ":"),
            )
            items.append(
                f'{{{_FORMAT_FIELD},"record":{body},"leaf":"{leaf}","status":"anchored","proof":{proof},'
                f'"root":"{root}","anchor":{anchor}}}'
            )
        else:
            items.append(
                f'{{{_FORMAT_FIELD},"record":{body},"leaf":"{leaf}","status":"pending",'
                '"proof":null,"root":null,"anchor":null}'
            )
    next_after = rows[-1][0] if len(rows) == limit else None
    return (
        f'{{{_FORMAT_FIELD},"kind":{json.dumps(kind)},"items":[{",".join(items)}],'
        f'"next_after":{json.dumps(next_after)}}}'
    )


def batches(session: Session, kind: str) -> list[AnchorBatch]:
    return list(session.exec(select(AnchorBatch).where(AnchorBatch.kind == kind).order_by(col(AnchorBatch.seq))).all())
