"""The one place where errors become HTTP answers: every error body is {"error", "message", "detail"}.
Each refusal is logged here too (WARNING; a 5xx at ERROR), with its code and message, never the request's
headers (so never a bearer token); the log line carries the request id (node/api/logs.py)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from chain.errors import NotCanonicalizable, SiweError, SiweMalformed, SiweRejected
from negotiation.messages import MessageRefused
from negotiation.wire import Refusal
from node.api.logs import REQUEST_ID, inbox_envelope_facts
from node.errors import (
    AlreadyExists,
    BodyTooDeep,
    BodyTooLarge,
    ChainUnreachable,
    EvidenceRequired,
    InsufficientStock,
    InvalidMovement,
    InvalidRequest,
    LimitReached,
    NodeNotAMember,
    NotConfigured,
    NotFound,
    NotInRuleBook,
    PeriodApprovedAlready,
    PlanEarly,
    PlanOutdated,
    RequestError,
    RuleBookNotActive,
    RuleBookRejected,
    SettlementInputsInvalid,
    SettlementStopped,
    StatementNotReady,
    TooManyRequests,
    Unauthorized,
    WrongStatus,
)

STATUS_OF: dict[type[RequestError], int] = {
    Unauthorized: 401,
    NotFound: 404,
    AlreadyExists: 409,
    InsufficientStock: 409,
    InvalidMovement: 422,
    EvidenceRequired: 422,
    InvalidRequest: 422,
    WrongStatus: 422,
    NotInRuleBook: 422,
    RuleBookRejected: 422,
    RuleBookNotActive: 409,
    PlanEarly: 409,
    PlanOutdated: 409,
    NodeNotAMember: 409,
    SettlementInputsInvalid: 409,
    SettlementStopped: 409,
    StatementNotReady: 409,
    PeriodApprovedAlready: 409,
    BodyTooLarge: 413,
    LimitReached: 429,
    TooManyRequests: 429,
    BodyTooDeep: 422,
    NotConfigured: 503,
    ChainUnreachable: 503,
}

# Why a signed message was refused (negotiation/wire.py Refusal) -> status; every refusal has one
# (tests/unit/test_node_errors.py).
REFUSAL_STATUS: dict[Refusal, int] = {
    Refusal.MALFORMED: 422,
    Refusal.UNKNOWN_TYPE: 422,
    Refusal.BAD_SIGNATURE: 401,
    Refusal.WRONG_SIGNER: 401,
    Refusal.NOT_A_MEMBER: 403,
    Refusal.NOT_AUTHORISED: 403,
    Refusal.NOT_YOURS: 403,
    Refusal.OUT_OF_RADIUS: 403,
    Refusal.UNKNOWN_SUBJECT: 404,
    Refusal.REPLAYED: 409,
    Refusal.CLOSED: 409,
    Refusal.RULE_VERSION: 409,
    Refusal.EXPIRED: 410,
    Refusal.LIMIT_REACHED: 429,
    Refusal.INSUFFICIENT_STOCK: 409,
    Refusal.WRONG_SHARE: 422,
    Refusal.TERMS: 422,
    Refusal.LOAN_ENDED: 409,
    Refusal.TOO_MANY: 409,
}

# A refused Sign-In with Ethereum (chain/siwe.py): not a message at all, or one that signs nobody in here
# (bad signature, wrong domain or chain, a nonce unknown or used, not a member). The code is the reason.
SIWE_STATUS: dict[type[SiweError], int] = {SiweMalformed: 422, SiweRejected: 401}
SIWE_MALFORMED = "invalid_siwe_message"


log = logging.getLogger("node.api.errors")


class ErrorOut(BaseModel):
    """Every refusal, whatever its status: a stable code, a sentence for people, and what it concerns."""

    error: str = Field(description="a stable code: unauthorized, not_found, invalid_request, too_deep, ...")
    message: str
    detail: list[dict[str, Any]] | dict[str, Any] = Field(
        description="invalid_request: [{where, problem}] per field; otherwise the values concerned"
    )


# The error responses every router documents (FastAPI's own 422 shape is not what a node answers).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": what}
    for status, what in (
        (400, "the body is not JSON"),
        (401, "no or wrong bearer token"),
        (404, "no such thing on this node"),
        (409, "conflicts with the node's state (stock, rule book, replay, plan_early, a statement's life cycle)"),
        (413, "body over the limit"),
        (422, "invalid input: types, ranges, dates, nesting, ledger rules"),
        (429, "one more would pass a per-member limit of the rule book (limit_reached), or a rate (rate_limited)"),
        (503, "not configured, or the chain does not answer"),
    )
}


def error_body(code: str, message: str, detail: Any) -> dict[str, Any]:
    return {"error": code, "message": message, "detail": detail}


def _log_refusal(req: Request, status: int, code: str, message: str) -> None:
    level = logging.ERROR if status >= 500 else logging.WARNING
    log.log(level, "%s %s refused %s %s: %s", req.method, req.url.path, status, code, message)


def answer_to(exc: Exception) -> tuple[int, dict[str, Any]]:
    """The status and body a node answers an error with; what it does not know is an internal error (500)."""
    if isinstance(exc, MessageRefused):
        return REFUSAL_STATUS[exc.reason], error_body(exc.reason, exc.message, {})
    if isinstance(exc, RequestError):
        return STATUS_OF[type(exc)], error_body(exc.code, exc.message, exc.detail)
    if isinstance(exc, SiweRejected):
        return SIWE_STATUS[SiweRejected], error_body(exc.reason, exc.message, {"reason": exc.reason})
    if isinstance(exc, SiweMalformed):
        return SIWE_STATUS[SiweMalformed], error_body(SIWE_MALFORMED, str(exc), {})
    if isinstance(exc, NotCanonicalizable):
        return 422, error_body("invalid_request", str(exc), {})
    return 500, error_body("internal_error", f"internal error (request {REQUEST_ID.get()})", {})


def log_message_refusal(
    status: int, body: dict[str, Any], facts: dict[str, Any], exc: BaseException | None = None, where: str = ""
) -> None:
    """The one log line of a signed message refused: status, reason, type and claimed signer. A replay is INFO
    (a peer's retry of what got through before its answer was lost), a 5xx ERROR with its traceback."""
    level = logging.ERROR if status >= 500 else logging.INFO if body["error"] == "replayed" else logging.WARNING
    log.log(
        level,
        "signed message%s refused %s %s: type %s, claimed signer %s: %s",
        where,
        status,
        body["error"],
        facts.get("type", "?"),
        facts.get("signer", "?"),
        body["message"],
        exc_info=exc if status >= 500 else None,
    )


async def _request_error(req: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestError)
    status, body = answer_to(exc)
    _log_refusal(req, status, exc.code, exc.message)
    return JSONResponse(body, status_code=status)


async def _refused(req: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MessageRefused)
    status, body = answer_to(exc)
    log_message_refusal(status, body, inbox_envelope_facts(req.scope))
    return JSONResponse(body, status_code=status)


async def _invalid(req: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {"where": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", "")} for e in exc.errors()
    ]
    message = "; ".join(f"{p['where']}: {p['problem']}" for p in problems) or "invalid request"
    _log_refusal(req, 422, "invalid_request", message)
    return JSONResponse(error_body("invalid_request", message, problems), status_code=422)


# Starlette's own refusals, in the node's error model like every other: a body that is no JSON at all, no such
# route, a method the route does not take.
HTTP_ERROR_CODES = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed"}


async def _http_error(req: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = HTTP_ERROR_CODES.get(exc.status_code, "http_error")
    _log_refusal(req, exc.status_code, code, str(exc.detail))
    if exc.status_code < 400:
        return await http_exception_handler(req, exc)
    return JSONResponse(
        error_body(code, str(exc.detail), {}), status_code=exc.status_code, headers=getattr(exc, "headers", None)
    )


async def _not_text(req: Request, exc: Exception) -> JSONResponse:
    """A string that cannot go into a record (a lone surrogate): the request changed nothing (rolled back)."""
    assert isinstance(exc, NotCanonicalizable)
    status, body = answer_to(exc)
    _log_refusal(req, status, "invalid_request", str(exc))
    return JSONResponse(body, status_code=status)


async def _siwe_refused(req: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SiweError)
    status, body = answer_to(exc)
    _log_refusal(req, status, body["error"], body["message"])
    return JSONResponse(body, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(SiweError, _siwe_refused)
    app.add_exception_handler(NotCanonicalizable, _not_text)
    app.add_exception_handler(RequestError, _request_error)
    app.add_exception_handler(MessageRefused, _refused)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(HTTPException, _http_error)
