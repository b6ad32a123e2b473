"""Console sessions: who signed in (operator or auditor) and the CSRF token their forms carry, in a cookie
signed with a key derived from the operator token (itsdangerous): a node restart keeps people signed in, a
new operator token signs everyone out. Nothing is stored on the server."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE = "consortium_console"
MAX_AGE_SECONDS = 12 * 3600  # a working day: sign in once per shift
Role = Literal["operator", "auditor"]


@dataclass(frozen=True)
class ConsoleSession:
    role: Role
    csrf: str

    @property
    def operator(self) -> bool:
        return self.role == "operator"

    def csrf_ok(self, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(str(given).encode(), self.csrf.encode())


def _serializer(operator_token: str) -> URLSafeTimedSerializer:
    key = hashlib.sha256(b"consortium-console\x00" + operator_token.encode()).hexdigest()
    return URLSafeTimedSerializer(key, salt="console-session")


def role_of(token: str, operator_token: str, audit_token: str | None) -> Role | None:
    """Which door a token typed into the sign-in form opens (constant-time comparisons)."""
    given = token.strip().encode()
    if not given:
        return None
    if hmac.compare_digest(given, operator_token.encode()):
        return "operator"
    if audit_token and hmac.compare_digest(given, audit_token.encode()):
        return "auditor"
    return None


def issue(role: Role, operator_token: str) -> str:
    """A new session's cookie value, with a fresh CSRF token."""
    return str(_serializer(operator_token).dumps({"role": role, "csrf": secrets.token_urlsafe(24)}))


def read(cookie: str | None, operator_token: str) -> ConsoleSession | None:
    """The session a cookie carries, or None (absent, forged, expired, or signed under another token)."""
    if not cookie:
        return None
    try:
        data = _serializer(operator_token).loads(cookie, max_age=MAX_AGE_SECONDS)
    except BadSignature:
        return None
    if not isinstance(data, dict) or data.get("role") not in ("operator", "auditor"):
        return None
    return ConsoleSession(data["role"], str(data.get("csrf", "")))


def cookie_of(header: str | None) -> str | None:
    """The console cookie's value in a raw Cookie header (for the body-limits middleware, before routing)."""
    for part in (header or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value
    return None
