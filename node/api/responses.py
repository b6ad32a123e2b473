"""What the HTTP API answers: one `*Out` model per answer, never a table row or a bare dict.

Models of stored rows derive from the table's column base (`SkuBase` ...), so a column is declared once;
the others name each field the docs promise. Parts whose shape another document specifies (a record
body: docs/proof-format.md; a plan: docs/matching.md; a sandbox report: docs/rules.md) are typed as
objects here and specified there.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from negotiation.trigger import InternalMove
from node.services.approvals import StatementView
from node.store.tables import (
    AnchorBatchBase,
    DisputeBase,
    InvitationBase,
    JointPurchaseBase,
    LoanBase,
    Location,
    LotBase,
    QuoteRequestBase,
    ReplenishmentRequestBase,
    SettlementStatementBase,
    SkuBase,
    StockBalanceBase,
    TransferBase,
    TransferOfferBase,
)


class SkuOut(SkuBase):
    pass


class LotOut(LotBase):
    pass


class StockBalanceOut(StockBalanceBase):
    pass


class InvitationOut(InvitationBase):
    pass


class OfferOut(TransferOfferBase):
    pass


class TransferOut(TransferBase):
    pass


class ReplenishmentRequestOut(ReplenishmentRequestBase):
    pass


class DisputeOut(DisputeBase):
    pass


class AnchorBatchOut(AnchorBatchBase):
    id: int | None = Field(default=None, exclude=True)


class LocationOut(BaseModel):
    code: str
    name: str
    kind: str
    lat: Decimal = Field(description="decimal degrees, exactly as stored (integer microdegrees)")
    lon: Decimal

    @classmethod
    def of(cls, row: Location) -> LocationOut:
        return cls(
            code=row.code,
            name=row.name,
            kind=row.kind,
            lat=Decimal(row.lat_e6).scaleb(-6),
            lon=Decimal(row.lon_e6).scaleb(-6),
        )


class AnchoringHealthOut(BaseModel):
    enabled: bool
    waiting_records: int
    oldest_waiting: str | None
    last_error: str | None
    confirmations: int = Field(description="blocks on top of an anchor before it is final")
    unconfirmed_batches: int = Field(description="anchored, not final yet")
    reanchoring: list[int] = Field(description="batch seqs the chain lost, being anchored again")


class ProjectionOut(BaseModel):
    checked: bool = Field(description="the check at start has run")
    differences: list[str] = Field(description="balances that differ from what the records add up to")


class SetAsideOut(BaseModel):
    replenishment_requests: int = Field(description="requests no worker could read: see node.log")


class OutboxHealthOut(BaseModel):
    waiting_messages: int = Field(description="signed messages to other members not delivered yet")
    refused_messages: int = Field(description="messages a member refused for good (what they held was given back)")
    most_attempts: int = Field(description="the most delivery attempts of any message still waiting")


class HealthOut(BaseModel):
    status: str = Field(
        description='"ok", or "degraded" while anything is set aside, unconfirmed, being anchored again, or the '
        "stock projection differs from the records"
    )
    node: str
    address: str
    anchoring: AnchoringHealthOut
    outbox: OutboxHealthOut
    set_aside: SetAsideOut
    projection: ProjectionOut


class EvidenceOut(BaseModel):
    source: str
    reference: str


class RecordBodyOut(BaseModel):
    """A record as hashed (docs/proof-format.md); type-specific parts (transfer, plan, dispute, ruling) ride
    along as extra fields."""

    model_config = ConfigDict(extra="allow")
    kind: str
    node: str
    seq: int
    type: str
    at: str
    lines: list[dict[str, Any]]
    evidence: list[EvidenceOut]
    memo: str
    corrects: int | None


class RecordOut(BaseModel):
    record: RecordBodyOut
    leaf: str


class MovementBatchOut(BaseModel):
    records: list[RecordOut] = Field(description="one record per movement, in the batch's order")


class FlushOut(BaseModel):
    anchored_batches: int


class IdentityOut(BaseModel):
    node: str
    address: str
    registry: str | None
    anchor_contract: str | None
    kinds: list[str]


class ProofPageOut(BaseModel):
    """Documentation of GET /audit/records, which answers spliced JSON text for speed."""

    format: str = Field(description='"consortium-proof/1" (docs/proof-format.md)')
    kind: str
    items: list[dict[str, Any]]
    next_after: int | None


# -- negotiation ------------------------------------------------------------------------------------------------
class MessageAcceptedOut(BaseModel):
    accepted: str = Field(description="the message type admitted")
    id: str
    offers: list[str] | None = Field(default=None, description="for an Invitation: the offers sent back")
    released: int | None = Field(default=None, description="for a Cancellation: units released")
    shipped: str | None = Field(default=None, description="for an Acceptance: the Shipment message id")
    record_seq: int | None = Field(default=None, description="for a Dispute or Ruling: the record written")


class MessageOutcomeOut(BaseModel):
    status: int = Field(description="the status POST /negotiation/messages would have answered this message with")
    body: dict[str, Any] = Field(
        description="the body it would have answered: the message admitted (202) or the refusal {error, message, "
        "detail}"
    )


class MessageBatchOut(BaseModel):
    results: list[MessageOutcomeOut] = Field(description="one per message, in the order sent")


class MemberOut(BaseModel):
    address: str
    name: str


class InvitationSentOut(BaseModel):
    invitation: InvitationOut
    invited: list[MemberOut]


class NoOfferOut(BaseModel):
    supplier: str
    reason: str = Field(description="the member's own words: no stock to spare, a limit reached, ...")


class InvitationWithOffersOut(InvitationOut):
    offers: list[OfferOut]
    pending: list[str] = Field(description="for our own invitations: members invited that have not answered yet")
    no_offers: list[NoOfferOut] = Field(
        default=[], description="for our own invitations: members that answered they offer nothing, and why"
    )


class DisputeOpenedOut(BaseModel):
    dispute: str
    respondent: str
    record_seq: int
    rule_version: str


class DeclinedOut(BaseModel):
    declined: str


class AcceptanceOut(BaseModel):
    acceptance: str
    id: str
    supplier: str
    supplier_name: str
    sku: str
    lot: str
    quantity: int
    shelf_life_days: int
    min_order_quantity: int
    unit_price: int
    freight_compensation: int


class PlanEvidenceOut(BaseModel):
    requests: list[int]
    invitations: list[str]
    offers: list[str]
    rule_version: str
    rule_block: int


class PlanOut(BaseModel):
    plan: dict[str, Any] = Field(description="the solver's answer (docs/matching.md)")
    hashes: dict[str, str]
    record_seq: int
    actions: list[str]
    acceptances: list[AcceptanceOut]
    declined: list[str]
    evidence: PlanEvidenceOut


class ReceivedOut(BaseModel):
    transfer: str
    record_seq: int
    received: int
    shipped: int


class TriggeredOut(BaseModel):
    """A SKU unmet long enough: first moved from our own other locations, then partners invited for the rest."""

    sku: str
    unmet_days: int
    internal_moves: list[InternalMove] = Field(description="our own stock moved first (negotiation/trigger.py)")
    invitation: str | None = Field(description="None when our own stock covered every request")
    quantity: int = Field(description="what partners are asked for")
    requests: list[int] = Field(description="the requests the invitation is for")
    invited: list[str]


class QuoteRequestOut(QuoteRequestBase):
    pass


class PeerOut(BaseModel):
    address: str
    name: str
    node_url: str
    distance_km: float


# -- rules ------------------------------------------------------------------------------------------------------
class ActiveRuleBookOut(BaseModel):
    version: str
    label: str
    block: int = Field(description="the block the chain was read at")
    in_force_since_block: int = Field(description="the block this version came into force at")


class RuleVersionOut(BaseModel):
    block: int
    version: str
    label: str | None
    parent: str
    proposer: str
    proposed_at_block: int
    approvals: list[str]
    activates_at_block: int | None = Field(description="None while its quorum is not reached")
    active: bool
    held: bool
    governance_matches: bool
    uri: str


class HeldBookOut(BaseModel):
    version: str
    label: str
    added_at: str


class ConflictOut(BaseModel):
    kind: str
    paths: list[str]
    message: str
    situation: dict[str, Any]


class BookAddedOut(BaseModel):
    version: str
    label: str
    conflicts: list[ConflictOut]


class ProposedOut(BaseModel):
    version: str
    proposed_at_block: int


class ApprovedOut(BaseModel):
    version: str
    approved_at_block: int
    activates_at_block: int | None = Field(description="None while its quorum is not reached")


class SandboxOut(BaseModel):
    """Both books' runs side by side (docs/rules.md, "Sandbox")."""

    model_config = ConfigDict(extra="allow")
    seconds: dict[str, float]


