"""Invitations and offers between partner nodes, at the edge: database, registry, HTTP delivery.

The rules themselves are pure (negotiation/messages.py admits messages, negotiation/offers.py picks
lots); this module stores what was admitted, reserves stock through the ledger, and delivers signed
messages from a persisted outbox so that a crash or an unreachable peer loses nothing.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from functools import cached_property
from typing import Any

import httpx
from eth_account import Account
from sqlalchemy import Engine
from sqlmodel import Session, select

from chain.registry_client import MemberInfo, MemberRegistryClient
from chain.tx import connect
from negotiation.geo import distance_m
from negotiation.messages import Domain, MessageGuard, MessageRefused, SignedMessage, new_id, new_nonce, sign
from negotiation.rules.engine import CandidateLot, Policy, RequestFacts, SkuFacts, StockFacts
from negotiation.rules.names import SCENARIOS
from negotiation.trigger import OpenRequest, due_needs
from node.domain.ledger import Evidence, Movement, MovementType, StockStatus
from node.errors import InvalidMovement, NodeError, NotFound
from node.services.disputes import DisputeSteps
from node.services.rules_keeper import RuleKeeper, daily_demand
from node.services.transfers import TransferSteps
from node.store.engine import session_scope
from node.store.pool import record_movement
from node.store.records import utc_now_iso
from node.store.tables import (
    Invitation,
    Lot,
    NegotiationMessage,
    OutboxMessage,
    ReplenishmentRequest,
    SeenMessage,
    Sku,
    StockBalance,
    TransferOffer,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NegotiationPolicy:
    """What stays this node's own choice; everything else comes from the active rule book."""

    safety_floor: int = 0  # units per SKU never offered, whatever the rule book computes
    auto_plan_after_seconds: float | None = None


