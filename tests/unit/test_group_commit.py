"""Group commit (node/store/group_commit.py): many requests' writes in one transaction, each all-or-nothing."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlmodel import Session, select

from chain.records import LedgerRecord, RecordType
from node.domain.ledger import Movement, MovementType, StockStatus
from node.errors import NotFound
from node.store.engine import make_engine, session_scope
from node.store.group_commit import GroupCommit
from node.store.pool import prefetch_rows, record_movement
from node.store.records import LEDGER, append_record
from node.store.tables import Location, Record, Sku, StockBalance
from node.store.writers import ledger_transaction


def _fields(n: int) -> LedgerRecord:
    """A record's fields that tell the writes apart by their memo."""
    return {"lines": [], "evidence": [], "memo": f"write {n}", "corrects": None}


def test_writes_queued_while_a_group_is_written_go_in_the_next_group_and_a_refused_one_changes_nothing(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'node.db'}")
    writer = GroupCommit(engine)
    holding, release = threading.Event(), threading.Event()

    def held(s: Session) -> int:
        holding.set()
        release.wait()  # the writer is busy with this group while the others queue up
        return append_record(s, LEDGER, "0xme", RecordType.RECEIPT, _fields(-1)).seq

    def write(k: int) -> int:
        def work(s: Session) -> int:
            s.add(Sku(code=f"SKU-{k}", name=f"sku {k}"))
            seq = append_record(s, LEDGER, "0xme", RecordType.RECEIPT, _fields(k)).seq
            if k in (3, 7):
                raise NotFound(f"refused {k}")
            return seq

        return writer.write(work)

    with ThreadPoolExecutor(11) as pool:
        first = pool.submit(writer.write, held)
        holding.wait()  # the writer runs the first group before any other write is queued
        queued = [pool.submit(write, k) for k in range(10)]
        while writer._queue.qsize() < 10:  # every write is queued behind the busy writer
            threading.Event().wait(0.01)
        release.set()
        assert first.result() == 1
        outcomes = []
        for k, f in enumerate(queued):
            with pytest.raises(NotFound) if k in (3, 7) else nullcontext():
                outcomes.append((k, f.result()))
    writer.stop()
    assert writer.groups == 2 and writer.written == 9
    # Seqs stay gapless: the refused writes' records were rolled back with their savepoints.
    assert sorted(seq for _k, seq in outcomes) == list(range(2, 10))
    with session_scope(engine) as s:
        assert [r.seq for r in s.exec(select(Record).order_by(Record.seq)).all()] == list(range(1, 10))
        assert sorted(x.code for x in s.exec(select(Sku)).all()) == sorted(
            f"SKU-{k}" for k in range(10) if k not in (3, 7)
        )


def test_a_write_is_answered_only_after_its_commit(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'node.db'}")
    writer = GroupCommit(engine)
    seq = writer.write(lambda s: append_record(s, LEDGER, "0xme", RecordType.RECEIPT, _fields(0)).seq)
    # Another connection sees it the moment the call returns.
    with Session(make_engine(f"sqlite:///{tmp_path / 'node.db'}")) as other:
        assert other.exec(select(Record.seq)).all() == [seq]
    writer.stop()


def test_a_group_reads_ahead_once_per_reader_and_a_failed_read_ahead_costs_nothing(tmp_path: Path) -> None:
    seen: list[tuple[str, list[Any]]] = []

    def lots(_s: Session, hints: list[Any]) -> None:
        seen.append(("lots", hints))

    def broken(_s: Session, hints: list[Any]) -> None:
        seen.append(("broken", hints))
        raise RuntimeError("the read-ahead broke")

    engine = make_engine(f"sqlite:///{tmp_path / 'node.db'}")
    writer = GroupCommit(engine)
    holding, release = threading.Event(), threading.Event()

    def held(_s: Session) -> int:
        holding.set()
        release.wait()  # the next pieces queue up behind this group and go in one group together
        return 0

    try:
        first = writer.submit(held)
        holding.wait()
        queued = [
            writer.submit(lambda _s: 1, ahead=(lots, "a")),
            writer.submit(lambda _s: 2, ahead=(broken, "x")),
            writer.submit(lambda _s: 3),
            writer.submit(lambda _s: 4, ahead=(lots, "b")),
        ]
        release.set()
        assert first.result() == 0
        assert [f.result() for f in queued] == [1, 2, 3, 4]  # every piece ran and was committed
        assert writer.groups == 2
        assert seen == [("lots", ["a", "b"]), ("broken", ["x"])]  # each reader once, with its pieces' hints
    finally:
        writer.stop()
        engine.dispose()


def test_movements_read_ahead_need_no_query_of_their_own_for_the_rows_they_touch(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'node.db'}")
    me = "0x" + "11" * 20
    receipts = [
        Movement(MovementType.RECEIPT, "SKU", f"L{k}", "WH", 1, me, me, StockStatus.AVAILABLE) for k in range(3)
    ]
    with ledger_transaction(engine) as s:
        s.add(Sku(code="SKU", name="a SKU"))
        s.add(Location(code="WH", name="warehouse", lat_e6=30_200_000, lon_e6=120_200_000))
        s.flush()
        for m in receipts:  # the lots and balances exist: the second round reads them
            record_movement(s, me, m, "2030-01-01")
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    with ledger_transaction(engine) as s:
        prefetch_rows(s, receipts)
        event.listen(engine, "before_cursor_execute", seen)
        try:
            for m in receipts:
                record_movement(s, me, m)
        finally:
            event.remove(engine, "before_cursor_execute", seen)
    tables = ("FROM sku", "FROM location", "FROM lot", "FROM stockbalance")
    assert not [q for q in statements if q.lstrip().startswith("SELECT") and any(t in q for t in tables)]
    with session_scope(engine) as s:
        assert {b.lot: b.quantity for b in s.exec(select(StockBalance))} == {"L0": 2, "L1": 2, "L2": 2}
    engine.dispose()


def test_a_write_given_up_before_its_turn_is_not_written_and_the_writer_goes_on(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'node.db'}")
    writer = GroupCommit(engine)
    holding, release = threading.Event(), threading.Event()

    def held(_s: Session) -> int:
        holding.set()
        release.wait()
        return 0

    def record(k: int) -> Callable[[Session], int]:
        return lambda s: append_record(s, LEDGER, "0xme", RecordType.RECEIPT, _fields(k)).seq

    try:
        first = writer.submit(held)
        holding.wait()
        given_up, kept = writer.submit(record(1)), writer.submit(record(2))
        assert given_up.cancel()  # as asyncio.wrap_future does when the request's coroutine is cancelled
        release.set()
        assert first.result() == 0 and kept.result() == 1
        # The writer is alive and answers the next write (a dead writer never would: bounded, not to hang).
        assert writer.submit(record(3)).result(timeout=120) == 2
        with session_scope(engine) as s:
            memos = [json.loads(r.body)["memo"] for r in s.exec(select(Record).order_by(Record.seq))]
            assert memos == ["write 2", "write 3"]
    finally:
        writer.stop()
        engine.dispose()
