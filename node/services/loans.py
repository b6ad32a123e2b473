"""Spare parts lent between members (docs/protocol.md, section 4, step 11; docs/settlement.md, section 4b).

The borrower asks (LoanRequest: how many, the most it pays per unit and day, the most it pays per unit kept,
when it gives them back); the lender lends within those bounds (Loan), its units moving to the borrower's
shelf while it keeps owning them; the borrower gives units back (LoanReturn) until the due time. At the due
time each side, by itself, turns what is still out into a sale (`loan_sale`): the borrower at once, the
lender after the rule book's grace for returns still on their way. Each side writes only from its own books
and the signed messages; the statement counts a fee or a sale only when both sides' records show it.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Literal, TypedDict

from sqlmodel import Session, col, select

from chain.records import LedgerRecord, LoanRecord, LoanReturnRecord, LoanSaleRecord, RecordType
from negotiation.messages import MessageRefused, SignedMessage
from negotiation.wire import (
    LOAN,
    LOAN_REQUEST,
    LOAN_RETURN,
    LoanFields,
    LoanMessage,
    LoanRequestFields,
    LoanRequestMessage,
    LoanReturnFields,
    LoanReturnMessage,
    MessageType,
    Refusal,
)
from node.domain.ledger import Bucket, Movement, Posting, StockStatus
from node.domain.states import LoanStatus
from node.domain.times import utc_now_iso
from node.errors import AlreadyExists, InsufficientStock, InvalidMovement, InvalidRequest, NotFound
from node.services.inbound import Inbound
from node.services.router import LoanAsked, LoanRecorded, handles
from node.services.side import Side, Steps
from node.store.engine import session_scope
from node.store.pool import require_location, require_sku, write_postings
from node.store.records import LEDGER, append_record
from node.store.tables import Loan, Lot, StockBalance
from node.store.writers import ledger_transaction

log = logging.getLogger(__name__)
DEFAULT_GRACE_MINUTES = 60
# How far a Loan's lentAt may lie from the borrower's clock when it arrives (delivery retries included: a
# loan that took longer to arrive is refused, and its lender's node gives the units back, see given_back).
LENT_AT_SKEW_SECONDS = 600


def _at_partner(loan: Loan) -> Bucket:
    """The lender's view of its units on the borrower's shelf."""
    return Bucket(loan.sku, loan.lot, f"partner:{loan.borrower}", loan.lender, loan.borrower, StockStatus.AVAILABLE)


class LoanColumns(TypedDict):
    """A loan's row as JSON gives it (node/store/tables.py, `LoanBase`): its state as text."""

    id: str
    borrower: str
    lender: str
    sku: str
    quantity: int
    location: str
    max_fee_per_unit_day: int
    max_unit_sale_price: int
    return_by: int
    status: str
    lot: str
    from_location: str
    fee_per_unit_day: int
    unit_sale_price: int
    lent_at: int
    due_at: int
    rule_version: str
    returned: int
    sold: int
    created_at: str


class LoanShown(LoanColumns):
    """A loan as the API and the console show it: its row, this node's side of it, and its due time."""

    role: Literal["lender", "borrower"]
    due: str  # ISO-8601 UTC


