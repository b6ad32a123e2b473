"""The node's HTTP API. Routers stay thin: they parse, call the pool or the audit queries, and answer."""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from eth_account import Account
from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Engine
from sqlmodel import select

from chain.anchor_client import AnchorWriter
from chain.registry_client import MemberRegistryClient
from negotiation.messages import MessageRefused
from node.api.routes.negotiation import negotiation_router
from node.api.routes.rules import rules_router
from node.api.schemas import LocationIn, LotIn, MovementIn, SkuIn
from node.domain.ledger import Evidence, Movement, MovementType
from node.errors import (
    AlreadyExists,
    ChainUnreachable,
    EvidenceRequired,
    InsufficientStock,
    InvalidMovement,
    NodeError,
    NotConfigured,
    NotFound,
    RuleBookNotActive,
    RuleBookRejected,
    Unauthorized,
)
from node.services.anchoring import AnchoringService, AnchorPolicy, waiting_records
from node.services.negotiator import NegotiationPolicy, Negotiator
from node.services.rules_keeper import RuleKeeper
from node.settings import NodeSettings
from node.store import proofs as audit_views
from node.store.engine import make_engine, session_scope
from node.store.pool import LEDGER, add_location, add_lot, add_sku, record_movement
from node.store.tables import Location, Lot, Record, Sku, StockBalance

log = logging.getLogger(__name__)

# The one place where error types become HTTP status codes.
STATUS_OF: dict[type[NodeError], int] = {
    Unauthorized: 401,
    NotFound: 404,
    AlreadyExists: 409,
    InsufficientStock: 409,
    InvalidMovement: 422,
    EvidenceRequired: 422,
    RuleBookRejected: 422,
    RuleBookNotActive: 409,
    NotConfigured: 503,
    ChainUnreachable: 503,
}


# Why a signed message was refused (negotiation/messages.py reasons) -> status.
REFUSAL_STATUS: dict[str, int] = {
    "malformed": 422,
    "unknown_type": 422,
    "bad_signature": 401,
    "wrong_signer": 401,
    "not_a_member": 403,
    "not_authorised": 403,
    "not_yours": 403,
    "out_of_radius": 403,
    "unknown_subject": 404,
    "replayed": 409,
    "closed": 409,
    "rule_version": 409,
    "expired": 410,
}


def _error_body(code: str, message: str, detail: Any) -> dict[str, Any]:
    return {"error": code, "message": message, "detail": detail}


