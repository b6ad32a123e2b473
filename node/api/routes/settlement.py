"""HTTP routes of settlement (docs/settlement.md): close a period, the statements and their life cycle (approve,
dispute, withdraw), the live contribution view. Members fetch a proposed statement here (with the audit token)
to recompute it."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Body, Path, Query
from starlette.concurrency import run_in_threadpool

from node.api.deps import AuditorDep, OperatorDep, SettlementsDep
from node.api.errors import ERROR_RESPONSES
from node.api.responses import ContributionsOut, StatementOut, StatementStateOut, StatementSummaryOut
from node.api.schemas import IsoDate, PeriodIn, StatementDisputeIn, StatementWithdrawalIn
from node.services.approvals import FlowKey

router = APIRouter(prefix="/settlement", tags=["settlement"], responses=ERROR_RESPONSES)
StatementId = Annotated[str, Path(pattern=r"^0x[0-9a-f]{64}$", description="0x + 64 lowercase hex digits")]


@router.post("/periods", status_code=201, dependencies=[OperatorDep])
async def close_period(body: Annotated[PeriodIn, Body()], settlements: SettlementsDep) -> StatementStateOut:
    """Compute the period's statement from every member's verified anchored records and send it to every member,
    which recompute it. It then awaits each member's approval, this node's too: final once all have approved."""
    closed = await run_in_threadpool(
        settlements.close, date.fromisoformat(body.start), date.fromisoformat(body.end), body.corrects
    )
    return StatementStateOut.model_validate(closed)


@router.get("/statements", dependencies=[AuditorDep])
def statements(settlements: SettlementsDep) -> list[StatementSummaryOut]:
    return [StatementSummaryOut.model_validate(r, from_attributes=True) for r in settlements.statements()]


@router.get("/statements/{statement_id}", dependencies=[AuditorDep])
def statement(statement_id: StatementId, settlements: SettlementsDep) -> StatementOut:
    """The statement as this node computed it, its status here, every member's signed approval it holds, and
    its life cycle here: how this node approved, its approval deadline, members' disputes, a withdrawal."""
    return settlements.statement(statement_id)


@router.post("/statements/{statement_id}/approve", dependencies=[OperatorDep])
async def approve(statement_id: StatementId, settlements: SettlementsDep) -> StatementStateOut:
    """This member approves the statement awaiting it: its node signs the hash and sends the approval to every
    member (409 `statement_not_ready` while it is recomputed here; 409 `period_approved` if this member approved
    another statement of an overlapping period that may still go final)."""
    return StatementStateOut.model_validate(await run_in_threadpool(settlements.approve, statement_id))


@router.post("/statements/{statement_id}/dispute", dependencies=[OperatorDep])
async def dispute(
    statement_id: StatementId, body: Annotated[StatementDisputeIn, Body()], settlements: SettlementsDep
) -> StatementStateOut:
    """This member disputes the statement awaiting it, saying why and naming the flows it contests: it stops on
    every node the dispute reaches, and the proposer shows the reason and the lines."""
    lines: list[FlowKey] = [
        {"kind": line.kind, "reference": line.reference, "from": line.payer, "to": line.payee} for line in body.lines
    ]
    disputed = await run_in_threadpool(settlements.dispute, statement_id, body.reason, lines)
    return StatementStateOut.model_validate(disputed)


@router.post("/statements/{statement_id}/withdraw", dependencies=[OperatorDep])
async def withdraw(
    statement_id: StatementId, settlements: SettlementsDep, body: Annotated[StatementWithdrawalIn | None, Body()] = None
) -> StatementStateOut:
    """The proposer withdraws its statement (before approving it, or once it is disputed): withdrawn everywhere."""
    reason = body.reason if body is not None else ""
    return StatementStateOut.model_validate(await run_in_threadpool(settlements.withdraw, statement_id, reason))


@router.get("/contributions", dependencies=[OperatorDep])
async def contributions(
    settlements: SettlementsDep,
    start: Annotated[IsoDate, Query(alias="from")],
    end: Annotated[IsoDate, Query(alias="to")],
) -> ContributionsOut:
    """Every member's contribution metrics for a period, live and unsettled, from their verified records."""
    view = await run_in_threadpool(settlements.live_contributions, date.fromisoformat(start), date.fromisoformat(end))
    return ContributionsOut.model_validate(view)