class Negotiator(TransferSteps, DisputeSteps):
    def __init__(
        self,
        engine: Engine,
        rpc_url: str,
        registry: str,
        private_key: str,
        consortium: str,
        policy: NegotiationPolicy,
        rules: RuleKeeper,
    ) -> None:
        self.engine = engine
        self.directory = MemberRegistryClient(rpc_url, registry)
        self.private_key = private_key
        self.policy = policy
        self.rpc_url = rpc_url
        self.consortium = consortium
        self.registry = registry
        self.address: str = Account.from_key(private_key).address
        self.rules = rules
        # The worker and operators' requests both trigger and plan: one at a time, or two invitations
        # (or two plans) could be made for the same need.
        self._planning = threading.RLock()
        self._local = threading.local()  # per request thread: the policy receive() looked up
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @cached_property
    def domain(self) -> Domain:
        # Asked lazily: a node starts even while the chain is down, and learns the chain id once it is up.
        return Domain(self.consortium, int(connect(self.rpc_url).eth.chain_id), self.registry)

    @cached_property
    def guard(self) -> MessageGuard:
        return MessageGuard(self.domain, self._is_member, lambda: int(time.time()), self.ruling_authority)

    def _is_member(self, address: str) -> bool:
        return self.directory.member(address).active

    # -- receiving -----------------------------------------------------------------------------------
    def receive(self, envelope: dict[str, Any]) -> dict[str, Any]:
        """Admit and act on one message in one transaction: refused or failed, it changes nothing."""
        # Asked of the chain before the transaction opens: the write lock is never held across an RPC call.
        self._local.policy = self.rules.active().policy if envelope.get("type") in ("Invitation", "Offer") else None
        with session_scope(self.engine) as s:

            def remember(signer: str, nonce: int, message_id: str) -> bool:
                seen = s.exec(
                    select(SeenMessage).where(
                        (SeenMessage.signer == signer) & (SeenMessage.nonce == nonce)
                        | (SeenMessage.message_id == message_id)
                    )
                ).first()
                if seen is not None:
                    return False
                s.add(SeenMessage(signer=signer, nonce=nonce, message_id=message_id, received_at=utc_now_iso()))
                return True

            msg = self.guard.admit(envelope, remember)
            self._log(s, msg, "in")
            handler = {
                "Invitation": self._on_invitation,
                "Offer": self._on_offer,
                "Cancellation": self._on_cancellation,
                "Acceptance": self._on_acceptance,
                "Shipment": self._on_shipment,
                "Receipt": self._on_receipt,
                "Dispute": self._on_dispute,
                "Ruling": self._on_ruling,
            }
            result = handler[msg.type](s, msg)
        self._wake.set()
        return {"accepted": msg.type, "id": msg.message["id"], **result}

    def _log(self, s: Session, msg: SignedMessage, direction: str, peer: str | None = None) -> None:
        m = msg.message
        subject = (
            m.get("invitation") or m.get("offer") or m.get("acceptance") or m.get("shipment") or m.get("subject")
        ) or m.get("dispute")
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

    def _active_for(self, version: str, what: str) -> Policy:
        """Our active policy, refusing a message made under any other rule book version."""
        policy: Policy | None = self._local.policy
        assert policy is not None  # receive() looked it up for this message type
        if version != policy.version:
            raise MessageRefused(
                "rule_version", f"{what} was made under rule book {version}; {policy.version} is in force"
            )
        return policy

    def _on_invitation(self, s: Session, msg: SignedMessage) -> dict[str, Any]:
        m = msg.message
        if m["requester"] == self.address:
            raise MessageRefused("malformed", "a node does not invite itself")
        policy = self._active_for(m["ruleVersion"], "the invitation")
        if m["scenario"] not in SCENARIOS or m["customerTier"] not in policy.book.customer_tiers:
            raise MessageRefused("malformed", "unknown scenario or customer tier for the rule book in force")
        me, requester = self.directory.member(self.address), self.directory.member(m["requester"])
        distance = distance_m(me.lat_e6, me.lon_e6, requester.lat_e6, requester.lon_e6)
        if distance > m["radiusKm"] * 1000:
            raise MessageRefused("out_of_radius", "this node lies outside the invitation's radius")
        s.add(
            Invitation(
                id=m["id"],
                requester=m["requester"],
                sku=m["sku"],
                quantity=m["quantity"],
                needed_by=m["neededBy"],
                min_shelf_life_days=m["minShelfLifeDays"],
                radius_km=m["radiusKm"],
                deadline=m["deadline"],
                mine=False,
                scenario=m["scenario"],
                customer_tier=m["customerTier"],
                urgent=m["urgent"],
                rule_version=m["ruleVersion"],
                distance_km=round(distance / 1000),
                created_at=utc_now_iso(),
            )
        )
        offers = self._answer(s, m, policy, round(distance / 1000))
        return {"offers": [o.message["id"] for o in offers]}

    def _answer(self, s: Session, inv: dict[str, Any], policy: Policy, distance_km: int) -> list[SignedMessage]:
        """Offer what this node can spare under the rule book in force, reserving it so that it cannot be
        offered twice."""
        sku = s.get(Sku, inv["sku"])
        if sku is None:
            return []
        rows = s.exec(
            select(StockBalance, Lot)
            .join(Lot, (Lot.sku == StockBalance.sku) & (Lot.code == StockBalance.lot))  # type: ignore[arg-type]
            .where(
                StockBalance.sku == inv["sku"],
                StockBalance.owner == self.address,
                StockBalance.holder == self.address,
                StockBalance.status == StockStatus.AVAILABLE.value,
                StockBalance.quantity > 0,
            )
        ).all()
        needed_by = datetime.fromtimestamp(inv["neededBy"], UTC).date()
        today = datetime.now(UTC).date()
        lots = [
            CandidateLot.of(
                b.lot, b.location, b.quantity, _day(lot.expires_on), _day(lot.received_on), needed_by, today
            )
            for b, lot in rows
        ]
        available = sum(lot.available for lot in lots)
        calendar = policy.calendar(today)
        sku_facts = SkuFacts(sku.code, sku.transfer_price)
        demand = policy.estimate(daily_demand(s, today, [sku.code])[sku.code])
        safety = policy.safety(demand, sku_facts, available, available, calendar, self.policy.safety_floor)
        request = RequestFacts(
            inv["quantity"],
            inv["minShelfLifeDays"],
            customer_tier=inv["customerTier"],
            scenario=inv["scenario"],
            urgent=inv["urgent"],
        )
        stock = StockFacts(available, safety.level, available)
        lines, _terms = policy.offer(lots, request, sku_facts, stock, calendar, distance_km)
        offer_ttl = policy.trigger.offer_ttl_seconds
        deadline = min(int(time.time()) + offer_ttl, inv["deadline"] + offer_ttl)
        sent = []
        for pick in lines:
            offer_id = new_id()
            record_movement(
                s,
                self.address,
                Movement(
                    MovementType.STATUS_CHANGE,
                    inv["sku"],
                    pick.lot,
                    pick.location,
                    pick.quantity,
                    self.address,
                    self.address,
                    status=StockStatus.AVAILABLE.value,
                    to_status=StockStatus.RESERVED.value,
                    evidence=(
                        Evidence("invitation", inv["id"]),
                        Evidence("offer", offer_id),
                        Evidence("rule_version", policy.version),
                    ),
                    memo=f"reserved for offer {offer_id} to {inv['requester']}",
                ),
            )
            message = {
                "id": offer_id,
                "invitation": inv["id"],
                "supplier": self.address,
                "sku": inv["sku"],
                "lot": pick.lot,
                "quantity": pick.quantity,
                "shelfLifeDays": pick.shelf_life_days,
                "minOrderQuantity": pick.min_order_quantity,
                "unitPrice": pick.unit_price,
                "ruleVersion": policy.version,
                "nonce": new_nonce(),
                "deadline": deadline,
            }
            signed = sign(self.domain, "Offer", message, self.private_key)
            s.add(
                TransferOffer(
                    id=offer_id,
                    invitation=inv["id"],
                    supplier=self.address,
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
            )
            self._enqueue(s, signed, inv["requester"])
            sent.append(signed)
        return sent

    def _on_offer(self, s: Session, msg: SignedMessage) -> dict[str, Any]:
        m = msg.message
        inv = s.get(Invitation, m["invitation"])
        if inv is None or not inv.mine:
            raise MessageRefused("unknown_subject", f"no invitation {m['invitation']} of this node")
        if inv.status != "open":
            raise MessageRefused("closed", f"invitation {inv.id} is {inv.status}")
        if m["sku"] != inv.sku:
            raise MessageRefused("malformed", "the offer is for another SKU than the invitation")
        self._active_for(m["ruleVersion"], "the offer")
        s.add(
            TransferOffer(
                id=m["id"],
                invitation=inv.id,
                supplier=m["supplier"],
                sku=m["sku"],
                lot=m["lot"],
                quantity=m["quantity"],
                shelf_life_days=m["shelfLifeDays"],
                min_order_quantity=m["minOrderQuantity"],
                unit_price=m["unitPrice"],
                deadline=m["deadline"],
                mine=False,
                rule_version=m["ruleVersion"],
            )
        )
        return {}

    def _on_cancellation(self, s: Session, msg: SignedMessage) -> dict[str, Any]:
        """The requester declines one of our offers: release what it reserved."""
        offer = s.get(TransferOffer, msg.message["subject"])
        if offer is None or not offer.mine:
            raise MessageRefused("unknown_subject", f"no offer {msg.message['subject']} of this node")
        inv = s.get(Invitation, offer.invitation)
        if inv is None or inv.requester != msg.signer_claimed:
            raise MessageRefused("not_yours", "only the invitation's requester declines its offers")
        if offer.status == "open":
            self._release(s, offer, "declined")
        return {"released": offer.quantity if offer.status == "declined" else 0}

    def _release(self, s: Session, offer: TransferOffer, status: str) -> None:
        self._unreserve(s, offer, offer.quantity, status)
        offer.status = status
        s.add(offer)

    def _unreserve(self, s: Session, offer: TransferOffer, quantity: int, why: str) -> None:
        record_movement(
            s,
            self.address,
            Movement(
                MovementType.STATUS_CHANGE,
                offer.sku,
                offer.lot,
                offer.location or "",
                quantity,
                self.address,
                self.address,
                status=StockStatus.RESERVED.value,
                to_status=StockStatus.AVAILABLE.value,
                evidence=(Evidence("offer", offer.id), Evidence("invitation", offer.invitation)),
                memo=f"offer {offer.id} {why}: {quantity} released from reservation",
            ),
        )

    # -- sending -------------------------------------------------------------------------------------
    def peers(self) -> list[tuple[MemberInfo, int]]:
        """Every other active member with its distance from this node in metres, nearest first."""
        members = self.directory.members()
        me = next((m for m in members if m.address == self.address), None)
        if me is None or not me.active:
            raise InvalidMovement("this node is not an active member of the registry")
        others = [m for m in members if m.active and m.address != self.address]
        return sorted(
            ((m, distance_m(me.lat_e6, me.lon_e6, m.lat_e6, m.lon_e6)) for m in others),
            key=lambda p: (p[1], p[0].address),
        )

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
            raise InvalidMovement(
                f"customer tier {tier!r} is not one of the rule book's {policy.book.customer_tiers}", tier=tier
            )
        radius = radius_km if radius_km is not None else policy.trigger.radius_km
        invited = [m for m, d in self.peers() if d <= radius * 1000]
        message: dict[str, Any] = {
            "id": new_id(),
            "requester": self.address,
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
            # The emergency SLA: partners answer an urgent invitation within its response time.
            "deadline": int(time.time())
            + (
                policy.book.emergency_sla.respond_within_minutes * 60
                if urgent
                else policy.trigger.invitation_ttl_seconds
            ),
        }
        signed = sign(self.domain, "Invitation", message, self.private_key)
        with session_scope(self.engine) as s:
            if s.get(Sku, sku) is None:
                raise NotFound(f"unknown SKU {sku}", sku=sku)
            inv = Invitation(
                id=message["id"],
                requester=self.address,
                sku=sku,
                quantity=quantity,
                needed_by=needed_by,
                min_shelf_life_days=min_shelf_life_days,
                radius_km=radius,
                deadline=message["deadline"],
                mine=True,
                consignment=consignment,
                scenario=scenario,
                customer_tier=tier,
                urgent=urgent,
                rule_version=policy.version,
                created_at=utc_now_iso(),
                invited=json.dumps([m.address for m in invited]),
            )
            s.add(inv)
            self._log(s, signed, "out", peer=self.address)
            for member in invited:
                self._enqueue(s, signed, member.address)
        self._wake.set()
        return inv, invited

    def decline(self, offer_id: str, reason: str = "declined") -> None:
        """Tell a supplier we will not take its offer, so that it releases the reservation."""
        with session_scope(self.engine) as s:
            offer = s.get(TransferOffer, offer_id)
            if offer is None or offer.mine:
                raise NotFound(f"no received offer {offer_id}", offer=offer_id)
            if offer.status != "open":
                raise InvalidMovement(f"offer {offer_id} is {offer.status}", offer=offer_id)
            cancellation = self._sign("Cancellation", {"subject": offer_id, "sender": self.address, "reason": reason})
            offer.status = "declined"
            s.add(offer)
            self._enqueue(s, cancellation, offer.supplier)
        self._wake.set()

    def _enqueue(self, s: Session, msg: SignedMessage, recipient: str) -> None:
        if msg.signer_claimed == self.address and msg.type != "Invitation":
            self._log(s, msg, "out", peer=recipient)
        s.add(OutboxMessage(message_id=msg.message["id"], recipient=recipient, envelope=json.dumps(msg.as_json())))

    def deliver(self) -> int:
        """Deliver what is due in the outbox; returns how many were delivered."""
        now = time.time()
        with session_scope(self.engine) as s:
            due = s.exec(
                select(OutboxMessage)
                .where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now)
                .order_by(OutboxMessage.id)  # type: ignore[arg-type]
                .limit(100)
            ).all()
        delivered = 0
        for item in due:
            status, error = self._post(item)
            with session_scope(self.engine) as s:
                row = s.get(OutboxMessage, item.id)
                assert row is not None
                row.attempts += 1
                row.last_error = error
                if status is not None:
                    row.status = status
                    delivered += status == "delivered"
                else:
                    row.next_attempt_at = time.time() + min(30.0, 0.25 * 2 ** min(row.attempts, 7))
                s.add(row)
        return delivered

    def _post(self, item: OutboxMessage) -> tuple[str | None, str | None]:
        try:
            url = self.directory.member(item.recipient).node_url
            resp = httpx.post(
                f"{url.rstrip('/')}/negotiation/messages",
                content=item.envelope,
                headers={"Content-Type": "application/json"},
                timeout=10,
            )
        except Exception as exc:  # unreachable peer or chain: retry later
            return None, f"{type(exc).__name__}: {exc}"
        if resp.status_code < 300:
            return "delivered", None
        reason = _reason(resp)
        if reason == "replayed":
            return "delivered", None  # our earlier attempt got through before its answer was lost
        if resp.status_code >= 500:
            return None, f"{resp.status_code}: {resp.text[:200]}"
        return "refused", f"{resp.status_code} {reason}: {resp.text[:200]}"

    def expire_offers(self) -> int:
        """Release reservations of our offers whose deadline passed unanswered."""
        now = int(time.time())
        with session_scope(self.engine) as s:
            stale = s.exec(
                select(TransferOffer).where(
                    TransferOffer.mine, TransferOffer.status == "open", TransferOffer.deadline < now
                )
            ).all()
            for offer in stale:
                self._release(s, offer, "expired")
            return len(stale)

    def check_requests(self, today: date | None = None) -> list[dict[str, Any]]:
        """Invite partners for every SKU whose store requests stayed unmet for the configured days."""
        with self._planning:
            return self._check_requests(today or datetime.now(UTC).date())

    def _check_requests(self, today: date) -> list[dict[str, Any]]:
        with session_scope(self.engine) as s:
            rows = s.exec(select(ReplenishmentRequest).where(ReplenishmentRequest.status == "open")).all()
            invited = {
                i.sku for i in s.exec(select(Invitation).where(Invitation.mine, Invitation.status == "open")).all()
            }
        requests = [
            OpenRequest(
                r.id or 0, r.sku, r.location, r.quantity, date.fromisoformat(r.requested_on), r.min_shelf_life_days
            )
            for r in rows
        ]
        created: list[dict[str, Any]] = []
        if not requests:
            return created
        trigger = self.rules.active().policy.trigger
        for need in due_needs(requests, today, trigger.days_unmet, invited):
            needed_by = datetime.combine(today + timedelta(days=trigger.needed_within_days), dt_time(18), UTC)
            inv, members = self.invite(
                need.sku, need.quantity, int(needed_by.timestamp()), need.min_shelf_life_days, None
            )
            with session_scope(self.engine) as s:
                for rid in need.requests:
                    row = s.get(ReplenishmentRequest, rid)
                    if row is not None:
                        row.status, row.invitation = "invited", inv.id
                        s.add(row)
            created.append(
                {
                    "invitation": inv.id,
                    "sku": need.sku,
                    "quantity": need.quantity,
                    "unmet_days": need.unmet_days,
                    "requests": list(need.requests),
                    "invited": [m.address for m in members],
                }
            )
        return created

    def auto_plan(self) -> dict[str, Any] | None:
        """Plan once the offer window of the oldest open invitation has passed and offers are in."""
        wait = self.policy.auto_plan_after_seconds
        if wait is None:
            return None
        with session_scope(self.engine) as s:
            oldest = s.exec(
                select(Invitation).where(Invitation.mine, Invitation.status == "open").order_by(Invitation.created_at)
            ).first()
            if oldest is None:
                return None
            age = (
                datetime.now(UTC) - datetime.strptime(oldest.created_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
            ).total_seconds()
            has_offers = s.exec(select(TransferOffer).where(TransferOffer.invitation == oldest.id)).first() is not None
        if age < wait or not has_offers:
            return None
        return self.plan()

    def plan(self) -> dict[str, Any]:
        with self._planning:
            return self._make_plan()

    def _wake_worker(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="negotiation", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.deliver()
                self.expire_offers()
                self.check_requests()
                self.auto_plan()
            except NodeError as exc:  # e.g. no active rule book yet: nothing to decide, say so once in a while
                log.debug("negotiation worker waits: %s", exc.message)
            except Exception:
                log.exception("negotiation worker step failed")
            self._wake.wait(0.5)
            self._wake.clear()


def _reason(resp: httpx.Response) -> str:
    try:
        return str(resp.json().get("error", ""))
    except ValueError:
        return ""


def _day(iso: str | None) -> date | None:
    return date.fromisoformat(iso) if iso else None
