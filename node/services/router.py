"""The inbox: each signed message checked by the guard, then handed to the one step declared for its type.

Every message type is declared once in negotiation/wire.py; a step group marks the method that acts on a type
with `@handles(KIND)`, and `MessageRouter` refuses to be built unless every declared type has exactly one such
handler (tests/unit/test_message_router.py). Signature, membership, the rule book in force and distances are read
before a message's transaction opens: no chain call is made while the writers' lock is held.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict, TypeVar, Union

from sqlalchemy import tuple_
from sqlmodel import Session, col, select

from negotiation.messages import MessageGuard, SignedMessage
from negotiation.wire import KIND_OF, AnyMessageKind, MessageKind, MessageType
from node.domain.states import Direction
from node.domain.times import utc_now_iso
from node.errors import HandlersIncomplete
from node.services.inbound import Inbound
from node.services.outbox import log_message
from node.services.side import Side
from node.store.group_commit import GroupCommit
from node.store.tables import SeenMessage
from node.store.writers import ledger_transaction


# What a step answers the sender, beside the type and id the router adds: one shape per kind of answer.
class Noted(TypedDict):
    """Admitted, with nothing to add (an Offer, a NoOffer, a Shipment, a Receipt)."""


class OffersMade(TypedDict):
    offers: list[str]  # an Invitation: the ids of the offers sent back, none if this node spares nothing


class OffersReleased(TypedDict):
    released: int  # a Cancellation: units the declined offer held reserved


class ShipmentSent(TypedDict):
    shipped: str | None  # an Acceptance: the id of the Shipment sent at once


class RecordWritten(TypedDict):
    record_seq: int  # a Dispute, a Ruling, a ConsignmentSale: the ledger record it wrote


class ShareState(TypedDict):
    purchase: str
    status: str  # a joint purchase's share: proposed (kept for the operator) or accepted (by the participant)


class LoanAsked(TypedDict):
    loan: str
    status: str  # requested


class LoanRecorded(TypedDict):
    loan: str
    record_seq: int  # a Loan or a LoanReturn: the ledger record of the units moved


class QuoteAsked(TypedDict):
    quote_request: str


class StatementHeard(TypedDict):
    statement: str  # a proposal kept, to be recomputed by the settlement worker


class StatementSigned(TypedDict):
    final: bool  # every member has now signed the statement's hash


class StatementStated(TypedDict):
    statement: str
    status: str  # a dispute or withdrawal kept: the statement's status here after it ("unknown" before its proposal)


StepAnswer = Union[  # noqa: UP007  # a runtime value: TypedDicts do not take `|`
    Noted,
    OffersMade,
    OffersReleased,
    ShipmentSent,
    RecordWritten,
    ShareState,
    LoanAsked,
    LoanRecorded,
    QuoteAsked,
    StatementHeard,
    StatementSigned,
    StatementStated,
]


class MessageAccepted(TypedDict):
    """The 202 answer to a message admitted (docs/protocol.md, section 3): its type and id, and what its step
    answered. The API's MessageAcceptedOut passes on the parts the protocol documents."""

    accepted: MessageType
    id: str
    offers: NotRequired[list[str]]
    released: NotRequired[int]
    shipped: NotRequired[str | None]
    record_seq: NotRequired[int]
    purchase: NotRequired[str]
    status: NotRequired[str]
    loan: NotRequired[str]
    quote_request: NotRequired[str]
    statement: NotRequired[str]
    final: NotRequired[bool]


Handler = Callable[[Session, SignedMessage, Inbound], StepAnswer]
H = TypeVar("H", bound=Callable[..., StepAnswer])
HANDLES = "__handles_message__"

# (signer, nonce, message id): what the replay guard remembers of a message.
SeenKey = tuple[str, int, str]
SEEN_AHEAD = "consortium.seen_ahead"


def handles(kind: AnyMessageKind) -> Callable[[H], H]:
    """Marks a step group's method as the one that acts on `kind`'s messages."""
    if not isinstance(kind, MessageKind) or KIND_OF.get(kind.type) is not kind:
        raise TypeError(f"{kind!r} is not a message kind declared in negotiation/wire.py's MESSAGES")

    def mark(method: H) -> H:
        setattr(method, HANDLES, kind.type)
        return method

    return mark


def handlers_of(groups: Iterable[object]) -> dict[MessageType, Handler]:
    """Every `@handles` method of `groups`, bound, by the message type it acts on; exactly one per declared type."""
    found: dict[MessageType, list[str]] = {}
    handlers: dict[MessageType, Handler] = {}
    for group in groups:
        for name in dir(type(group)):
            declared = getattr(getattr(type(group), name, None), HANDLES, None)
            if declared is None:
                continue
            found.setdefault(declared, []).append(f"{type(group).__name__}.{name}")
            handlers[declared] = getattr(group, name)
    twice = {t: where for t, where in found.items() if len(where) > 1}
    missing = [t for t in KIND_OF if t not in found]
    if twice or missing:
        raise HandlersIncomplete(f"message types without a handler: {missing}; with more than one: {twice}")
    return handlers


@dataclass(frozen=True)
class Admission:
    """The work that admits a message inside a transaction, and the key the replay guard will look up."""

    admit: Callable[[Session], StepAnswer]
    key: SeenKey


def _accepted(msg: SignedMessage, result: StepAnswer) -> MessageAccepted:
    return {"accepted": msg.type, "id": msg.message["id"], **result}


