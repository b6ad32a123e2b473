"""A statement's life cycle on one node, beside its computing (docs/settlement.md, section 6): which statements
overlap a period, whether this member has an approval that may still go final, the disputes and withdrawals
kept for a statement, and a dispute's lines (flow keys) as they are signed.

    verifying --recomputed, same hash--> awaiting_approval --operator, deadline or auto--> approved --all--> final
        |  other hash: disputed                 |  dispute: disputed        withdrawal: withdrawn
    any but final --another statement of an overlapping period goes final--> superseded

Only what every step of node/services/settlements.py shares: queries on its session, and pure helpers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlmodel import Session, col, select
from typing_extensions import TypedDict  # pydantic reads these for the API: on Python 3.11, this one

from chain.canonical import canonical_json
from negotiation.messages import MessageRefused, SignedMessage
from negotiation.wire import KIND_OF, TEXT_CHARS, MessageType, Refusal
from node.domain.states import ApprovedBy, StatementStatus
from node.domain.times import utc_now_iso
from node.store.tables import SettlementStatement, StatementNotice
from settlement.document import ServedStatement

# A flow's key in a statement's `flows` (docs/settlement.md, section 5): what a dispute's lines name.
FlowKey = TypedDict("FlowKey", {"kind": str, "reference": str, "from": str, "to": str})
FLOW_KEY_PARTS = ("kind", "reference", "from", "to")
# The most a dispute's lines may hold as signed text (negotiation/wire.py, StatementDispute.lines).
MAX_LINES_CHARS = KIND_OF[MessageType.STATEMENT_DISPUTE].text_chars["lines"]
MAX_REASON_CHARS = TEXT_CHARS

# Statuses from which a statement may still go final somewhere: a dispute or a withdrawal stops them.
OPEN = (StatementStatus.VERIFYING, StatementStatus.AWAITING_APPROVAL, StatementStatus.APPROVED)
# Where this member's signed approval may still make a statement final: one such per period. A final one no
# longer binds: what may follow it is the closing rule's to say (no day twice in format 1; in format 2 a later
# statement settles what is still unsettled), and what was pending beside it is superseded when it went final.
BINDING = (StatementStatus.APPROVED,)


class OwnApproval(TypedDict):
    """How and when this node approved a statement for its member."""

    by: str  # ApprovedBy: operator, deadline (deemed) or automatic
    at: str


class DisputeShown(TypedDict):
    member: str
    reason: str
    lines: list[FlowKey]
    at: str


class WithdrawalShown(TypedDict):
    reason: str
    at: str


class Lifecycle(TypedDict, total=False):
    """A statement's life cycle on this node, as its view shows it (never hashed; a part is present only when
    there is something to show)."""

    approval: OwnApproval  # this node's own approval, when it gave one
    approval_due_at: str  # when this node approves for its member unless its operator acts first
    disputes: list[DisputeShown]  # every member's dispute of this hash this node holds
    withdrawal: WithdrawalShown  # the proposer's withdrawal of this hash


class StatementView(ServedStatement, Lifecycle):
    """The statement as GET /settlement/statements/{id} serves it: the document of section 5 and its life cycle."""


LIFECYCLE_PARTS = frozenset(Lifecycle.__annotations__)

# How this node approved, as the memo of the `settlement` record it writes says (its own word, anchored).
APPROVAL_MEMO = {
    ApprovedBy.OPERATOR: "approved here by the member's operator",
    ApprovedBy.DEADLINE: "deemed approved here: no operator approved or disputed it by the deadline",
    ApprovedBy.AUTOMATIC: "approved here automatically: the member's net payable was below auto_approve_below",
}


def flow_key(flow: Mapping[str, object]) -> tuple[str, str, str, str]:
    return (str(flow["kind"]), str(flow["reference"]), str(flow["from"]), str(flow["to"]))


def as_key(flow: Mapping[str, object]) -> FlowKey:
    kind, reference, payer, payee = flow_key(flow)
    return {"kind": kind, "reference": reference, "from": payer, "to": payee}


def lines_text(lines: Sequence[FlowKey]) -> str:
    """A dispute's lines as they are signed: canonical JSON, each key once, in the order of the keys."""
    unique = {flow_key(line): as_key(line) for line in lines}
    return canonical_json(cast(Any, [unique[k] for k in sorted(unique)])).decode()


def read_lines(text: str) -> list[FlowKey]:
    """A dispute's signed lines, read back; a sender's text that is no list of flow keys is malformed."""
    try:
        lines = json.loads(text)
    except ValueError as exc:
        raise MessageRefused(Refusal.MALFORMED, "StatementDispute.lines is not JSON") from exc
    if not isinstance(lines, list) or not all(
        isinstance(line, dict) and set(line) == set(FLOW_KEY_PARTS) and all(isinstance(v, str) for v in line.values())
        for line in lines
    ):
        raise MessageRefused(Refusal.MALFORMED, "StatementDispute.lines is a list of {kind, reference, from, to}")
    return [as_key(line) for line in lines]


