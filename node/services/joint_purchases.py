"""Joint purchases (docs/protocol.md, section 4, step 10; docs/settlement.md, section 4a).

The buyer bought for several members: its node records the purchase with every participant's share, as the
rule book in force computes it, and sends each participant a signed JointPurchase. A participant's node
keeps it, once its share checks out under the rule book in force, until its operator accepts (a share is a
debt: no node takes one on for its owner); on acceptance it records it (`joint_purchase_share`, the participant's
own word that it owes the share) and tells the buyer. The goods reach each participant as ordinary receipts
with the purchase as their evidence.
"""

from __future__ import annotations

import json
from typing import TypedDict

from sqlmodel import Session, col, select

from chain.records import JointPurchaseInfo, JointPurchaseRecord, JointPurchaseShareRecord, PurchaseShare, RecordType
from negotiation.messages import MessageRefused, SignedMessage, new_id, parse
from negotiation.wire import (
    JOINT_PURCHASE,
    JOINT_PURCHASE_ACCEPTANCE,
    JointPurchaseAcceptanceFields,
    JointPurchaseAcceptanceMessage,
    JointPurchaseFields,
    JointPurchaseMessage,
    Refusal,
)
from node.domain.states import ShareStatus
from node.domain.times import utc_now_iso
from node.errors import AlreadyExists, InvalidRequest, NotFound
from node.services.inbound import Inbound
from node.services.router import ShareState, handles
from node.services.side import Steps
from node.store.engine import session_scope
from node.store.records import LEDGER, append_record
from node.store.tables import JointPurchase, JointPurchaseShare
from node.store.writers import ledger_transaction
from settlement.joint_purchase import SharesInvalid, cost_shares, share_of

PURCHASE_EVIDENCE = "joint_purchase"  # the evidence source naming a purchase on the goods' receipts


class ShareShown(PurchaseShare):
    status: str  # proposed | accepted


class JointPurchaseMade(TypedDict):
    """A joint purchase this node bought: recorded, every participant sent its share."""

    id: str
    record_seq: int
    rule_version: str
    shares: list[ShareShown]


class ShareAccepted(TypedDict):
    """This node's share of a joint purchase, taken on: recorded, the buyer told."""

    purchase: str
    share: int
    record_seq: int


class JointPurchaseShown(TypedDict):
    """A joint purchase as the listing shows it: the record's terms, and each share's state on this node."""

    id: str
    buyer: str
    sku: str
    lot: str
    reference: str
    total_units: int
    total_cost: int
    rule_version: str
    created_at: str
    shares: list[ShareShown]


