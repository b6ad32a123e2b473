"""The transfer half of the protocol: plan, accept, ship, receive, settle (docs/protocol.md section 4).

Every step is one database transaction that writes the ledger records of this side, updates the transfer,
and queues the next signed message, so a crash resumes where it stopped and a retried message is refused as
a replay instead of acting twice. The plan reads, decides (negotiation/plan_step.py, pure) and writes: no
chain call or solver run while the write lock is held.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TypedDict, cast

from sqlmodel import Session, col, select

from chain.records import (
    AnyRecord,
    EvidenceRef,
    LedgerRecord,
    MessageRef,
    RecordType,
    TransferArrived,
    TransferParties,
    TransferReceived,
    TransferShipped,
    TransferShort,
)
from negotiation.matching import plan_to_json, problem_to_json
from negotiation.messages import MessageRefused, SignedMessage
from negotiation.plan_step import OpenInvitation, PlanDecision, decide_plan
from negotiation.planning import ReceivedOffer
from negotiation.rules.engine import SkuFacts
from negotiation.wire import (
    ACCEPTANCE,
    CANCELLATION,
    RECEIPT,
    SHIPMENT,
    AcceptanceFields,
    AcceptanceMessage,
    CancellationFields,
    ReceiptFields,
    ReceiptMessage,
    Refusal,
    ShipmentFields,
    ShipmentMessage,
)
from node.domain.ledger import Bucket, Posting, StockStatus
from node.domain.states import InvitationStatus, OfferStatus, RequestStatus, TransferRole, TransferStatus
from node.domain.times import utc_now_iso
from node.errors import InvalidRequest, NotFound, PlanOutdated, WrongStatus
from node.services.inbound import Inbound
from node.services.router import Noted, ShipmentSent, handles
from node.services.rules_keeper import ActivePolicy, request_facts, sku_facts
from node.services.side import Steps
from node.store.engine import session_scope
from node.store.pool import ensure_lot, require_location, require_sku, unreserve, write_postings
from node.store.records import LEDGER, append_record
from node.store.tables import Invitation, NegotiationMessage, ReplenishmentRequest, Sku, Transfer, TransferOffer
from node.store.writers import ledger_transaction


@dataclass(frozen=True)
class PlanInputs:
    """What the plan reads from the store, as plain data."""

    invitations: list[OpenInvitation]
    offers: list[ReceivedOffer]  # sorted by id; supplier names are filled in from the registry
    offer_invitation: dict[str, str]
    needed_by: dict[str, int]  # invitation id -> unix seconds
    requests: list[int]  # the store requests behind the invitations


class AcceptanceMade(TypedDict):
    """An offer the plan accepted: the Acceptance sent (its id names the transfer) and the offer's terms."""

    acceptance: str
    id: str  # the offer's
    supplier: str
    supplier_name: str
    sku: str
    lot: str
    quantity: int  # accepted
    shelf_life_days: int
    min_order_quantity: int
    unit_price: int
    freight_compensation: int


class PlanEvidence(TypedDict):
    requests: list[int]
    invitations: list[str]
    offers: list[str]
    rule_version: str
    rule_block: int


class PlanMade(TypedDict):
    """A plan over every open invitation of ours: recorded, its acceptances and cancellations on their way."""

    plan: Mapping[str, object]  # the solver's answer (docs/matching.md)
    hashes: dict[str, str]
    record_seq: int
    actions: list[str]
    acceptances: list[AcceptanceMade]
    declined: list[str]
    evidence: PlanEvidence


class ReceiptConfirmed(TypedDict):
    transfer: str
    record_seq: int
    received: int
    shipped: int