class LocationSafetyOut(BaseModel):
    location: str
    available: int
    safety_level: int


class SkuDecisionOut(BaseModel):
    sku: str
    available: int
    safety_level: int
    set_by_rule: str | None = Field(description="the rule that set the level, if one did")
    safety: dict[str, Any]
    suggestions: list[str]
    locations: list[LocationSafetyOut] = Field(
        description="each of this node's locations holding or issuing the SKU: its own safety level, from the "
        "issues made there, and what is available there"
    )


class DecisionsOut(BaseModel):
    rule_version: str
    block: int = Field(description="the block the chain was read at")
    in_force_since_block: int = Field(description="the block the rule book in force came into force at")
    skus: list[SkuDecisionOut]


class StatementStateOut(BaseModel):
    id: str
    statement_hash: str
    status: str = Field(
        description="on this node: verifying, awaiting_approval, approved, final, disputed, superseded or withdrawn "
        "(docs/settlement.md, section 6)"
    )


class StatementSummaryOut(SettlementStatementBase):
    pass


class StatementOut(StatementView):
    """The statement document of docs/settlement.md, section 5 (its parts declared once, in
    settlement/document.py), with this node's status, the signed approvals of its hash (`signatures`) and its
    life cycle here (section 6: `approval`, `approval_due_at`, `disputes`, `withdrawal`)."""


