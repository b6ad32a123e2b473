"""Invitations and offers (docs/protocol.md sections 2-3): the requester invites the members within its radius,
each supplier answers under the rule book in force with offers whose stock it reserves, and the requester
declines what it will not take. Every step is one transaction that writes its records and queues its messages.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, date, datetime
from fractions import Fraction
from typing import Any

from sqlmodel import Session, col, select

from chain.registry_client import MemberInfo
from negotiation.limits import within_share
from negotiation.messages import MessageRefused, SignedMessage, new_id, new_nonce
from negotiation.planning import Readiness, plan_readiness
from negotiation.rules.book import Limits
from negotiation.rules.engine import CandidateLot, Policy, RequestFacts, StockFacts
from negotiation.rules.names import SCENARIOS
from negotiation.wire import (
    CANCELLATION,
    INVITATION,
    NO_OFFER,
    OFFER,
    CancellationFields,
    InvitationMessage,
    NoOfferFields,
    NoOfferMessage,
    OfferMessage,
    Refusal,
)
from node.domain.ledger import Evidence, StockStatus
from node.domain.states import Direction, InvitationStatus, OfferStatus, OutboxStatus
from node.domain.times import utc_now_iso
from node.errors import NotFound, NotInRuleBook, WrongStatus
from node.services.inbound import Inbound
from node.services.outbox import log_message
from node.services.router import Noted, OffersMade, OffersReleased, handles
from node.services.rules_keeper import sku_facts
from node.services.side import Side, Steps
from node.store.demand import daily_demand
from node.store.engine import session_scope
from node.store.pool import change_reservation, hold, release_offer
from node.store.tables import (
    Invitation,
    Lot,
    NegotiationMessage,
    OutboxMessage,
    Sku,
    StockBalance,
    TransferOffer,
)
from node.store.writers import ledger_transaction

log = logging.getLogger(__name__)


class Invitations(Steps):
    def __init__(self, side: Side, safety_floor: int) -> None:
        super().__init__(side)
        self.safety_floor = safety_floor  # units per SKU never offered, whatever the rule book computes

    # -- requester -------------------------------------------------------------------------------------------
    def invite(
        self,
        sku: str,
        quantity: int,
        needed_by: int,
        min_shelf_life_days: int,
        radius_km: int | None,
        consignment: bool = False,
        scenario: str = "routine_replenishment",
        customer_tier: str | None = None,
        urgent: bool = False,
    ) -> tuple[Invitation, list[MemberInfo]]:
        policy = self.rules.active().policy
        tier = customer_tier or policy.book.customer_tiers[0]
        if tier not in policy.book.customer_tiers:
            raise NotInRuleBook(
                f"customer tier {tier!r} is not one of the rule book's {policy.book.customer_tiers}", tier=tier
            )
        radius = radius_km if radius_km is not None else policy.trigger.radius_km
        invited = [m for m, d in self.directory.peers() if d <= radius * 1000]
        # The emergency SLA: partners answer an urgent invitation within its response time.
        ttl = policy.book.emergency_sla.respond_within_minutes * 60 if urgent else policy.trigger.invitation_ttl_seconds
        message: InvitationMessage = {
            "id": new_id(),
            "requester": self.me,
            "sku": sku,
            "quantity": quantity,
            "neededBy": needed_by,
            "minShelfLifeDays": min_shelf_life_days,
            "radiusKm": radius,
            "scenario": scenario,
            "customerTier": tier,
            "urgent": urgent,
            "ruleVersion": policy.version,
            "nonce": new_nonce(),
            "deadline": int(time.time()) + ttl,
        }
        signed = self.signer.sign(INVITATION, message)
        with session_scope(self.engine) as s:
            if s.get(Sku, sku) is None:
                raise NotFound(f"unknown SKU {sku}", sku=sku)
            inv = Invitation.of_message(
                message,
                mine=True,
                created_at=utc_now_iso(),
                consignment=consignment,
                invited=[m.address for m in invited],
            )
            s.add(inv)
            log_message(s, signed, Direction.OUT, peer=self.me)
            for member in invited:
                self.outbox.enqueue(s, signed, member.address)
        self.outbox.kick()
        return inv, invited

    @handles(OFFER)
    def on_offer(self, s: Session, msg: SignedMessage, inbound: Inbound) -> Noted:
        m = msg.as_(OfferMessage)
        inv = s.get(Invitation, m["invitation"])
        if inv is None or not inv.mine:
            raise MessageRefused(Refusal.UNKNOWN_SUBJECT, f"no invitation {m['invitation']} of this node")
        hold(s, inv)  # the invitation's other offers, admitted in the same group, find it without a query
        if inv.status != InvitationStatus.OPEN:
            raise MessageRefused(Refusal.CLOSED, f"invitation {inv.id} is {inv.status}")
        if m["sku"] != inv.sku:
            raise MessageRefused(Refusal.MALFORMED, "the offer is for another SKU than the invitation")
        inbound.policy_for(m["ruleVersion"], "the offer")
        s.add(TransferOffer.of_message(m, mine=False))
        return {}

    def decline(self, offer_id: str, reason: str = "declined") -> None:
        """Tell a supplier we will not take its offer, so that it releases the reservation."""
        with session_scope(self.engine) as s:
            offer = s.get(TransferOffer, offer_id)
            if offer is None or offer.mine:
                raise NotFound(f"no received offer {offer_id}", offer=offer_id)
            if offer.status != OfferStatus.OPEN:
                raise WrongStatus(f"offer {offer_id} is {offer.status}", offer=offer_id)
            cancellation = self.signer.sign_step(
                CANCELLATION, CancellationFields(subject=offer_id, sender=self.me, reason=reason)
            )
            offer.status = OfferStatus.DECLINED
            s.add(offer)
            self.outbox.enqueue(s, cancellation, offer.supplier)
            log.info("offer %s of %s declined: %s", offer_id, offer.supplier, reason)
        self.outbox.kick()

    # -- supplier --------------------------------------------------------------------------------------------
    @handles(INVITATION)
    def on_invitation(self, s: Session, msg: SignedMessage, inbound: Inbound) -> OffersMade:
        m = msg.as_(InvitationMessage)
        if m["requester"] == self.me:
            raise MessageRefused(Refusal.MALFORMED, "a node does not invite itself")
        policy = inbound.policy_for(m["ruleVersion"], "the invitation")
        if m["scenario"] not in SCENARIOS or m["customerTier"] not in policy.book.customer_tiers:
            raise MessageRefused(Refusal.MALFORMED, "unknown scenario or customer tier for the rule book in force")
        assert inbound.distance_m is not None
        if inbound.distance_m > m["radiusKm"] * 1000:
            raise MessageRefused(Refusal.OUT_OF_RADIUS, "this node lies outside the invitation's radius")
        s.add(Invitation.of_message(m, mine=False, created_at=utc_now_iso(), distance_km=inbound.distance_km))
        refusal = self._invitations_over_limit(s, m["requester"], policy.book.limits)
        offers = [] if refusal else self._answer(s, m, policy, inbound.distance_km)
        if not offers:  # an answer all the same: the requester need not wait for this member's window to close
            reason = refusal or "no stock to spare under the rule book in force"
            reason = reason if s.get(Sku, m["sku"]) else f"this node does not carry {m['sku']}"
            log.info(
                "invitation %s from %s (%s x%s): no offer: %s", m["id"], m["requester"], m["sku"], m["quantity"], reason
            )
            self._no_offer(s, m, reason, policy)
        else:
            log.info(
                "invitation %s from %s (%s x%s): offered %s units in %s offers",
                m["id"],
                m["requester"],
                m["sku"],
                m["quantity"],
                sum(o.message["quantity"] for o in offers),
                len(offers),
            )
        return {"offers": [o.message["id"] for o in offers]}

    def _no_offer(self, s: Session, inv: InvitationMessage, reason: str, policy: Policy) -> None:
        fields = NoOfferFields(invitation=inv["id"], supplier=self.me, reason=reason, ruleVersion=policy.version)
        self.outbox.enqueue(s, self.signer.sign_step(NO_OFFER, fields), inv["requester"])

    @handles(NO_OFFER)
    def on_no_offer(self, s: Session, msg: SignedMessage, _inbound: Inbound) -> Noted:
        """A member invited has nothing to offer: it has answered (logged with the invitation as subject)."""
        m = msg.as_(NoOfferMessage)
        inv = s.get(Invitation, m["invitation"])
        if inv is None or not inv.mine:
            raise MessageRefused(Refusal.UNKNOWN_SUBJECT, f"no invitation {m['invitation']} of this node")
        if m["supplier"] not in json.loads(inv.invited):
            raise MessageRefused(Refusal.NOT_YOURS, "this member was not invited")
        log.info("%s has nothing to offer for invitation %s: %s", m["supplier"], m["invitation"], m["reason"])
        return {}

    @staticmethod
    def no_offers(s: Session, inv: Invitation) -> list[tuple[str, str]]:
        """(member, reason) of each NoOffer received for one of our invitations."""
        rows = s.exec(
            select(NegotiationMessage).where(
                NegotiationMessage.subject == inv.id,
                NegotiationMessage.type == NO_OFFER.type,
                NegotiationMessage.direction == Direction.IN,
            )
        ).all()
        return [(row.signer, str(json.loads(row.envelope)["message"]["reason"])) for row in rows]

    @staticmethod
    def readiness(s: Session, inv: Invitation) -> Readiness:
        """Who of the members invited has answered: an offer, a NoOffer, or a refusal of the invitation."""
        offered = s.exec(select(TransferOffer.supplier).where(TransferOffer.invitation == inv.id)).all()
        declined = s.exec(
            select(NegotiationMessage.signer).where(
                NegotiationMessage.subject == inv.id,
                NegotiationMessage.type == NO_OFFER.type,
                NegotiationMessage.direction == Direction.IN,
            )
        ).all()
        refused = s.exec(
            select(OutboxMessage.recipient).where(
                OutboxMessage.message_id == inv.id, OutboxMessage.status == OutboxStatus.REFUSED
            )
        ).all()
        return plan_readiness(inv.id, json.loads(inv.invited), [*offered, *declined, *refused], inv.deadline)

    def _answer(self, s: Session, inv: InvitationMessage, policy: Policy, distance_km: int) -> list[SignedMessage]:
        """Offer what this node can spare under the rule book in force, reserving it so that it cannot be
        offered twice."""
        sku = s.get(Sku, inv["sku"])
        if sku is None:
            return []
        today = datetime.now(UTC).date()
        lots = self._candidate_lots(s, inv, today)
        available = sum(lot.available for lot in lots)
        calendar = policy.calendar(today)
        facts = sku_facts(sku)
        demand = policy.estimate(daily_demand(s, today, [sku.code])[sku.code])
        safety = policy.safety(demand, facts, available, available, calendar, self.safety_floor)
        request = RequestFacts(
            inv["quantity"],
            inv["minShelfLifeDays"],
            customer_tier=inv["customerTier"],
            scenario=inv["scenario"],
            urgent=inv["urgent"],
        )
        stock = StockFacts(available, safety.level, available)
        lines, _terms = policy.offer(lots, request, facts, stock, calendar, distance_km)
        held = self._held_for(s, inv["requester"], inv["sku"])
        share = Fraction(policy.book.limits.reserved_share_per_member)
        lines = within_share(lines, held, available, share)
        offer_ttl = policy.trigger.offer_ttl_seconds
        deadline = min(int(time.time()) + offer_ttl, inv["deadline"] + offer_ttl)
        sent = []
        for pick in lines:
            offer = TransferOffer(
                id=new_id(),
                invitation=inv["id"],
                supplier=self.me,
                sku=inv["sku"],
                lot=pick.lot,
                location=pick.location,
                quantity=pick.quantity,
                shelf_life_days=pick.shelf_life_days,
                min_order_quantity=pick.min_order_quantity,
                unit_price=pick.unit_price,
                deadline=deadline,
                mine=True,
                rule_version=policy.version,
            )
            sent.append(self._offer(s, offer, inv["requester"]))
        return sent

    @staticmethod
    def _open_offers_to(requester: str) -> Any:
        return (
            select(TransferOffer)
            .join(Invitation, col(Invitation.id) == col(TransferOffer.invitation))
            .where(TransferOffer.mine, TransferOffer.status == OfferStatus.OPEN, Invitation.requester == requester)
        )

    def _held_for(self, s: Session, requester: str, sku: str) -> int:
        """Units of `sku` this node holds reserved in its open offers to `requester`."""
        return sum(o.quantity for o in s.exec(self._open_offers_to(requester).where(TransferOffer.sku == sku)).all())

    def _invitations_over_limit(self, s: Session, requester: str, limits: Limits) -> str | None:
        """Why this node answers no more of `requester`'s invitations now: too many already hold reservations."""
        holding = {o.invitation for o in s.exec(self._open_offers_to(requester)).all()}
        if len(holding) >= limits.open_invitations_per_member:
            return (
                f"limit: {len(holding)} invitations of this member hold reservations here "
                f"(at most {limits.open_invitations_per_member}); plan or decline them first"
            )
        return None

    def _candidate_lots(self, s: Session, inv: InvitationMessage, today: date) -> list[CandidateLot]:
        rows = s.exec(
            select(StockBalance, Lot)
            .join(Lot, (col(Lot.sku) == col(StockBalance.sku)) & (col(Lot.code) == col(StockBalance.lot)))
            .where(
                StockBalance.sku == inv["sku"],
                StockBalance.owner == self.me,
                StockBalance.holder == self.me,
                StockBalance.status == StockStatus.AVAILABLE,
                StockBalance.quantity > 0,
            )
        ).all()
        needed_by = datetime.fromtimestamp(inv["neededBy"], UTC).date()
        lots = []
        for b, lot in rows:
            try:
                expires, received = _day(lot.expires_on), _day(lot.received_on)
            except ValueError:  # a row this node cannot read is never offered on a guess, nor stops the answer
                log.warning("lot %s of %s has unreadable dates: not offered", lot.code, lot.sku)
                continue
            lots.append(CandidateLot.of(b.lot, b.location, b.quantity, expires, received, needed_by, today))
        return lots

    def _offer(self, s: Session, offer: TransferOffer, requester: str) -> SignedMessage:
        """Reserve the offered stock, keep the offer, and queue it, signed, for the requester."""
        change_reservation(
            s,
            self.me,
            offer,
            offer.quantity,
            True,
            f"reserved for offer {offer.id} to {requester}",
            (
                Evidence("invitation", offer.invitation),
                Evidence("offer", offer.id),
                Evidence("rule_version", offer.rule_version),
            ),
        )
        message = offer.as_message(new_nonce())
        signed = self.signer.sign(OFFER, message)
        s.add(offer)
        self.outbox.enqueue(s, signed, requester)
        return signed

    @handles(CANCELLATION)
    def on_cancellation(self, s: Session, msg: SignedMessage, _inbound: Inbound) -> OffersReleased:
        """The requester declines one of our offers: release what it reserved."""
        offer = s.get(TransferOffer, msg.message["subject"])
        if offer is None or not offer.mine:
            raise MessageRefused(Refusal.UNKNOWN_SUBJECT, f"no offer {msg.message['subject']} of this node")
        inv = s.get(Invitation, offer.invitation)
        if inv is None or inv.requester != msg.signer_claimed:
            raise MessageRefused(Refusal.NOT_YOURS, "only the invitation's requester declines its offers")
        if offer.status == OfferStatus.OPEN:
            release_offer(s, self.me, offer, OfferStatus.DECLINED)
            log.info("offer %s declined by %s: %s units released", offer.id, msg.signer_claimed, offer.quantity)
        return {"released": offer.quantity if offer.status == OfferStatus.DECLINED else 0}

    def expire_offers(self) -> int:
        """Release reservations of our offers whose deadline passed unanswered."""
        now = int(time.time())
        with ledger_transaction(self.engine) as s:
            stale = s.exec(
                select(TransferOffer).where(
                    TransferOffer.mine, TransferOffer.status == OfferStatus.OPEN, TransferOffer.deadline < now
                )
            ).all()
            for offer in stale:
                release_offer(s, self.me, offer, OfferStatus.EXPIRED)
            return len(stale)


def _day(iso: str | None) -> date | None:
    return date.fromisoformat(iso) if iso else None
