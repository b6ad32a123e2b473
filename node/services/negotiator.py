"""The negotiation protocol at a node's edge: admits signed messages and hands each to its step, triggers
invitations for unmet requests, plans, and runs the worker that delivers the outbox.

The steps themselves live in `Invitations` (invite, offer, decline), `Transfers` (plan, ship, receive,
settle) and `Disputes` (dispute, ruling); they share one `Signer`, one `Directory` and one `Outbox`, built
by the composition root (node/services/container.py). The rules are pure (negotiation/): this module stores
what was admitted and never holds the write lock across a chain call, a peer call or a solver run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from typing import Any

from sqlalchemy import tuple_
from sqlmodel import Session, col, select

from negotiation.messages import MessageGuard, SignedMessage
from negotiation.planning import Readiness
from negotiation.trigger import OpenRequest, OwnCover, OwnLot, cover_from_own_stock, due_needs
from node.domain.ledger import Evidence, Movement, MovementType, StockStatus
from node.domain.states import Direction, InvitationStatus, OfferStatus, RequestStatus
from node.domain.times import utc_now_iso
from node.errors import NodeError, PlanEarly
from node.services.consignments import Consignments
from node.services.disputes import Disputes
from node.services.inbound import Inbound
from node.services.invitations import Invitations
from node.services.joint_purchases import JointPurchases
from node.services.loans import Loans
from node.services.outbox import log_message
from node.services.quotes import QUOTE_CHECK_SECONDS, Quotes
from node.services.settlements import Settlements
from node.services.side import Side, Steps
from node.services.transfers import Transfers
from node.store.engine import session_scope
from node.store.group_commit import GroupCommit
from node.store.pool import record_movement, release_offer
from node.store.tables import Invitation, Lot, ReplenishmentRequest, SeenMessage, StockBalance, TransferOffer
from node.store.writers import ledger_transaction

log = logging.getLogger(__name__)


# (signer, nonce, message id): what the replay guard remembers of a message.
SeenKey = tuple[str, int, str]
SEEN_AHEAD = "consortium.seen_ahead"


@dataclass(frozen=True)
class Admission:
    """The work that admits a message inside a transaction, and the key the replay guard will look up."""

    admit: Callable[[Session], dict[str, Any]]
    key: SeenKey


def _accepted(msg: SignedMessage, result: dict[str, Any]) -> dict[str, Any]:
    return {"accepted": msg.type, "id": msg.message["id"], **result}


Step = Callable[[Session, SignedMessage, Inbound], dict[str, Any]]

# Message types decided under the rule book in force: it is looked up before their transaction opens.
DECIDED_UNDER_A_BOOK = ("Invitation", "Offer", "JointPurchase", "Loan")


@dataclass(frozen=True)
class NegotiationPolicy:
    """What stays this node's own choice; everything else comes from the active rule book."""

    safety_floor: int = 0  # units per SKU never offered, whatever the rule book computes
    auto_plan_after_seconds: float | None = None