def differing_flows(theirs: Sequence[Mapping[str, object]], mine: Sequence[Mapping[str, object]]) -> list[FlowKey]:
    """The proposer's flows this node's statement does not hold as they are (missing, or another amount)."""
    ours = {(*flow_key(f), f["amount"]) for f in mine}
    return [as_key(f) for f in theirs if (*flow_key(f), f["amount"]) not in ours]


def fitting(lines: list[FlowKey]) -> list[FlowKey]:
    """As many of `lines` as their signed text can hold (a node's own dispute of a statement it computes
    otherwise names the differing flows it can; its reason names the parts)."""
    while lines and len(lines_text(lines)) > MAX_LINES_CHARS:
        lines = lines[: len(lines) // 2]
    return lines


def overlapping(
    s: Session, start: str, end: str, statuses: Sequence[StatementStatus], but: str | None = None
) -> SettlementStatement | None:
    """A statement of this node in one of `statuses` whose period shares a day with start..end (dates as
    text compare as dates), other than `but`."""
    query = select(SettlementStatement).where(
        col(SettlementStatement.status).in_(statuses),
        SettlementStatement.period_from <= end,
        SettlementStatement.period_to >= start,
    )
    if but is not None:
        query = query.where(SettlementStatement.id != but)
    return s.exec(query.order_by(col(SettlementStatement.created_at))).first()


def supersede_overlapping(s: Session, final: SettlementStatement) -> list[str]:
    """Every other statement of an overlapping period that has not gone final here: superseded by `final`."""
    superseded = []
    while other := overlapping(s, final.period_from, final.period_to, (*OPEN, StatementStatus.DISPUTED), final.id):
        other.status = StatementStatus.SUPERSEDED
        other.problem = f"superseded by statement {final.id}, final"
        s.add(other)
        s.flush()
        superseded.append(other.id)
    return superseded


def keep_notice(s: Session, msg: SignedMessage, member: str, reason: str, lines: str = "[]") -> None:
    """A StatementDispute or StatementWithdrawal, sent or received, kept as evidence (by its message id)."""
    m = msg.message
    s.merge(
        StatementNotice(
            id=m["id"],
            statement=m["statement"],
            statement_hash=m["statementHash"],
            type=msg.type,
            member=member,
            reason=reason,
            lines=lines,
            at=utc_now_iso(),
            envelope=json.dumps(msg.as_json()),
        )
    )


def notices(s: Session, statement: str, statement_hash: str, type_: MessageType) -> list[StatementNotice]:
    return list(
        s.exec(
            select(StatementNotice)
            .where(
                StatementNotice.statement == statement,
                StatementNotice.statement_hash == statement_hash,
                StatementNotice.type == type_,
            )
            .order_by(col(StatementNotice.at))
        ).all()
    )


def stopped_by_notices(s: Session, row: SettlementStatement) -> StatementStatus | None:
    """What the disputes and withdrawals already held for a proposal's hash make of it when it arrives after
    them (messages from different members travel apart)."""
    withdrawals = notices(s, row.id, row.statement_hash, MessageType.STATEMENT_WITHDRAWAL)
    if any(w.member == row.proposer for w in withdrawals):
        return StatementStatus.WITHDRAWN
    if notices(s, row.id, row.statement_hash, MessageType.STATEMENT_DISPUTE):
        return StatementStatus.DISPUTED
    return None


def lifecycle_view(s: Session, row: SettlementStatement) -> Lifecycle:
    """The life-cycle parts of a statement's view, those there is something to show of."""
    view: Lifecycle = {}
    if row.approved_by is not None and row.approved_at is not None:
        view["approval"] = {"by": str(row.approved_by), "at": row.approved_at}
    if row.status == StatementStatus.AWAITING_APPROVAL and row.approval_due_at is not None:
        view["approval_due_at"] = row.approval_due_at
    disputes = notices(s, row.id, row.statement_hash, MessageType.STATEMENT_DISPUTE)
    if disputes:
        view["disputes"] = [
            {"member": d.member, "reason": d.reason, "lines": read_lines(d.lines), "at": d.at} for d in disputes
        ]
    withdrawals = notices(s, row.id, row.statement_hash, MessageType.STATEMENT_WITHDRAWAL)
    if withdrawals:
        view["withdrawal"] = {"reason": withdrawals[0].reason, "at": withdrawals[0].at}
    return view
