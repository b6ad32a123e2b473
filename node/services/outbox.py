"""Signed messages to other members: persisted in the sender's transaction, delivered by the worker.

A message is written to the outbox in the same transaction as the step that made it, so a crash never loses
one and a rolled-back step never sends one. Delivery posts through the node's one PeerClient (chain/peers.py),
over real HTTP in production, or in-process through whatever `httpx` transport a test gives it.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from chain.peers import MessageAnswer, PeerAnsweredError, PeerAnswerMalformed, PeerClient, PeerUnreachable
from negotiation.messages import MAX_MESSAGES_PER_BATCH, SignedMessage, parse
from negotiation.wire import MessageType
from node.domain.states import Direction, OutboxStatus
from node.domain.times import utc_now_iso
from node.store.engine import session_scope
from node.store.tables import NegotiationMessage, OutboxMessage
from node.store.writers import ledger_transaction

BATCH = 500  # messages taken per pass, sent to their peers up to MAX_MESSAGES_PER_BATCH a request
MAX_BACKOFF_SECONDS = 30.0
# A peer whose node had no batch inbox is sent one message a request; asked again after this long (it may have
# been upgraded meanwhile).
NO_BATCH_INBOX_SECONDS = 600.0
# What a node from before batches answers on the batch path: 401 (its body limits asked an operator's token of
# any path but the single inbox), or 404/405 from its router.
NO_BATCH_INBOX = (401, 404, 405)

log = logging.getLogger(__name__)


def log_message(s: Session, msg: SignedMessage, direction: Direction, peer: str | None = None) -> None:
    """Keep a signed message verbatim: the evidence behind each step, both partners' signatures."""
    m = msg.message
    subject = (
        (m.get("invitation") or m.get("offer") or m.get("acceptance") or m.get("shipment") or m.get("subject"))
        or m.get("dispute")
        or m.get("statement")
    )
    s.add(
        NegotiationMessage(
            id=m["id"],
            type=msg.type,
            direction=direction,
            signer=msg.signer_claimed,
            peer=peer or msg.signer_claimed,
            subject=subject,
            envelope=json.dumps(msg.as_json()),
            at=utc_now_iso(),
        )
    )