class ContributionsOut(BaseModel):
    period: dict[str, str]
    members: list[dict[str, Any]] = Field(description="each member's metrics (docs/settlement.md, section 1)")
    inputs: dict[str, dict[str, Any]] = Field(description="per member: the last record seq and batch roots used")
    series: list[dict[str, Any]] = Field(
        description="the same metrics per day (per week past 14 days): [{period, members: {address: metrics}}]"
    )


class ShareOut(BaseModel):
    participant: str
    units: int
    share: int = Field(description="minor units owed to the buyer (the buyer's own: what it bears)")
    status: str = Field(description="proposed | accepted")


class JointPurchaseOut(JointPurchaseBase):
    shares: list[ShareOut]


class JointPurchaseMadeOut(BaseModel):
    id: str
    record_seq: int
    rule_version: str
    shares: list[ShareOut]


class ShareAcceptedOut(BaseModel):
    purchase: str
    share: int
    record_seq: int


class LoanOut(LoanBase):
    role: str = Field(description="lender | borrower: this node's side")
    due: str = Field(description="the due time, ISO-8601 UTC")


class NonceOut(BaseModel):
    nonce: str = Field(description="for one sign-in message, within 5 minutes")


class AccessTokenOut(BaseModel):
    access_token: str = Field(description="sent as Authorization: Bearer <token>")
    token_type: str = "Bearer"
    expires_at: str = Field(description="RFC 3339, UTC")


class WhoAmIOut(BaseModel):
    address: str
    kind: str = Field(description="member")
    expires_at: str = Field(description="RFC 3339, UTC")
