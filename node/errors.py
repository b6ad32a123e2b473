"""The node's specific errors. node/api/errors.py maps each to one HTTP status in one place."""

from __future__ import annotations

from typing import Any


class NodeError(Exception):
    """Base of every error the API turns into a 4xx with a JSON body."""

    code = "error"

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class NotFound(NodeError):
    code = "not_found"


class InvalidMovement(NodeError):
    """The request is well-formed but breaks a ledger rule (wrong sign, same source and target, ...)."""

    code = "invalid_movement"


class EvidenceRequired(NodeError):
    code = "evidence_required"


class InsufficientStock(NodeError):
    code = "insufficient_stock"


class AlreadyExists(NodeError):
    code = "already_exists"


class Unauthorized(NodeError):
    code = "unauthorized"


class NotConfigured(NodeError):
    """The node was started without what this request needs (e.g. no anchor contract)."""

    code = "not_configured"


class RuleBookNotActive(NodeError):
    """The node cannot show that the rule book it would decide under is the one the chain says is active."""

    code = "rule_book_not_active"


class RuleBookRejected(NodeError):
    """A rule book that does not validate, has conflicts, or does not match what the chain holds for it."""

    code = "rule_book_rejected"


class ChainUnreachable(NodeError):
    """The chain does not answer, so what must be checked on it cannot be: try again later."""

    code = "chain_unavailable"
