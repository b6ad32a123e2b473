"""Every call a node makes to another node, and every call the auditor and the CLI make to a node, through
one typed client.

A `PeerClient` wraps one `httpx.Client`: real HTTP in production, or whatever transport a test hands it
(`httpx.MockTransport`, the in-process router of the tests). Each call is one method with a typed answer;
what keeps a call from its answer is one of three exceptions (chain/errors.py):

    PeerUnreachable       no answer: a refused connection, a timeout, a URL that is no URL
    PeerAnsweredError     an answer whose status is not 2xx: the status, error code, body and request id kept
    PeerAnswerMalformed   a 2xx answer whose body is not the shape the call expects

How long each call may wait and which calls carry the bearer token are decided here, once. The token goes
only where a node asks for one (its audit pages, its statements, an operator's call); signed messages and
rule books are public and go without it, as they always have.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypedDict
from urllib.parse import quote

import httpx
import orjson
from eth_account import Account

from chain.errors import PeerAnsweredError, PeerAnswerMalformed, PeerError, PeerUnreachable
from chain.records import Line
from chain.siwe import sign_in_message, sign_text

__all__ = [
    "AuditIdentity",
    "AuditPage",
    "MessageAnswer",
    "PeerAnswerMalformed",
    "PeerAnsweredError",
    "PeerClient",
    "PeerError",
    "PeerUnreachable",
    "ServedBalance",
    "SignedIn",
    "Timeouts",
]

# A proof document (docs/proof-format.md section 2): chain/audit.py reads and checks it.
ProofDocument = dict[str, Any]
# What a node answers to an operator's call: each command reads its own route's answer.
JsonValue = Any


@dataclass(frozen=True)
class SignedIn:
    """A bearer credential a node issued for a sign-in: send it as `Authorization: Bearer <access_token>`."""

    access_token: str
    expires_at: str  # RFC 3339, UTC


@dataclass(frozen=True)
class Timeouts:
    """Seconds to wait for a peer's answer, by what is asked."""

    message: float = 10.0  # one signed message, or a batch of them
    rule_book: float = 3.0  # asked of each member in turn before a decision: a slow one is passed over
    statement: float = 10.0
    audit_page: float = 60.0  # a page of up to 5000 proof documents
    operator: float = 120.0  # an operator's call: closing a period, trying a rule book on a node's history


@dataclass(frozen=True)
class MessageAnswer:
    """A node's answer to one signed message: its status, its refusal code ("" when admitted), the body."""

    status: int
    error: str
    body: str


class AuditIdentity(TypedDict):
    """GET /audit/identity: who the node says it is; the auditor checks it against the member registry."""

    node: str
    address: str
    registry: str | None
    anchor_contract: str | None
    kinds: list[str]


class AuditPage(TypedDict):
    """GET /audit/records: one page of proof documents in seq order, and where the next page starts."""

    format: str
    kind: str
    items: list[ProofDocument]
    next_after: int | None


# GET /audit/balances: one row as the node shows it, a bucket of stock and its quantity (a posting's shape).
ServedBalance = Line


