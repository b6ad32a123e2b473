"""Database tables of a node. Records are append-only; balances are a projection of the ledger.

State columns hold the StrEnum's value as plain text (sa_type=String), not SQLAlchemy's Enum, which would
store member names and make PostgreSQL create enum types: rows stay readable by any SQL client.
"""

from __future__ import annotations

import json

from sqlalchemy import BigInteger, CheckConstraint, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from negotiation.wire import DisputeMessage, InvitationMessage, MessageType, OfferMessage
from node.domain.states import (
    ApprovedBy,
    BatchStatus,
    Direction,
    DisputeStatus,
    InvitationStatus,
    LoanStatus,
    OfferStatus,
    OutboxStatus,
    PrincipalKind,
    RequestStatus,
    ShareStatus,
    StatementStatus,
    TransferRole,
    TransferStatus,
)


class SkuBase(SQLModel):
    """The columns of `Sku`, shared with the API's `SkuOut`."""

    code: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    unit: str = Field(default="each", max_length=16)
    # Price at which this partner transfers one unit to another partner, in minor units.
    transfer_price: int = Field(default=0, ge=0, sa_type=BigInteger)
    # What this partner last paid its vendor for one unit, in minor units (rules read `sku.purchase_price`).
    purchase_price: int = Field(default=0, ge=0, sa_type=BigInteger)
    # What this partner charges its own customers for one unit, in minor units: a transfer is worth at most
    # this to the requester (its transfer_in records carry it, so any holder of the records recomputes it).
    sale_price: int = Field(default=0, ge=0, sa_type=BigInteger)


class Sku(SkuBase, table=True):
    pass


class Location(SQLModel, table=True):
    code: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    # Integer microdegrees, as in the on-chain registry: no floats in anything compared or hashed.
    lat_e6: int
    lon_e6: int
    kind: str = Field(default="warehouse", max_length=32)


class LotBase(SQLModel):
    """The columns of `Lot`, shared with the API's `LotOut`."""

    sku: str = Field(primary_key=True, foreign_key="sku.code", max_length=64)
    code: str = Field(primary_key=True, max_length=64)
    expires_on: str | None = Field(default=None, max_length=10)  # ISO date, YYYY-MM-DD
    # When this node first received it: first in, first out weighs a lot's age.
    received_on: str | None = Field(default=None, max_length=10)


class Lot(LotBase, table=True):
    pass


class RuleBookVersion(SQLModel, table=True):
    """A rule book this node holds, by version (keccak-256 of its canonical JSON, which `body` is)."""

    version: str = Field(primary_key=True, max_length=66)
    label: str = Field(max_length=100)
    body: str
    added_at: str = Field(max_length=32)


class Record(SQLModel, table=True):
    """A signed-off fact of this node (a ledger movement, later transfers and rules), never changed.

    `body` is the canonical JSON that is hashed into the Merkle leaf; the other columns are copies of
    its fields for querying.
    """

    __table_args__ = (UniqueConstraint("kind", "seq"), Index("ix_record_kind_at", "kind", "at"))

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    seq: int
    type: str = Field(max_length=32)
    at: str = Field(max_length=32)
    body: str
    leaf: str = Field(max_length=64)


class DemandDay(SQLModel, table=True):
    """Units of a SKU issued on one day, kept with each issue record (a projection of the ledger, like the
    balances): the safety-stock algorithm reads 56 rows instead of scanning and parsing the issue records."""

    sku: str = Field(primary_key=True, max_length=64)
    day: str = Field(primary_key=True, max_length=10)  # ISO date of the issue record
    issued: int = 0


class StockBalanceBase(SQLModel):
    """The columns of `StockBalance`, shared with the API's `StockBalanceOut`."""

    sku: str = Field(primary_key=True, max_length=64)
    lot: str = Field(primary_key=True, max_length=64)
    location: str = Field(primary_key=True, max_length=64)
    owner: str = Field(primary_key=True, max_length=42)
    holder: str = Field(primary_key=True, max_length=42)
    status: str = Field(primary_key=True, max_length=16)
    quantity: int = 0


class StockBalance(StockBalanceBase, table=True):
    """Derived from the ledger in the same transaction that writes the record; rebuildable by replay."""

    __table_args__ = (CheckConstraint("quantity >= 0", name="stock_never_negative"),)