class Transfers(Steps):
    # -- requester: plan -------------------------------------------------------------------------------------
    def plan(self) -> PlanMade:
        """Solve over every open invitation of ours and every open offer received, then accept and decline."""
        active = self.rules.active()
        inputs = self._read_plan_inputs(int(time.time()))
        me_name, suppliers = self.directory.suppliers({o.supplier for o in inputs.offers})
        distances = {address: km for address, (_name, km) in suppliers.items()}
        offers = [replace(o, supplier_name=suppliers[o.supplier][0]) for o in inputs.offers]
        decision = decide_plan(
            self.me, me_name, inputs.invitations, offers, distances, active.policy, inputs.offer_invitation
        )
        with ledger_transaction(self.engine) as s:
            seq, accepted = self._write_plan(s, inputs, decision, active)
        self.outbox.kick()
        return {
            "plan": plan_to_json(decision.result),
            "hashes": decision.hashes,
            "record_seq": seq,
            "actions": decision.actions.suggestions,
            "acceptances": accepted,
            "declined": [o.id for o in decision.actions.declined],
            "evidence": {
                "requests": inputs.requests,
                "invitations": [n.invitation for n in decision.needs],
                "offers": [o.id for o in offers],
                "rule_version": active.policy.version,
                "rule_block": active.block,
            },
        }

    def _read_plan_inputs(self, now: int) -> PlanInputs:
        with session_scope(self.engine) as s:
            invitations = s.exec(
                select(Invitation).where(Invitation.mine, Invitation.status == InvitationStatus.OPEN)
            ).all()
            if not invitations:
                raise NotFound("no open invitation to plan for")
            rows = s.exec(
                select(TransferOffer).where(
                    col(TransferOffer.invitation).in_([i.id for i in invitations]),
                    TransferOffer.status == OfferStatus.OPEN,
                    ~col(TransferOffer.mine),
                    TransferOffer.deadline > now,
                )
            ).all()
            skus = {k.code: sku_facts(k) for k in s.exec(select(Sku)).all()}
            requests = s.exec(
                select(ReplenishmentRequest.id).where(
                    col(ReplenishmentRequest.invitation).in_([i.id for i in invitations])
                )
            ).all()
        return PlanInputs(
            invitations=[
                OpenInvitation(
                    i.id, i.sku, skus.get(i.sku, SkuFacts(i.sku, 0)), request_facts(i), i.radius_km, i.consignment
                )
                for i in invitations
            ],
            offers=[
                ReceivedOffer(
                    o.id,
                    o.supplier,
                    "",
                    o.sku,
                    o.lot,
                    o.quantity,
                    o.shelf_life_days,
                    o.min_order_quantity,
                    o.unit_price,
                )
                for o in sorted(rows, key=lambda o: o.id)
            ],
            offer_invitation={o.id: o.invitation for o in rows},
            needed_by={i.id: i.needed_by for i in invitations},
            requests=sorted(r for r in requests if r is not None),
        )

    def _write_plan(
        self, s: Session, inputs: PlanInputs, decision: PlanDecision, active: ActivePolicy
    ) -> tuple[int, list[AcceptanceMade]]:
        """The plan record, an Acceptance per accepted offer, a Cancellation per declined one, in one transaction.
        Refused if anything it decided over changed since it was read (another plan, an operator's decline)."""
        invitations = {i.id: s.get(Invitation, i.id) for i in inputs.invitations}
        offers = {o.id: s.get(TransferOffer, o.id) for o in inputs.offers}
        if any(i is None or i.status != InvitationStatus.OPEN for i in invitations.values()) or any(
            o is None or o.status != OfferStatus.OPEN for o in offers.values()
        ):
            raise PlanOutdated("the invitations or offers changed while planning: plan again")
        seq = self._plan_record(s, inputs, decision, active)
        consigned = {i.id: decision.consigned(i) for i in inputs.invitations}
        accepted: list[AcceptanceMade] = []
        for a in decision.actions.acceptances:
            invitation = inputs.offer_invitation[a.offer.id]
            transfer = self._accept(
                s,
                a.offer,
                a.quantity,
                a.freight_compensation,
                invitation,
                decision,
                consigned[invitation],
                inputs.needed_by[invitation],
            )
            offer_row = offers[a.offer.id]
            assert offer_row is not None
            offer_row.status = OfferStatus.ACCEPTED
            s.add(offer_row)
            offer = a.offer
            accepted.append(
                {
                    "acceptance": transfer.id,
                    "id": offer.id,
                    "supplier": offer.supplier,
                    "supplier_name": offer.supplier_name,
                    "sku": offer.sku,
                    "lot": offer.lot,
                    "quantity": a.quantity,
                    "shelf_life_days": offer.shelf_life_days,
                    "min_order_quantity": offer.min_order_quantity,
                    "unit_price": offer.unit_price,
                    "freight_compensation": a.freight_compensation,
                }
            )
        self._decline_the_rest(s, offers, decision)
        served = {inputs.offer_invitation[a.offer.id] for a in decision.actions.acceptances}
        for inv in invitations.values():
            assert inv is not None
            inv.status = InvitationStatus.PLANNED
            s.add(inv)
            if inv.id not in served:
                _reopen_requests(s, inv.id)
        return seq, accepted

    def _decline_the_rest(self, s: Session, offers: dict[str, TransferOffer | None], decision: PlanDecision) -> None:
        """Each offer the plan does not take is declined, and its supplier told so (it releases the stock)."""
        for o in decision.actions.declined:
            msg = self.signer.sign_step(
                CANCELLATION, CancellationFields(subject=o.id, sender=self.me, reason="not in the plan")
            )
            offer_row = offers[o.id]
            assert offer_row is not None
            offer_row.status = OfferStatus.DECLINED
            s.add(offer_row)
            self.outbox.enqueue(s, msg, o.supplier)

    def _plan_record(self, s: Session, inputs: PlanInputs, decision: PlanDecision, active: ActivePolicy) -> int:
        answer = {**plan_to_json(decision.result), "hashes": decision.hashes}
        answer.pop("gap")
        sources = (
            [("replenishment_request", str(r)) for r in inputs.requests]
            + [("invitation", n.invitation) for n in decision.needs]
            + [("offer", o.id) for o in inputs.offers]
        )
        evidence: list[EvidenceRef] = [{"source": source, "reference": ref} for source, ref in sources]
        record = append_record(
            s,
            LEDGER,
            self.me,
            RecordType.PLAN,
            {
                "lines": [],
                "corrects": None,
                "memo": "; ".join(decision.actions.suggestions),
                "evidence": evidence,
                "plan": {
                    "problem": problem_to_json(decision.problem),
                    "parameters": decision.parameters.as_dict(),
                    "answer": answer,
                    "rule_version": active.policy.version,
                    "rule_block": active.block,
                    "cells": decision.cells(),
                },
            },
        )
        return record.seq

    def _accept(
        self,
        s: Session,
        offer: ReceivedOffer,
        quantity: int,
        freight_compensation: int,
        invitation: str,
        decision: PlanDecision,
        consigned: bool,
        needed_by: int,
    ) -> Transfer:
        message = AcceptanceFields(
            offer=offer.id,
            requester=self.me,
            quantity=quantity,
            freightCompensation=freight_compensation,
            planHash="0x" + decision.hashes["plan"],
            consignment=consigned,
        )
        msg = self.signer.sign_step(ACCEPTANCE, message)
        expires = datetime.fromtimestamp(needed_by, UTC).date() + timedelta(days=offer.shelf_life_days)
        transfer = Transfer(
            id=msg.message["id"],
            role=TransferRole.REQUESTER,
            offer=offer.id,
            invitation=invitation,
            supplier=offer.supplier,
            requester=self.me,
            sku=offer.sku,
            lot=offer.lot,
            quantity=quantity,
            freight_compensation=freight_compensation,
            unit_price=offer.unit_price,
            plan_hash=msg.message["planHash"],
            consignment=consigned,
            expires_on=expires.isoformat(),
            updated_at=utc_now_iso(),
        )
        s.add(transfer)
        self.outbox.enqueue(s, msg, offer.supplier)
        return transfer

    # -- supplier: accepted, ship ----------------------------------------------------------------------------
    @handles(ACCEPTANCE)
    def on_acceptance(self, s: Session, msg: SignedMessage, _inbound: Inbound) -> ShipmentSent:
        m = msg.as_(AcceptanceMessage)
        offer = s.get(TransferOffer, m["offer"])
        if offer is None or not offer.mine:
            raise MessageRefused(Refusal.UNKNOWN_SUBJECT, f"no offer {m['offer']} of this node")
        inv = s.get(Invitation, offer.invitation)
        if inv is None or inv.requester != m["requester"]:
            raise MessageRefused(Refusal.NOT_YOURS, "only the invitation's requester accepts its offers")
        if offer.status != OfferStatus.OPEN:
            raise MessageRefused(Refusal.CLOSED, f"offer {offer.id} is {offer.status}")
        if not offer.min_order_quantity <= m["quantity"] <= offer.quantity:
            said = f"accepted quantity must lie in [{offer.min_order_quantity}, {offer.quantity}]"
            raise MessageRefused(Refusal.MALFORMED, said)
        transfer = Transfer(
            id=m["id"],
            role=TransferRole.SUPPLIER,
            offer=offer.id,
            invitation=offer.invitation,
            supplier=self.me,
            requester=m["requester"],
            sku=offer.sku,
            lot=offer.lot,
            quantity=m["quantity"],
            freight_compensation=m["freightCompensation"],
            unit_price=offer.unit_price,
            consignment=m["consignment"],
            plan_hash=m["planHash"],
            updated_at=utc_now_iso(),
        )
        s.add(transfer)
        if m["quantity"] < offer.quantity:  # keep only what was accepted reserved
            unreserve(s, self.me, offer, offer.quantity - m["quantity"], "partly accepted")
        offer.status = OfferStatus.ACCEPTED
        s.add(offer)
        self._ship(s, transfer, offer.location or "")
        return {"shipped": transfer.shipment}

    def _ship(self, s: Session, transfer: Transfer, location: str) -> None:
        """Custody leaves our pool: reserved -> in transit to the requester, still ours until received."""
        me, q = self.me, transfer.quantity
        postings = [
            Posting(Bucket(transfer.sku, transfer.lot, location, me, me, StockStatus.RESERVED.value), -q),
            Posting(Bucket(transfer.sku, transfer.lot, location, me, me, StockStatus.IN_TRANSIT.value), q),
        ]
        msg = self.signer.sign_step(
            SHIPMENT, ShipmentFields(acceptance=transfer.id, supplier=me, lot=transfer.lot, quantity=q)
        )
        self.outbox.enqueue(s, msg, transfer.requester)
        parties = _parties(transfer, self._evidence_messages(s, transfer.id, msg.message["id"]))
        # What the units cost us, as our master data says now: the record keeps it, a later price change does not.
        shipped = TransferShipped(
            **parties,
            freight_compensation=transfer.freight_compensation,
            unit_price=transfer.unit_price,
            cost_basis=require_sku(s, transfer.sku).purchase_price,
        )
        self._write(s, RecordType.TRANSFER_OUT, postings, transfer, f"shipped {q} to {transfer.requester}", shipped)
        transfer.shipped = q
        transfer.shipment = msg.message["id"]
        _move(s, transfer, TransferStatus.SHIPPED)

    # -- requester: shipped, receive -------------------------------------------------------------------------
    @handles(SHIPMENT)
    def on_shipment(self, s: Session, msg: SignedMessage, _inbound: Inbound) -> Noted:
        m = msg.as_(ShipmentMessage)
        transfer = s.get(Transfer, m["acceptance"])
        if transfer is None or transfer.role != TransferRole.REQUESTER:
            raise MessageRefused(Refusal.UNKNOWN_SUBJECT, f"no acceptance {m['acceptance']} of this node")
        if transfer.supplier != m["supplier"]:
            raise MessageRefused(Refusal.NOT_YOURS, "only the accepted supplier ships")
        if transfer.status != TransferStatus.ACCEPTED:
            raise MessageRefused(Refusal.CLOSED, f"transfer {transfer.id} is {transfer.status}")
        if m["lot"] != transfer.lot or not 0 < m["quantity"] <= transfer.quantity:
            raise MessageRefused(Refusal.MALFORMED, "shipment lot or quantity does not match the acceptance")
        transfer.shipped = m["quantity"]
        transfer.shipment = m["id"]
        _move(s, transfer, TransferStatus.SHIPPED)
        return {}

    def confirm_receipt(self, transfer_id: str, quantity: int, location: str) -> ReceiptConfirmed:
        """The requester counts what arrived; ownership moves to us (unless consignment)."""
        with ledger_transaction(self.engine) as s:
            transfer = self._incoming(s, transfer_id, quantity)
            require_location(s, location)
            ensure_lot(s, transfer.sku, transfer.lot, transfer.expires_on)
            owner = transfer.supplier if transfer.consignment else self.me
            assert transfer.shipment is not None  # _incoming admits only a shipped transfer
            msg = self.signer.sign_step(
                RECEIPT, ReceiptFields(shipment=transfer.shipment, requester=self.me, quantityReceived=quantity)
            )
            self.outbox.enqueue(s, msg, transfer.supplier)
            bucket = Bucket(transfer.sku, transfer.lot, location, owner, self.me, StockStatus.AVAILABLE.value)
            postings = [Posting(bucket, quantity)] if quantity else []
            messages = self._evidence_messages(s, transfer.id, transfer.shipment, msg.message["id"])
            # What a unit is worth to us at most, as our master data says when it arrives.
            received = TransferArrived(
                **_parties(transfer, messages),
                shipped=transfer.shipped,
                received=quantity,
                freight_compensation=transfer.freight_compensation,
                sale_price=require_sku(s, transfer.sku).sale_price,
            )
            memo = f"received {quantity} of {transfer.shipped} shipped"
            seq = self._write(s, RecordType.TRANSFER_IN, postings, transfer, memo, received)
            if quantity != transfer.shipped:
                self._discrepancy(s, transfer, quantity, messages)
            for request in s.exec(
                select(ReplenishmentRequest).where(ReplenishmentRequest.invitation == transfer.invitation)
            ).all():
                request.status = RequestStatus.FULFILLED
                s.add(request)
            transfer.received = quantity
            transfer.receipt = msg.message["id"]
            _move(s, transfer, TransferStatus.RECEIVED)
        self.outbox.kick()
        return {"transfer": transfer_id, "record_seq": seq, "received": quantity, "shipped": transfer.shipped}

    @staticmethod
    def _incoming(s: Session, transfer_id: str, quantity: int) -> Transfer:
        transfer = s.get(Transfer, transfer_id)
        if transfer is None or transfer.role != TransferRole.REQUESTER:
            raise NotFound(f"no incoming transfer {transfer_id}", transfer=transfer_id)
        if transfer.status != TransferStatus.SHIPPED:
            raise WrongStatus(f"transfer {transfer_id} is {transfer.status}, not shipped", transfer=transfer_id)
        if not 0 <= quantity <= transfer.shipped:
            raise InvalidRequest(f"received quantity must lie in [0, {transfer.shipped}]", quantity=quantity)
        return transfer

    # -- supplier: received, settle --------------------------------------------------------------------------
    @handles(RECEIPT)
    def on_receipt(self, s: Session, msg: SignedMessage, _inbound: Inbound) -> Noted:
        m = msg.as_(ReceiptMessage)
        transfer = s.exec(
            select(Transfer).where(Transfer.shipment == m["shipment"], Transfer.role == TransferRole.SUPPLIER)
        ).first()
        if transfer is None:
            raise MessageRefused(Refusal.UNKNOWN_SUBJECT, f"no shipment {m['shipment']} of this node")
        if transfer.requester != m["requester"]:
            raise MessageRefused(Refusal.NOT_YOURS, "only the requester confirms receipt")
        if transfer.status != TransferStatus.SHIPPED:
            raise MessageRefused(Refusal.CLOSED, f"transfer {transfer.id} is {transfer.status}")
        received = m["quantityReceived"]
        if received > transfer.shipped:
            raise MessageRefused(Refusal.MALFORMED, "received more than was shipped")
        location = s.exec(select(TransferOffer.location).where(TransferOffer.id == transfer.offer)).one() or ""
        messages = self._evidence_messages(s, transfer.id, transfer.shipment, m["id"])
        settled = TransferReceived(
            **_parties(transfer, messages),
            shipped=transfer.shipped,
            received=received,
            freight_compensation=transfer.freight_compensation,
        )
        postings = self._settle_postings(transfer, location, received)
        memo = f"{transfer.requester} received {received}"
        self._write(s, RecordType.TRANSFER_SETTLED, postings, transfer, memo, settled)
        if received != transfer.shipped:
            self._discrepancy(s, transfer, received, messages)
        transfer.received = received
        transfer.receipt = m["id"]
        _move(s, transfer, TransferStatus.SETTLED)
        return {}

    def _settle_postings(self, transfer: Transfer, location: str, received: int) -> list[Posting]:
        me = self.me
        in_transit = Bucket(transfer.sku, transfer.lot, location, me, me, StockStatus.IN_TRANSIT.value)
        postings = [Posting(in_transit, -transfer.shipped)]
        if transfer.consignment and received:
            # Still ours, now held by the partner: ownership-penetrating view of consigned stock.
            held = Bucket(
                transfer.sku,
                transfer.lot,
                f"partner:{transfer.requester}",
                me,
                transfer.requester,
                StockStatus.AVAILABLE.value,
            )
            postings.append(Posting(held, received))
        return postings

    # -- the records of both sides ---------------------------------------------------------------------------
    @staticmethod
    def _evidence_messages(s: Session, *ids: str | None) -> list[MessageRef]:
        """The signed messages behind a step, both partners' signatures, copied into its record."""
        out: list[MessageRef] = []
        for mid in ids:
            row = s.get(NegotiationMessage, mid) if mid else None
            if row is not None:
                env = json.loads(row.envelope)
                out.append({"type": row.type, "id": row.id, "signer": row.signer, "signature": env["signature"]})
        return out

    def _write(
        self,
        s: Session,
        type_: RecordType,
        postings: list[Posting],
        transfer: Transfer,
        memo: str,
        details: TransferShipped | TransferArrived | TransferReceived | TransferShort,
    ) -> int:
        """Post a transfer step and record it; `details` (the transfer as the record of `type_` shows it) is
        checked against `type_`'s declaration when the body is built (chain/records.py)."""
        write_postings(s, postings)
        common: LedgerRecord = {
            "lines": [p.as_record() for p in postings],
            "evidence": [
                {"source": "acceptance", "reference": transfer.id},
                {"source": "offer", "reference": transfer.offer},
            ],
            "memo": memo,
            "corrects": None,
        }
        fields = cast(AnyRecord, {**common, "transfer": details})
        return append_record(s, LEDGER, self.me, type_, fields).seq

    def _discrepancy(self, s: Session, transfer: Transfer, received: int, messages: list[MessageRef]) -> None:
        missing = transfer.shipped - received
        short = TransferShort(
            **_parties(transfer, messages), shipped=transfer.shipped, received=received, difference=missing
        )
        memo = f"shipped {transfer.shipped}, received {received}: {missing} missing"
        self._write(s, RecordType.DISCREPANCY, [], transfer, memo, short)


def _parties(transfer: Transfer, messages: list[MessageRef]) -> TransferParties:
    return {
        "acceptance": transfer.id,
        "supplier": transfer.supplier,
        "requester": transfer.requester,
        "messages": messages,
    }


def _move(s: Session, transfer: Transfer, status: TransferStatus) -> None:
    transfer.status = status
    transfer.updated_at = utc_now_iso()
    s.add(transfer)


def _reopen_requests(s: Session, invitation: str) -> None:
    """No partner could serve the invitation: its store requests are open again, never stranded as 'invited';
    the trigger asks the partners again once the invitation's window has passed (node/services/negotiator.py)."""
    for request in s.exec(select(ReplenishmentRequest).where(ReplenishmentRequest.invitation == invitation)).all():
        request.status, request.invitation = RequestStatus.OPEN, None
        s.add(request)
