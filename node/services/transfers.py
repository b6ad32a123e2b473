"""The transfer half of the protocol: plan, accept, ship, receive, settle (docs/protocol.md section 4).

A mixin of `Negotiator`: every step is one database transaction that writes the ledger records of this
side, updates the transfer, and queues the next signed message, so a crash resumes where it stopped and
a retried message is refused as a replay instead of acting twice.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, select

from negotiation.matching import SolverParameters, plan_hashes, plan_to_json, problem_to_json, solve
from negotiation.messages import MessageRefused, SignedMessage
from negotiation.planning import OpenNeed, ReceivedOffer, build_problem, plan_actions
from negotiation.rules.engine import DEFAULT_MAX_TRANSIT_HOURS, OfferedLot, RequestFacts, SkuFacts
from node.domain.ledger import Bucket, Posting, StockStatus
from node.errors import InvalidMovement, NotFound
from node.services.node_side import NodeSide
from node.services.rules_keeper import request_facts
from node.store.engine import session_scope
from node.store.pool import LEDGER, ensure_lot, require_location, write_postings
from node.store.records import append_record, serialize_writers, utc_now_iso
from node.store.tables import Invitation, NegotiationMessage, ReplenishmentRequest, Sku, Transfer, TransferOffer


class TransferSteps(NodeSide):
    if TYPE_CHECKING:

        def _unreserve(self, s: Session, offer: TransferOffer, quantity: int, why: str) -> None: ...

    def _evidence_messages(self, s: Session, *ids: str | None) -> list[dict[str, Any]]:
        """The signed messages behind a step, both partners' signatures, copied into its record."""
        out = []
        for mid in ids:
            row = s.get(NegotiationMessage, mid) if mid else None
            if row is not None:
                env = json.loads(row.envelope)
                out.append({"type": row.type, "id": row.id, "signer": row.signer, "signature": env["signature"]})
        return out

    def _write(
        self,
        s: Session,
        type_: str,
        postings: list[Posting],
        transfer: Transfer,
        memo: str,
        messages: list[dict[str, Any]],
        extra: dict[str, Any] | None = None,
    ) -> int:
        serialize_writers(s, LEDGER)
        write_postings(s, postings)
        fields: dict[str, Any] = {
            "lines": [p.as_record() for p in postings],
            "evidence": [
                {"source": "acceptance", "reference": transfer.id},
                {"source": "offer", "reference": transfer.offer},
            ],
            "memo": memo,
            "corrects": None,
            "transfer": {
                "acceptance": transfer.id,
                "supplier": transfer.supplier,
                "requester": transfer.requester,
                "messages": messages,
                **(extra or {}),
            },
        }
        return append_record(s, LEDGER, self.address, type_, fields).seq

    # -- requester: plan ------------------------------------------------------------------------------
    def _make_plan(self) -> dict[str, Any]:
        """Solve over every open invitation of ours and every open offer received, then accept and decline."""
        now = int(time.time())
        active = self.rules.active()
        policy = active.policy
        with session_scope(self.engine) as s:
            invitations = s.exec(select(Invitation).where(Invitation.mine, Invitation.status == "open")).all()
            if not invitations:
                raise NotFound("no open invitation to plan for")
            rows = s.exec(
                select(TransferOffer).where(
                    TransferOffer.invitation.in_([i.id for i in invitations]),  # type: ignore[attr-defined]
                    TransferOffer.status == "open",
                    ~TransferOffer.mine,  # type: ignore[arg-type]
                    TransferOffer.deadline > now,
                )
            ).all()
            me = self.directory.member(self.address)
            names, distances = {}, {}
            from negotiation.geo import distance_m

            for supplier in {o.supplier for o in rows}:
                info = self.directory.member(supplier)
                names[supplier] = info.name
                distances[supplier] = round(distance_m(me.lat_e6, me.lon_e6, info.lat_e6, info.lon_e6) / 1000)
            offers = [
                ReceivedOffer(
                    o.id,
                    o.supplier,
                    names[o.supplier],
                    o.sku,
                    o.lot,
                    o.quantity,
                    o.shelf_life_days,
                    o.min_order_quantity,
                    o.unit_price,
                )
                for o in sorted(rows, key=lambda o: o.id)
            ]
            # Each invitation's scenario terms under the rule book in force now, and its weights as money per
            # unit over its best-scoring offer.
            terms, needs, preferences = {}, [], {}
            for i in sorted(invitations, key=lambda i: i.id):
                sku = s.get(Sku, i.sku)
                facts, sku_facts = request_facts(i), SkuFacts(i.sku, sku.transfer_price if sku else 0)
                t = policy.request_terms(facts, sku_facts)
                terms[i.id] = t.scenario
                needs.append(
                    OpenNeed(i.id, i.sku, i.quantity, t.min_shelf_life_days, t.max_transit_hours, t.shortage_penalty)
                )
                candidates = [
                    OfferedLot(o.id, o.shelf_life_days, distances[o.supplier], o.unit_price, o.quantity)
                    for o in offers
                    if o.sku == i.sku
                ]
                preferences[i.id] = policy.preferences(facts, sku_facts, t.scenario, candidates)
            radius = max(i.radius_km for i in invitations)
            problem = build_problem(
                self.address,
                needs,
                offers,
                distances,
                policy,
                radius,
                DEFAULT_MAX_TRANSIT_HOURS,
                policy.shortage_penalty(RequestFacts(1, 0)),
                preferences,
            )
            params = SolverParameters()
            result = solve(problem, params)
            hashes = plan_hashes(problem, params, result)
            inv_of = {o.id: o.invitation for o in rows}
            # Cost sharing (joint purchase): the requester pays its share of the freight, the supplier the rest.
            shares = {o.id: terms[o.invitation].requester_freight_share for o in rows}
            actions = plan_actions(
                result, offers, distances, policy, me.name, {n.invitation: n.sku for n in needs}, shares
            )
            answer = {**plan_to_json(result), "hashes": hashes}
            answer.pop("gap")
            # The store requests that made each invitation: the "why" behind the plan.
            requests = s.exec(
                select(ReplenishmentRequest.id).where(
                    ReplenishmentRequest.invitation.in_([n.invitation for n in needs])  # type: ignore[union-attr]
                )
            ).all()
            record = append_record(
                s,
                LEDGER,
                self.address,
                "plan",
                {
                    "lines": [],
                    "corrects": None,
                    "memo": "; ".join(actions.suggestions),
                    "evidence": [
                        {"source": "replenishment_request", "reference": str(r)}
                        for r in sorted(r for r in requests if r is not None)
                    ]
                    + [{"source": "invitation", "reference": n.invitation} for n in needs]
                    + [{"source": "offer", "reference": o.id} for o in offers],
                    "plan": {
                        "problem": problem_to_json(problem),
                        "parameters": params.as_dict(),
                        "answer": answer,
                        "rule_version": policy.version,
                        "rule_block": active.block,
                        "cells": {n.invitation: list(terms[n.invitation].branches) for n in needs},
                    },
                },
            )
            offer_rows = {o.id: o for o in rows}
            needed_by = {i.id: i.needed_by for i in invitations}
            consigned = {i.id: i.consignment or terms[i.id].ownership == "consignment" for i in invitations}
            accepted = []
            for a in actions.acceptances:
                msg = self._sign(
                    "Acceptance",
                    {
                        "offer": a.offer.id,
                        "requester": self.address,
                        "quantity": a.quantity,
                        "freightCompensation": a.freight_compensation,
                        "planHash": "0x" + hashes["plan"],
                        "consignment": consigned[inv_of[a.offer.id]],
                    },
                )
                expires = datetime.fromtimestamp(needed_by[inv_of[a.offer.id]], UTC).date() + timedelta(
                    days=a.offer.shelf_life_days
                )
                s.add(
                    Transfer(
                        id=msg.message["id"],
                        role="requester",
                        offer=a.offer.id,
                        invitation=inv_of[a.offer.id],
                        supplier=a.offer.supplier,
                        requester=self.address,
                        sku=a.offer.sku,
                        lot=a.offer.lot,
                        quantity=a.quantity,
                        freight_compensation=a.freight_compensation,
                        unit_price=a.offer.unit_price,
                        plan_hash=msg.message["planHash"],
                        consignment=consigned[inv_of[a.offer.id]],
                        expires_on=expires.isoformat(),
                        updated_at=utc_now_iso(),
                    )
                )
                offer_rows[a.offer.id].status = "accepted"
                s.add(offer_rows[a.offer.id])
                self._enqueue(s, msg, a.offer.supplier)
                accepted.append(
                    {
                        "acceptance": msg.message["id"],
                        **asdict(a.offer),
                        "quantity": a.quantity,
                        "freight_compensation": a.freight_compensation,
                    }
                )
            for o in actions.declined:
                msg = self._sign("Cancellation", {"subject": o.id, "sender": self.address, "reason": "not in the plan"})
                offer_rows[o.id].status = "declined"
                s.add(offer_rows[o.id])
                self._enqueue(s, msg, o.supplier)
            for inv in invitations:
                inv.status = "planned"
                s.add(inv)
        self._wake_worker()
        return {
            "plan": plan_to_json(result),
            "hashes": hashes,
            "record_seq": record.seq,
            "actions": actions.suggestions,
            "acceptances": accepted,
            "declined": [o.id for o in actions.declined],
            "evidence": {
                "requests": sorted(r for r in requests if r is not None),
                "invitations": [n.invitation for n in needs],
                "offers": [o.id for o in offers],
                "rule_version": policy.version,
                "rule_block": active.block,
            },
        }

    # -- supplier: accepted, ship ----------------------------------------------------------------------
    def _on_acceptance(self, s: Session, msg: SignedMessage) -> dict[str, Any]:
        m = msg.message
        offer = s.get(TransferOffer, m["offer"])
        if offer is None or not offer.mine:
            raise MessageRefused("unknown_subject", f"no offer {m['offer']} of this node")
        inv = s.get(Invitation, offer.invitation)
        if inv is None or inv.requester != m["requester"]:
            raise MessageRefused("not_yours", "only the invitation's requester accepts its offers")
        if offer.status != "open":
            raise MessageRefused("closed", f"offer {offer.id} is {offer.status}")
        if not offer.min_order_quantity <= m["quantity"] <= offer.quantity:
            raise MessageRefused(
                "malformed", f"accepted quantity must lie in [{offer.min_order_quantity}, {offer.quantity}]"
            )
        transfer = Transfer(
            id=m["id"],
            role="supplier",
            offer=offer.id,
            invitation=offer.invitation,
            supplier=self.address,
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
            self._unreserve(s, offer, offer.quantity - m["quantity"], "partly accepted")
        offer.status = "accepted"
        s.add(offer)
        self._ship(s, transfer, offer.location or "")
        return {"shipped": transfer.shipment}

    def _ship(self, s: Session, transfer: Transfer, location: str) -> None:
        """Custody leaves our pool: reserved -> in transit to the requester, still ours until received."""
        me = self.address
        q = transfer.quantity
        postings = [
            Posting(Bucket(transfer.sku, transfer.lot, location, me, me, StockStatus.RESERVED.value), -q),
            Posting(Bucket(transfer.sku, transfer.lot, location, me, me, StockStatus.IN_TRANSIT.value), q),
        ]
        msg = self._sign("Shipment", {"acceptance": transfer.id, "supplier": me, "lot": transfer.lot, "quantity": q})
        self._enqueue(s, msg, transfer.requester)
        self._write(
            s,
            "transfer_out",
            postings,
            transfer,
            f"shipped {q} to {transfer.requester}",
            self._evidence_messages(s, transfer.id, msg.message["id"]),
            {"freight_compensation": transfer.freight_compensation, "unit_price": transfer.unit_price},
        )
        transfer.shipped = q
        transfer.shipment = msg.message["id"]
        transfer.status = "shipped"
        transfer.updated_at = utc_now_iso()
        s.add(transfer)

    # -- requester: shipped, receive -------------------------------------------------------------------
    def _on_shipment(self, s: Session, msg: SignedMessage) -> dict[str, Any]:
        m = msg.message
        transfer = s.get(Transfer, m["acceptance"])
        if transfer is None or transfer.role != "requester":
            raise MessageRefused("unknown_subject", f"no acceptance {m['acceptance']} of this node")
        if transfer.supplier != m["supplier"]:
            raise MessageRefused("not_yours", "only the accepted supplier ships")
        if transfer.status != "accepted":
            raise MessageRefused("closed", f"transfer {transfer.id} is {transfer.status}")
        if m["lot"] != transfer.lot or not 0 < m["quantity"] <= transfer.quantity:
            raise MessageRefused("malformed", "shipment lot or quantity does not match the acceptance")
        transfer.shipped = m["quantity"]
        transfer.shipment = m["id"]
        transfer.status = "shipped"
        transfer.updated_at = utc_now_iso()
        s.add(transfer)
        return {}

    def confirm_receipt(self, transfer_id: str, quantity: int, location: str) -> dict[str, Any]:
        """The requester counts what arrived; ownership moves to us (unless consignment)."""
        with session_scope(self.engine) as s:
            transfer = s.get(Transfer, transfer_id)
            if transfer is None or transfer.role != "requester":
                raise NotFound(f"no incoming transfer {transfer_id}", transfer=transfer_id)
            if transfer.status != "shipped":
                raise InvalidMovement(f"transfer {transfer_id} is {transfer.status}, not shipped", transfer=transfer_id)
            if not 0 <= quantity <= transfer.shipped:
                raise InvalidMovement(f"received quantity must lie in [0, {transfer.shipped}]", quantity=quantity)
            require_location(s, location)
            ensure_lot(s, transfer.sku, transfer.lot, transfer.expires_on)
            owner = transfer.supplier if transfer.consignment else self.address
            msg = self._sign(
                "Receipt", {"shipment": transfer.shipment, "requester": self.address, "quantityReceived": quantity}
            )
            self._enqueue(s, msg, transfer.supplier)
            postings = (
                [
                    Posting(
                        Bucket(transfer.sku, transfer.lot, location, owner, self.address, StockStatus.AVAILABLE.value),
                        quantity,
                    )
                ]
                if quantity
                else []
            )
            messages = self._evidence_messages(s, transfer.id, transfer.shipment, msg.message["id"])
            seq = self._write(
                s,
                "transfer_in",
                postings,
                transfer,
                f"received {quantity} of {transfer.shipped} shipped",
                messages,
                {
                    "shipped": transfer.shipped,
                    "received": quantity,
                    "freight_compensation": transfer.freight_compensation,
                },
            )
            if quantity != transfer.shipped:
                self._discrepancy(s, transfer, quantity, messages)
            for request in s.exec(
                select(ReplenishmentRequest).where(ReplenishmentRequest.invitation == transfer.invitation)
            ).all():
                request.status = "fulfilled"
                s.add(request)
            transfer.received = quantity
            transfer.receipt = msg.message["id"]
            transfer.status = "received"
            transfer.updated_at = utc_now_iso()
            s.add(transfer)
        self._wake_worker()
        return {"transfer": transfer_id, "record_seq": seq, "received": quantity, "shipped": transfer.shipped}

    def _discrepancy(self, s: Session, transfer: Transfer, received: int, messages: list[dict[str, Any]]) -> None:
        self._write(
            s,
            "discrepancy",
            [],
            transfer,
            f"shipped {transfer.shipped}, received {received}: {transfer.shipped - received} missing",
            messages,
            {"shipped": transfer.shipped, "received": received, "difference": transfer.shipped - received},
        )

    # -- supplier: received, settle --------------------------------------------------------------------
    def _on_receipt(self, s: Session, msg: SignedMessage) -> dict[str, Any]:
        m = msg.message
        transfer = s.exec(
            select(Transfer).where(Transfer.shipment == m["shipment"], Transfer.role == "supplier")
        ).first()
        if transfer is None:
            raise MessageRefused("unknown_subject", f"no shipment {m['shipment']} of this node")
        if transfer.requester != m["requester"]:
            raise MessageRefused("not_yours", "only the requester confirms receipt")
        if transfer.status != "shipped":
            raise MessageRefused("closed", f"transfer {transfer.id} is {transfer.status}")
        received = m["quantityReceived"]
        if received > transfer.shipped:
            raise MessageRefused("malformed", "received more than was shipped")
        me = self.address
        location = s.exec(select(TransferOffer.location).where(TransferOffer.id == transfer.offer)).one() or ""
        postings = [
            Posting(
                Bucket(transfer.sku, transfer.lot, location, me, me, StockStatus.IN_TRANSIT.value), -transfer.shipped
            )
        ]
        if transfer.consignment and received:
            # Still ours, now held by the partner: ownership-penetrating view of consigned stock.
            postings.append(
                Posting(
                    Bucket(
                        transfer.sku,
                        transfer.lot,
                        f"partner:{transfer.requester}",
                        me,
                        transfer.requester,
                        StockStatus.AVAILABLE.value,
                    ),
                    received,
                )
            )
        messages = self._evidence_messages(s, transfer.id, transfer.shipment, m["id"])
        self._write(
            s,
            "transfer_settled",
            postings,
            transfer,
            f"{transfer.requester} received {received}",
            messages,
            {"shipped": transfer.shipped, "received": received, "freight_compensation": transfer.freight_compensation},
        )
        if received != transfer.shipped:
            self._discrepancy(s, transfer, received, messages)
        transfer.received = received
        transfer.receipt = m["id"]
        transfer.status = "settled"
        transfer.updated_at = utc_now_iso()
        s.add(transfer)
        return {}
