"""Signed messages to other members: persisted in the sender's transaction, delivered by the worker.

A message is written to the outbox in the same transaction as the step that made it, so a crash never loses
one and a rolled-back step never sends one. Delivery posts through an injected `httpx.Client`: over real HTTP
in production, or in-process through `httpx.ASGITransport`/`MockTransport` in tests.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable

import httpx
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from negotiation.messages import SignedMessage, parse
from node.domain.states import Direction, OutboxStatus
from node.domain.times import utc_now_iso
from node.store.engine import session_scope
from node.store.tables import NegotiationMessage, OutboxMessage

BATCH = 100
MAX_BACKOFF_SECONDS = 30.0

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
    def __init__(self, engine: Engine, me: str, node_url: Callable[[str], str], client: httpx.Client) -> None:
        """`node_url(address)`: where a member's node answers (the member registry, a chain call)."""
        self.engine = engine
        self.me = me
        self.node_url = node_url
        self.client = client
        # Set when something is queued or changed: the worker wakes at once instead of at its next tick.
        self.wakeup = threading.Event()
        # Called in the transaction that marks a message refused for good: what it held is given back.
        self.on_refused: Callable[[Session, SignedMessage], None] | None = None

    def enqueue(self, s: Session, msg: SignedMessage, recipient: str) -> None:
        """Queue `msg` for `recipient` inside the caller's transaction."""
        if msg.signer_claimed == self.me and msg.type != "Invitation":
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
        """Deliver what is due; returns how many were delivered. No transaction is open while posting."""
        now = time.time()
        with session_scope(self.engine) as s:
            due = s.exec(
                select(OutboxMessage)
                .where(OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.next_attempt_at <= now)
                .order_by(col(OutboxMessage.id))
                .limit(BATCH)
            ).all()
        delivered = 0
        for item in due:
            # Sent as X-Request-ID: the recipient's log lines about this delivery carry it too.
            request_id = secrets.token_hex(8)
            status, error = self._post(item, request_id)
            with session_scope(self.engine) as s:
                row = s.get(OutboxMessage, item.id)
                assert row is not None
                row.attempts += 1
                row.last_error = error
                if status is not None:
                    row.status = status
                    delivered += status == OutboxStatus.DELIVERED
                    if status == OutboxStatus.DELIVERED:
                        log.debug(
                            "%s %s delivered to %s (request %s)",
                            _type_of(row.envelope),
                            row.message_id,
                            row.recipient,
                            request_id,
                        )
                    if status == OutboxStatus.REFUSED:
                        log.warning(
                            "%s %s to %s refused for good (request %s): %s",
                            _type_of(row.envelope),
                            row.message_id,
                            row.recipient,
                            request_id,
                            error,
                        )
                        if self.on_refused is not None:
                            self.on_refused(s, parse(json.loads(row.envelope)))
                else:
                    backoff = min(MAX_BACKOFF_SECONDS, 0.25 * 2 ** min(row.attempts, 7))
                    row.next_attempt_at = time.time() + backoff
                    log.info(
                        "%s %s to %s not delivered (attempt %s, request %s): %s; next try in %.2fs",
                        _type_of(row.envelope),
                        row.message_id,
                        row.recipient,
                        row.attempts,
                        request_id,
                        error,
                        backoff,
                    )
                s.add(row)
        return delivered

    def _post(self, item: OutboxMessage, request_id: str) -> tuple[OutboxStatus | None, str | None]:
        try:
            url = self.node_url(item.recipient)
            resp = self.client.post(
                f"{url.rstrip('/')}/negotiation/messages",
                content=item.envelope,
                headers={"Content-Type": "application/json", "X-Request-ID": request_id},
            )
        except Exception as exc:  # unreachable peer or chain: retry later
            return None, f"{type(exc).__name__}: {exc}"
        if resp.status_code < 300:
            return OutboxStatus.DELIVERED, None
        reason = _reason(resp)
        if reason == "replayed":
            return OutboxStatus.DELIVERED, None  # our earlier attempt got through before its answer was lost
        if resp.status_code >= 500:
            return None, f"{resp.status_code}: {resp.text[:200]}"
        return OutboxStatus.REFUSED, f"{resp.status_code} {reason}: {resp.text[:200]}"


def _type_of(envelope: str) -> str:
    try:
        return str(json.loads(envelope).get("type", "message"))
    except (ValueError, AttributeError):
        return "message"


def _reason(resp: httpx.Response) -> str:
    try:
        return str(resp.json().get("error", ""))
    except ValueError:
        return ""