class AnchorBatchBase(SQLModel):
    """The columns of `AnchorBatch`, shared with the API's `AnchorBatchOut`."""

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    seq: int
    root: str = Field(max_length=64)
    prev_root: str = Field(max_length=64)
    leaf_count: int
    first_record_seq: int
    last_record_seq: int
    formed_at: str = Field(max_length=32)
    status: BatchStatus = Field(default=BatchStatus.FORMED, sa_type=String(16), index=True)
    chain_id: int | None = None
    contract: str | None = Field(default=None, max_length=42)
    tx_hash: str | None = Field(default=None, max_length=66)
    block_number: int | None = None
    anchored_at: str | None = Field(default=None, max_length=32)


class AnchorBatch(AnchorBatchBase, table=True):
    """A run of consecutive records of one kind whose Merkle root goes on-chain in one transaction.

    Formed (with its seq and prev_root fixed) before anything is sent, so a crash between sending and
    recording the receipt is resolved by asking the chain, never by sending again.
    """

    __table_args__ = (UniqueConstraint("kind", "seq"),)


class RecordProof(SQLModel, table=True):
    """A record's place in its batch and its Merkle path, stored once when the batch is formed."""

    record_id: int = Field(primary_key=True, foreign_key="record.id")
    batch_id: int = Field(foreign_key="anchorbatch.id", index=True)
    leaf_index: int
    proof: str  # JSON list of {"left"|"right": hex}


class SeenMessage(SQLModel, table=True):
    """(signer, nonce) of every admitted message: the replay guard's memory."""

    signer: str = Field(primary_key=True, max_length=42)
    nonce: int = Field(primary_key=True, sa_type=BigInteger)
    message_id: str = Field(max_length=66, unique=True)
    received_at: str = Field(max_length=32)


class NegotiationMessage(SQLModel, table=True):
    """Every signed message this node sent or admitted, verbatim (the evidence behind each step)."""

    id: str = Field(primary_key=True, max_length=66)
    type: str = Field(max_length=32)  # JointPurchaseAcceptance is 23 long: PostgreSQL enforces it, SQLite never did
    direction: Direction = Field(sa_type=String(3))
    signer: str = Field(max_length=42)
    peer: str = Field(max_length=42, index=True)
    subject: str | None = Field(default=None, max_length=66, index=True)
    envelope: str
    at: str = Field(max_length=32)


class InvitationBase(SQLModel):
    """The columns of `Invitation`, shared with the API's `InvitationOut`."""

    id: str = Field(primary_key=True, max_length=66)
    requester: str = Field(max_length=42, index=True)
    sku: str = Field(max_length=64)
    quantity: int
    needed_by: int = Field(sa_type=BigInteger)  # unix seconds
    min_shelf_life_days: int
    radius_km: int
    deadline: int = Field(sa_type=BigInteger)
    mine: bool  # this node asked; otherwise it was invited
    # The requester wants the stock on consignment: it stays the supplier's property until sold.
    consignment: bool = False
    scenario: str = Field(default="routine_replenishment", max_length=32)
    customer_tier: str = Field(default="standard", max_length=64)
    urgent: bool = False
    rule_version: str = Field(default="", max_length=66)  # the rule book it was made under
    distance_km: int | None = None  # from the requester, as the invited node measured it
    status: InvitationStatus = Field(default=InvitationStatus.OPEN, sa_type=String(16))
    created_at: str = Field(max_length=32)
    invited: str = "[]"  # JSON list of member addresses the requester sent it to


class Invitation(InvitationBase, table=True):
    @classmethod
    def of_message(
        cls,
        m: InvitationMessage,
        mine: bool,
        created_at: str,
        consignment: bool = False,
        invited: list[str] | None = None,
        distance_km: int | None = None,
    ) -> Invitation:
        """The one mapping from the signed Invitation to the row each side keeps of it."""
        return cls(
            id=m["id"],
            requester=m["requester"],
            sku=m["sku"],
            quantity=m["quantity"],
            needed_by=m["neededBy"],
            min_shelf_life_days=m["minShelfLifeDays"],
            radius_km=m["radiusKm"],
            deadline=m["deadline"],
            mine=mine,
            consignment=consignment,
            scenario=m["scenario"],
            customer_tier=m["customerTier"],
            urgent=m["urgent"],
            rule_version=m["ruleVersion"],
            distance_km=distance_km,
            created_at=created_at,
            invited=json.dumps(invited or []),
        )


