"""Group commit: the movements posted to a node are written by one thread, many to a transaction.

A request hands its work (a function of a session) to the writer and waits. The writer takes everything queued
at that moment, opens ONE transaction, runs each piece of work in its own savepoint and commits once: one
write lock, one fsync, however many requests arrived while the previous group was being written. The promises
hold piece by piece:

- a piece that raises is rolled back to its savepoint (it changes nothing) and its request gets that error,
  while the others in the group are written;
- a request is answered only after the commit that holds its record, so an answer never precedes durability;
  if the commit itself fails, every request of the group gets the error and none of it was written.

At one request at a time this adds a hand-off between two threads and nothing else (no timer, no waiting for
company). The node's other ledger writers (an operator's loan, a plan, ...) open a `ledger_transaction` of their
own and take the same writers' lock (node/store/writers.py).
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlmodel import Session

from node.store.writers import ledger_transaction

T = TypeVar("T")

log = logging.getLogger(__name__)

# Enough to amortise the commit under any load a node sees; small enough that one group's savepoints and
# identity map stay cheap and the first request of a group is not held long.
MAX_GROUP = 256


# What a piece of work will read, said ahead: a reader and the piece's hint. Before a group's pieces run, each
# reader is called once with the hints of every piece that named it, and reads them all in a few queries
# (e.g. every row a group of movements touches: node/store/pool.py prefetch_rows), under the same lock as the
# pieces' own reads. A reader that fails only costs the reads it would have saved.
Reader = Callable[[Session, list[Any]], None]
ReadAhead = tuple[Reader, Any]


@dataclass
class _Work:
    run: Callable[[Session], Any]
    context: contextvars.Context
    ahead: ReadAhead | None = None
    future: Future[Any] = field(default_factory=Future)


class GroupCommit:
    def __init__(self, engine: Engine, after_commit: Callable[[int], None] | None = None) -> None:
        """`after_commit(n)`: told how many pieces of work a commit wrote (e.g. to wake the anchoring)."""
        self.engine = engine
        self.after_commit = after_commit
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()
        self.groups = 0
        self.written = 0

    def write(self, work: Callable[[Session], T], ahead: ReadAhead | None = None) -> T:
        """Run `work` in the writer's transaction; return its result once committed, or raise its error."""
        return self.submit(work, ahead).result()

    def submit(self, work: Callable[[Session], T], ahead: ReadAhead | None = None) -> Future[T]:
        """Queue `work` for the writer's next transaction; its future ends once that commit did (or failed).
        A coroutine awaits it with `asyncio.wrap_future` instead of holding a thread while it waits. `ahead`:
        what `work` will read (see `ReadAhead`)."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("a write inside the writer's own transaction would wait for itself")
        self._ensure_started()
        item = _Work(work, contextvars.copy_context(), ahead)
        self._queue.put(item)
        return item.future

    def stop(self, timeout: float = 10.0) -> None:
        with self._start:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)

    def _ensure_started(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._start:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            stopping = False
            while len(group) < MAX_GROUP:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                group.append(nxt)
            self._write(group)
            if stopping:
                return

    def _read_ahead(self, s: Session, aheads: list[ReadAhead]) -> None:
        by_reader: dict[Reader, list[Any]] = {}
        for reader, hint in aheads:
            by_reader.setdefault(reader, []).append(hint)
        for reader, hints in by_reader.items():
            savepoint = s.begin_nested()
            try:
                reader(s, hints)
                savepoint.commit()
            except Exception as exc:
                savepoint.rollback()
                log.warning("reading ahead for a group failed (its pieces read for themselves): %s", exc)

    def _write(self, group: list[_Work]) -> None:
        # A request that gave up before its turn (its coroutine cancelled: a shutdown, a timeout) is not written;
        # once running, a piece can no longer be cancelled, so each future is answered exactly once.
        group = [item for item in group if item.future.set_running_or_notify_cancel()]
        if not group:
            return
        outcomes: list[tuple[_Work, bool, Any]] = []
        try:
            # The writers' lock for the whole group, taken as its transaction begins, outside every savepoint: a
            # rollback to a savepoint releases what was taken inside it (PostgreSQL), while rows read under it
            # stay in the session (node/store/writers.py).
            with ledger_transaction(self.engine) as s:
                self._read_ahead(s, [item.ahead for item in group if item.ahead is not None])
                for item in group:
                    savepoint = s.begin_nested()
                    try:
                        value = item.context.run(item.run, s)
                        savepoint.commit()
                        outcomes.append((item, True, value))
                    except BaseException as exc:  # even SystemExit: its request is answered, the writer goes on
                        savepoint.rollback()
                        outcomes.append((item, False, exc))
        except BaseException as exc:  # the commit failed: nothing of the group was written
            log.exception("a group of %s writes could not be committed", len(group))
            for item in group:
                item.future.set_exception(exc)
            return
        written = sum(ok for _item, ok, _value in outcomes)
        self.groups += 1
        self.written += written
        if written and self.after_commit is not None:
            try:
                self.after_commit(written)
            except Exception:
                log.exception("after-commit hook failed")
        for item, ok, value in outcomes:
            if ok:
                item.future.set_result(value)
            else:
                item.future.set_exception(value)