class MessageRouter:
    def __init__(
        self,
        side: Side,
        handlers: dict[MessageType, Handler],
        writer: GroupCommit | None,
        authority: Callable[[SignedMessage, str], bool | None],
        on_admitted: Callable[[], None],
    ) -> None:
        """`writer`: the node's group commit (many messages to a transaction), None for a transaction each;
        `authority`: who may sign a type signed by a role (a Ruling); `on_admitted`: called after each request's
        messages are admitted (the outbox may have answers to send, a waiting plan may go on)."""
        self.side = side
        self.handlers = handlers
        self.writer = writer
        self.authority = authority
        self.on_admitted = on_admitted
        self._guard: MessageGuard | None = None

    @property
    def guard(self) -> MessageGuard:
        if self._guard is None:  # the domain names the chain id, asked once the chain answers
            side = self.side
            self._guard = MessageGuard(
                side.signer.domain, side.directory.is_member, lambda: int(time.time()), self.authority
            )
        return self._guard

    def receive(self, envelope: Mapping[str, Any]) -> MessageAccepted:
        """Admit and act on one message in one transaction: refused or failed, it changes nothing."""
        msg, admission = self._admission(envelope)
        result = self._write(admission).result()
        self.on_admitted()
        return _accepted(msg, result)

    def receive_many(self, envelopes: list[Any]) -> list[MessageAccepted | Exception]:
        """Each message admitted or refused by itself, in order, as `receive` would have one after another (each
        sees what the ones before it wrote): what it answered, or the error it was refused with."""
        admitted: list[tuple[SignedMessage, Future[StepAnswer]] | Exception] = []
        for envelope in envelopes:
            try:
                msg, admission = self._admission(envelope)
                admitted.append((msg, self._write(admission)))
            except Exception as refused:  # this message only: the others are admitted or refused by themselves
                admitted.append(refused)
        out: list[MessageAccepted | Exception] = []
        for item in admitted:
            if isinstance(item, Exception):
                out.append(item)
                continue
            msg, done = item
            try:
                out.append(_accepted(msg, done.result()))
            except Exception as refused:
                out.append(refused)
        self.on_admitted()
        return out

    def _admission(self, envelope: Any) -> tuple[SignedMessage, Admission]:
        """The checks made before any transaction, and the work that admits the message inside one."""
        msg = self.guard.verify(envelope)
        inbound = self._inbound(msg)
        handler = self.handlers[msg.type]

        def admit(s: Session) -> StepAnswer:
            MessageGuard.remember(msg, lambda signer, nonce, mid: _remember(s, signer, nonce, mid))
            log_message(s, msg, Direction.IN)
            return handler(s, msg, inbound)

        return msg, Admission(admit, msg.replay_key)

    def _write(self, admission: Admission) -> Future[StepAnswer]:
        admit = admission.admit
        if self.writer is not None:  # with the node's other writes, many messages to a transaction
            return self.writer.submit(admit, (read_ahead_seen, admission.key))
        done: Future[StepAnswer] = Future()
        try:
            with ledger_transaction(self.side.engine) as s:  # a step may append records, as in the group commit
                done.set_result(admit(s))
        except Exception as exc:
            done.set_exception(exc)
        return done

    def _inbound(self, msg: SignedMessage) -> Inbound:
        side = self.side
        policy = side.rules.active().policy if KIND_OF[msg.type].under_a_book else None
        if msg.type == MessageType.INVITATION and msg.message["requester"] != side.me:
            return Inbound(policy, side.directory.distance_m(msg.message["requester"]))
        return Inbound(policy)


def read_ahead_seen(s: Session, keys: list[SeenKey]) -> None:
    """The replay guard's read-ahead for a group of messages (node/store/group_commit.py): which were admitted
    before, in one query. A key sharing its (signer, nonce) or its id with another message of the group is left
    to the guard's own query, since the first of them may be admitted in this very group."""
    pairs = Counter((signer, nonce) for signer, nonce, _id in keys)
    ids = Counter(message_id for _signer, _nonce, message_id in keys)
    alone = [k for k in keys if pairs[(k[0], k[1])] == 1 and ids[k[2]] == 1]
    if not alone:
        return
    rows = s.exec(
        select(SeenMessage.signer, SeenMessage.nonce, SeenMessage.message_id).where(
            tuple_(col(SeenMessage.signer), col(SeenMessage.nonce)).in_([(k[0], k[1]) for k in alone])
            | col(SeenMessage.message_id).in_([k[2] for k in alone])
        )
    ).all()
    seen_pairs, seen_ids = {(r[0], r[1]) for r in rows}, {r[2] for r in rows}
    known: dict[SeenKey, bool] = s.info.setdefault(SEEN_AHEAD, {})
    for signer, nonce, message_id in alone:
        known[(signer, nonce, message_id)] = (signer, nonce) in seen_pairs or message_id in seen_ids


def _remember(s: Session, signer: str, nonce: int, message_id: str) -> bool:
    """The replay guard's memory: False if (signer, nonce) or the message id was admitted before."""
    known = s.info.get(SEEN_AHEAD, {}).pop((signer, nonce, message_id), None)  # what the group read ahead
    seen = (
        known
        if known is not None
        else s.exec(
            select(SeenMessage).where(
                (SeenMessage.signer == signer) & (SeenMessage.nonce == nonce) | (SeenMessage.message_id == message_id)
            )
        ).first()
        is not None
    )
    if seen:
        return False
    s.add(SeenMessage(signer=signer, nonce=nonce, message_id=message_id, received_at=utc_now_iso()))
    return True
