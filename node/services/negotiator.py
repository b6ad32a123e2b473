"""The negotiation worker of a node: it triggers invitations for unmet requests, plans once the members
invited have answered, and delivers the outbox.

Messages coming in are admitted by the router (node/services/router.py); the steps themselves live in the step
groups (node/services/steps.py), built by the composition root (node/services/container.py). The rules are pure
(negotiation/): this module never holds the write lock across a chain call, a peer call or a solver run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from typing import TypedDict

from sqlmodel import Session, col, select

from negotiation.messages import SignedMessage
from negotiation.planning import Readiness
from negotiation.trigger import InternalMove, OpenRequest, OwnCover, OwnLot, cover_from_own_stock, due_needs
from negotiation.wire import MessageType
from node.domain.ledger import Evidence, Movement, MovementType, StockStatus
from node.domain.states import InvitationStatus, OfferStatus, RequestStatus
from node.errors import NodeError, PlanEarly
from node.services.quotes import QUOTE_CHECK_SECONDS
from node.services.side import Side, Steps
from node.services.steps import StepGroups
from node.services.transfers import PlanMade
from node.store.engine import session_scope
from node.store.pool import record_movement, release_offer
from node.store.tables import Invitation, Lot, ReplenishmentRequest, StockBalance, TransferOffer
from node.store.writers import ledger_transaction

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NegotiationPolicy:
    """What stays this node's own choice; everything else comes from the active rule book."""

    safety_floor: int = 0  # units per SKU never offered, whatever the rule book computes
    auto_plan_after_seconds: float | None = None


class Triggered(TypedDict):
    """A SKU unmet long enough: first moved from our own other locations, then partners invited for the rest."""

    sku: str
    quantity: int  # what partners are asked for
    unmet_days: int
    requests: list[int]  # the requests the invitation is for
    internal_moves: list[InternalMove]  # our own stock moved first
    invitation: str | None  # None when our own stock covered every request
    invited: list[str]


class Negotiator(Steps):
    def __init__(self, side: Side, policy: NegotiationPolicy, steps: StepGroups) -> None:
        super().__init__(side)
        self.policy = policy
        self.steps = steps
        self._quotes_checked = 0.0
        # The worker and operators' requests both trigger and plan: one at a time, or two invitations
        # (or two plans) could be made for the same need.
        self._planning = threading.RLock()
        # Notified whenever an answer may have come in (a message admitted, a delivery refused): a plan that
        # waits for the members' answers wakes on the event, not on a timer.
        self._answers = threading.Condition()
        side.outbox.on_refused = self._given_back
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def admitted(self) -> None:
        """Messages were admitted (the router calls this): answers may wait in the outbox, a plan may go on."""
        self.outbox.kick()
        self._answered()

    # -- planning: the operator's call and the worker's ----------------------------------------------------
    def plan(self, wait_seconds: float = 0.0, force: bool = False) -> PlanMade:
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
            return self.steps.transfers.plan()

    def _pending(self) -> list[Readiness]:
        """The open invitations of ours that are not ready to plan yet."""
        now = int(time.time())
        with session_scope(self.engine) as s:
            invitations = s.exec(
                select(Invitation).where(Invitation.mine, Invitation.status == InvitationStatus.OPEN)
            ).all()
            states = [self.steps.invitations.readiness(s, inv) for inv in invitations]
        return [r for r in states if not r.ready_at(now)]

    def _answered(self) -> None:
        with self._answers:
            self._answers.notify_all()

    def _given_back(self, s: Session, msg: SignedMessage) -> None:
        """A peer refused one of our messages for good. An Offer's reservation is released (the invitation was
        planned or closed meanwhile); an Invitation refused counts as that member's answer."""
        if msg.type == MessageType.LOAN:
            self.steps.loans.given_back(s, msg)
        if msg.type == MessageType.OFFER:
            offer = s.get(TransferOffer, msg.message["id"])
            if offer is not None and offer.mine and offer.status == OfferStatus.OPEN:
                release_offer(s, self.me, offer, OfferStatus.DECLINED)
                log.info("offer %s refused by the requester: %s units released", offer.id, offer.quantity)

    # -- the trigger and the plan, by themselves -------------------------------------------------------------
    def check_requests(self, today: date | None = None) -> list[Triggered]:
        """Invite partners for every SKU whose store requests stayed unmet for the configured days."""
        with self._planning:
            return self._check_requests(today or datetime.now(UTC).date())

    def _check_requests(self, today: date) -> list[Triggered]:
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
        created: list[Triggered] = []
        for need in due_needs(requests.values(), today, trigger.days_unmet, invited):
            # The first offer is our own stock at our other locations: partners are asked only for the rest.
            cover = cover_from_own_stock([requests[r] for r in need.requests], self._own_lots(need.sku), today)
            moved, renamed = self._move_own_stock(cover, need.unmet_days)
            rest = [renamed.get(r, r) for r in need.requests if cover.uncovered[r]]
            quantity = sum(cover.uncovered.values())
            invitation: str | None = None
            asked: list[str] = []
            if quantity:
                needed_by = datetime.combine(today + timedelta(days=trigger.needed_within_days), dt_time(18), UTC)
                inv, members = self.steps.invitations.invite(
                    need.sku, quantity, int(needed_by.timestamp()), need.min_shelf_life_days, None
                )
                self._mark_invited(rest, inv.id)
                invitation, asked = inv.id, [m.address for m in members]
            created.append(
                {
                    "sku": need.sku,
                    "quantity": quantity,
                    "unmet_days": need.unmet_days,
                    "requests": rest,
                    "internal_moves": moved,
                    "invitation": invitation,
                    "invited": asked,
                }
            )
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

    def _move_own_stock(self, cover: OwnCover, unmet_days: int) -> tuple[list[InternalMove], dict[int, int]]:
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
        return list(cover.moves), renamed

    def _mark_invited(self, request_ids: list[int], invitation: str) -> None:
        with session_scope(self.engine) as s:
            for rid in request_ids:
                row = s.get(ReplenishmentRequest, rid)
                if row is not None:
                    row.status, row.invitation = RequestStatus.INVITED, invitation
                    s.add(row)

    def auto_plan(self) -> PlanMade | None:
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
        self.steps.settlements.start()

    def stop(self) -> None:
        self._stop.set()
        self.outbox.kick()
        self.steps.settlements.stop()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.outbox.deliver()
                self._answered()  # a delivery refused may be a member's answer
                self.steps.invitations.expire_offers()
                self.check_requests()
                self.auto_plan()
                self.steps.loans.sell_overdue()
                if time.monotonic() - self._quotes_checked >= QUOTE_CHECK_SECONDS:
                    self._quotes_checked = time.monotonic()
                    self.steps.quotes.ask_due(self.policy.safety_floor)
            except NodeError as exc:  # e.g. no active rule book yet: nothing to decide, say so once in a while
                log.debug("negotiation worker waits: %s", exc.message)
            except Exception:
                log.exception("negotiation worker step failed")
            self.outbox.wakeup.wait(0.5)
            self.outbox.wakeup.clear()


UNREADABLE = date.min  # an expiry that cannot be read: the lot is never moved or offered on a guess


def _expiry(lot: Lot) -> date | None:
    if not lot.expires_on:
        return None
    try:
        return date.fromisoformat(lot.expires_on)
    except ValueError:
        log.warning("lot %s of %s has no readable expiry (%r): left out", lot.code, lot.sku, lot.expires_on)
        return UNREADABLE
