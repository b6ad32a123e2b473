"""Disputes and rulings (docs/protocol.md section 5): headquarters' second role, arbitration.

A partner opens a dispute on a transfer, an offer or any decision record; both sides record it. The rule
book's arbitrator signs a ruling; each side admits it only if its signer is the arbitrator of the rule
book the dispute was opened under, and records it as an anchored ledger record carrying the signature.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import TypedDict

from eth_account import Account
from sqlmodel import Session, select

from chain.records import DisputeRecord, RecordType, RulingRecord
from negotiation.limits import dispute_refusal
from negotiation.messages import Domain, MessageRefused, SignedMessage, new_id, new_nonce, sign
from negotiation.rules.book import Limits
from negotiation.wire import DISPUTE, RULING, DisputeFields, DisputeMessage, MessageType, Refusal, RulingMessage
from node.domain.states import DisputeStatus
from node.domain.times import utc_iso, utc_now_iso
from node.errors import InvalidRequest, LimitReached
from node.services.inbound import Inbound
from node.services.router import RecordWritten, handles
from node.services.side import Steps
from node.services.signer import STEP_DEADLINE_SECONDS
from node.store.engine import session_scope
from node.store.records import LEDGER, append_record
from node.store.tables import Dispute, Invitation, Transfer, TransferOffer
from node.store.writers import ledger_transaction


class DisputeOpened(TypedDict):
    """A dispute this node opened: signed, recorded, and on its way to the respondent."""

    dispute: str
    respondent: str
    record_seq: int
    rule_version: str


class Disputes(Steps):
    def _counterparty(self, s: Session, subject: str) -> str | None:
        """The other side of a transfer or an offer of ours, if the subject is one."""
        transfer = s.get(Transfer, subject)
        if transfer is not None:
            return transfer.requester if transfer.supplier == self.me else transfer.supplier
        offer = s.get(TransferOffer, subject)
        if offer is not None:
            if not offer.mine:
                return offer.supplier
            inv = s.get(Invitation, offer.invitation)
            return inv.requester if inv else None
        return None

    def open_dispute(self, subject: str, reason: str, claim_amount: int, respondent: str | None) -> DisputeOpened:
        version = self.rules.active().policy.version
        with session_scope(self.engine) as s:
            other = self._counterparty(s, subject) or respondent
        if other is None:
            raise InvalidRequest(
                f"{subject} is no transfer or offer of this node: name the respondent", subject=subject
            )
        if other == self.me:
            raise InvalidRequest("a node does not dispute with itself")
        if not self.directory.is_member(other):
            raise InvalidRequest(f"{other} is not an active member", respondent=other)
        with session_scope(self.engine) as s:
            # The respondent would refuse it: say so before anything is signed or recorded.
            refusal = self._over_limit(s, self.me, other, self._limits(version))
        if refusal is not None:
            raise LimitReached(refusal, respondent=other)
        message = DisputeFields(
            subject=subject,
            opener=self.me,
            respondent=other,
            reason=reason,
            claimAmount=claim_amount,
            ruleVersion=version,
        )
        msg = self.signer.sign_step(DISPUTE, message)
        with ledger_transaction(self.engine) as s:
            seq = self._record_dispute(s, msg, mine=True)
            self.outbox.enqueue(s, msg, other)
        self.outbox.kick()
        return {"dispute": msg.message["id"], "respondent": other, "record_seq": seq, "rule_version": version}

    def _record_dispute(self, s: Session, msg: SignedMessage, mine: bool) -> int:
        m = msg.as_(DisputeMessage)
        s.add(Dispute.of_message(m, mine=mine, opened_at=utc_now_iso()))
        fields: DisputeRecord = {
            "lines": [],
            "corrects": None,
            "memo": m["reason"],
            "evidence": [{"source": "subject", "reference": m["subject"]}],
            "dispute": msg.signed_copy(),
        }
        return append_record(s, LEDGER, self.me, RecordType.DISPUTE, fields).seq

    @handles(DISPUTE)
    def on_dispute(self, s: Session, msg: SignedMessage, _inbound: Inbound) -> RecordWritten:
        m = msg.as_(DisputeMessage)
        if m["respondent"] != self.me:
            raise MessageRefused(Refusal.NOT_YOURS, "this node is not the dispute's respondent")
        refusal = self._over_limit(s, m["opener"], self.me, self._limits(m["ruleVersion"]))
        if refusal is not None:
            raise MessageRefused(Refusal.LIMIT_REACHED, refusal)
        return {"record_seq": self._record_dispute(s, msg, mine=False)}

    def _limits(self, version: str) -> Limits:
        """The limits of the book a dispute is opened under (the defaults if this node holds no copy)."""
        book = self.rules.book(version)
        return book.book.limits if book is not None else Limits()

    @staticmethod
    def _over_limit(s: Session, opener: str, respondent: str, limits: Limits) -> str | None:
        """Why one more dispute of `opener` against `respondent` would pass `limits`, or None."""
        between = select(Dispute).where(Dispute.opener == opener, Dispute.respondent == respondent)
        open_now = len(s.exec(between.where(Dispute.status == DisputeStatus.OPEN)).all())
        day_ago = utc_iso(datetime.now(UTC) - timedelta(days=1))
        opened_today = len(s.exec(between.where(Dispute.opened_at >= day_ago)).all())
        return dispute_refusal(
            open_now, opened_today, limits.open_disputes_per_member, limits.disputes_per_member_per_day
        )

    def ruling_authority(self, msg: SignedMessage, signer: str) -> bool | None:
        """A Ruling counts only if signed by the arbitrator of the rule book it names."""
        if msg.type != MessageType.RULING:
            return None
        book = self.rules.book(msg.message["ruleVersion"])
        arbitrator = book.book.governance.arbitrator if book else None
        return arbitrator is not None and signer.lower() == arbitrator.lower()

    @handles(RULING)
    def on_ruling(self, s: Session, msg: SignedMessage, _inbound: Inbound) -> RecordWritten:
        m = msg.as_(RulingMessage)
        dispute = s.get(Dispute, m["dispute"])
        if dispute is None:
            raise MessageRefused(Refusal.UNKNOWN_SUBJECT, f"no dispute {m['dispute']} on this node")
        if dispute.status != DisputeStatus.OPEN:
            raise MessageRefused(Refusal.CLOSED, f"dispute {dispute.id} is already ruled")
        if m["ruleVersion"] != dispute.rule_version:
            raise MessageRefused(Refusal.RULE_VERSION, "the ruling names another rule book than the dispute")
        parties = {dispute.opener, dispute.respondent}
        if m["award"] > 0 and ({m["payer"], m["payee"]} != parties):
            raise MessageRefused(Refusal.MALFORMED, "an award is paid by one party of the dispute to the other")
        dispute.status, dispute.ruling, dispute.decision = DisputeStatus.RULED, m["id"], m["decision"]
        dispute.award, dispute.payer, dispute.payee = m["award"], m["payer"], m["payee"]
        s.add(dispute)
        fields: RulingRecord = {
            "lines": [],
            "corrects": None,
            "memo": m["decision"],
            "evidence": [
                {"source": "dispute", "reference": dispute.id},
                {"source": "subject", "reference": dispute.subject},
            ],
            "ruling": msg.signed_copy(),
        }
        return {"record_seq": append_record(s, LEDGER, self.me, RecordType.RULING, fields).seq}

    def all(self) -> list[Dispute]:
        with session_scope(self.engine) as s:
            return list(s.exec(select(Dispute).order_by(Dispute.opened_at)).all())


def sign_ruling(
    domain: Domain,
    arbitrator_key: str,
    dispute: str,
    decision: str,
    rule_version: str,
    award: int = 0,
    payer: str | None = None,
    payee: str | None = None,
) -> SignedMessage:
    """What the arbitrator signs (consortium arbitrate)."""
    me = Account.from_key(arbitrator_key).address
    zero = "0x" + "00" * 20
    message: RulingMessage = {
        "id": new_id(),
        "dispute": dispute,
        "arbitrator": me,
        "decision": decision,
        "award": award,
        "payer": payer or zero,
        "payee": payee or zero,
        "ruleVersion": rule_version,
        "nonce": new_nonce(),
        "deadline": int(time.time()) + STEP_DEADLINE_SECONDS,
    }
    return sign(domain, MessageType.RULING, message, arbitrator_key)