class NodeContext:
    def __init__(self, settings: NodeSettings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.address: str = Account.from_key(settings.private_key).address
        self.anchoring: AnchoringService | None = None
        self.negotiator: Negotiator | None = None
        directory = (
            MemberRegistryClient(settings.rpc_url, settings.registry_address) if settings.registry_address else None
        )
        self.rules = RuleKeeper(
            engine,
            settings.rpc_url,
            settings.rules_address,
            directory,
            settings.private_key,
            lambda: settings.public_url or f"http://{settings.host}:{settings.port}",
        )
        if settings.rulebook_file:
            self.rules.add_file(Path(settings.rulebook_file))
        if settings.registry_address:
            self.negotiator = Negotiator(
                engine,
                settings.rpc_url,
                settings.registry_address,
                settings.private_key,
                settings.consortium_name,
                NegotiationPolicy(settings.safety_stock, settings.auto_plan_after_seconds),
                self.rules,
            )
        if settings.anchor_enabled and settings.anchor_address:
            anchor_address = settings.anchor_address
            self.anchoring = AnchoringService(
                engine,
                lambda: AnchorWriter(settings.rpc_url, anchor_address, settings.private_key),
                AnchorPolicy(settings.anchor_batch_size, settings.anchor_interval_seconds, settings.anchor_max_leaves),
                retry_max_seconds=settings.chain_retry_max_seconds,
            )


def create_app(settings: NodeSettings) -> FastAPI:
    engine = make_engine(settings.database_url, settings.sqlite_synchronous)
    ctx = NodeContext(settings, engine)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if ctx.anchoring is not None:
            ctx.anchoring.start()
        if ctx.negotiator is not None:
            ctx.negotiator.start()
        yield
        if ctx.negotiator is not None:
            ctx.negotiator.stop()
        if ctx.anchoring is not None:
            ctx.anchoring.stop()
        engine.dispose()

    app = FastAPI(
        title=f"Consortium node {settings.node_name}",
        description="A partner's inventory pool, its append-only ledger, and proofs of its on-chain anchors.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.ctx = ctx

    @app.exception_handler(NodeError)
    async def _node_error(_req: Request, exc: NodeError) -> JSONResponse:
        return JSONResponse(_error_body(exc.code, exc.message, exc.detail), status_code=STATUS_OF[type(exc)])

    @app.exception_handler(MessageRefused)
    async def _refused(_req: Request, exc: MessageRefused) -> JSONResponse:
        status = REFUSAL_STATUS.get(exc.reason, 422)
        return JSONResponse(_error_body(exc.reason, exc.message, {}), status_code=status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_req: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"where": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", "")} for e in exc.errors()
        ]
        message = "; ".join(f"{p['where']}: {p['problem']}" for p in problems) or "invalid request"
        return JSONResponse(_error_body("invalid_request", message, problems), status_code=422)

    def operator(authorization: Annotated[str | None, Header()] = None) -> None:
        _check_bearer(authorization, settings.api_token)

    def auditor(authorization: Annotated[str | None, Header()] = None) -> None:
        if settings.audit_token:
            token = (authorization or "").removeprefix("Bearer ").strip()
            if not (hmac.compare_digest(token, settings.audit_token) or hmac.compare_digest(token, settings.api_token)):
                raise Unauthorized("an auditor's or operator's bearer token is required")

    op = [Depends(operator)]
    au = [Depends(auditor)]

    @app.get("/health", tags=["node"])
    def health() -> dict[str, Any]:
        count, oldest = waiting_records(engine, LEDGER)
        return {
            "status": "ok",
            "node": settings.node_name,
            "address": ctx.address,
            "anchoring": {
                "enabled": ctx.anchoring is not None,
                "waiting_records": count,
                "oldest_waiting": oldest,
                "last_error": ctx.anchoring.last_error if ctx.anchoring else None,
            },
        }

    @app.post("/skus", status_code=201, dependencies=op, tags=["pool"])
    def create_sku(body: SkuIn) -> Sku:
        with session_scope(engine) as s:
            return add_sku(s, Sku(**body.model_dump()))

    @app.get("/skus", dependencies=op, tags=["pool"])
    def list_skus() -> list[Sku]:
        with session_scope(engine) as s:
            return list(s.exec(select(Sku).order_by(Sku.code)).all())

    @app.post("/locations", status_code=201, dependencies=op, tags=["pool"])
    def create_location(body: LocationIn) -> Location:
        loc = Location(
            code=body.code,
            name=body.name,
            kind=body.kind,
            lat_e6=int(body.lat * 1_000_000),
            lon_e6=int(body.lon * 1_000_000),
        )
        with session_scope(engine) as s:
            return add_location(s, loc)

    @app.get("/locations", dependencies=op, tags=["pool"])
    def list_locations() -> list[Location]:
        with session_scope(engine) as s:
            return list(s.exec(select(Location).order_by(Location.code)).all())

    @app.post("/lots", status_code=201, dependencies=op, tags=["pool"])
    def create_lot(body: LotIn) -> Lot:
        with session_scope(engine) as s:
            return add_lot(s, Lot(**body.model_dump()))

    @app.get("/lots", dependencies=op, tags=["pool"])
    def list_lots(sku: str | None = None) -> list[Lot]:
        with session_scope(engine) as s:
            q = select(Lot)
            if sku:
                q = q.where(Lot.sku == sku)
            return list(s.exec(q.order_by(Lot.sku, Lot.code)).all())

    @app.post("/ledger/movements", status_code=201, dependencies=op, tags=["ledger"])
    def post_movement(body: MovementIn) -> dict[str, Any]:
        movement = Movement(
            type=MovementType(body.type),
            sku=body.sku,
            lot=body.lot,
            location=body.location,
            quantity=body.quantity,
            owner=body.owner or ctx.address,
            holder=body.holder or ctx.address,
            status=body.status,
            to_location=getattr(body, "to_location", None),
            to_status=getattr(body, "to_status", None),
            evidence=tuple(Evidence(e.source, e.reference) for e in body.evidence),
            memo=body.memo,
            corrects=body.corrects,
        )
        with session_scope(engine) as s:
            record = record_movement(s, ctx.address, movement, getattr(body, "expires_on", None))
            out = audit_views.record_out(record)
        if ctx.anchoring is not None:
            ctx.anchoring.notify()
        return out

    @app.get("/ledger/records", dependencies=op, tags=["ledger"])
    def list_records(
        after: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=5000)] = 100,
        type: str | None = None,
    ) -> list[dict[str, Any]]:
        with session_scope(engine) as s:
            q = select(Record).where(Record.kind == LEDGER, Record.seq > after)
            if type:
                q = q.where(Record.type == type)
            rows = s.exec(q.order_by(Record.seq).limit(limit)).all()  # type: ignore[arg-type]
            return [audit_views.record_out(r) for r in rows]

    @app.get("/stock", dependencies=op, tags=["pool"])
    def stock(
        sku: str | None = None,
        lot: str | None = None,
        location: str | None = None,
        owner: str | None = None,
        holder: str | None = None,
        status: str | None = None,
    ) -> list[StockBalance]:
        with session_scope(engine) as s:
            q = select(StockBalance).where(StockBalance.quantity > 0)
            for column, value in (
                (StockBalance.sku, sku),
                (StockBalance.lot, lot),
                (StockBalance.location, location),
                (StockBalance.owner, owner),
                (StockBalance.holder, holder),
                (StockBalance.status, status),
            ):
                if value is not None:
                    q = q.where(column == value)
            return list(s.exec(q.order_by(StockBalance.sku, StockBalance.location)).all())

    @app.post("/anchoring/flush", dependencies=op, tags=["anchoring"])
    def flush() -> dict[str, Any]:
        """Anchor everything that waits now, without waiting for the size or time trigger."""
        if ctx.anchoring is None:
            raise NotConfigured("anchoring is not configured on this node (CONSORTIUM_ANCHOR_ADDRESS)")
        return {"anchored_batches": ctx.anchoring.step(force=True)}

    @app.get("/audit/identity", dependencies=au, tags=["audit"])
    def identity() -> dict[str, Any]:
        return {
            "node": settings.node_name,
            "address": ctx.address,
            "registry": settings.registry_address,
            "anchor_contract": settings.anchor_address,
            "kinds": [LEDGER],
        }

    @app.get("/audit/records", dependencies=au, tags=["audit"])
    def audit_records(
        kind: str = LEDGER,
        after: Annotated[int, Query(ge=0, description="return records with seq > after")] = 0,
        limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
        since: Annotated[str | None, Query(pattern=audit_views.ISO_TIME)] = None,
        until: Annotated[str | None, Query(pattern=audit_views.ISO_TIME)] = None,
    ) -> Response:
        with session_scope(engine) as s:
            text = audit_views.proof_page(s, kind, after, limit, since, until)
        return Response(content=text, media_type="application/json")

    @app.get("/audit/batches", dependencies=au, tags=["audit"])
    def audit_batches(kind: str = LEDGER) -> list[dict[str, Any]]:
        with session_scope(engine) as s:
            return audit_views.batches(s, kind)

    def negotiator() -> Negotiator:
        if ctx.negotiator is None:
            raise NotConfigured("negotiation needs the member registry (CONSORTIUM_REGISTRY_ADDRESS)")
        return ctx.negotiator

    app.include_router(negotiation_router(negotiator, op))
    app.include_router(rules_router(ctx.rules, op, ctx.address, settings.safety_stock))
    return app


def _check_bearer(authorization: str | None, token: str) -> None:
    if not authorization or not authorization.startswith("Bearer "):
        raise Unauthorized("missing bearer token (Authorization: Bearer <token>)")
    if not hmac.compare_digest(authorization.removeprefix("Bearer ").strip(), token):
        raise Unauthorized("wrong bearer token")
