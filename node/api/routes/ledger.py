"""Movements into the append-only ledger, the records it holds, and anchoring on demand."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlmodel import col, select

from node.api.deps import AddressDep, AnchoringDep, EngineDep, OperatorDep, ServicesDep, SessionDep
from node.api.errors import ERROR_RESPONSES
from node.api.responses import FlushOut, RecordOut
from node.api.schemas import MAX_SAFE, MovementIn
from node.domain.ledger import Evidence, Movement, MovementType
from node.store.engine import session_scope
from node.store.pool import LEDGER, record_movement
from node.store.proofs import record_out
from node.store.tables import Record

router = APIRouter(tags=["ledger"], dependencies=[OperatorDep], responses=ERROR_RESPONSES)


def movement_of(body: MovementIn, me: str) -> Movement:
    """The request as the pure ledger reads it: owner and holder default to this node."""
    return Movement(
        type=MovementType(body.type),
        sku=body.sku,
        lot=body.lot,
        location=body.location,
        quantity=body.quantity,
        owner=body.owner or me,
        holder=body.holder or me,
        status=body.status,
        to_location=getattr(body, "to_location", None),
        to_status=getattr(body, "to_status", None),
        evidence=tuple(Evidence(e.source, e.reference) for e in body.evidence),
        memo=body.memo,
        corrects=body.corrects,
    )


@router.post("/ledger/movements", status_code=201)
def post_movement(body: MovementIn, services: ServicesDep, engine: EngineDep, me: AddressDep) -> RecordOut:
    # Its own transaction, not SessionDep's: the anchoring thread is woken only once the record is committed.
    movement = movement_of(body, me)
    sold = movement.type in (MovementType.ISSUE, MovementType.BUY_OUT) and movement.owner != me
    sale = sold and services.negotiator is not None
    with session_scope(engine) as s:
        record = record_movement(s, me, movement, getattr(body, "expires_on", None))
        if sale:  # consigned stock sold or bought out: its owner is told in the same transaction (consignments.py)
            assert services.negotiator is not None
            services.negotiator.loans.refuse_sale_of_lent(s, movement)
            services.negotiator.consignments.sold(s, movement)
        out = RecordOut.model_validate(record_out(record))
    if services.anchoring is not None:
        services.anchoring.notify()
    if sale:
        assert services.negotiator is not None
        services.negotiator.outbox.kick()
    return out


@router.get("/ledger/records")
def list_records(
    s: SessionDep,
    after: Annotated[int, Query(ge=0, le=MAX_SAFE)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 100,
    type: str | None = None,
) -> list[RecordOut]:
    q = select(Record).where(Record.kind == LEDGER, Record.seq > after)
    if type:
        q = q.where(Record.type == type)
    rows = s.exec(q.order_by(col(Record.seq)).limit(limit)).all()
    return [RecordOut.model_validate(record_out(r)) for r in rows]


@router.post("/anchoring/flush", tags=["anchoring"])
def flush(anchoring: AnchoringDep) -> FlushOut:
    """Anchor everything that waits now, without waiting for the size or time trigger."""
    return FlushOut(anchored_batches=anchoring.step(force=True))
