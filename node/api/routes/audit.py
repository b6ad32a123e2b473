"""Proof documents for auditors (docs/proof-format.md): public unless the node sets an audit token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from sqlmodel import col, select

from node.api.deps import AuditorDep, ServicesDep, SessionDep
from node.api.errors import ERROR_RESPONSES
from node.api.responses import AnchorBatchOut, IdentityOut, ProofPageOut, StockBalanceOut
from node.api.schemas import MAX_SAFE
from node.services.container import ANCHORED_KINDS
from node.store import proofs
from node.store.records import LEDGER
from node.store.tables import StockBalance

router = APIRouter(prefix="/audit", tags=["audit"], dependencies=[AuditorDep], responses=ERROR_RESPONSES)


@router.get("/identity")
def identity(services: ServicesDep) -> IdentityOut:
    settings = services.settings
    return IdentityOut(
        node=settings.node_name,
        address=services.address,
        registry=settings.registry_address,
        anchor_contract=settings.anchor_address,
        kinds=list(ANCHORED_KINDS),
    )


@router.get("/records", responses={200: {"model": ProofPageOut}})
def audit_records(
    s: SessionDep,
    kind: str = LEDGER,
    after: Annotated[int, Query(ge=0, le=MAX_SAFE, description="return records with seq > after")] = 0,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
    since: Annotated[str | None, Query(pattern=proofs.ISO_TIME)] = None,
    until: Annotated[str | None, Query(pattern=proofs.ISO_TIME)] = None,
) -> Response:
    """A page of proof documents, spliced from stored canonical text (no parse and re-serialise per record)."""
    return Response(content=proofs.proof_page(s, kind, after, limit, since, until), media_type="application/json")


@router.get("/balances")
def audit_balances(s: SessionDep) -> list[StockBalanceOut]:
    """The balances this node serves, for an auditor to compare with the ones its records add up to."""
    rows = s.exec(select(StockBalance).where(StockBalance.quantity != 0).order_by(col(StockBalance.sku))).all()
    return [StockBalanceOut.model_validate(r, from_attributes=True) for r in rows]


@router.get("/batches")
def audit_batches(s: SessionDep, kind: str = LEDGER) -> list[AnchorBatchOut]:
    return [AnchorBatchOut.model_validate(b, from_attributes=True) for b in proofs.batches(s, kind)]
