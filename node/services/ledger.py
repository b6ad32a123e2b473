"""Movements into the node's own ledger, as the API and the console write them: in order, all or none, through
the node's group commit (node/store/group_commit.py), with what a sale of someone else's stock sets off."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from sqlmodel import Session

from node.domain.ledger import Movement, MovementType
from node.errors import NodeError
from node.services.steps import StepGroups
from node.store.group_commit import GroupCommit, ReadAhead
from node.store.pool import prefetch_rows, record_movement
from node.store.tables import Record

# A movement and, for a receipt of a new lot, the expiry it brings.
MovementWithExpiry = tuple[Movement, str | None]
Written = tuple[list[Record], bool]


def read_ahead(session: Session, hints: list[list[Movement]]) -> None:
    """The group commit's read-ahead for movements: every row the group's movements touch, in a few queries."""
    prefetch_rows(session, [m for movements in hints for m in movements])


def _ahead(movements: Sequence[MovementWithExpiry]) -> ReadAhead:
    return read_ahead, [m for m, _ in movements]


class LedgerWriter:
    def __init__(self, writer: GroupCommit, me: str, steps: StepGroups | None) -> None:
        """`steps`: what a sale of a partner's stock sets off (None on a node without the member registry)."""
        self.writer = writer
        self.me = me
        self.steps = steps

    def write(self, movements: Sequence[MovementWithExpiry]) -> list[Record]:
        """Write `movements` in order, all or none; the records once committed (a refusal names its `index`
        when there are several)."""
        return self._after(self.writer.write(self._work(movements), _ahead(movements)))

    async def write_async(self, movements: Sequence[MovementWithExpiry]) -> list[Record]:
        """`write` for a coroutine: it waits for the commit without holding a thread."""
        return self._after(await asyncio.wrap_future(self.writer.submit(self._work(movements), _ahead(movements))))

    def _after(self, written: Written) -> list[Record]:
        records, sold = written
        if sold and self.steps is not None:
            self.steps.consignments.outbox.kick()
        return records

    def _work(self, movements: Sequence[MovementWithExpiry]) -> Callable[[Session], Written]:
        me, steps = self.me, self.steps

        def write(s: Session) -> Written:
            records, any_sold = [], False
            for index, (movement, expires_on) in enumerate(movements):
                try:
                    records.append(record_movement(s, me, movement, expires_on))
                    sold = movement.type in (MovementType.ISSUE, MovementType.BUY_OUT) and movement.owner != me
                    if sold and steps is not None:
                        # Consigned stock sold or bought out: its owner is told in the same transaction
                        # (consignments.py); lent stock cannot be sold meanwhile.
                        steps.loans.refuse_sale_of_lent(s, movement)
                        steps.consignments.sold(s, movement)
                        any_sold = True
                except NodeError as exc:
                    if len(movements) > 1:
                        exc.detail = {**exc.detail, "index": index}
                    raise
            return records, any_sold

        return write
