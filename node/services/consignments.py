"""Consigned stock sold by its holder (docs/protocol.md, section 4; docs/settlement.md, section 4).

A consignment transfer leaves the stock owned by the supplier and held by the requester. When the holder
issues (sells) some of it, its node tells the owner in the same transaction that records the issue: a
signed ConsignmentSale at the consignment price. The owner's node takes the units off the stock it shows
at the holder (`partner:<holder>`), so both books agree, and the settlement statement owes it the price.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from chain.records import LedgerRecord, RecordType
from negotiation.messages import MessageRefused, SignedMessage
from negotiation.wire import CONSIGNMENT_SALE, ConsignmentSaleFields, ConsignmentSaleMessage, Refusal
from node.domain.ledger import Bucket, Movement, Posting, StockStatus
from node.errors import InsufficientStock
from node.services.inbound import Inbound
from node.services.router import RecordWritten, handles
from node.services.side import Steps
from node.store.pool import write_postings
from node.store.records import LEDGER, append_record
from node.store.tables import Transfer


class Consignments(Steps):
    def sold(self, s: Session, movement: Movement) -> str:
        """Inside the holder's issue transaction: queue the signed sale for the owner; its message id."""
        price = s.exec(
            select(Transfer.unit_price)
            .where(
                Transfer.requester == self.me,
                Transfer.supplier == movement.owner,
                Transfer.sku == movement.sku,
                Transfer.lot == movement.lot,
                Transfer.consignment,
            )
            .order_by(col(Transfer.updated_at).desc())
        ).first()
        fields = ConsignmentSaleFields(
            holder=self.me,
            owner=movement.owner,
            sku=movement.sku,
            lot=movement.lot,
            quantity=movement.quantity,
            unitPrice=int(price or 0),
        )
        msg = self.signer.sign_step(CONSIGNMENT_SALE, fields)
        self.outbox.enqueue(s, msg, movement.owner)
        return str(msg.message["id"])

    @handles(CONSIGNMENT_SALE)
    def on_sale(self, s: Session, msg: SignedMessage, _inbound: Inbound) -> RecordWritten:
        """The owner's side: the units leave the stock it shows at the holder; refused if it shows fewer."""
        m = msg.as_(ConsignmentSaleMessage)
        if m["owner"] != self.me:
            raise MessageRefused(Refusal.NOT_YOURS, "this node does not own the stock sold")
        at_holder = Bucket(m["sku"], m["lot"], f"partner:{m['holder']}", self.me, m["holder"], StockStatus.AVAILABLE)
        try:
            write_postings(s, [Posting(at_holder, -m["quantity"])])
        except InsufficientStock as exc:
            said = f"this node shows less at {m['holder']}: {exc.message}"
            raise MessageRefused(Refusal.INSUFFICIENT_STOCK, said) from exc
        fields: LedgerRecord = {
            "lines": [Posting(at_holder, -m["quantity"]).as_record()],
            "evidence": [{"source": "consignment_sale", "reference": m["id"]}],
            "memo": f"{m['quantity']} sold by {m['holder']} on consignment at {m['unitPrice']} a unit",
            "corrects": None,
        }
        return {"record_seq": append_record(s, LEDGER, self.me, RecordType.ISSUE, fields).seq}