class JointPurchases(Steps):
    def buy(self, sku: str, lot: str, reference: str, total_cost: int, units: dict[str, int]) -> JointPurchaseMade:
        """The buyer's side: shares under the rule book in force, one record, one message per participant."""
        version = self.rules.active().policy.version
        shares = self._shares(version, total_cost, units)
        purchase = new_id()
        total_units = sum(units.values())
        row = JointPurchase(
            id=purchase,
            buyer=self.me,
            sku=sku,
            lot=lot,
            reference=reference,
            total_units=total_units,
            total_cost=total_cost,
            rule_version=version,
            created_at=utc_now_iso(),
        )
        messages = self._proposals(row, units, shares)
        parts: list[PurchaseShare] = [
            {"participant": m, "units": units.get(m, 0), "share": shares[m]} for m in sorted(shares, key=str.lower)
        ]
        with ledger_transaction(self.engine) as s:
            s.add(row)
            for m in shares:
                status = ShareStatus.ACCEPTED if m == self.me else ShareStatus.PROPOSED
                s.add(
                    JointPurchaseShare(
                        purchase=purchase, participant=m, units=units.get(m, 0), share=shares[m], status=status
                    )
                )
            fields: JointPurchaseRecord = {
                "lines": [],
                "corrects": None,
                "memo": f"joint purchase {reference}: {total_units} of {sku} for {len(units)} participants",
                "evidence": [{"source": "purchase_order", "reference": reference}],
                "joint_purchase": _purchase_info(row, parts),
            }
            seq = append_record(s, LEDGER, self.me, RecordType.JOINT_PURCHASE, fields).seq
            for msg in messages:
                self.outbox.enqueue(s, msg, msg.message["participant"])
        self.outbox.kick()
        shown: list[ShareShown] = [
            {**p, "status": (ShareStatus.ACCEPTED if p["participant"] == self.me else ShareStatus.PROPOSED).value}
            for p in parts
        ]
        return {"id": purchase, "record_seq": seq, "rule_version": version, "shares": shown}

    def _shares(self, version: str, total_cost: int, units: dict[str, int]) -> dict[str, int]:
        """Each participant's share of `total_cost` by the formula of rule book `version` (the one in force);
        refused for a participant that is not an active member, or units the formula cannot share."""
        book = self.rules.book(version)
        assert book is not None and book.joint_purchase_share is not None  # the active book is held and checked
        for member in units:
            if member != self.me and not self.directory.is_member(member):
                raise InvalidRequest(f"{member} is not an active member", participant=member)
        try:
            return cost_shares(book.joint_purchase_share, book.book.currency.minor_units, total_cost, self.me, units)
        except SharesInvalid as exc:
            raise InvalidRequest(str(exc), formula=book.book.settlement.joint_purchase_share) from exc

    def _proposals(self, row: JointPurchase, units: dict[str, int], shares: dict[str, int]) -> list[SignedMessage]:
        """The signed JointPurchase to each participant but the buyer: its units and share of the purchase."""
        return [
            self.signer.sign_step(
                JOINT_PURCHASE,
                JointPurchaseFields(
                    purchase=row.id,
                    buyer=self.me,
                    participant=member,
                    sku=row.sku,
                    lot=row.lot,
                    reference=row.reference,
                    units=u,
                    totalUnits=row.total_units,
                    participants=len(units),
                    totalCost=row.total_cost,
                    share=shares[member],
                    ruleVersion=row.rule_version,
                ),
            )
            for member, u in sorted(units.items())
            if member != self.me
        ]

    @handles(JOINT_PURCHASE)
    def on_purchase(self, s: Session, msg: SignedMessage, inbound: Inbound) -> ShareState:
        """The participant's side: kept for the operator; a share that is not the rule book's is refused."""
        m = msg.as_(JointPurchaseMessage)
        if m["participant"] != self.me:
            raise MessageRefused(Refusal.NOT_YOURS, "this node is not the purchase's participant")
        book = inbound.policy_for(m["ruleVersion"], "the joint purchase").checked
        assert book.joint_purchase_share is not None  # every checked book compiles it
        try:
            expected = share_of(
                book.joint_purchase_share,
                book.book.currency.minor_units,
                m["totalCost"],
                m["totalUnits"],
                m["participants"],
                m["units"],
            )
        except SharesInvalid as exc:
            raise MessageRefused(Refusal.WRONG_SHARE, str(exc)) from exc
        if m["units"] > m["totalUnits"] or expected != m["share"]:
            raise MessageRefused(
                Refusal.WRONG_SHARE,
                f"rule book {m['ruleVersion'][:10]}... gives {expected} for {m['units']} of {m['totalUnits']} units, "
                f"not {m['share']}",
            )
        if s.get(JointPurchase, m["purchase"]) is not None:
            raise MessageRefused(Refusal.REPLAYED, f"purchase {m['purchase']} was proposed to this node before")
        s.add(
            JointPurchase(
                id=m["purchase"],
                buyer=m["buyer"],
                sku=m["sku"],
                lot=m["lot"],
                reference=m["reference"],
                total_units=m["totalUnits"],
                total_cost=m["totalCost"],
                rule_version=m["ruleVersion"],
                created_at=utc_now_iso(),
            )
        )
        s.add(
            JointPurchaseShare(
                purchase=m["purchase"],
                participant=self.me,
                units=m["units"],
                share=m["share"],
                envelope=json.dumps(msg.as_json()),
            )
        )
        return {"purchase": m["purchase"], "status": ShareStatus.PROPOSED.value}

    def accept(self, purchase: str) -> ShareAccepted:
        """The participant's operator takes its share on: recorded, and the buyer told."""
        with ledger_transaction(self.engine) as s:  # two clicks at once accept once: the second sees the first
            share = s.get(JointPurchaseShare, (purchase, self.me))
            if share is None or share.envelope is None:
                raise NotFound(f"no joint purchase {purchase} proposed to this node", purchase=purchase)
            if share.status == ShareStatus.ACCEPTED:
                raise AlreadyExists(f"joint purchase {purchase} was accepted already", record_seq=share.record_seq)
            msg = parse(json.loads(share.envelope))
            m = msg.as_(JointPurchaseMessage)
            fields: JointPurchaseShareRecord = {
                "lines": [],
                "corrects": None,
                "memo": f"share {m['share']} of joint purchase {m['reference']} by {m['buyer']}: {m['units']} units",
                "evidence": [{"source": PURCHASE_EVIDENCE, "reference": purchase}],
                "joint_purchase": msg.signed_copy(),
            }
            share.record_seq = append_record(s, LEDGER, self.me, RecordType.JOINT_PURCHASE_SHARE, fields).seq
            share.status = ShareStatus.ACCEPTED
            s.add(share)
            accepted = JointPurchaseAcceptanceFields(purchase=purchase, participant=self.me, share=m["share"])
            answer = self.signer.sign_step(JOINT_PURCHASE_ACCEPTANCE, accepted)
            self.outbox.enqueue(s, answer, m["buyer"])
            out: ShareAccepted = {"purchase": purchase, "share": share.share, "record_seq": share.record_seq}
        self.outbox.kick()
        return out

    @handles(JOINT_PURCHASE_ACCEPTANCE)
    def on_acceptance(self, s: Session, msg: SignedMessage, _inbound: Inbound) -> ShareState:
        """The buyer's side: the participant took its share on."""
        m = msg.as_(JointPurchaseAcceptanceMessage)
        purchase = s.get(JointPurchase, m["purchase"])
        share = s.get(JointPurchaseShare, (m["purchase"], m["participant"]))
        if purchase is None or purchase.buyer != self.me or share is None:
            said = f"no joint purchase {m['purchase']} of this node for that member"
            raise MessageRefused(Refusal.UNKNOWN_SUBJECT, said)
        if share.share != m["share"]:
            raise MessageRefused(Refusal.WRONG_SHARE, f"the share proposed was {share.share}, not {m['share']}")
        share.status = ShareStatus.ACCEPTED
        s.add(share)
        return {"purchase": m["purchase"], "status": ShareStatus.ACCEPTED.value}

    def listing(self) -> list[JointPurchaseShown]:
        """Every joint purchase this node bought or takes part in, newest first, with each share's state."""
        with session_scope(self.engine) as s:
            rows = s.exec(select(JointPurchase).order_by(col(JointPurchase.created_at).desc())).all()
            shares = s.exec(select(JointPurchaseShare)).all()
        by_purchase: dict[str, list[ShareShown]] = {}
        for sh in shares:
            by_purchase.setdefault(sh.purchase, []).append(
                {"participant": sh.participant, "units": sh.units, "share": sh.share, "status": str(sh.status)}
            )
        return [{**_purchase_info(r, []), "shares": by_purchase.get(r.id, [])} for r in rows]


def _purchase_info(row: JointPurchase, shares: list[PurchaseShare]) -> JointPurchaseInfo:
    """The purchase as its record keeps it (the listing shows each share's state instead)."""
    return {
        "id": row.id,
        "buyer": row.buyer,
        "sku": row.sku,
        "lot": row.lot,
        "reference": row.reference,
        "total_units": row.total_units,
        "total_cost": row.total_cost,
        "rule_version": row.rule_version,
        "created_at": row.created_at,
        "shares": shares,
    }