class TransferOfferBase(SQLModel):
    """The columns of `TransferOffer`, shared with the API's `TransferOfferOut`."""

    id: str = Field(primary_key=True, max_length=66)
    invitation: str = Field(max_length=66, index=True)
    supplier: str = Field(max_length=42)
    sku: str = Field(max_length=64)
    lot: str = Field(max_length=64)
    location: str | None = Field(default=None, max_length=64)  # the supplier's own, where it is reserved
    quantity: int
    shelf_life_days: int
    min_order_quantity: int
    unit_price: int = Field(sa_type=BigInteger)
    deadline: int = Field(sa_type=BigInteger)
    mine: bool  # this node offered
    status: OfferStatus = Field(default=OfferStatus.OPEN, sa_type=String(16), index=True)
    rule_version: str = Field(default="", max_length=66)  # the supplier's rule book when it offered


class TransferOffer(TransferOfferBase, table=True):
    @classmethod
    def of_message(cls, m: OfferMessage, mine: bool, location: str | None = None) -> TransferOffer:
        """The one mapping between the signed Offer and the row each side keeps of it (see `as_message`)."""
        return cls(
            id=m["id"],
            invitation=m["invitation"],
            supplier=m["supplier"],
            sku=m["sku"],
            lot=m["lot"],
            location=location,
            quantity=m["quantity"],
            shelf_life_days=m["shelfLifeDays"],
            min_order_quantity=m["minOrderQuantity"],
            unit_price=m["unitPrice"],
            deadline=m["deadline"],
            mine=mine,
            rule_version=m["ruleVersion"],
        )

    def as_message(self, nonce: int) -> OfferMessage:
        return {
            "id": self.id,
            "invitation": self.invitation,
            "supplier": self.supplier,
            "sku": self.sku,
            "lot": self.lot,
            "quantity": self.quantity,
            "shelfLifeDays": self.shelf_life_days,
            "minOrderQuantity": self.min_order_quantity,
            "unitPrice": self.unit_price,
            "ruleVersion": self.rule_version,
            "nonce": nonce,
            "deadline": self.deadline,
        }


class OutboxMessage(SQLModel, table=True):
    """A signed message waiting for delivery: persisted first, so a crash never loses one."""

    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(max_length=66, index=True)
    recipient: str = Field(max_length=42)
    envelope: str
    status: OutboxStatus = Field(default=OutboxStatus.PENDING, sa_type=String(16), index=True)
    attempts: int = 0
    next_attempt_at: float = 0.0
    last_error: str | None = None


class TransferBase(SQLModel):
    """The columns of `Transfer`, shared with the API's `TransferOut`."""

    id: str = Field(primary_key=True, max_length=66)  # the Acceptance message id
    role: TransferRole = Field(sa_type=String(9))
    offer: str = Field(max_length=66, index=True)
    invitation: str = Field(max_length=66)
    supplier: str = Field(max_length=42)
    requester: str = Field(max_length=42)
    sku: str = Field(max_length=64)
    lot: str = Field(max_length=64)
    quantity: int
    shipped: int = 0
    received: int | None = None
    freight_compensation: int = Field(sa_type=BigInteger)
    unit_price: int = Field(sa_type=BigInteger)
    consignment: bool = False
    plan_hash: str = Field(max_length=66)
    expires_on: str | None = Field(default=None, max_length=10)
    status: TransferStatus = Field(default=TransferStatus.ACCEPTED, sa_type=String(16), index=True)
    shipment: str | None = Field(default=None, max_length=66)
    receipt: str | None = Field(default=None, max_length=66)
    updated_at: str = Field(max_length=32)


class Transfer(TransferBase, table=True):
    """One accepted offer moving stock between two partners; each side keeps its own row."""


class ReplenishmentRequestBase(SQLModel):
    """The columns of `ReplenishmentRequest`, shared with the API's `ReplenishmentRequestOut`."""

    id: int | None = Field(default=None, primary_key=True)
    sku: str = Field(foreign_key="sku.code", max_length=64)
    location: str = Field(foreign_key="location.code", max_length=64)
    quantity: int
    requested_on: str = Field(max_length=10)  # ISO date, the store's business day
    min_shelf_life_days: int = 0
    status: RequestStatus = Field(default=RequestStatus.OPEN, sa_type=String(16), index=True)
    invitation: str | None = Field(default=None, max_length=66)


class ReplenishmentRequest(ReplenishmentRequestBase, table=True):
    """A store's request for stock; open until fulfilled, and the trigger for invitations when it is not."""


