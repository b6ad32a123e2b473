"""The states a node's business objects move through, as enums: a typo in a state is a NameError, not a
silent mismatch, and each enum lists every state its object can be in.

StrEnum values are the strings stored in the database and shown in the API, so rows written before the
enums existed read the same.
"""

from __future__ import annotations

from enum import StrEnum


class InvitationStatus(StrEnum):
    OPEN = "open"  # offers may come in
    PLANNED = "planned"  # the requester planned over it: accepted or declined every offer


class OfferStatus(StrEnum):
    OPEN = "open"  # reserved by the supplier, waiting for the requester's plan
    ACCEPTED = "accepted"
    DECLINED = "declined"  # the requester will not take it: the reservation is released
    EXPIRED = "expired"  # its deadline passed unanswered: the reservation is released


class TransferRole(StrEnum):
    SUPPLIER = "supplier"
    REQUESTER = "requester"


class TransferStatus(StrEnum):
    ACCEPTED = "accepted"
    SHIPPED = "shipped"
    RECEIVED = "received"  # the requester's side, once counted
    SETTLED = "settled"  # the supplier's side, once the requester's receipt arrived


class RequestStatus(StrEnum):
    OPEN = "open"
    INVITED = "invited"  # an invitation asks partners for it
    FULFILLED = "fulfilled"
    SET_ASIDE = "set_aside"  # unreadable (a row from before dates were validated): logged, shown in /health


class OutboxStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    REFUSED = "refused"  # the peer refused it for good (4xx other than a replay)


class DisputeStatus(StrEnum):
    OPEN = "open"
    RULED = "ruled"


class StatementStatus(StrEnum):
    """A period's statement on one node (docs/settlement.md, section 6). Nothing but `final` binds anyone."""

    VERIFYING = "verifying"  # a member proposed it; this node has not recomputed it yet
    AWAITING_APPROVAL = "awaiting_approval"  # the same hash here (or proposed here): this node's operator decides
    APPROVED = "approved"  # this node signed its approval; not every member has yet
    FINAL = "final"  # every member approved the same hash: recorded as a `settlement` record, anchored
    DISPUTED = "disputed"  # computed differently here, or disputed by this node's operator or by a member
    SUPERSEDED = "superseded"  # another proposal for an overlapping period went final
    WITHDRAWN = "withdrawn"  # its proposer withdrew it


class ApprovedBy(StrEnum):
    """How a node approved a statement for its member: a person did, or the rule book did."""

    OPERATOR = "operator"  # the member's operator approved it (console or API)
    DEADLINE = "deadline"  # deemed: the operator neither approved nor disputed it by the approval deadline
    AUTOMATIC = "automatic"  # at once: the member's net payable was below the book's `auto_approve_below`


class BatchStatus(StrEnum):
    FORMED = "formed"  # seq, prev_root, root and proofs fixed; not yet seen on-chain
    ANCHORED = "anchored"


class Direction(StrEnum):
    IN = "in"
    OUT = "out"


class ShareStatus(StrEnum):
    PROPOSED = "proposed"  # the buyer asked the participant to bear this share
    ACCEPTED = "accepted"  # the participant recorded it: it owes the share to the buyer


class LoanStatus(StrEnum):
    REQUESTED = "requested"  # the borrower asked; the lender has not lent yet
    LENT = "lent"  # units are with the borrower, owned by the lender, until returned or due
    RETURNED = "returned"  # every unit came back before the due time
    SOLD = "sold"  # the due time passed: what was not back is the borrower's, at the loan's sale price
    REFUSED = "refused"  # the borrower's node refused the Loan for good: the lender's units came back


class PrincipalKind(StrEnum):
    """Who a sign-in credential speaks for (node/services/signin.py): a member of the registry for now; an
    auditor the operator names is the next kind."""

    MEMBER = "member"
