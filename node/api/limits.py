"""Bounds on what a request may send, enforced before anything parses it.

A JSON body nested 100,000 levels deep (200 kB) used to crash a node outright: eth-account's py_ecc raises
Python's recursion limit to 100,000, so the C JSON decoder recursed until the native stack ran out. Every body
is now bounded in size and in nesting depth as its bytes arrive, and a body for an operator endpoint is not
read at all without the operator's token: an unauthenticated client cannot make a node parse anything but a
signed message, and that only up to `MAX_MESSAGE_BYTES`.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from node.api.console import session as console_session
from node.api.console.session import cookie_of
from node.api.deps import bearer_is
from node.api.errors import STATUS_OF, error_body
from node.errors import BodyTooDeep, BodyTooLarge, RequestError, Unauthorized

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]
ASGIApp = Callable[[Scope, Receive, Send], Any]

MAX_BODY_BYTES = 4 * 1024 * 1024  # an operator's request: a rule book, a sandbox run, a movement
MAX_MESSAGE_BYTES = 64 * 1024  # a signed message from another node: a few hundred bytes in practice
MAX_MESSAGE_BATCH_BYTES = 1024 * 1024  # up to 100 signed messages from one peer (MAX_MESSAGES_PER_BATCH)
MAX_DEPTH = 64  # nesting of arrays and objects; rule books nest about 10 deep

# Bodies anyone may send, and their limits: signed messages authenticate themselves by their signature, not a
# token; the console's sign-in form carries the token itself.
PUBLIC_BODIES = {
    "/negotiation/messages": MAX_MESSAGE_BYTES,
    "/negotiation/messages/batch": MAX_MESSAGE_BATCH_BYTES,
    "/console/sign-in": MAX_MESSAGE_BYTES,
    "/auth/siwe": MAX_MESSAGE_BYTES,
    "/auth/revoke": MAX_MESSAGE_BYTES,  # the route asks for the credential it revokes
}
CONSOLE = "/console/"
_STRUCTURE = re.compile(rb'[\[\]{}"\\]')


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    """True if arrays/objects nest deeper than `limit` anywhere in `body` (strings skipped, escapes honoured)."""
    depth, in_string, escaped_at = 0, False, -1
    for match in _STRUCTURE.finditer(body):
        at, char = match.start(), match.group()
        if at == escaped_at:  # the byte after a backslash in a string is never structural
            continue
        if in_string:
            if char == b"\\":
                escaped_at = at + 1
            elif char == b'"':
                in_string = False
        elif char == b'"':
            in_string = True
        elif char in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif char in (b"]", b"}"):
            depth -= 1
    return False


class RequestLimits:
    """ASGI middleware: size and depth bounds on every body, and the operator's token before an operator body
    is read. `token()` gives the operator token (read from the settings when a request arrives)."""

    def __init__(self, app: ASGIApp, token: Callable[[], str]) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        try:
            body = await self._read(scope, receive)
        except RequestError as refused:
            await _refuse(send, refused)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:  # the app asks again only to learn of a disconnect
                message: Message = await receive()
                return message
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _read(self, scope: Scope, receive: Receive) -> bytes:
        path: str = scope["path"]
        public = PUBLIC_BODIES.get(path)
        if public is None and not self._operator(scope) and not self._signed_in(scope):
            raise Unauthorized("missing or wrong bearer token (Authorization: Bearer <token>)")
        limit = public or MAX_BODY_BYTES
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise BodyTooLarge(f"a body on {path} may hold at most {limit} bytes", limit=limit)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(f"a body on {path} may hold at most {limit} bytes", limit=limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if json_depth_exceeds(body, MAX_DEPTH):
            raise BodyTooDeep(f"JSON may nest at most {MAX_DEPTH} levels", limit=MAX_DEPTH)
        return body

    def _operator(self, scope: Scope) -> bool:
        return bearer_is(_header(scope, b"authorization"), self.token())

    def _signed_in(self, scope: Scope) -> bool:
        """A console form, from someone signed in (the page then checks the role and the CSRF token)."""
        path: str = scope["path"]
        return (
            path.startswith(CONSOLE)
            and console_session.read(cookie_of(_header(scope, b"cookie")), self.token()) is not None
        )


class TokenBucket:
    """A token bucket per key (a client's IP): `burst` requests at once, refilled at `per_second`. Held in
    memory by each worker process, so a node of N workers lets a client through up to N times the rate."""

    MAX_KEYS = 10_000  # beyond it the full buckets are forgotten: a flood of addresses cannot grow memory

    def __init__(self, per_second: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = per_second
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when counted)
        self._lock = threading.Lock()

    def take(self, key: str) -> bool:
        """True if `key` may make one more request now (and counts it)."""
        now = self.clock()
        with self._lock:
            tokens, then = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) * self.per_second)
            allowed = tokens >= 1
            self._buckets[key] = (tokens - 1 if allowed else tokens, now)
            if len(self._buckets) > self.MAX_KEYS:
                self._forget_full(now)
        return allowed

    def _forget_full(self, now: float) -> None:
        self._buckets = {
            key: (tokens, then)
            for key, (tokens, then) in self._buckets.items()
            if tokens + (now - then) * self.per_second < self.burst
        }
        if len(self._buckets) > self.MAX_KEYS:  # that many clients busy at once: start every one afresh
            self._buckets.clear()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def _refuse(send: Send, refused: RequestError) -> None:
    status = STATUS_OF[type(refused)]
    log.warning("refused %s (%s) before reading the body: %s", status, refused.code, refused.message)
    body = json.dumps(error_body(refused.code, refused.message, refused.detail)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