class DisputeBase(SQLModel):
    """The columns of `Dispute`, shared with the API's `DisputeOut`."""

    id: str = Field(primary_key=True, max_length=66)  # the Dispute message id
    subject: str = Field(max_length=66, index=True)
    opener: str = Field(max_length=42)
    respondent: str = Field(max_length=42)
    reason: str
    claim_amount: int = Field(sa_type=BigInteger)
    rule_version: str = Field(max_length=66)  # whose arbitrator rules
    mine: bool  # this node opened it
    status: DisputeStatus = Field(default=DisputeStatus.OPEN, sa_type=String(8))
    opened_at: str = Field(max_length=32)
    ruling: str | None = Field(default=None, max_length=66)
    decision: str | None = None
    award: int | None = Field(default=None, sa_type=BigInteger)
    payer: str | None = Field(default=None, max_length=42)
    payee: str | None = Field(default=None, max_length=42)


class Dispute(DisputeBase, table=True):
    """A partner's dispute on a transfer, an offer or a decision, and the arbitrator's ruling on it."""

    @classmethod
    def of_message(cls, m: DisputeMessage, mine: bool, opened_at: str) -> Dispute:
        return cls(
            id=m["id"],
            subject=m["subject"],
            opener=m["opener"],
            respondent=m["respondent"],
            reason=m["reason"],
            claim_amount=m["claimAmount"],
            rule_version=m["ruleVersion"],
            mine=mine,
            opened_at=opened_at,
        )


class SettlementStatementBase(SQLModel):
    """The columns of `SettlementStatement`, shared with the API's `StatementSummaryOut`."""

    id: str = Field(primary_key=True, max_length=66)
    period_from: str = Field(max_length=10)
    period_to: str = Field(max_length=10)
    rule_version: str = Field(max_length=66)
    proposer: str = Field(max_length=42)
    statement_hash: str = Field(max_length=66)
    # Widened from 10 for `awaiting_approval` (node/store/engine.py widens it on a PostgreSQL made before).
    status: StatementStatus = Field(default=StatementStatus.VERIFYING, sa_type=String(20))
    created_at: str = Field(max_length=32)
    record_seq: int | None = None  # the `settlement` record written when it became final
    problem: str | None = None  # why this node has not countersigned (yet)
    # When this node approves for its member unless its operator acts first (the book's approval deadline).
    approval_due_at: str | None = Field(default=None, max_length=32)
    approved_by: ApprovedBy | None = Field(default=None, sa_type=String(10))  # how this node approved, if it did
    approved_at: str | None = Field(default=None, max_length=32)


class SettlementStatement(SettlementStatementBase, table=True):
    """A period's statement as this node computed it (docs/settlement.md): the document, once this node has
    recomputed it; its status as the members sign it."""

    document: str | None = None  # canonical JSON of the statement, without status and signatures


class StatementSignatureRow(SQLModel, table=True):
    """A member's signed StatementSignature for a statement: the evidence that it agreed."""

    statement: str = Field(primary_key=True, max_length=66)
    signer: str = Field(primary_key=True, max_length=42)
    # Part of the key: a late signature of an older proposal never replaces the one of the current hash.
    statement_hash: str = Field(primary_key=True, max_length=66)
    envelope: str


class StatementNotice(SQLModel, table=True):
    """A signed StatementDispute (a member's objection, with its reason and lines) or StatementWithdrawal (its
    proposer's), sent or received: kept even before the proposal it names arrives, which it then stops."""

    id: str = Field(primary_key=True, max_length=66)  # the message id
    statement: str = Field(index=True, max_length=66)
    statement_hash: str = Field(max_length=66)
    type: MessageType = Field(sa_type=String(32))
    member: str = Field(max_length=42)  # who signed it: the disputing member, or the proposer
    reason: str
    lines: str = "[]"  # a dispute's flow keys, the canonical JSON text it was signed with
    at: str = Field(max_length=32)
    envelope: str


class JointPurchaseBase(SQLModel):
    """The columns of `JointPurchase`, shared with the API's `JointPurchaseOut`."""

    id: str = Field(primary_key=True, max_length=66)
    buyer: str = Field(max_length=42)
    sku: str = Field(max_length=64)
    lot: str = Field(max_length=64)
    reference: str = Field(max_length=256)  # the buyer's purchase order
    total_units: int = Field(sa_type=BigInteger)
    total_cost: int = Field(sa_type=BigInteger)
    rule_version: str = Field(max_length=66)
    created_at: str = Field(max_length=32)