class Negotiator(Steps):
    def __init__(self, side: Side, policy: NegotiationPolicy) -> None:
        super().__init__(side)
        self.policy = policy
        self.invitations = Invitations(side, policy.safety_floor)
        self.transfers = Transfers(side)
        self.disputes = Disputes(side)
        self.consignments = Consignments(side)
        self.joint_purchases = JointPurchases(side)
        self.loans = Loans(side)
        self.quotes = Quotes(side)
        self._quotes_checked = 0.0
        self.steps: dict[str, Step] = {
            "Invitation": self.invitations.on_invitation,
            "Offer": self.invitations.on_offer,
            "NoOffer": self.invitations.on_no_offer,
            "Cancellation": self.invitations.on_cancellation,
            "Acceptance": self.transfers.on_acceptance,
            "Shipment": self.transfers.on_shipment,
            "Receipt": self.transfers.on_receipt,
            "Dispute": self.disputes.on_dispute,
            "Ruling": self.disputes.on_ruling,
            "ConsignmentSale": self.consignments.on_sale,
            "JointPurchase": self.joint_purchases.on_purchase,
            "JointPurchaseAcceptance": self.joint_purchases.on_acceptance,
            "LoanRequest": self.loans.on_request,
            "Loan": self.loans.on_loan,
            "LoanReturn": self.loans.on_return,
            "QuoteRequest": self.quotes.on_request,
        }
        # The worker and operators' requests both trigger and plan: one at a time, or two invitations
        # (or two plans) could be made for the same need.
        self._planning = threading.RLock()
        # Notified whenever an answer may have come in (a message admitted, a delivery refused): a plan that
        # waits for the members' answers wakes on the event, not on a timer.
        self._answers = threading.Condition()
        side.outbox.on_refused = self._given_back
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._guard: MessageGuard | None = None
        # The node's group commit (node/store/group_commit.py), set by its services; None: a transaction each.
        self.writer: GroupCommit | None = None
        self.settlements: Settlements | None = None

    def add_settlements(self, settlements: Settlements) -> None:
        """Statements travel in the same inbox and outbox; the worker recomputes the ones proposed here."""
        self.settlements = settlements
        self.steps["StatementProposal"] = settlements.on_proposal
        self.steps["StatementSignature"] = settlements.on_signature

    @property
    def guard(self) -> MessageGuard:
        if self._guard is None:  # the domain names the chain id, asked once the chain answers
            self._guard = MessageGuard(
                self.signer.domain, self.directory.is_member, lambda: int(time.time()), self.disputes.ruling_authority
            )
        return self._guard

    # -- receiving -------------------------------------------------------------------------------------------
    def receive(self, envelope: dict[str, Any]) -> dict[str, Any]:
        """Admit and act on one message in one transaction: refused or failed, it changes nothing.
        Signature, membership, the rule book in force and distances are read before the transaction opens."""
        msg, admission = self._admission(envelope)
        result = self._write(admission).result()
        self._after_admitting()
        return _accepted(msg, result)

    def receive_many(self, envelopes: list[Any]) -> list[dict[str, Any] | Exception]:
        """Each message admitted or refused by itself, in order, as `receive` would have one after another (each
        sees what the ones before it wrote): what it answered, or the error it was refused with."""
        admitted: list[tuple[SignedMessage, Future[dict[str, Any]]] | Exception] = []
        for envelope in envelopes:
            try:
                msg, admission = self._admission(envelope)
                admitted.append((msg, self._write(admission)))
            except Exception as refused:  # this message only: the others are admitted or refused by themselves
                admitted.append(refused)
        out: list[dict[str, Any] | Exception] = []
        for item in admitted:
            if isinstance(item, Exception):
                out.append(item)
                continue
            msg, done = item
            try:
                out.append(_accepted(msg, done.result()))
            except Exception as refused:
                out.append(refused)
        self._after_admitting()
        return out

    def _admission(self, envelope: Any) -> tuple[SignedMessage, Admission]:
        """The checks made before any transaction, and the work that admits the message inside one."""
        msg = self.guard.verify(envelope)
        inbound = self._inbound(msg)

        def admit(s: Session) -> dict[str, Any]:
            MessageGuard.remember(msg, lambda signer, nonce, mid: _remember(s, signer, nonce, mid))
            log_message(s, msg, Direction.IN)
            return self.steps[msg.type](s, msg, inbound)

        return msg, Admission(admit, msg.replay_key)

    def _write(self, admission: Admission) -> Future[dict[str, Any]]:
        admit = admission.admit
        if self.writer is not None:  # with the node's other writes, many messages to a transaction
            return self.writer.submit(admit, (read_ahead_seen, admission.key))
        done: Future[dict[str, Any]] = Future()
        try:
            with ledger_transaction(self.engine) as s:  # a step may append records, as in the group commit
                done.set_result(admit(s))
        except Exception as exc:
            done.set_exception(exc)
        return done

    def _after_admitting(self) -> None:
        self.outbox.kick()
        self._answered()

    def _inbound(self, msg: SignedMessage) -> Inbound:
        policy = self.rules.active().policy if msg.type in DECIDED_UNDER_A_BOOK else None
        if msg.type == "Invitation" and msg.message["requester"] != self.me:
            return Inbound(policy, self.directory.distance_m(msg.message["requester"]))
        return Inbound(policy)

    # -- planning: the operator's call and the worker's ----------------------------------------------------
    def plan(self, wait_seconds: float = 0.0, force: bool = False) -> dict[str, Any]:
        """Plan every open invitation once each is ready (every member invited has answered, or its offer
        window has closed), waiting up to `wait_seconds` for that; `force` plans at once. Raises PlanEarly,
        naming who has not answered, when the wait ends first."""
        deadline = time.monotonic() + wait_seconds
        with self._answers:
            while not force and (pending := self._pending()):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PlanEarly(
                        "members invited have not answered and the offer window is open: wait, or plan with force",
                        pending=[
                            {
                                "invitation": r.invitation,
                                "members": list(r.pending),
                                "window_closes_at": r.window_closes_at,
                            }
                            for r in pending
                        ],
                    )
                self._answers.wait(min(left, 1.0))  # an answer wakes it; a window closing is checked each second
        with self._planning:
            return self.transfers.plan()

    def _pending(self) -> list[Readiness]:
        """The open invitations of ours that are not ready to plan yet."""
        now = int(time.time())
        with session_scope(self.engine) as s:
            invitations = s.exec(
                select(Invitation).where(Invitation.mine, Invitation.status == InvitationStatus.OPEN)
            ).all()
            states = [self.invitations.readiness(s, inv) for inv in invitations]
        return [r for r in states if not r.ready_at(now)]

    def _answered(self) -> None:
        with self._answers:
            self._answers.notify_all()

    def _given_back(self, s: Session, msg: SignedMessage) -> None:
        """A peer refused one of our messages for good. An Offer's reservation is released (the invitation was
        planned or closed meanwhile); an Invitation refused counts as that member's answer."""
        if msg.type == "Loan":
            self.loans.given_back(s, msg)
        if msg.type == "Offer":
            offer = s.get(TransferOffer, msg.message["id"])
            if offer is not None and offer.mine and offer.status == OfferStatus.OPEN:
                release_offer(s, self.me, offer, OfferStatus.DECLINED)
                log.info("offer %s refused by the requester: %s units released", offer.id, offer.quantity)

    # -- the trigger and the plan, by themselves -------------------------------------------------------------
    def check_requests(self, today: date | None = None) -> list[dict[str, Any]]:
        """Invite partners for every SKU whose store requests stayed unmet for the configured days."""
        with self._planning:
            return self._check_requests(today or datetime.now(UTC).date())

    def _check_requests(self, today: date) -> list[dict[str, Any]]:
        with session_scope(self.engine) as s:
            rows = s.exec(select(ReplenishmentRequest).where(ReplenishmentRequest.status == RequestStatus.OPEN)).all()
            # A SKU is asked for again only once its last invitation's window has passed: requests no partner
            # could serve are re-opened by the plan, and must not make an invitation a second.
            invited = {
                i.sku
                for i in s.exec(
                    select(Invitation).where(
                        Invitation.mine,
                        (Invitation.status == InvitationStatus.OPEN) | (Invitation.deadline > int(time.time())),
                    )
                ).all()
            }
        requests = {r.id or 0: req for r in rows if (req := self._readable(r)) is not None}
        if not requests:
            return []
        trigger = self.rules.active().policy.trigger
        created: list[dict[str, Any]] = []
        for need in due_needs(requests.values(), today, trigger.days_unmet, invited):
            # The first offer is our own stock at our other locations: partners are asked only for the rest.
            cover = cover_from_own_stock([requests[r] for r in need.requests], self._own_lots(need.sku), today)
            moved, renamed = self._move_own_stock(cover, need.unmet_days)
            rest = [renamed.get(r, r) for r in need.requests if cover.uncovered[r]]
            quantity = sum(cover.uncovered.values())
            out: dict[str, Any] = {
                "sku": need.sku,
                "quantity": quantity,
                "unmet_days": need.unmet_days,
                "requests": rest,
                "internal_moves": moved,
                "invitation": None,
                "invited": [],
            }
            if quantity:
                needed_by = datetime.combine(today + timedelta(days=trigger.needed_within_days), dt_time(18), UTC)
                inv, members = self.invitations.invite(
                    need.sku, quantity, int(needed_by.timestamp()), need.min_shelf_life_days, None
                )
                self._mark_invited(rest, inv.id)
                out.update(invitation=inv.id, invited=[m.address for m in members])
            created.append(out)
        return created

    def _readable(self, row: ReplenishmentRequest) -> OpenRequest | None:
        """The request as the trigger reads it; one that cannot be read is set aside (logged, counted in
        /health) so that it never stops the worker, which reads every open request on every pass."""
        try:
            day = date.fromisoformat(row.requested_on)
        except ValueError:
            log.warning("replenishment request %s has no readable date (%r): set aside", row.id, row.requested_on)
            with session_scope(self.engine) as s:
                stored = s.get(ReplenishmentRequest, row.id)
                if stored is not None:
                    stored.status = RequestStatus.SET_ASIDE
                    s.add(stored)
            return None
        return OpenRequest(row.id or 0, row.sku, row.location, row.quantity, day, row.min_shelf_life_days)

    def _own_lots(self, sku: str) -> list[OwnLot]:
        """Our own stock of `sku`, available, by lot and location."""
        with session_scope(self.engine) as s:
            rows = s.exec(
                select(StockBalance, Lot)
                .join(Lot, (col(Lot.sku) == col(StockBalance.sku)) & (col(Lot.code) == col(StockBalance.lot)))
                .where(
                    StockBalance.sku == sku,
                    StockBalance.owner == self.me,
                    StockBalance.holder == self.me,
                    StockBalance.status == StockStatus.AVAILABLE,
                    StockBalance.quantity > 0,
                )
            ).all()
        return [
            OwnLot(b.lot, b.location, b.quantity, expiry) for b, lot in rows if (expiry := _expiry(lot)) != UNREADABLE
        ]

    def _move_own_stock(self, cover: OwnCover, unmet_days: int) -> tuple[list[dict[str, Any]], dict[int, int]]:
        """Record the internal moves and what they did to the requests, in one transaction: a request covered
        in full is fulfilled; one covered in part is split into its covered part (fulfilled) and the rest, a
        new open request of the same day. Returns the moves and, for each split request, the rest's id."""
        if not cover.moves:
            return [], {}
        moved: dict[int, int] = defaultdict(int)
        renamed: dict[int, int] = {}
        with ledger_transaction(self.engine) as s:
            for m in cover.moves:
                evidence = (Evidence("replenishment_request", str(m.request)), Evidence("unmet_days", str(unmet_days)))
                movement = Movement(
                    MovementType.MOVE,
                    m.sku,
                    m.lot,
                    m.from_location,
                    m.quantity,
                    self.me,
                    self.me,
                    to_location=m.to_location,
                    evidence=evidence,
                    memo=f"own stock first: {m.quantity} to {m.to_location} for request {m.request}",
                )
                record_movement(s, self.me, movement)
                moved[m.request] += m.quantity
            for rid, quantity in moved.items():
                row = s.get(ReplenishmentRequest, rid)
                assert row is not None
                if cover.uncovered[rid]:
                    rest = ReplenishmentRequest(
                        sku=row.sku,
                        location=row.location,
                        quantity=cover.uncovered[rid],
                        requested_on=row.requested_on,
                        min_shelf_life_days=row.min_shelf_life_days,
                    )
                    s.add(rest)
                    s.flush()
                    renamed[rid] = rest.id or 0
                row.quantity, row.status = quantity, RequestStatus.FULFILLED
                s.add(row)
        return [asdict(m) for m in cover.moves], renamed

    def _mark_invited(self, request_ids: list[int], invitation: str) -> None:
        with session_scope(self.engine) as s:
            for rid in request_ids:
                row = s.get(ReplenishmentRequest, rid)
                if row is not None:
                    row.status, row.invitation = RequestStatus.INVITED, invitation
                    s.add(row)

    def auto_plan(self) -> dict[str, Any] | None:
        """Plan by itself once the oldest open invitation is at least `auto_plan_after_seconds` old and every
        open invitation is ready (every member invited answered, or the offer window closed): never before an
        offer on its way arrives, never stranded by a member that stays silent."""
        wait = self.policy.auto_plan_after_seconds
        if wait is None:
            return None
        with session_scope(self.engine) as s:
            oldest = s.exec(
                select(Invitation)
                .where(Invitation.mine, Invitation.status == InvitationStatus.OPEN)
                .order_by(Invitation.created_at)
            ).first()
        if oldest is None:
            return None
        created = datetime.strptime(oldest.created_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        if (datetime.now(UTC) - created).total_seconds() < wait or self._pending():
            return None
        return self.plan()

    # -- the worker ------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="negotiation", daemon=True)
        self._thread.start()
        if self.settlements is not None:
            self.settlements.start()

    def stop(self) -> None:
        self._stop.set()
        self.outbox.kick()
        if self.settlements is not None:
            self.settlements.stop()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.outbox.deliver()
                self._answered()  # a delivery refused may be a member's answer
                self.invitations.expire_offers()
                self.check_requests()
                self.auto_plan()
                self.loans.sell_overdue()
                if time.monotonic() - self._quotes_checked >= QUOTE_CHECK_SECONDS:
                    self._quotes_checked = time.monotonic()
                    self.quotes.ask_due(self.policy.safety_floor)
            except NodeError as exc:  # e.g. no active rule book yet: nothing to decide, say so once in a while
                log.debug("negotiation worker waits: %s", exc.message)
            except Exception:
                log.exception("negotiation worker step failed")
            self.outbox.wakeup.wait(0.5)
            self.outbox.wakeup.clear()


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


UNREADABLE = date.min  # an expiry that cannot be read: the lot is never moved or offered on a guess


def _expiry(lot: Lot) -> date | None:
    if not lot.expires_on:
        return None
    try:
        return date.fromisoformat(lot.expires_on)
    except ValueError:
        log.warning("lot %s of %s has no readable expiry (%r): left out", lot.code, lot.sku, lot.expires_on)
        return UNREADABLE
