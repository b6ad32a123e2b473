"""The node's HTTP app: the services built once, the error map, one router per area. Routes stay thin: they
parse, call a service or the store, and answer with an `*Out` model."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from node.api.console import pages as console
from node.api.errors import install_error_handlers
from node.api.limits import RequestLimits, TokenBucket
from node.api.logs import RequestIdMiddleware, configure_logging
from node.api.routes import audit, auth, health, ledger, loans, negotiation, pool, purchases, rules, settlement
from node.services.container import NodeServices
from node.settings import NodeSettings

log = logging.getLogger("node")
# Shipped as package data beside the console's stylesheet; served as /favicon.ico, where browsers look by default.
FAVICON = console.HERE / "static" / "favicon.ico"
# Where fastapi-offline mounts the Swagger UI and ReDoc assets it ships (its default).
OFFLINE_DOCS_ASSETS = "/static-offline-docs"


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=(parts.hostname or "") + (f":{parts.port}" if parts.port else "")))


def create_app_from_environment() -> FastAPI:
    """The app of one worker process when a node serves with several (uvicorn imports this factory in each)."""
    settings = NodeSettings()
    configure_logging(settings.log_level)
    try:
        return create_app(settings)
    except Exception:
        log.exception("a worker of node %s did not start", settings.node_name)
        raise


def create_app(settings: NodeSettings, services: NodeServices | None = None) -> FastAPI:
    node = services or NodeServices(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        log.info(
            "node %s starting: member %s, listening on %s:%s (public %s), chain %s, registry %s, anchors %s%s, "
            "rules %s, rule book file %s, database %s",
            settings.node_name,
            node.address,
            settings.host,
            settings.port,
            settings.public_url or "-",
            _without_credentials(settings.rpc_url),
            settings.registry_address or "-",
            settings.anchor_address or "-",
            "" if settings.anchor_enabled else " (anchoring disabled)",
            settings.rules_address or "-",
            settings.rulebook_file or "-",
            node.engine.url.render_as_string(hide_password=True),
        )
        if node.negotiation is None:
            log.warning("no member registry configured: this node cannot negotiate (CONSORTIUM_REGISTRY_ADDRESS)")
        try:
            node.start()
        except Exception:
            log.exception("node %s could not start its workers", settings.node_name)
            raise
        log.info("node %s started", settings.node_name)
        try:
            yield
        finally:
            log.info("node %s stopping", settings.node_name)
            node.stop()
            log.info("node %s stopped", settings.node_name)

    app = FastAPIOffline(
        title=f"Consortium node {settings.node_name}",
        description="A partner's inventory pool, its append-only ledger, and proofs of its on-chain anchors.",
        version="0.1.0",
        lifespan=lifespan,
        redoc_url=None,  # served below, without the CDN logo
        favicon_url="/favicon.ico",
    )
    _serve_redoc_and_favicon(app)
    app.state.services = node
    app.state.auth_limiter = TokenBucket(settings.auth_per_second, settings.auth_burst)
    install_error_handlers(app)
    # The last added runs first: the request id wraps the limits, so a body refused unread is logged with its id.
    app.add_middleware(RequestLimits, token=lambda: settings.api_token)
    app.add_middleware(RequestIdMiddleware)
    for area in (health, pool, ledger, audit, auth, negotiation, purchases, loans, rules, settlement):
        app.include_router(area.router)
    # The operator console: pages for people, beside the API for machines (node/api/console/).
    app.include_router(console.root)
    app.include_router(console.router)
    app.mount("/console/static", StaticFiles(directory=console.HERE / "static"), name="console-static")
    return app


def _serve_redoc_and_favicon(app: FastAPI) -> None:
    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(FAVICON, media_type="image/x-icon")

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{OFFLINE_DOCS_ASSETS}/redoc.standalone.js",
            with_google_fonts=False,
            redoc_favicon_url=f"{root}/favicon.ico",
        )
        # ReDoc's bundle puts Redocly's logo, fetched from their CDN, in the sidebar, with no option to leave it
        # out: images from other hosts are refused, so the browser never asks for it and ReDoc drops the image.
        page.headers["Content-Security-Policy"] = "img-src 'self' data:"
        return page
