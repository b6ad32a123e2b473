"""One worker process of a node runs its background work; every worker serves HTTP.

`consortium node serve` with `CONSORTIUM_WORKERS=n` starts n uvicorn worker processes on one database. Requests
are independent across them (the database serialises writers), but the background work must run once: two
anchoring threads would form the same batch twice, two outbox workers deliver each message twice. The workers
elect one by a lock the database's own host keeps for a living holder only: a PostgreSQL session-level
advisory lock (held by a connection kept open), or, on SQLite, an exclusive `flock` on a file beside the
database. The lock dies with its process, so when the leader exits another worker takes over at its next try.
"""

from __future__ import annotations

import fcntl
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine, text

log = logging.getLogger(__name__)

TRY_SECONDS = 2.0
LOCK_NAME = "consortium-node-background-work"


class Leadership:
    def __init__(self, engine: Engine, on_elected: Callable[[], None]) -> None:
        self.engine = engine
        self.on_elected = on_elected
        self.leading = False
        self._held: Any = None  # the open connection or file that holds the lock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Lead now if the lock is free; otherwise keep trying in the background."""
        if self._try():
            self._elected()
            return
        self._thread = threading.Thread(target=self._wait_for_it, name="leadership", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop trying; the caller stops the background work first, then this gives the lock up."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(TRY_SECONDS + 1)
        held, self._held = self._held, None
        if held is None:
            return
        try:
            if self.engine.dialect.name == "postgresql":
                # A pooled connection outlives close(): unlock first, or the lock stays with the pool.
                held.execute(text("SELECT pg_advisory_unlock(hashtext(:n))"), {"n": LOCK_NAME})
                held.commit()
        finally:
            held.close()

    def _wait_for_it(self) -> None:
        while not self._stop.wait(TRY_SECONDS):
            try:
                if self._try():
                    self._elected()
                    return
            except Exception:  # the database restarting or unreachable: try again, never give up leading
                log.exception("could not try for the node's background work; trying again")

    def _elected(self) -> None:
        self.leading = True
        log.info("this worker runs the node's background work (anchoring, delivery, planning)")
        self.on_elected()

    def _try(self) -> bool:
        if self.engine.dialect.name == "postgresql":
            conn = self.engine.connect()
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(hashtext(:n))"), {"n": LOCK_NAME}).scalar())
            conn.commit()
            if got:
                self._held = conn
            else:
                conn.close()
            return got
        database = self.engine.url.database
        if not database or database == ":memory:":
            return True  # a database no other process can open: this worker is alone
        handle: IO[bytes] = Path(database + ".lead").open("ab")  # noqa: SIM115 - held open: it is the lock
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._held = handle
        return True
