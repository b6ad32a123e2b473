"""The node checks its own stock projection against its records at start: a `stockbalance` row edited behind
the node's back (it is a projection, not a record, so no anchor covers it) is named in node.log and /health."""

from __future__ import annotations

import json
import logging
import threading

from sqlalchemy import Engine
from sqlmodel import col, select

from node.domain.replay import projection_differences
from node.store.engine import session_scope
from node.store.records import LEDGER
from node.store.tables import Record, StockBalance

log = logging.getLogger(__name__)


def check_projection(engine: Engine) -> list[str]:
    """Balances as stored against balances replayed from every ledger record, read in one transaction."""
    with session_scope(engine) as s:
        bodies = s.exec(select(Record.body).where(Record.kind == LEDGER).order_by(col(Record.seq))).all()
        served = [b.model_dump() for b in s.exec(select(StockBalance).where(StockBalance.quantity != 0)).all()]
    return projection_differences((json.loads(b) for b in bodies), served)


class ProjectionCheck:
    """Runs `check_projection` once, in a thread of its own, so that a long ledger never delays the start."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.differences: list[str] | None = None  # None until the check has run
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="projection-check", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            found = check_projection(self.engine)
        except Exception:
            log.exception("the stock projection could not be checked against the records")
            return
        for line in found:
            log.error("stock projection differs from the records: %s", line)
        if not found:
            log.info("stock projection matches the records")
        self.differences = found
