"""The node's HTTP app: the services built once, the error map, one router per area. Routes stay thin: they
parse, call a service or the store, and answer with an `*Out` model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from node.api.errors import install_error_handlers
from node.api.routes import audit, health, ledger, negotiation, pool, rules
from node.services.container import NodeServices
from node.settings import NodeSettings


def create_app(settings: NodeSettings, services: NodeServices | None = None) -> FastAPI:
    node = services or NodeServices(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        node.start()
        yield
        node.stop()

    app = FastAPIOffline(
        title=f"Consortium node {settings.node_name}",
        description="A partner's inventory pool, its append-only ledger, and proofs of its on-chain anchors.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.services = node
    install_error_handlers(app)
    for area in (health, pool, ledger, audit, negotiation, rules):
        app.include_router(area.router)
    return app