class Outbox:
    def __init__(self, engine: Engine, me: str, node_url: Callable[[str], str], peers: PeerClient) -> None:
        """`node_url(address)`: where a member's node answers (the member registry, a chain call)."""
        self.engine = engine
        self.me = me
        self.node_url = node_url
        self.peers = peers
        # Set when something is queued or changed: the worker wakes at once instead of at its next tick.
        self.wakeup = threading.Event()
        # Called in the transaction that marks a message refused for good: what it held is given back.
        self.on_refused: Callable[[Session, SignedMessage], None] | None = None
        # Peers whose node had no batch inbox, and until when they are sent one message a request.
        self._no_batch_inbox: dict[str, float] = {}

    def enqueue(self, s: Session, msg: SignedMessage, recipient: str) -> None:
        """Queue `msg` for `recipient` inside the caller's transaction."""
        if msg.signer_claimed == self.me and msg.type != MessageType.INVITATION:
            log_message(s, msg, Direction.OUT, peer=recipient)
        s.add(OutboxMessage(message_id=msg.message["id"], recipient=recipient, envelope=json.dumps(msg.as_json())))

    def broadcast(self, s: Session, msg: SignedMessage, recipients: list[str]) -> None:
        """Queue one message of ours for several members: kept once as evidence, delivered to each."""
        log_message(s, msg, Direction.OUT, peer=self.me)
        for recipient in recipients:
            s.add(OutboxMessage(message_id=msg.message["id"], recipient=recipient, envelope=json.dumps(msg.as_json())))

    def kick(self) -> None:
        self.wakeup.set()

    def deliver(self) -> int:
        """Deliver what is due; returns how many were delivered. No transaction is open while posting. What waits
        for one peer goes in one request (its batch inbox), in the order it was queued."""
        now = time.time()
        with session_scope(self.engine) as s:
            due = s.exec(
                select(OutboxMessage)
                .where(OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.next_attempt_at <= now)
                .order_by(col(OutboxMessage.id))
                .limit(BATCH)
            ).all()
        by_peer: dict[str, list[OutboxMessage]] = {}
        for item in due:
            by_peer.setdefault(item.recipient, []).append(item)
        delivered = 0
        for recipient, items in by_peer.items():
            for start in range(0, len(items), MAX_MESSAGES_PER_BATCH):
                chunk = items[start : start + MAX_MESSAGES_PER_BATCH]
                delivered += self._record(chunk, self._post_to(recipient, chunk))
        return delivered

    def _post_to(self, recipient: str, items: list[OutboxMessage]) -> list[Attempt]:
        if len(items) == 1 or time.monotonic() < self._no_batch_inbox.get(recipient, 0.0):
            return [self._post(item) for item in items]
        request_id = secrets.token_hex(8)
        try:
            url = self.node_url(recipient)
            answers = self.peers.post_messages(url, [item.envelope for item in items], request_id)
        except PeerAnsweredError as exc:
            if exc.status in NO_BATCH_INBOX:  # a node from before batches: one message a request for a while
                self._no_batch_inbox[recipient] = time.monotonic() + NO_BATCH_INBOX_SECONDS
                log.info("%s has no batch inbox (%s): one message a request", recipient, exc.status)
                return [self._post(item) for item in items]
            if exc.status >= 500:
                return [Attempt(request_id, None, f"{exc.status}: {exc.body[:200]}")] * len(items)
            return [self._post(item) for item in items]  # refused as a whole: each message by itself
        except PeerAnswerMalformed:  # no answer per message: each message by itself
            return [self._post(item) for item in items]
        except Exception as exc:  # unreachable peer or chain: retry later
            return [Attempt(request_id, None, _failure(exc))] * len(items)
        return [Attempt(request_id, *_outcome(a.status, a.error, a.body)) for a in answers]

    def _post(self, item: OutboxMessage) -> Attempt:
        """POST one message to the recipient's node; the request id it went with (sent as X-Request-ID, so the
        recipient's log lines about it carry it too) and what came of it."""
        request_id = secrets.token_hex(8)
        try:
            answer = self.peers.post_message(self.node_url(item.recipient), item.envelope, request_id)
        except PeerAnsweredError as exc:
            answer = MessageAnswer(exc.status, exc.error, exc.body)
        except Exception as exc:  # unreachable peer or chain: retry later
            return Attempt(request_id, None, _failure(exc))
        return Attempt(request_id, *_outcome(answer.status, answer.error, answer.body))

    def _record(self, items: list[OutboxMessage], attempts: list[Attempt]) -> int:
        """What each attempt came to, in one transaction, a savepoint each: a message whose refusal cannot be
        acted on (its `on_refused` failed) is retried later, and the others' outcomes are kept. Returns how
        many were delivered."""
        delivered = 0
        # A refusal is acted on (an offer's reservation released, a loan's units back on our shelf): ledger writes.
        acted_on = self.on_refused is not None and any(a.status == OutboxStatus.REFUSED for a in attempts)
        with (ledger_transaction if acted_on else session_scope)(self.engine) as s:
            for item, attempt in zip(items, attempts, strict=True):
                savepoint = s.begin_nested()
                try:
                    delivered += self._record_one(s, item, attempt)
                    savepoint.commit()
                except Exception:
                    savepoint.rollback()
                    log.exception("the outcome of %s to %s could not be recorded", item.message_id, item.recipient)
                    self._retry_later(s, item, attempt, "its outcome could not be recorded")
        return delivered

    def _record_one(self, s: Session, item: OutboxMessage, attempt: Attempt) -> int:
        row = s.get(OutboxMessage, item.id)
        assert row is not None
        what = (_type_of(row.envelope), row.message_id, row.recipient)
        if attempt.status is None:
            self._retry_later(s, item, attempt, attempt.error)
            return 0
        row.attempts += 1
        row.last_error = attempt.error
        row.status = attempt.status
        s.add(row)
        if attempt.status == OutboxStatus.DELIVERED:
            log.debug("%s %s delivered to %s (request %s)", *what, attempt.request_id)
            return 1
        log.warning("%s %s to %s refused for good (request %s): %s", *what, attempt.request_id, attempt.error)
        if self.on_refused is not None:
            self.on_refused(s, parse(json.loads(row.envelope)))
        return 0

    def _retry_later(self, s: Session, item: OutboxMessage, attempt: Attempt, error: str | None) -> None:
        row = s.get(OutboxMessage, item.id)
        assert row is not None
        row.attempts += 1
        row.last_error = error
        backoff = min(MAX_BACKOFF_SECONDS, 0.25 * 2 ** min(row.attempts, 7))
        row.next_attempt_at = time.time() + backoff
        s.add(row)
        log.info(
            "%s %s to %s not delivered (attempt %s, request %s): %s; next try in %.2fs",
            _type_of(row.envelope),
            row.message_id,
            row.recipient,
            row.attempts,
            attempt.request_id,
            error,
            backoff,
        )


@dataclass(frozen=True)
class Attempt:
    """One delivery of one message: the request that carried it and what came of it (no status: retry)."""

    request_id: str
    status: OutboxStatus | None
    error: str | None


def _outcome(status_code: int, reason: str, text: str) -> tuple[OutboxStatus | None, str | None]:
    """What a peer's answer to one message means for it: delivered, refused for good, or to be retried."""
    if status_code < 300:
        return OutboxStatus.DELIVERED, None
    if reason == "replayed":
        return OutboxStatus.DELIVERED, None  # our earlier attempt got through before its answer was lost
    if status_code >= 500:
        return None, f"{status_code}: {text[:200]}"
    return OutboxStatus.REFUSED, f"{status_code} {reason}: {text[:200]}"


def _type_of(envelope: str) -> str:
    try:
        return str(json.loads(envelope).get("type", "message"))
    except (ValueError, AttributeError):
        return "message"


def _failure(exc: Exception) -> str:
    """What kept a message from an answer, as logged: the cause's type and text."""
    return exc.reason if isinstance(exc, PeerUnreachable) else f"{type(exc).__name__}: {exc}"
