"""Appending records: every fact a node commits to gets a gapless per-kind sequence number and a leaf."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, event, func
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, select

from chain.canonical import canonical_json, leaf_hash_of_canonical
from chain.records import AnyRecord, RecordKind, RecordType, record_body
from node.domain.times import utc_now_iso
from node.store.tables import Record
from node.store.writers import require_writers_lock

LEDGER = RecordKind.LEDGER  # the kind of the ledger records (movements, transfers, loans, rulings...)

log = logging.getLogger(__name__)

# Who wants to know, per database, that records were committed (the anchoring service: it anchors at once
# when the node was idle instead of at its next tick). Keyed weakly: an engine disposed of takes its listener.
_committed_listeners: weakref.WeakKeyDictionary[Engine, Callable[[dict[str, int]], None]] = weakref.WeakKeyDictionary()


def on_records_committed(engine: Engine, listener: Callable[[dict[str, int]], None]) -> None:
    """Call `listener({kind: n})` after every commit on `engine` that appended records (any writer, any thread)."""
    _committed_listeners[engine] = listener


@event.listens_for(OrmSession, "after_commit")
def _tell_listeners(session: OrmSession) -> None:
    if session.in_nested_transaction():  # a savepoint released: nothing is committed until the outer commit
        return
    written = session.info.pop("records_appended", None)
    listener = _committed_listeners.get(session.bind) if isinstance(session.bind, Engine) else None
    if written and listener is not None:
        try:
            listener(written)
        except Exception:  # a wake-up hint only: the commit stands whatever the listener does
            log.exception("records-committed listener failed")


@event.listens_for(OrmSession, "after_rollback")
def _forget_appended(session: OrmSession) -> None:
    if session.in_nested_transaction():  # to a savepoint: the others' records still go with the outer commit
        return
    session.info.pop("records_appended", None)


@event.listens_for(OrmSession, "after_transaction_end")
def _forget_transaction(session: OrmSession, transaction: Any) -> None:
    """What was known inside a transaction (its last seqs) ends with it."""
    if transaction.parent is None:
        session.info.pop("last_record", None)


def append_record(session: Session, kind: RecordKind, node: str, type_: RecordType, fields: AnyRecord) -> Record:
    """Add one record inside the caller's transaction (it commits or rolls back with the caller's change), which
    holds the writers' lock (node/store/writers.py: ledger_transaction, or the group commit); its body is built
    by chain/records.py from the type's declared fields."""
    require_writers_lock(session)
    seq = _last_seq(session, kind) + 1
    at = utc_now_iso()
    canonical = canonical_json(record_body(kind, node, seq, type_, at, fields))
    record = Record(
        kind=kind,
        seq=seq,
        type=type_,
        at=at,
        body=canonical.decode("utf-8"),
        leaf=leaf_hash_of_canonical(canonical).hex(),
    )
    # Not flushed here: the commit (or a savepoint's release) writes a group's records in one statement.
    session.add(record)
    appended = session.info.setdefault("records_appended", {})
    appended[kind] = appended.get(kind, 0) + 1
    session.info.setdefault("last_record", {})[kind] = record
    return record


def _last_seq(session: Session, kind: str) -> int:
    """The kind's last seq: read once per transaction (which holds the writers' lock), then counted on. The
    remembered record must still be in the session: one appended in a savepoint rolled back since was expunged,
    and its seq is free again."""
    last: Record | None = session.info.get("last_record", {}).get(kind)
    if last is not None and last in session:
        return last.seq
    found = session.exec(select(func.max(Record.seq)).where(Record.kind == kind)).one()
    return int(found or 0)