class Loans(Steps):
    def __init__(self, side: Side) -> None:
        super().__init__(side)
        self._warned: set[str] = set()  # loans whose sale the books refuse: said once, not on every pass

    # -- the borrower asks ------------------------------------------------------------------------------------
    def ask(
        self,
        lender: str,
        sku: str,
        quantity: int,
        location: str,
        max_fee_per_unit_day: int,
        max_unit_sale_price: int,
        return_by: int,
    ) -> LoanShown:
        if lender == self.me:
            raise InvalidRequest("a node does not borrow from itself")
        if not self.directory.is_member(lender):
            raise InvalidRequest(f"{lender} is not an active member", lender=lender)
        if return_by <= int(time.time()):
            raise InvalidRequest("return_by is a moment still to come", return_by=return_by)
        with session_scope(self.engine) as s:
            require_sku(s, sku)
            require_location(s, location)
        fields = LoanRequestFields(
            borrower=self.me,
            lender=lender,
            sku=sku,
            quantity=quantity,
            maxFeePerUnitDay=max_fee_per_unit_day,
            maxUnitSalePrice=max_unit_sale_price,
            returnBy=return_by,
        )
        msg = self.signer.sign_step(LOAN_REQUEST, fields)
        with session_scope(self.engine) as s:
            s.add(self._row(msg.as_(LoanRequestMessage), location))
            self.outbox.enqueue(s, msg, lender)
        self.outbox.kick()
        return self.get(str(msg.message["id"]))

    @staticmethod
    def _row(m: LoanRequestMessage, location: str) -> Loan:
        return Loan(
            id=m["id"],
            borrower=m["borrower"],
            lender=m["lender"],
            sku=m["sku"],
            quantity=m["quantity"],
            location=location,
            max_fee_per_unit_day=m["maxFeePerUnitDay"],
            max_unit_sale_price=m["maxUnitSalePrice"],
            return_by=m["returnBy"],
            created_at=utc_now_iso(),
        )

    @handles(LOAN_REQUEST)
    def on_request(self, s: Session, msg: SignedMessage, _inbound: Inbound) -> LoanAsked:
        m = msg.as_(LoanRequestMessage)
        if m["lender"] != self.me:
            raise MessageRefused(Refusal.NOT_YOURS, "this node is not the lender asked")
        s.add(self._row(m, ""))
        return {"loan": m["id"], "status": LoanStatus.REQUESTED.value}

    # -- the lender lends -------------------------------------------------------------------------------------
    def lend(
        self, loan_id: str, lot: str, from_location: str, fee_per_unit_day: int, unit_sale_price: int
    ) -> LoanShown:
        """The lender's operator lends what was asked, within the borrower's bounds, from one lot and place."""
        version = self.rules.active().policy.version
        with ledger_transaction(self.engine) as s:  # two lends of one loan at once: the second sees the first
            loan = self._mine(s, loan_id, as_lender=True)
            if loan.status != LoanStatus.REQUESTED:
                raise AlreadyExists(f"loan {loan_id} is {loan.status!s} already", status=str(loan.status))
            if fee_per_unit_day > loan.max_fee_per_unit_day or unit_sale_price > loan.max_unit_sale_price:
                raise InvalidRequest(
                    "the borrower pays at most "
                    f"{loan.max_fee_per_unit_day} a unit and day and {loan.max_unit_sale_price} a unit kept",
                    max_fee_per_unit_day=loan.max_fee_per_unit_day,
                    max_unit_sale_price=loan.max_unit_sale_price,
                )
            if loan.return_by <= int(time.time()):
                raise InvalidRequest(
                    "the borrower's return time has passed: nothing to lend for", return_by=loan.return_by
                )
            require_location(s, from_location)
            msg = self.signer.sign_step(
                LOAN,
                LoanFields(
                    loan=loan_id,
                    lender=self.me,
                    borrower=loan.borrower,
                    sku=loan.sku,
                    lot=lot,
                    quantity=loan.quantity,
                    feePerUnitDay=fee_per_unit_day,
                    unitSalePrice=unit_sale_price,
                    lentAt=int(time.time()),
                    dueAt=loan.return_by,
                    ruleVersion=version,
                ),
            )
            self._take_terms(loan, msg.as_(LoanMessage))
            loan.from_location = from_location
            shelf = Bucket(loan.sku, lot, from_location, self.me, self.me, StockStatus.AVAILABLE)
            lines = [Posting(shelf, -loan.quantity), Posting(_at_partner(loan), loan.quantity)]
            # InsufficientStock (409): nothing signed goes out, nothing changes
            memo = f"{loan.quantity} lent to {loan.borrower} until {loan.due_at}"
            self._post(s, RecordType.LEND, lines, loan, memo, msg)
            s.add(loan)
            self.outbox.enqueue(s, msg, loan.borrower)
        self.outbox.kick()
        return self.get(loan_id)

    @staticmethod
    def _take_terms(loan: Loan, m: LoanMessage) -> None:
        loan.lot, loan.fee_per_unit_day, loan.unit_sale_price = m["lot"], m["feePerUnitDay"], m["unitSalePrice"]
        loan.lent_at, loan.due_at, loan.rule_version = m["lentAt"], m["dueAt"], m["ruleVersion"]
        loan.quantity, loan.status = m["quantity"], LoanStatus.LENT

    def _post(
        self, s: Session, type_: RecordType, lines: list[Posting], loan: Loan, memo: str, msg: SignedMessage
    ) -> int:
        """The postings on the balances (never below zero) and the record carrying the signed message."""
        write_postings(s, lines)
        common: LedgerRecord = {
            "lines": [p.as_record() for p in lines],
            "corrects": None,
            "memo": memo,
            "evidence": [{"source": "loan", "reference": loan.id}],
        }
        fields: LoanReturnRecord | LoanRecord = (
            LoanReturnRecord(**common, loan_return=msg.signed_copy())
            if msg.type == MessageType.LOAN_RETURN
            else LoanRecord(**common, loan=msg.signed_copy())
        )
        return append_record(s, LEDGER, self.me, type_, fields).seq

    @handles(LOAN)
    def on_loan(self, s: Session, msg: SignedMessage, inbound: Inbound) -> LoanRecorded:
        """The borrower's side: only what it asked for, within its bounds, lands on its shelf."""
        m = msg.as_(LoanMessage)
        inbound.policy_for(m["ruleVersion"], "the loan")
        loan = s.get(Loan, m["loan"])
        if loan is None or loan.borrower != self.me or loan.lender != m["lender"] or m["borrower"] != self.me:
            raise MessageRefused(Refusal.UNKNOWN_SUBJECT, f"this node asked {m['lender']} for no loan {m['loan']}")
        if loan.status != LoanStatus.REQUESTED:
            raise MessageRefused(Refusal.REPLAYED, f"loan {m['loan']} is {loan.status!s} already")
        now = int(time.time())
        if (
            m["sku"] != loan.sku
            or m["quantity"] > loan.quantity
            or m["feePerUnitDay"] > loan.max_fee_per_unit_day
            or m["unitSalePrice"] > loan.max_unit_sale_price
            or m["dueAt"] != loan.return_by
        ):
            said = "the loan is not what was asked: SKU, quantity, fee, sale price or due time"
            raise MessageRefused(Refusal.TERMS, said)
        # Fees run from lentAt: a Loan dated in the past (or the future) would charge days nobody had the
        # parts; one arriving after its due time could never be given back.
        if abs(m["lentAt"] - now) > LENT_AT_SKEW_SECONDS or now >= m["dueAt"]:
            raise MessageRefused(Refusal.TERMS, f"lentAt must be within {LENT_AT_SKEW_SECONDS} s of now, before dueAt")
        self._take_terms(loan, m)
        if s.get(Lot, (loan.sku, loan.lot)) is None:  # parts: a lot known by its code, no expiry
            s.add(Lot(sku=loan.sku, code=loan.lot, expires_on=None, received_on=utc_now_iso()[:10]))
        shelf = Bucket(loan.sku, loan.lot, loan.location, loan.lender, self.me, StockStatus.AVAILABLE)
        lines = [Posting(shelf, loan.quantity)]
        seq = self._post(s, RecordType.BORROW, lines, loan, f"{loan.quantity} borrowed from {loan.lender}", msg)
        s.add(loan)
        return {"loan": loan.id, "record_seq": seq}

    # -- the borrower gives back ------------------------------------------------------------------------------
    def give_back(self, loan_id: str, quantity: int, location: str | None = None) -> LoanShown:
        """Units go back from `location` (where the loan was put, unless named): before the due time only."""
        with ledger_transaction(self.engine) as s:  # the due-time sale and a return never both act on one loan
            loan = self._mine(s, loan_id, as_lender=False)
            if loan.status != LoanStatus.LENT:
                raise InvalidRequest(
                    f"loan {loan_id} is {loan.status!s}: nothing to give back", status=str(loan.status)
                )
            if int(time.time()) >= loan.due_at:
                raise InvalidRequest("the loan is due: what is still here is being bought", due_at=loan.due_at)
            out = loan.quantity - loan.returned
            if quantity > out:
                raise InvalidRequest(f"{out} units of the loan are out, not {quantity}", out=out)
            back = LoanReturnFields(loan=loan_id, borrower=self.me, quantity=quantity)
            msg = self.signer.sign_step(LOAN_RETURN, back)
            place = location or loan.location
            shelf = Bucket(loan.sku, loan.lot, place, loan.lender, self.me, StockStatus.AVAILABLE)
            lines = [Posting(shelf, -quantity)]
            self._post(s, RecordType.LOAN_RETURN, lines, loan, f"{quantity} given back to {loan.lender}", msg)
            self._returned(loan, quantity)
            s.add(loan)
            self.outbox.enqueue(s, msg, loan.lender)
        self.outbox.kick()
        return self.get(loan_id)

    @staticmethod
    def _returned(loan: Loan, quantity: int) -> None:
        loan.returned += quantity
        if loan.returned == loan.quantity:
            loan.status = LoanStatus.RETURNED

    @handles(LOAN_RETURN)
    def on_return(self, s: Session, msg: SignedMessage, _inbound: Inbound) -> LoanRecorded:
        """The lender's side: the units are back on its own shelf, unless the loan has become a sale."""
        m = msg.as_(LoanReturnMessage)
        loan = s.get(Loan, m["loan"])
        if loan is None or loan.lender != self.me or loan.borrower != m["borrower"]:
            raise MessageRefused(Refusal.UNKNOWN_SUBJECT, f"this node lent {m['borrower']} no loan {m['loan']}")
        if loan.status == LoanStatus.SOLD:
            raise MessageRefused(Refusal.LOAN_ENDED, "the loan passed its due time and grace: its units were sold")
        if m["quantity"] > loan.quantity - loan.returned:
            raise MessageRefused(Refusal.TOO_MANY, f"{loan.quantity - loan.returned} units of the loan are out")
        shelf = Bucket(loan.sku, loan.lot, loan.from_location, self.me, self.me, StockStatus.AVAILABLE)
        lines = [Posting(_at_partner(loan), -m["quantity"]), Posting(shelf, m["quantity"])]
        seq = self._post(s, RecordType.LOAN_RETURN, lines, loan, f"{m['quantity']} back from {loan.borrower}", msg)
        self._returned(loan, m["quantity"])
        s.add(loan)
        return {"loan": loan.id, "record_seq": seq}

    def given_back(self, s: Session, msg: SignedMessage) -> None:
        """The borrower's node refused our Loan for good (terms, rule version, too late): the units never left
        for its shelf, so they come back to ours, recorded (`loan_refused`), and the loan is refused."""
        m = msg.as_(LoanMessage)
        loan = s.get(Loan, m["loan"])
        if loan is None or loan.lender != self.me or loan.status != LoanStatus.LENT or loan.returned:
            return
        shelf = Bucket(loan.sku, loan.lot, loan.from_location, self.me, self.me, StockStatus.AVAILABLE)
        lines = [Posting(_at_partner(loan), -loan.quantity), Posting(shelf, loan.quantity)]
        memo = f"{loan.borrower} refused the loan: {loan.quantity} back"
        self._post(s, RecordType.LOAN_REFUSED, lines, loan, memo, msg)
        loan.status = LoanStatus.REFUSED
        s.add(loan)
        log.info("loan %s refused by %s: %s units back at %s", loan.id, loan.borrower, loan.quantity, shelf.location)

    # -- the due time -----------------------------------------------------------------------------------------
    def sell_overdue(self, now: int | None = None) -> list[str]:
        """Each loan past its due time (the lender: past the grace too) becomes a sale of what is still out.
        Returns the loans sold; the worker calls it on every pass."""
        now = int(time.time()) if now is None else now
        with session_scope(self.engine) as s:
            due = s.exec(select(Loan).where(Loan.status == LoanStatus.LENT, col(Loan.due_at) <= now)).all()
            ids = [loan.id for loan in due if loan.borrower == self.me or loan.due_at + self._grace(loan) <= now]
        sold = []
        for loan_id in ids:
            with ledger_transaction(self.engine) as s:
                loan = s.get(Loan, loan_id)
                if loan is None or loan.status != LoanStatus.LENT:
                    continue
                try:
                    self._sell(s, loan)
                except InsufficientStock as exc:  # the books disagree with the loan: reconcile names it
                    if loan_id not in self._warned:
                        log.warning("loan %s due, and cannot be sold as it stands: %s", loan_id, exc.message)
                        self._warned.add(loan_id)
                    s.rollback()
                    continue
                sold.append(loan_id)
        return sold

    def _grace(self, loan: Loan) -> int:
        book = self.rules.book(loan.rule_version)
        minutes = book.book.settlement.loan_return_grace_minutes if book is not None else DEFAULT_GRACE_MINUTES
        return minutes * 60

    def _sell(self, s: Session, loan: Loan) -> None:
        out = loan.quantity - loan.returned
        lines = [Posting(_at_partner(loan), -out)] if loan.lender == self.me else self._take_over(s, loan, out)
        write_postings(s, lines)
        fields: LoanSaleRecord = {
            "lines": [p.as_record() for p in lines],
            "corrects": None,
            "memo": f"{out} of loan {loan.id[:10]}... not back by its due time: sold at {loan.unit_sale_price} a unit",
            "evidence": [{"source": "loan", "reference": loan.id}],
            "loan_sale": {
                "loan": loan.id,
                "lender": loan.lender,
                "borrower": loan.borrower,
                "units": out,
                "unit_sale_price": loan.unit_sale_price,
                "due_at": loan.due_at,
            },
        }
        append_record(s, LEDGER, self.me, RecordType.LOAN_SALE, fields)
        loan.sold, loan.status = out, LoanStatus.SOLD
        s.add(loan)
        log.info("loan %s due: %s units sold to %s", loan.id, out, loan.borrower)

    def _take_over(self, s: Session, loan: Loan, out: int) -> list[Posting]:
        """The borrower's lent units, wherever it keeps them now, become its own (its shelf first)."""
        rows = s.exec(
            select(StockBalance).where(
                StockBalance.sku == loan.sku,
                StockBalance.lot == loan.lot,
                StockBalance.owner == loan.lender,
                StockBalance.holder == self.me,
                StockBalance.quantity > 0,
            )
        ).all()
        lines: list[Posting] = []
        for row in sorted(rows, key=lambda r: (r.location != loan.location, r.location, r.status)):
            take = min(out, row.quantity)
            if take <= 0:
                break
            theirs = Bucket(row.sku, row.lot, row.location, row.owner, row.holder, row.status)
            mine = Bucket(row.sku, row.lot, row.location, self.me, self.me, row.status)
            lines += [Posting(theirs, -take), Posting(mine, take)]
            out -= take
        return lines

    # -- reading ----------------------------------------------------------------------------------------------
    def refuse_sale_of_lent(self, s: Session, movement: Movement) -> None:
        """Lent parts are given back or kept to the due time, not sold on meanwhile: the loan's own terms
        decide what a kept unit costs."""
        lent = s.exec(
            select(Loan).where(
                Loan.borrower == self.me,
                Loan.lender == movement.owner,
                Loan.sku == movement.sku,
                Loan.lot == movement.lot,
                Loan.status == LoanStatus.LENT,
            )
        ).first()
        if lent is not None:
            raise InvalidMovement(
                f"lot {movement.lot} is lent by {movement.owner} until {lent.due_at}: give it back, or keep it "
                "and it is yours at the loan's price at its due time",
                loan=lent.id,
            )

    def _mine(self, s: Session, loan_id: str, as_lender: bool) -> Loan:
        loan = s.get(Loan, loan_id)
        if loan is None or (loan.lender if as_lender else loan.borrower) != self.me:
            raise NotFound(f"no loan {loan_id} of this node as {'lender' if as_lender else 'borrower'}", loan=loan_id)
        return loan

    def get(self, loan_id: str) -> LoanShown:
        with session_scope(self.engine) as s:
            loan = s.get(Loan, loan_id)
            if loan is None:
                raise NotFound(f"no loan {loan_id}", loan=loan_id)
            return loan_shown(loan, self.me)

    def listing(self) -> list[LoanShown]:
        with session_scope(self.engine) as s:
            rows = s.exec(select(Loan).order_by(col(Loan.created_at).desc())).all()
            return [loan_shown(r, self.me) for r in rows]


def loan_shown(loan: Loan, me: str) -> LoanShown:
    columns: LoanColumns = json.loads(loan.model_dump_json())
    return {
        **columns,
        "role": "lender" if loan.lender == me else "borrower",
        "due": datetime.fromtimestamp(loan.due_at or loan.return_by, UTC).isoformat().replace("+00:00", "Z"),
    }
