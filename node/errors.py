"""Every exception the node package raises, under one root: `except NodeError` catches them all.

node/api/errors.py maps each request error to one HTTP status in one place (STATUS_OF); the others never
reach a client (the anchoring service and the launcher handle them).

* NodeError
  + RequestError              refused requests: a 4xx (or 503) with {"error", "message", "detail"}
  | + Unauthorized            401
  | + NotFound                404
  | + AlreadyExists           409
  | + InsufficientStock       409
  | + RuleBookNotActive       409
  | + PlanEarly               409
  | + PlanOutdated            409
  | + NodeNotAMember          409
  | + SettlementInputsInvalid 409
  | + StatementNotReady       409
  | + PeriodApprovedAlready   409
  | + SettlementStopped       409
  | + BodyTooLarge            413
  | + LimitReached            429
  | + TooManyRequests         429
  | + InvalidMovement         422
  | + InvalidRequest          422
  | + WrongStatus             422
  | + NotInRuleBook           422
  | + BodyTooDeep             422
  | + EvidenceRequired        422
  | + RuleBookRejected        422
  | + NotConfigured           503
  | + ChainUnreachable        503
  + ChainHistoryMismatch      the chain holds another root for one of our batch seqs (anchoring stops)
  + NodeDidNotStart           a launched node process exited or never answered (also a RuntimeError)
  + HandlersIncomplete        a declared message type without exactly one handler: the node is not built
  + WritersLockNotHeld        a ledger write outside a transaction holding the writers' lock: a bug (500)

Errors of the pure packages have their own roots: NegotiationError (negotiation/errors.py; a refused signed
message, MessageRefused, is answered by its reason) and ChainError (chain/errors.py).
"""

from __future__ import annotations

from typing import Any


class NodeError(Exception):
    """The root of every exception raised by the node package."""

    code = "error"

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class RequestError(NodeError):
    """A request this node refuses; the API turns it into a 4xx (or 503) with a JSON body."""


class NotFound(RequestError):
    code = "not_found"


class InvalidMovement(RequestError):
    """A stock movement that breaks a ledger rule (wrong sign, same source and target, lent stock sold on, ...).
    Only movements: the other refusals have codes of their own."""

    code = "invalid_movement"


class InvalidRequest(RequestError):
    """Well-formed but meaningless: a time that is no time, a window that ends before it starts."""

    code = "invalid_request"


class WrongStatus(RequestError):
    """What the request acts on is not in the status it needs: an offer no longer open, a transfer not shipped
    (or received already)."""

    code = "wrong_status"


class NotInRuleBook(RequestError):
    """A value the rule book in force does not define, such as a customer tier it does not name."""

    code = "not_in_rule_book"


class EvidenceRequired(RequestError):
    code = "evidence_required"


class InsufficientStock(RequestError):
    code = "insufficient_stock"


class AlreadyExists(RequestError):
    code = "already_exists"


class Unauthorized(RequestError):
    code = "unauthorized"


class NotConfigured(RequestError):
    """The node was started without what this request needs (e.g. no anchor contract)."""

    code = "not_configured"


class RuleBookNotActive(RequestError):
    """The node cannot show that the rule book it would decide under is the one the chain says is active."""

    code = "rule_book_not_active"


class RuleBookRejected(RequestError):
    """A rule book that does not validate, has conflicts, or does not match what the chain holds for it."""

    code = "rule_book_rejected"


class ChainUnreachable(RequestError):
    """The chain does not answer, so what must be checked on it cannot be: try again later."""

    code = "chain_unavailable"


class PlanEarly(RequestError):
    """Members invited have not answered and the offer window is still open: planning now would refuse the
    offers on their way."""

    code = "plan_early"


class PlanOutdated(RequestError):
    """The invitations or offers a plan was decided over changed before it was written (another plan, an
    operator's decline): nothing was written, plan again."""

    code = "plan_outdated"


class NodeNotAMember(RequestError):
    """This node is not an active member of the registry, so it has no partners to invite."""

    code = "node_not_a_member"


class SettlementInputsInvalid(RequestError):
    """A member's records cannot be read or do not verify against the chain, so no statement is computed."""

    code = "settlement_inputs"


class StatementNotReady(RequestError):
    """This node has not recomputed the statement yet (`verifying`): there is nothing of its own to approve or
    dispute until it has; ask again shortly."""

    code = "statement_not_ready"


class PeriodApprovedAlready(RequestError):
    """This member approved another statement of an overlapping period, which may still go final: a member
    approves one proposal per period, until that one is disputed, withdrawn or superseded."""

    code = "period_approved"


class SettlementStopped(RequestError):
    """A statement that must not be paid as computed (docs/settlement.md, "Format 2"): a plan whose recorded
    cost its allocations do not bear out, a member worse off in cash than without a plan. Named."""

    code = "settlement_stopped"


class BodyTooLarge(RequestError):
    """A request body over its endpoint's limit, refused before it is read to the end (node/api/limits.py)."""

    code = "too_large"


class BodyTooDeep(RequestError):
    """JSON nested deeper than the limit, refused before anything parses it (node/api/limits.py)."""

    code = "too_deep"


class LimitReached(RequestError):
    """One more would pass a per-member limit of the rule book in force (`limits`, docs/rules.md)."""

    code = "limit_reached"


class TooManyRequests(RequestError):
    """A client (by IP) asked an unauthenticated endpoint more often than its rate allows (node/api/limits.py)."""

    code = "rate_limited"


class ChainHistoryMismatch(NodeError):
    """The chain holds a different root for one of our sequence numbers: never paper over it."""

    code = "chain_history_mismatch"


class HandlersIncomplete(NodeError):
    """A message type declared in negotiation/wire.py without its handler, or with two (node/services/router.py):
    a node built so would refuse or misroute a message, so it is not built at all."""

    code = "handlers_incomplete"


class NodeDidNotStart(NodeError, RuntimeError):
    """A node process launched by `consortium up` or a test exited, or never answered on its port."""

    code = "node_did_not_start"


class WritersLockNotHeld(NodeError, RuntimeError):
    """A record appended or postings written in a transaction that did not take the writers' lock at its start
    (node/store/writers.py): a bug in the node, never a client's fault, so no status of its own (500)."""

    code = "writers_lock_not_held"
