"""Quote requests a business rule sends (docs/rules.md, section 4; docs/protocol.md, section 4, step 12).

The rule book's example, "when the purchase price of an SKU passes 18.00 and stock is below the safety level,
ask supplier Y for a quote", acts: each time the node checks (the worker, every QUOTE_CHECK_SECONDS, or
`POST /negotiation/quotes/check`), every `request_quote` action that fires sends the named member a signed
QuoteRequest for the action's quantity, at most once a day per SKU, rule and supplier. The supplier's node
keeps it and shows it to its people; the answer is theirs to give (a quote is a business conversation).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlmodel import Session, col, select
from web3 import Web3

from negotiation.messages import MessageRefused, SignedMessage
from negotiation.wire import QUOTE_REQUEST, QuoteRequestFields, QuoteRequestMessage, Refusal
from node.domain.times import utc_now_iso
from node.services.inbound import Inbound
from node.services.router import QuoteAsked, handles
from node.services.rules_keeper import decisions_now
from node.services.side import Steps
from node.store.engine import session_scope
from node.store.tables import QuoteRequest

log = logging.getLogger(__name__)
QUOTE_CHECK_SECONDS = 60.0


class Quotes(Steps):
    def supplier_of(self, named: str | None) -> str | None:
        """A rule names its supplier by address or by its name in the member registry (any case)."""
        if not named:
            return None
        if Web3.is_address(named):
            address = str(Web3.to_checksum_address(named))
            return address if self.directory.is_member(address) else None
        wanted = named.strip().lower()
        return next((m.address for m in self.directory.members() if m.active and m.name.lower() == wanted), None)

    def ask_due(self, safety_floor: int) -> list[QuoteRequest]:
        """Send every quote request the rules in force ask for now; the ones sent."""
        decisions = decisions_now(self.rules, safety_floor, by_location=False)
        wanted = [
            (d["sku"], a, a.quantity)
            for d in decisions["skus"]
            for a in d["actions"]
            if a.kind == "request_quote" and a.quantity is not None and a.quantity > 0
        ]
        sent: list[QuoteRequest] = []
        for sku, action, quantity in wanted:
            supplier = self.supplier_of(action.supplier)
            if supplier is None or supplier == self.me:
                log.warning("rule %s asks %r for a quote: no such other member", action.rule, action.supplier)
                continue
            fields = QuoteRequestFields(
                requester=self.me,
                supplier=supplier,
                sku=sku,
                quantity=quantity,
                rule=action.rule,
                ruleVersion=decisions["rule_version"],
            )
            with session_scope(self.engine) as s:
                if self._asked_today(s, supplier, sku, action.rule):
                    continue
                msg = self.signer.sign_step(QUOTE_REQUEST, fields)
                row = self._row(msg.as_(QuoteRequestMessage), mine=True)
                s.add(row)
                self.outbox.enqueue(s, msg, supplier)
            sent.append(row)
        if sent:
            self.outbox.kick()
        return sent

    @staticmethod
    def _asked_today(s: Session, supplier: str, sku: str, rule: str) -> bool:
        today = datetime.now(UTC).date().isoformat()
        return (
            s.exec(
                select(QuoteRequest).where(
                    QuoteRequest.mine,
                    QuoteRequest.supplier == supplier,
                    QuoteRequest.sku == sku,
                    QuoteRequest.rule == rule,
                    col(QuoteRequest.created_at) >= today,
                )
            ).first()
            is not None
        )

    @staticmethod
    def _row(m: QuoteRequestMessage, mine: bool) -> QuoteRequest:
        return QuoteRequest(
            id=m["id"],
            requester=m["requester"],
            supplier=m["supplier"],
            sku=m["sku"],
            quantity=m["quantity"],
            rule=m["rule"],
            rule_version=m["ruleVersion"],
            mine=mine,
            created_at=utc_now_iso(),
        )

    @handles(QUOTE_REQUEST)
    def on_request(self, s: Session, msg: SignedMessage, _inbound: Inbound) -> QuoteAsked:
        m = msg.as_(QuoteRequestMessage)
        if m["supplier"] != self.me:
            raise MessageRefused(Refusal.NOT_YOURS, "this node is not the supplier asked")
        s.add(self._row(m, mine=False))
        return {"quote_request": m["id"]}

    def listing(self) -> list[QuoteRequest]:
        with session_scope(self.engine) as s:
            return list(s.exec(select(QuoteRequest).order_by(col(QuoteRequest.created_at).desc())).all())
