"""Liveness and the anchoring backlog: what a supervisor or an operator checks first."""

from __future__ import annotations

from fastapi import APIRouter

from node.api.deps import ServicesDep
from node.api.responses import AnchoringHealthOut, HealthOut
from node.services.anchoring import waiting_records
from node.store.pool import LEDGER

router = APIRouter(tags=["node"])


@router.get("/health")
def health(services: ServicesDep) -> HealthOut:
    count, oldest = waiting_records(services.engine, LEDGER)
    anchoring = services.anchoring
    return HealthOut(
        status="ok",
        node=services.settings.node_name,
        address=services.address,
        anchoring=AnchoringHealthOut(
            enabled=anchoring is not None,
            waiting_records=count,
            oldest_waiting=oldest,
            last_error=anchoring.last_error if anchoring else None,
        ),
    )