class PeerClient:
    """One node's (or the auditor's) way to every other node: wraps `http`, closed with it."""

    def __init__(
        self, http: httpx.Client | None = None, token: str | None = None, timeouts: Timeouts = Timeouts()
    ) -> None:
        """`token`: the bearer token for the calls a node guards (audit pages, statements, operator calls)."""
        self.http = http if http is not None else httpx.Client()
        self.token = token
        self.timeouts = timeouts

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> PeerClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- signed messages (docs/protocol.md sections 1 and 6) ----------------------------------------------------
    def post_message(self, node_url: str, envelope: str, request_id: str | None = None) -> MessageAnswer:
        """POST one signed envelope (JSON text) to the node's inbox. `request_id` goes as X-Request-ID, so the
        node's log lines about it carry it too. A refusal raises PeerAnsweredError with its status and code."""
        resp = self._send("POST", _url(node_url, "/negotiation/messages"), envelope.encode(), request_id)
        return MessageAnswer(resp.status_code, "", resp.text)

    def post_messages(
        self, node_url: str, envelopes: Sequence[str], request_id: str | None = None
    ) -> list[MessageAnswer]:
        """POST signed envelopes (JSON text each) in one request to the node's batch inbox: each one's own
        answer, in order. A batch refused as a whole raises PeerAnsweredError; an answer that does not give
        one result per envelope raises PeerAnswerMalformed."""
        url = _url(node_url, "/negotiation/messages/batch")
        content = b'{"messages":[' + b",".join(e.encode() for e in envelopes) + b"]}"
        resp = self._send("POST", url, content, request_id)
        try:
            answers = [
                MessageAnswer(int(r["status"]), str(r["body"].get("error", "")), json.dumps(r["body"]))
                for r in resp.json()["results"]
            ]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PeerAnswerMalformed(url, f"no results of a batch: {exc!r}") from exc
        if len(answers) != len(envelopes):
            raise PeerAnswerMalformed(url, f"{len(answers)} results for {len(envelopes)} messages")
        return answers

    # -- signing in with Ethereum (docs/protocol.md, "Signing in (EIP-4361)") -----------------------------------
    def sign_in(self, node_url: str, private_key: str, chain_id: int, statement: str | None = None) -> SignedIn:
        """A nonce from the node, the EIP-4361 message naming its URL and chain signed with `private_key`, and
        the bearer credential the node answers with."""
        url = _url(node_url, "/auth/nonce")
        nonce = _object(url, self._get(url, self.timeouts.message)).get("nonce")
        if not isinstance(nonce, str):
            raise PeerAnswerMalformed(url, "no nonce")
        message = sign_in_message(node_url, Account.from_key(private_key).address, chain_id, nonce, statement)
        body = {"message": message.text(), "signature": sign_text(message.text(), private_key)}
        url = _url(node_url, "/auth/siwe")
        answer = _object(url, self._send("POST", url, json.dumps(body).encode(), None))
        token, expires = answer.get("access_token"), answer.get("expires_at")
        if not isinstance(token, str) or not isinstance(expires, str):
            raise PeerAnswerMalformed(url, "no access_token or expires_at")
        return SignedIn(token, expires)

    # -- rule books and statements -------------------------------------------------------------------------
    def rule_book(self, node_url: str, version: str) -> dict[str, object]:
        """GET /rules/books/{version}: the book as the node holds it, unchecked (the caller hashes it)."""
        url = _url(node_url, f"/rules/books/{quote(version, safe='')}")
        return _object(url, self._get(url, self.timeouts.rule_book))

    def statement_document(self, node_url: str, statement_id: str) -> dict[str, object]:
        """GET /settlement/statements/{id}: the statement document the node serves, unchecked (the caller
        reads it against the statement model)."""
        url = _url(node_url, f"/settlement/statements/{statement_id}")
        return _object(url, self._get(url, self.timeouts.statement, self._bearer()))

    # -- a node's audit pages (docs/proof-format.md) -----------------------------------------------------------
    def audit_identity(self, node_url: str) -> AuditIdentity:
        url = _url(node_url, "/audit/identity")
        answer = _object(url, self._get(url, self.timeouts.audit_page, self._bearer()))
        if not isinstance(answer.get("address"), str):
            raise PeerAnswerMalformed(url, "no address in the identity")
        return answer  # type: ignore[return-value]  # its address checked; the rest read with .get

    def audit_page(self, node_url: str, kind: str, after: int, limit: int) -> AuditPage:
        """One page of proof documents with seq > `after`. Its format is left to the caller to check."""
        url = _url(node_url, "/audit/records")
        params: dict[str, str | int] = {"kind": kind, "after": after, "limit": limit}
        resp = self._send("GET", url, None, None, self.timeouts.audit_page, self._bearer(), params)
        try:  # orjson: a page holds thousands of documents
            page: AuditPage = orjson.loads(resp.content)
            if not isinstance(page["items"], list) or not (
                page["next_after"] is None or isinstance(page["next_after"], int)
            ):
                raise TypeError("items or next_after of the wrong type")
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise PeerAnswerMalformed(url, f"no page of proof documents: {exc!r}") from exc
        return page

    def audit_balances(self, node_url: str) -> list[ServedBalance]:
        url = _url(node_url, "/audit/balances")
        answer = _json(url, self._get(url, self.timeouts.audit_page, self._bearer()))
        if not isinstance(answer, list) or not all(isinstance(row, dict) for row in answer):
            raise PeerAnswerMalformed(url, "no list of balances")
        return answer

    # -- an operator's call ----------------------------------------------------------------------------------
    def call(self, method: str, node_url: str, path: str, body: JsonValue = None) -> JsonValue:
        """Any route of a node, with the bearer token: its JSON answer."""
        url = _url(node_url, path)
        content = None if body is None else json.dumps(body).encode()
        resp = self._send(method, url, content, None, self.timeouts.operator, self._bearer())
        return _json(url, resp)

    # -- one request -----------------------------------------------------------------------------------------
    def _bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _get(self, url: str, timeout: float, headers: dict[str, str] | None = None) -> httpx.Response:
        return self._send("GET", url, None, None, timeout, headers or {})

    def _send(
        self,
        method: str,
        url: str,
        content: bytes | None,
        request_id: str | None,
        timeout: float | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str | int] | None = None,
    ) -> httpx.Response:
        """One request; its answer if 2xx, else PeerAnsweredError, or PeerUnreachable without an answer."""
        sent = dict(headers or {})
        if content is not None:
            sent["Content-Type"] = "application/json"
        if request_id is not None:
            sent["X-Request-ID"] = request_id
        try:
            if not httpx.URL(url).is_absolute_url:  # a member registered without a node URL
                raise httpx.UnsupportedProtocol(f"{url!r} is no absolute URL")
            resp = self.http.request(
                method,
                url,
                content=content,
                headers=sent,
                params=params,
                timeout=self.timeouts.message if timeout is None else timeout,
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise PeerUnreachable(url, exc) from exc
        if not 200 <= resp.status_code < 300:
            raise PeerAnsweredError.of(url, resp.status_code, resp.text, resp.headers.get("X-Request-ID"))
        return resp


def _url(node_url: str, path: str) -> str:
    return f"{node_url.rstrip('/')}{path}"


def _json(url: str, resp: httpx.Response) -> JsonValue:
    try:
        return resp.json()
    except ValueError as exc:
        raise PeerAnswerMalformed(url, f"no JSON: {exc}") from exc


def _object(url: str, resp: httpx.Response) -> dict[str, object]:
    answer = _json(url, resp)
    if not isinstance(answer, dict):
        raise PeerAnswerMalformed(url, f"a JSON {type(answer).__name__}, not an object")
    return answer
