"""The writers' lock (node/store/writers.py) on SQLite: a ledger write outside it fails here, as on PostgreSQL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from chain.records import LedgerRecord, RecordType
from node.domain.ledger import Bucket, Posting, StockStatus
from node.errors import WritersLockNotHeld
from node.store.engine import make_engine, session_scope
from node.store.pool import write_postings
from node.store.records import LEDGER, append_record
from node.store.tables import Record, StockBalance
from node.store.writers import ledger_transaction, take_writers_lock, writers_lock_held

ME = "0x" + "11" * 20
SHELF = Bucket("SKU", "L1", "WH", ME, ME, StockStatus.AVAILABLE)


def _fields(n: int) -> LedgerRecord:
    return {"lines": [], "evidence": [], "memo": f"write {n}", "corrects": None}


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return make_engine(f"sqlite:///{tmp_path / 'node.db'}")


def records(engine: Engine) -> list[int]:
    with session_scope(engine) as s:
        return list(s.exec(select(Record.seq)).all())


def test_a_record_or_a_posting_outside_a_ledger_transaction_is_refused_and_nothing_is_written(engine: Engine) -> None:
    with pytest.raises(WritersLockNotHeld), session_scope(engine) as s:
        append_record(s, LEDGER, ME, RecordType.RECEIPT, _fields(0))
    with pytest.raises(WritersLockNotHeld), session_scope(engine) as s:
        write_postings(s, [Posting(SHELF, 5)])
    assert records(engine) == []
    with session_scope(engine) as s:
        assert s.exec(select(StockBalance)).all() == []


def test_a_ledger_transaction_holds_the_database_write_lock_from_its_start(engine: Engine, tmp_path: Path) -> None:
    other = sqlite3.connect(tmp_path / "node.db", timeout=0, isolation_level=None)
    with ledger_transaction(engine) as s:
        assert writers_lock_held(s)
        # Nothing read or written yet, and already no other writer gets in: BEGIN IMMEDIATE ran at the start.
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        append_record(s, LEDGER, ME, RecordType.RECEIPT, _fields(0))
    other.execute("BEGIN IMMEDIATE")  # released with the commit
    other.execute("ROLLBACK")
    other.close()
    assert records(engine) == [1]


def test_a_savepoint_rolled_back_keeps_the_lock_and_the_lock_is_never_taken_inside_one(engine: Engine) -> None:
    with ledger_transaction(engine) as s:
        savepoint = s.begin_nested()
        append_record(s, LEDGER, ME, RecordType.RECEIPT, _fields(1))
        savepoint.rollback()
        assert writers_lock_held(s)  # taken outside the savepoint: its rollback does not release it
        append_record(s, LEDGER, ME, RecordType.RECEIPT, _fields(2))
    assert records(engine) == [1]
    with session_scope(engine) as s:
        s.begin_nested()
        with pytest.raises(WritersLockNotHeld, match="savepoint"):
            take_writers_lock(s)


def test_the_lock_ends_with_its_transaction(engine: Engine) -> None:
    with ledger_transaction(engine) as s:
        append_record(s, LEDGER, ME, RecordType.RECEIPT, _fields(0))
        s.commit()  # the next transaction of the same session has not taken the lock
        assert not writers_lock_held(s)
        with pytest.raises(WritersLockNotHeld):
            append_record(s, LEDGER, ME, RecordType.RECEIPT, _fields(0))
    assert records(engine) == [1]
