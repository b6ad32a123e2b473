"""The writers' lock: one transaction at a time appends records or writes postings, from its first read on.

A writer reads (balances, a loan's state, a share's state, the last seq) and then writes what follows from
what it read. Two such transactions at once could both read the same state and both act on it: spend the
same stock twice, lend one loan twice, take the same seq. So a transaction that appends records or writes
postings is opened with `ledger_transaction` (or runs in the group commit, which opens it the same way), and
holds the writers' lock from its start to its end:

- PostgreSQL: a transaction-scoped advisory lock. It is taken at the start, outside any savepoint, because a
  rollback to a savepoint releases the locks taken since, advisory ones included: a lock taken inside a piece
  of the group commit would be gone after that piece was rolled back, while the rows read under it stay in
  the session.
- SQLite: every transaction is BEGIN IMMEDIATE (node/store/engine.py), which takes the database's write lock.
  `ledger_transaction` begins the transaction at once, so the lock is held, not merely promised, from then on.

`append_record` and `write_postings` call `require_writers_lock` and raise `WritersLockNotHeld` otherwise:
a step that forgot to open its transaction this way fails on SQLite as on PostgreSQL, in the first test that
runs it, instead of racing now and then on PostgreSQL alone. Transactions that only read, or write nothing
of the ledger (the outbox, the anchoring), open a plain `session_scope` and do not wait for the writers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from node.errors import WritersLockNotHeld
from node.store.engine import session_scope

# PostgreSQL's advisory lock key: the same text the per-kind lock of the ledger kind used before, so that
# worker processes of one node from before and after a restart serialise against each other.
LOCK_KEY = "ledger"
_HELD = "writers_lock"  # session.info key: the root transaction that holds the lock


class WritersMoment(StrEnum):
    """Where a writer is, for `watch`."""

    LOCK_WANTED = "lock_wanted"  # a transaction asks for the writers' lock (it may have to wait)
    WRITING = "writing"  # a transaction holding the lock appends a record or writes postings


# Test-only: called with each moment, on the writer's own thread; None in a running node. The PostgreSQL race
# tests (tests/chain/test_postgres.py) hold the first writer at WRITING, between its reads and its writes, and
# let it go once the second has reached LOCK_WANTED: a lock taken after the reads then fails every time.
watch: Callable[[WritersMoment], None] | None = None


def _tell(moment: WritersMoment) -> None:
    if watch is not None:
        watch(moment)


@contextmanager
def ledger_transaction(engine: Engine) -> Iterator[Session]:
    """One transaction that appends records or writes postings: the writers' lock is taken as it begins, before
    its first read, and held to its end; committed if the block succeeds, rolled back if it raises."""
    with session_scope(engine) as session:
        take_writers_lock(session)
        yield session


def take_writers_lock(session: Session) -> None:
    """Take the writers' lock for the session's transaction (beginning it), at its start: never in a savepoint."""
    if session.in_nested_transaction():
        raise WritersLockNotHeld("the writers' lock is taken where a transaction begins, never inside a savepoint")
    if writers_lock_held(session):
        return
    _tell(WritersMoment.LOCK_WANTED)
    connection = session.connection()  # begins the transaction: on SQLite, BEGIN IMMEDIATE takes the lock here
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": LOCK_KEY})
    session.info[_HELD] = session.get_transaction()


def writers_lock_held(session: Session) -> bool:
    """Whether the session's current transaction took the writers' lock (it is held until that transaction ends)."""
    root = session.get_transaction()
    return root is not None and session.info.get(_HELD) is root


def require_writers_lock(session: Session) -> None:
    """Raise `WritersLockNotHeld` unless the session's transaction holds the writers' lock."""
    if not writers_lock_held(session):
        raise WritersLockNotHeld(
            "records are appended and postings written only in a transaction that holds the writers' lock "
            "from its start: open it with ledger_transaction (or write through the group commit)"
        )
    _tell(WritersMoment.WRITING)


@event.listens_for(OrmSession, "after_transaction_end")
def _released(session: OrmSession, transaction: Any) -> None:
    """The lock ends with the transaction that took it (a savepoint's end changes nothing)."""
    if transaction.parent is None and session.info.get(_HELD) is transaction:
        del session.info[_HELD]
