"""HTTP routes of settlement (docs/settlement.md): close a period, the statements and their signatures, the
live contribution view. Members fetch a proposed statement here (with the audit token) to recompute it."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Body, Path, Query
from starlette.concurrency import run_in_threadpool

from node.api.deps import AuditorDep, OperatorDep, SettlementsDep
from node.api.errors import ERROR_RESPONSES
from node.api.responses import ContributionsOut, PeriodClosedOut, StatementOut, StatementSummaryOut
from node.api.schemas import IsoDate, PeriodIn

router = APIRouter(prefix="/settlement", tags=["settlement"], responses=ERROR_RESPONSES)
StatementId = Annotated[str, Path(pattern=r"^0x[0-9a-f]{64}$", description="0x + 64 lowercase hex digits")]


@router.post("/periods", status_code=201, dependencies=[OperatorDep])
async def close_period(body: Annotated[PeriodIn, Body()], settlements: SettlementsDep) -> PeriodClosedOut:
    """Compute the period's statement from every member's verified anchored records, sign it and send it to
    every member, which recompute it and sign the same hash (or dispute it). Final once all have signed."""
    closed = await run_in_threadpool(settlements.close, date.fromisoformat(body.start), date.fromisoformat(body.end))
    return PeriodClosedOut.model_validate(closed)


@router.get("/statements", dependencies=[AuditorDep])
def statements(settlements: SettlementsDep) -> list[StatementSummaryOut]:
    return [StatementSummaryOut.model_validate(r, from_attributes=True) for r in settlements.statements()]


@router.get("/statements/{statement_id}", dependencies=[AuditorDep])
def statement(statement_id: StatementId, settlements: SettlementsDep) -> StatementOut:
    """The statement as this node computed it, its status here, and every member's signature it holds."""
    return settlements.statement(statement_id)


@router.get("/contributions", dependencies=[OperatorDep])
async def contributions(
    settlements: SettlementsDep,
    start: Annotated[IsoDate, Query(alias="from")],
    end: Annotated[IsoDate, Query(alias="to")],
) -> ContributionsOut:
    """Every member's contribution metrics for a period, live and unsettled, from their verified records."""
    view = await run_in_threadpool(settlements.live_contributions, date.fromisoformat(start), date.fromisoformat(end))
    return ContributionsOut.model_validate(view)
