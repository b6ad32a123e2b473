"""Movements into the append-only ledger, the records it holds, and anchoring on demand."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlmodel import col, select

from node.api.deps import AddressDep, AnchoringDep, OperatorDep, ServicesDep, SessionDep
from node.api.errors import ERROR_RESPONSES
from node.api.responses import FlushOut, MovementBatchOut, RecordOut
from node.api.schemas import MAX_SAFE, MovementBatchIn, MovementIn
from node.domain.ledger import Evidence, Movement, MovementType
from node.store.proofs import record_out
from node.store.records import LEDGER
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
        unit_price=getattr(body, "unit_price", None),
    )


# The two writes are coroutines: nothing in them blocks but the wait for the group commit, which they await
# instead of holding one of the thread pool's threads (a hand-off each way per request).
@router.post("/ledger/movements", status_code=201, response_model=RecordOut)
async def post_movement(body: MovementIn, services: ServicesDep, me: AddressDep) -> Response:
    """One movement, written by the node's group commit (node/store/group_commit.py): answered once committed."""
    (record,) = await services.ledger.write_async([with_expiry(body, me)])
    return _json(b"".join(_spliced(record)))


@router.post("/ledger/movements/batch", status_code=201, response_model=MovementBatchOut)
async def post_movements(body: MovementBatchIn, services: ServicesDep, me: AddressDep) -> Response:
    """Many movements at once (a WMS or POS syncing): all written in order, or none (the first refusal names
    its position, `index`, and nothing of the batch is kept)."""
    records = await services.ledger.write_async([with_expiry(m, me) for m in body.movements])
    return _json(b'{"records":[' + b",".join(b"".join(_spliced(r)) for r in records) + b"]}")


def with_expiry(body: MovementIn, me: str) -> tuple[Movement, str | None]:
    """The movement and the expiry a receipt brings for a new lot (None for the other types)."""
    return movement_of(body, me), getattr(body, "expires_on", None)


def _spliced(record: Record) -> tuple[bytes, ...]:
    # The stored canonical JSON is the record as hashed: spliced, not parsed and serialised again.
    return (b'{"record":', record.body.encode(), b',"leaf":"', record.leaf.encode(), b'"}')


def _json(content: bytes) -> Response:
    return Response(content, status_code=201, media_type="application/json")


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
