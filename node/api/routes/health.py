"""Liveness and the anchoring backlog: what a supervisor or an operator checks first."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import func
from sqlmodel import select

from node.api.deps import ServicesDep
from node.api.responses import AnchoringHealthOut, HealthOut, OutboxHealthOut, ProjectionOut, SetAsideOut
from node.domain.states import OutboxStatus, RequestStatus
from node.services.anchoring import waiting_records
from node.store.engine import session_scope
from node.store.records import LEDGER
from node.store.tables import OutboxMessage, ReplenishmentRequest

router = APIRouter(tags=["node"])


@router.get("/health")
def health(services: ServicesDep) -> HealthOut:
    count, oldest = waiting_records(services.engine, LEDGER)
    anchoring = services.anchoring
    with session_scope(services.engine) as s:
        set_aside = s.exec(select(func.count()).where(ReplenishmentRequest.status == RequestStatus.SET_ASIDE)).one()
        waiting, most_attempts = s.exec(
            select(func.count(), func.max(OutboxMessage.attempts)).where(OutboxMessage.status == OutboxStatus.PENDING)
        ).one()
        refused = s.exec(select(func.count()).where(OutboxMessage.status == OutboxStatus.REFUSED)).one()
    differences = services.projection.differences
    degraded = bool(set_aside) or bool(differences) or (anchoring is not None and anchoring.degraded)
    return HealthOut(
        status="degraded" if degraded else "ok",
        node=services.settings.node_name,
        address=services.address,
        anchoring=AnchoringHealthOut(
            enabled=anchoring is not None,
            waiting_records=count,
            oldest_waiting=oldest,
            last_error=anchoring.last_error if anchoring else None,
            confirmations=anchoring.confirmations if anchoring else 0,
            unconfirmed_batches=anchoring.unconfirmed if anchoring else 0,
            reanchoring=sorted(seq for _kind, seq in anchoring.reanchoring) if anchoring else [],
        ),
        outbox=OutboxHealthOut(
            waiting_messages=waiting, refused_messages=refused, most_attempts=int(most_attempts or 0)
        ),
        set_aside=SetAsideOut(replenishment_requests=set_aside),
        projection=ProjectionOut(checked=differences is not None, differences=differences or []),
    )
