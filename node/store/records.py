"""Appending records: every fact a node commits to gets a gapless per-kind sequence number and a leaf."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, text
from sqlmodel import Session, select

from chain.canonical import canonical_json, leaf_hash_of_canonical
from node.domain.times import utc_now_iso
from node.store.tables import Record

LEDGER = "ledger"  # the kind of the ledger records (movements, transfers, loans, rulings...)


def serialize_writers(session: Session, kind: str) -> None:
    """Let one writer of `kind` at a time read balances and the last seq, then write.

    SQLite gets this from BEGIN IMMEDIATE (node/store/engine.py); PostgreSQL from a transaction-scoped advisory
    lock, so two concurrent requests can neither both spend the same stock nor take the same seq.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:kind))"), {"kind": kind})


def append_record(session: Session, kind: str, node: str, type_: str, fields: dict[str, Any]) -> Record:
    """Add one record inside the caller's transaction (it commits or rolls back with the caller's change)."""
    serialize_writers(session, kind)
    last = session.exec(select(func.max(Record.seq)).where(Record.kind == kind)).one()
    seq = int(last or 0) + 1
    body: dict[str, Any] = {"kind": kind, "node": node, "seq": seq, "type": type_, "at": utc_now_iso()}
    body.update(fields)
    canonical = canonical_json(body)
    record = Record(
        kind=kind,
        seq=seq,
        type=type_,
        at=body["at"],
        body=canonical.decode("utf-8"),
        leaf=leaf_hash_of_canonical(canonical).hex(),
    )
    session.add(record)
    session.flush()
    return record


def record_body(record: Record) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(record.body)
    return body