class JointPurchase(JointPurchaseBase, table=True):
    """A purchase one member (the buyer) made for several (docs/protocol.md, section 4, step 10), on every
    participant's node and on the buyer's."""


class JointPurchaseShare(SQLModel, table=True):
    """One participant's units and share of a joint purchase. On the participant's node it keeps the signed
    JointPurchase until the operator accepts it; the buyer keeps one row per participant."""

    purchase: str = Field(primary_key=True, max_length=66)
    participant: str = Field(primary_key=True, max_length=42)
    units: int = Field(sa_type=BigInteger)
    share: int = Field(sa_type=BigInteger)
    status: ShareStatus = Field(default=ShareStatus.PROPOSED, sa_type=String(10))
    envelope: str | None = None  # the signed JointPurchase (the participant's copy)
    record_seq: int | None = None  # the participant's `joint_purchase_share` record, once accepted


class LoanBase(SQLModel):
    """The columns of `Loan`, shared with the API's `LoanOut`."""

    id: str = Field(primary_key=True, max_length=66)  # the LoanRequest's id: the loan's name throughout
    borrower: str = Field(max_length=42)
    lender: str = Field(max_length=42)
    sku: str = Field(max_length=64)
    quantity: int = Field(sa_type=BigInteger)  # asked for, then lent
    location: str = Field(max_length=64)  # where the borrower keeps them (the borrower's node only)
    max_fee_per_unit_day: int = Field(sa_type=BigInteger)
    max_unit_sale_price: int = Field(sa_type=BigInteger)
    return_by: int = Field(sa_type=BigInteger)  # unix seconds the borrower asked for
    status: LoanStatus = Field(default=LoanStatus.REQUESTED, sa_type=String(10))
    lot: str = Field(default="", max_length=64)
    from_location: str = Field(default="", max_length=64)  # where the lender took them (the lender's node only)
    fee_per_unit_day: int = Field(default=0, sa_type=BigInteger)
    unit_sale_price: int = Field(default=0, sa_type=BigInteger)
    lent_at: int = Field(default=0, sa_type=BigInteger)
    due_at: int = Field(default=0, sa_type=BigInteger)
    rule_version: str = Field(default="", max_length=66)
    returned: int = Field(default=0, sa_type=BigInteger)
    sold: int = Field(default=0, sa_type=BigInteger)
    created_at: str = Field(max_length=32)


class Loan(LoanBase, table=True):
    """Parts one member lends another (docs/protocol.md, section 4, step 11), from the borrower's request to the
    return of every unit or their sale at the due time; the same row on both nodes, filled in as it goes."""


class QuoteRequestBase(SQLModel):
    """The columns of `QuoteRequest`, shared with the API's `QuoteRequestOut`."""

    id: str = Field(primary_key=True, max_length=66)
    requester: str = Field(max_length=42)
    supplier: str = Field(max_length=42)
    sku: str = Field(max_length=64)
    quantity: int = Field(sa_type=BigInteger)
    rule: str = Field(max_length=256)  # the business rule whose request_quote action asked
    rule_version: str = Field(max_length=66)
    mine: bool  # this node asked; otherwise it was asked
    created_at: str = Field(max_length=32, index=True)


class QuoteRequest(QuoteRequestBase, table=True):
    """A signed request for a quote a rule's `request_quote` action sent (docs/rules.md, section 4), on both
    the asking and the asked node."""


class SignInNonce(SQLModel, table=True):
    """A nonce this node issued for Sign-In with Ethereum (docs/protocol.md): deleted by the sign-in that uses it,
    so it signs in once whichever worker answers; unused, it expires."""

    nonce: str = Field(primary_key=True, max_length=64)
    issued_at: int = Field(sa_type=BigInteger, index=True)  # unix seconds


class SignInCredential(SQLModel, table=True):
    """A bearer credential a sign-in issued. Only the SHA-256 of the token is kept: a copy of the database
    signs nobody in."""

    token_hash: str = Field(primary_key=True, max_length=64)
    address: str = Field(max_length=42, index=True)
    kind: str = Field(default=PrincipalKind.MEMBER, max_length=16, sa_type=String)
    issued_at: int = Field(sa_type=BigInteger)  # unix seconds
    expires_at: int = Field(sa_type=BigInteger, index=True)
    revoked_at: int | None = Field(default=None, sa_type=BigInteger)
