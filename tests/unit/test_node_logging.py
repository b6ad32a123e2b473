"""A node's log: one line per request with its request id (taken from X-Request-ID or made, and sent back),
each refusal with its error code at WARNING, never a bearer token. The app runs in-process, without a chain."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from negotiation.messages import MessageRefused
from negotiation.wire import Refusal
from node.api.app import create_app
from node.api.deps import get_router
from node.api.logs import REQUEST_ID_HEADER, RequestIdFilter, configure_logging, formatter
from node.settings import NodeSettings

TOKEN = "operator-secret-token"


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    settings = NodeSettings(database_url=f"sqlite:///{tmp_path / 'node.db'}", anchor_enabled=False, api_token=TOKEN)
    return create_app(settings)


@pytest.fixture
def log_text(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog formatting its lines like a node's handler (configure_logging): with the request id."""
    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(RequestIdFilter())
    caplog.handler.setFormatter(formatter())
    yield caplog


def call(app: FastAPI, method: str, url: str, **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
            return await client.request(method, url, **kwargs)

    return asyncio.run(go())


def lines_with(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [line for line in caplog.text.splitlines() if text in line]


def test_a_request_is_logged_once_with_a_request_id_made_for_it(
    app: FastAPI, log_text: pytest.LogCaptureFixture
) -> None:
    resp = call(app, "GET", "/health")
    assert resp.status_code == 200
    request_id = resp.headers[REQUEST_ID_HEADER]
    assert request_id
    [line] = lines_with(log_text, "GET /health 200")
    assert " INFO node.api.requests " in line and f"[{request_id}]" in line


def test_a_given_request_id_comes_back_and_is_in_the_log_line(app: FastAPI, log_text: pytest.LogCaptureFixture) -> None:
    resp = call(app, "GET", "/health", headers={REQUEST_ID_HEADER: "op-42.a"})
    assert resp.headers[REQUEST_ID_HEADER] == "op-42.a"
    assert lines_with(log_text, "[op-42.a] GET /health 200")


def test_a_malformed_request_id_is_replaced(app: FastAPI, log_text: pytest.LogCaptureFixture) -> None:
    given = "x" * 200
    resp = call(app, "GET", "/health", headers={REQUEST_ID_HEADER: given})
    assert resp.headers[REQUEST_ID_HEADER] != given
    assert given not in log_text.text
    assert lines_with(log_text, f"[{resp.headers[REQUEST_ID_HEADER]}] GET /health 200")


def test_a_401_is_a_warning_with_its_code_and_request_id_and_never_the_token(
    app: FastAPI, log_text: pytest.LogCaptureFixture
) -> None:
    missing = call(app, "GET", "/skus")
    wrong = call(app, "GET", "/skus", headers={"Authorization": "Bearer not-the-token-xyz"})
    assert (missing.status_code, wrong.status_code) == (401, 401)
    for resp in (missing, wrong):
        request_id = resp.headers[REQUEST_ID_HEADER]
        warnings = [
            r for r in log_text.records if r.levelno == logging.WARNING and getattr(r, "request_id", "") == request_id
        ]
        assert len(warnings) == 1 and "unauthorized" in warnings[0].getMessage(), warnings
        assert lines_with(log_text, f"WARNING node.api.errors [{request_id}] GET /skus refused 401 unauthorized")
    assert "not-the-token-xyz" not in log_text.text and TOKEN not in log_text.text


def test_a_422_logs_its_error_code(app: FastAPI, log_text: pytest.LogCaptureFixture) -> None:
    resp = call(app, "POST", "/rules/try", json={"from": "2026-01-01"}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status_code == 422
    [line] = lines_with(log_text, "refused 422 invalid_request")
    assert " WARNING " in line and f"[{resp.headers[REQUEST_ID_HEADER]}]" in line and "body.book" in line
    assert TOKEN not in log_text.text


def test_a_refused_signed_message_names_reason_type_and_claimed_signer(
    app: FastAPI, log_text: pytest.LogCaptureFixture
) -> None:
    class Refusing:
        def receive(self, _envelope: Any) -> Any:
            raise MessageRefused(Refusal.BAD_SIGNATURE, "signature cannot be recovered")

    app.dependency_overrides[get_router] = lambda: Refusing()
    signer = "0x" + "ab" * 20
    envelope = {"type": "Offer", "message": {"supplier": signer, "id": "0x01"}, "signature": "0x00"}
    resp = call(app, "POST", "/negotiation/messages", json=envelope, headers={REQUEST_ID_HEADER: "peer-req-1"})
    assert resp.status_code == 401 and resp.json()["error"] == "bad_signature"
    [line] = lines_with(log_text, "signed message refused")
    assert "WARNING" in line and "[peer-req-1]" in line
    assert "bad_signature" in line and "Offer" in line and signer in line


def test_an_unhandled_error_is_logged_with_its_traceback_and_answered_500(
    app: FastAPI, log_text: pytest.LogCaptureFixture
) -> None:
    def boom() -> None:
        raise RuntimeError("kaboom")

    app.add_api_route("/boom", boom)
    resp = call(app, "GET", "/boom")
    request_id = resp.headers[REQUEST_ID_HEADER]
    assert resp.status_code == 500 and request_id in resp.json()["message"]
    [error] = [r for r in log_text.records if r.levelno == logging.ERROR]
    assert error.exc_info is not None and "kaboom" in log_text.text
    assert getattr(error, "request_id", "") == request_id
    assert lines_with(log_text, f"[{request_id}] GET /boom 500")


def test_startup_and_shutdown_are_logged_outside_any_request(app: FastAPI, log_text: pytest.LogCaptureFixture) -> None:
    async def run_lifespan() -> None:
        async with app.router.lifespan_context(app):
            pass

    asyncio.run(run_lifespan())
    [started] = lines_with(log_text, "starting: member")
    assert "[-]" in started and "partner" in started and "anchoring disabled" in started
    assert lines_with(log_text, "node partner stopped")


def test_configure_logging_installs_one_handler(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    level, hooks = root.level, (sys.excepthook, threading.excepthook)
    try:
        configure_logging("DEBUG")
        configure_logging("INFO")
        added = [h for h in root.handlers if h not in before]
        assert len(added) == 1 and root.level == logging.INFO
        logging.getLogger("node.test").info("hello")
        assert "INFO node.test [-] hello" in capsys.readouterr().err
    finally:
        for h in root.handlers[:]:
            if h not in before:
                root.removeHandler(h)
        root.setLevel(level)
        sys.excepthook, threading.excepthook = hooks


def test_the_log_level_setting() -> None:
    assert NodeSettings().log_level == "INFO"
    assert NodeSettings(log_level="debug").log_level == "DEBUG"
    with pytest.raises(ValueError):
        NodeSettings(log_level="chatty")
