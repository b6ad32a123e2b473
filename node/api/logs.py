"""The node's log: one line per event (time, level, logger, request id, message), and the request id that
ties a request's lines together.

`configure_logging` runs once when a node is served (`consortium node serve`); `RequestIdMiddleware` takes
the caller's `X-Request-ID` if it is a short token (or makes one), keeps it in `REQUEST_ID` while the request
runs, sends it back in the response header and logs each request once (method, path, status, duration:
never its body nor its headers, so never a bearer token). Lines written outside any request (the anchoring
and outbox workers, startup) carry the request id "-".
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
import threading
import time
from contextvars import ContextVar
from types import TracebackType
from typing import Any, TextIO

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from negotiation.messages import SIGNER_FIELD
from negotiation.wire import message_type_of

REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="-")
REQUEST_ID_HEADER = "X-Request-ID"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
# A request id from a caller is kept only if it is a short token: it is written into log lines and headers.
_WELL_FORMED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
# The inbox of signed messages: its body is kept aside (up to this size) so a refusal can name type and signer.
INBOX_PATH = "/negotiation/messages"
INBOX_BODY_KEY = "consortium.inbox_body"
_INBOX_BODY_LIMIT = 64 * 1024

log = logging.getLogger("node.api.requests")


def new_request_id() -> str:
    return secrets.token_hex(8)


def accepted_request_id(value: str | None) -> str | None:
    """The caller's request id if it is a short token, else None (a new one is made)."""
    return value if value is not None and _WELL_FORMED.fullmatch(value) else None


class RequestIdFilter(logging.Filter):
    """Adds `request_id` (the current request's, or "-") to every record that passes the handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True


def formatter() -> logging.Formatter:
    return logging.Formatter(LOG_FORMAT)


class _NodeHandler(logging.StreamHandler[TextIO]):
    """The handler `configure_logging` installs (told apart so that configuring again replaces it)."""


def configure_logging(level: str = "INFO") -> None:
    """Send every logger's records to stderr, one line each, from `level` up; idempotent. Uncaught
    exceptions of the main thread and of worker threads are logged with their traceback too."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _NodeHandler)]:
        root.removeHandler(old)
    handler = _NodeHandler(sys.stderr)
    handler.setFormatter(formatter())
    handler.addFilter(RequestIdFilter())
    root.addHandler(handler)
    root.setLevel(level)
    # Libraries that would fill the log with their own traffic at INFO.
    for noisy in ("httpx", "httpcore", "web3", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    logging.getLogger("node").critical("the node stops on an uncaught exception", exc_info=(kind, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("node").error(
        "thread %s stopped on an uncaught exception",
        name,
        exc_info=(args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback),
    )


class RequestIdMiddleware:
    """Pure ASGI: the request id in and out, one log line per request, and an unhandled exception logged with
    its traceback and answered 500 with the usual error body (its message names the request id)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope.get("headers", []):
            if name == b"x-request-id":
                incoming = accepted_request_id(value.decode("latin-1"))
                break
        request_id = incoming or new_request_id()
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        if scope.get("method") == "POST" and scope.get("path", "").endswith(INBOX_PATH):
            receive = _keep_body(scope, receive)

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = int(message["status"])
                response_started = True
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            status = 500
            log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if response_started:
                raise
            await _internal_error(send_with_id, request_id)
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            log.info("%s %s %s %.1fms", scope.get("method"), scope.get("path"), status, elapsed_ms)
            REQUEST_ID.reset(token)


def _keep_body(scope: Scope, receive: Receive) -> Receive:
    chunks: list[bytes] = []
    size = 0

    async def receive_and_keep() -> Message:
        nonlocal size
        message = await receive()
        if message["type"] == "http.request" and size <= _INBOX_BODY_LIMIT:
            chunk: bytes = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            if not message.get("more_body", False) and size <= _INBOX_BODY_LIMIT:
                scope[INBOX_BODY_KEY] = b"".join(chunks)
        return message

    return receive_and_keep


async def _internal_error(send: Send, request_id: str) -> None:
    body = json.dumps(
        {"error": "internal_error", "message": f"internal error (request {request_id})", "detail": {}}
    ).encode()
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": 500, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def inbox_envelope_facts(scope: Scope) -> dict[str, Any]:
    """Type and claimed signer of the signed message a request to the inbox carried, as far as they can be
    read (a refusal logs them; the signer is only the one the message claims)."""
    raw = scope.get(INBOX_BODY_KEY)
    if not raw:
        return {}
    try:
        return envelope_facts(json.loads(raw))
    except ValueError:
        return {}


def envelope_facts(envelope: Any) -> dict[str, Any]:
    """Type and claimed signer of a signed message, as far as they can be read."""
    if not isinstance(envelope, dict):
        return {}
    type_ = envelope.get("type")
    message = envelope.get("message") or {}
    facts: dict[str, Any] = {"type": printable(str(type_)) if type_ is not None else None}
    known = message_type_of(type_)
    field = SIGNER_FIELD[known] if known is not None else None
    if field and isinstance(message, dict) and isinstance(message.get(field), str):
        facts["signer"] = printable(message[field])
    return facts


def printable(text: str, limit: int = 64) -> str:
    """A sender's text as a log line may hold it: at most `limit` characters, control characters escaped (a
    newline in a claimed type must not start a forged log line)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:limit])
