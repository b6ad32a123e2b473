"""The one place where errors become HTTP answers: every error body is {"error", "message", "detail"}."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from negotiation.messages import MessageRefused
from node.errors import (
    AlreadyExists,
    ChainUnreachable,
    EvidenceRequired,
    InsufficientStock,
    InvalidMovement,
    NotConfigured,
    NotFound,
    PlanEarly,
    RequestError,
    RuleBookNotActive,
    RuleBookRejected,
    Unauthorized,
)

STATUS_OF: dict[type[RequestError], int] = {
    Unauthorized: 401,
    NotFound: 404,
    AlreadyExists: 409,
    InsufficientStock: 409,
    InvalidMovement: 422,
    EvidenceRequired: 422,
    RuleBookRejected: 422,
    RuleBookNotActive: 409,
    PlanEarly: 409,
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


def error_body(code: str, message: str, detail: Any) -> dict[str, Any]:
    return {"error": code, "message": message, "detail": detail}


async def _request_error(_req: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestError)
    return JSONResponse(error_body(exc.code, exc.message, exc.detail), status_code=STATUS_OF[type(exc)])


async def _refused(_req: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MessageRefused)
    return JSONResponse(error_body(exc.reason, exc.message, {}), status_code=REFUSAL_STATUS.get(exc.reason, 422))


async def _invalid(_req: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {"where": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", "")} for e in exc.errors()
    ]
    message = "; ".join(f"{p['where']}: {p['problem']}" for p in problems) or "invalid request"
    return JSONResponse(error_body("invalid_request", message, problems), status_code=422)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestError, _request_error)
    app.add_exception_handler(MessageRefused, _refused)
    app.add_exception_handler(RequestValidationError, _invalid)
