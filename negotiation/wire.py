"""The protocol's signed messages, each declared once: its EIP-712 fields with their Solidity types in order,
the field naming who must sign it, and the refusals a receiving node may answer it with.

A declaration is a TypedDict of the fields the sender fills in (`OfferFields`), the whole signed message built
from it (`OfferMessage`: `id` first, `nonce` and `deadline` last, the EIP-712 order), and a `MessageKind` that
ties them to the type's name (`OFFER`). Every table the node needs (EIP-712 field lists, signer fields, shapes,
which types are decided under the rule book in force) is derived from these declarations in `MESSAGES`;
docs/architecture.md shows how a new type is added. Solidity types ride on the annotations (`Uint64` is an
`int` to mypy and a `uint64` to EIP-712), so a field cannot be declared with one type for Python and another
for the signature.

Pure declarations: no imports from the rest of the package, so `messages` can import this module.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, Generic, TypedDict, TypeVar, get_args, get_type_hints


class MessageType(StrEnum):
    """The EIP-712 primary type of each signed message, in the order docs/protocol.md lists them."""

    INVITATION = "Invitation"
    OFFER = "Offer"
    NO_OFFER = "NoOffer"
    ACCEPTANCE = "Acceptance"
    SHIPMENT = "Shipment"
    RECEIPT = "Receipt"
    CANCELLATION = "Cancellation"
    DISPUTE = "Dispute"
    CONSIGNMENT_SALE = "ConsignmentSale"
    JOINT_PURCHASE = "JointPurchase"
    JOINT_PURCHASE_ACCEPTANCE = "JointPurchaseAcceptance"
    LOAN_REQUEST = "LoanRequest"
    LOAN = "Loan"
    LOAN_RETURN = "LoanReturn"
    QUOTE_REQUEST = "QuoteRequest"
    STATEMENT_PROPOSAL = "StatementProposal"
    STATEMENT_SIGNATURE = "StatementSignature"
    STATEMENT_DISPUTE = "StatementDispute"
    STATEMENT_WITHDRAWAL = "StatementWithdrawal"
    RULING = "Ruling"


_TYPE_NAMES = frozenset(t.value for t in MessageType)


def message_type_of(name: object) -> MessageType | None:
    """The declared type a sender's text names, or None."""
    return MessageType(name) if isinstance(name, str) and name in _TYPE_NAMES else None


class Refusal(StrEnum):
    """Why a node refused a signed message: the stable `error` code of its 4xx answer (docs/protocol.md)."""

    MALFORMED = "malformed"
    UNKNOWN_TYPE = "unknown_type"
    BAD_SIGNATURE = "bad_signature"
    WRONG_SIGNER = "wrong_signer"
    NOT_A_MEMBER = "not_a_member"
    NOT_AUTHORISED = "not_authorised"
    EXPIRED = "expired"
    REPLAYED = "replayed"
    NOT_YOURS = "not_yours"
    OUT_OF_RADIUS = "out_of_radius"
    UNKNOWN_SUBJECT = "unknown_subject"
    CLOSED = "closed"
    RULE_VERSION = "rule_version"
    LIMIT_REACHED = "limit_reached"
    INSUFFICIENT_STOCK = "insufficient_stock"
    WRONG_SHARE = "wrong_share"
    TERMS = "terms"
    LOAN_ENDED = "loan_ended"
    TOO_MANY = "too_many"


# Refusals any message may get, from the guard every message passes before its step (negotiation/messages.py):
# its form, signature, signer, deadline and replay; a step refusing the same message twice answers `replayed`.
EVERY_MESSAGE_REFUSALS = (
    Refusal.MALFORMED,
    Refusal.UNKNOWN_TYPE,
    Refusal.BAD_SIGNATURE,
    Refusal.WRONG_SIGNER,
    Refusal.NOT_A_MEMBER,
    Refusal.NOT_AUTHORISED,
    Refusal.EXPIRED,
    Refusal.REPLAYED,
)


@dataclass(frozen=True)
class Solidity:
    """The EIP-712 type of a field, carried on its annotation."""

    type: str


@dataclass(frozen=True)
class Chars:
    """The most code points a `string` field may hold where the protocol's TEXT_CHARS is too few for it."""

    most: int


class _Signs:
    """Marks the address field whose owner must sign the message."""


SIGNS = _Signs()
Bytes32 = Annotated[str, Solidity("bytes32")]  # 0x and 64 lower-case hex digits
Address = Annotated[str, Solidity("address")]  # checksummed
SignerAddress = Annotated[str, Solidity("address"), SIGNS]
Uint64 = Annotated[int, Solidity("uint64")]  # a decimal string on the wire (docs/protocol.md, section 1)
Uint32 = Annotated[int, Solidity("uint32")]
Text = Annotated[str, Solidity("string")]
TEXT_CHARS = 256  # the most code points of a `string` field (docs/protocol.md, section 1), unless it says `Chars`
Flag = Annotated[bool, Solidity("bool")]


class Eip712Field(TypedDict):
    name: str
    type: str


class _Head(TypedDict):
    id: Bytes32


class _Tail(TypedDict):
    nonce: Uint64
    deadline: Uint64


F = TypeVar("F")  # the fields a sender fills in (a TypedDict)
M = TypeVar("M")  # the whole signed message (a TypedDict)


@dataclass(frozen=True)
class MessageKind(Generic[F, M]):
    """One message type: its name, its shapes, the refusals its step may answer, and whether it is decided
    under the rule book in force (looked up before its transaction opens, refused as `rule_version` when it
    names another)."""

    type: MessageType
    fields_shape: builtins.type[F]  # builtins: the field `type` shadows it here
    shape: builtins.type[M]
    step_refusals: tuple[Refusal, ...]
    under_a_book: bool = False
    eip712: tuple[Eip712Field, ...] = field(init=False)
    signer: str = field(init=False)
    text_chars: dict[str, int] = field(init=False)  # per `string` field: the most code points it may hold

    def __post_init__(self) -> None:
        hints = get_type_hints(self.shape, include_extras=True)
        fields: list[Eip712Field] = []
        signers: list[str] = []
        chars: dict[str, int] = {}
        for name, hint in hints.items():
            metadata = get_args(hint)[1:]
            solidity = [m for m in metadata if isinstance(m, Solidity)]
            if len(solidity) != 1:
                raise TypeError(f"{self.type}.{name} is declared without its Solidity type")
            fields.append({"name": name, "type": solidity[0].type})
            if SIGNS in metadata:
                signers.append(name)
            if solidity[0].type == "string":
                chars[name] = next((m.most for m in metadata if isinstance(m, Chars)), TEXT_CHARS)
        if len(signers) != 1:
            raise TypeError(f"{self.type} names {len(signers)} signer fields; exactly one must sign")
        object.__setattr__(self, "eip712", tuple(fields))
        object.__setattr__(self, "signer", signers[0])
        object.__setattr__(self, "text_chars", chars)

    @property
    def refusals(self) -> tuple[Refusal, ...]:
        """Every refusal a node may answer this message with, the guard's and its step's."""
        own = (*self.step_refusals, *((Refusal.RULE_VERSION,) if self.under_a_book else ()))
        return (*EVERY_MESSAGE_REFUSALS, *dict.fromkeys(r for r in own if r not in EVERY_MESSAGE_REFUSALS))


class InvitationFields(TypedDict):
    requester: SignerAddress
    sku: Text
    quantity: Uint64
    neededBy: Uint64
    minShelfLifeDays: Uint32
    radiusKm: Uint32
    scenario: Text
    customerTier: Text
    urgent: Flag
    ruleVersion: Text


class InvitationMessage(_Head, InvitationFields, _Tail):
    pass


INVITATION: MessageKind[InvitationFields, InvitationMessage] = MessageKind(
    MessageType.INVITATION,
    InvitationFields,
    InvitationMessage,
    (Refusal.OUT_OF_RADIUS, Refusal.LIMIT_REACHED),
    under_a_book=True,
)


class OfferFields(TypedDict):
    invitation: Bytes32
    supplier: SignerAddress
    sku: Text
    lot: Text
    quantity: Uint64
    shelfLifeDays: Uint32
    minOrderQuantity: Uint64
    unitPrice: Uint64
    ruleVersion: Text


class OfferMessage(_Head, OfferFields, _Tail):
    pass


OFFER: MessageKind[OfferFields, OfferMessage] = MessageKind(
    MessageType.OFFER, OfferFields, OfferMessage, (Refusal.UNKNOWN_SUBJECT, Refusal.CLOSED), under_a_book=True
)


class NoOfferFields(TypedDict):
    invitation: Bytes32
    supplier: SignerAddress
    reason: Text
    ruleVersion: Text


class NoOfferMessage(_Head, NoOfferFields, _Tail):
    pass


NO_OFFER: MessageKind[NoOfferFields, NoOfferMessage] = MessageKind(
    MessageType.NO_OFFER, NoOfferFields, NoOfferMessage, (Refusal.UNKNOWN_SUBJECT, Refusal.NOT_YOURS)
)


class AcceptanceFields(TypedDict):
    offer: Bytes32
    requester: SignerAddress
    quantity: Uint64
    freightCompensation: Uint64
    planHash: Bytes32
    consignment: Flag


class AcceptanceMessage(_Head, AcceptanceFields, _Tail):
    pass


ACCEPTANCE: MessageKind[AcceptanceFields, AcceptanceMessage] = MessageKind(
    MessageType.ACCEPTANCE,
    AcceptanceFields,
    AcceptanceMessage,
    (Refusal.UNKNOWN_SUBJECT, Refusal.NOT_YOURS, Refusal.CLOSED),
)


class ShipmentFields(TypedDict):
    acceptance: Bytes32
    supplier: SignerAddress
    lot: Text
    quantity: Uint64


class ShipmentMessage(_Head, ShipmentFields, _Tail):
    pass


SHIPMENT: MessageKind[ShipmentFields, ShipmentMessage] = MessageKind(
    MessageType.SHIPMENT, ShipmentFields, ShipmentMessage, (Refusal.UNKNOWN_SUBJECT, Refusal.NOT_YOURS, Refusal.CLOSED)
)


class ReceiptFields(TypedDict):
    shipment: Bytes32
    requester: SignerAddress
    quantityReceived: Uint64


class ReceiptMessage(_Head, ReceiptFields, _Tail):
    pass


RECEIPT: MessageKind[ReceiptFields, ReceiptMessage] = MessageKind(
    MessageType.RECEIPT, ReceiptFields, ReceiptMessage, (Refusal.UNKNOWN_SUBJECT, Refusal.NOT_YOURS, Refusal.CLOSED)
)


class CancellationFields(TypedDict):
    subject: Bytes32
    sender: SignerAddress
    reason: Text


class CancellationMessage(_Head, CancellationFields, _Tail):
    pass


CANCELLATION: MessageKind[CancellationFields, CancellationMessage] = MessageKind(
    MessageType.CANCELLATION, CancellationFields, CancellationMessage, (Refusal.UNKNOWN_SUBJECT, Refusal.NOT_YOURS)
)


class DisputeFields(TypedDict):
    subject: Bytes32
    opener: SignerAddress
    respondent: Address
    reason: Text
    claimAmount: Uint64
    ruleVersion: Text


class DisputeMessage(_Head, DisputeFields, _Tail):
    pass


DISPUTE: MessageKind[DisputeFields, DisputeMessage] = MessageKind(
    MessageType.DISPUTE, DisputeFields, DisputeMessage, (Refusal.NOT_YOURS, Refusal.LIMIT_REACHED)
)


class ConsignmentSaleFields(TypedDict):
    holder: SignerAddress
    owner: Address
    sku: Text
    lot: Text
    quantity: Uint64
    unitPrice: Uint64


class ConsignmentSaleMessage(_Head, ConsignmentSaleFields, _Tail):
    pass


CONSIGNMENT_SALE: MessageKind[ConsignmentSaleFields, ConsignmentSaleMessage] = MessageKind(
    MessageType.CONSIGNMENT_SALE,
    ConsignmentSaleFields,
    ConsignmentSaleMessage,
    (Refusal.NOT_YOURS, Refusal.INSUFFICIENT_STOCK),
)


class JointPurchaseFields(TypedDict):
    purchase: Bytes32
    buyer: SignerAddress
    participant: Address
    sku: Text
    lot: Text
    reference: Text
    units: Uint64
    totalUnits: Uint64
    participants: Uint32
    totalCost: Uint64
    share: Uint64
    ruleVersion: Text


class JointPurchaseMessage(_Head, JointPurchaseFields, _Tail):
    pass


JOINT_PURCHASE: MessageKind[JointPurchaseFields, JointPurchaseMessage] = MessageKind(
    MessageType.JOINT_PURCHASE,
    JointPurchaseFields,
    JointPurchaseMessage,
    (Refusal.NOT_YOURS, Refusal.WRONG_SHARE),
    under_a_book=True,
)


class JointPurchaseAcceptanceFields(TypedDict):
    purchase: Bytes32
    participant: SignerAddress
    share: Uint64


class JointPurchaseAcceptanceMessage(_Head, JointPurchaseAcceptanceFields, _Tail):
    pass


JOINT_PURCHASE_ACCEPTANCE: MessageKind[JointPurchaseAcceptanceFields, JointPurchaseAcceptanceMessage] = MessageKind(
    MessageType.JOINT_PURCHASE_ACCEPTANCE,
    JointPurchaseAcceptanceFields,
    JointPurchaseAcceptanceMessage,
    (Refusal.UNKNOWN_SUBJECT, Refusal.WRONG_SHARE),
)


class LoanRequestFields(TypedDict):
    borrower: SignerAddress
    lender: Address
    sku: Text
    quantity: Uint64
    maxFeePerUnitDay: Uint64
    maxUnitSalePrice: Uint64
    returnBy: Uint64


class LoanRequestMessage(_Head, LoanRequestFields, _Tail):
    pass


LOAN_REQUEST: MessageKind[LoanRequestFields, LoanRequestMessage] = MessageKind(
    MessageType.LOAN_REQUEST, LoanRequestFields, LoanRequestMessage, (Refusal.NOT_YOURS,)
)


class LoanFields(TypedDict):
    loan: Bytes32
    lender: SignerAddress
    borrower: Address
    sku: Text
    lot: Text
    quantity: Uint64
    feePerUnitDay: Uint64
    unitSalePrice: Uint64
    lentAt: Uint64
    dueAt: Uint64
    ruleVersion: Text


class LoanMessage(_Head, LoanFields, _Tail):
    pass


LOAN: MessageKind[LoanFields, LoanMessage] = MessageKind(
    MessageType.LOAN, LoanFields, LoanMessage, (Refusal.UNKNOWN_SUBJECT, Refusal.TERMS), under_a_book=True
)


class LoanReturnFields(TypedDict):
    loan: Bytes32
    borrower: SignerAddress
    quantity: Uint64


class LoanReturnMessage(_Head, LoanReturnFields, _Tail):
    pass


LOAN_RETURN: MessageKind[LoanReturnFields, LoanReturnMessage] = MessageKind(
    MessageType.LOAN_RETURN,
    LoanReturnFields,
    LoanReturnMessage,
    (Refusal.UNKNOWN_SUBJECT, Refusal.LOAN_ENDED, Refusal.TOO_MANY),
)


class QuoteRequestFields(TypedDict):
    requester: SignerAddress
    supplier: Address
    sku: Text
    quantity: Uint64
    rule: Text
    ruleVersion: Text


class QuoteRequestMessage(_Head, QuoteRequestFields, _Tail):
    pass


QUOTE_REQUEST: MessageKind[QuoteRequestFields, QuoteRequestMessage] = MessageKind(
    MessageType.QUOTE_REQUEST, QuoteRequestFields, QuoteRequestMessage, (Refusal.NOT_YOURS,)
)


class StatementProposalFields(TypedDict):
    statement: Bytes32
    proposer: SignerAddress
    periodFrom: Text
    periodTo: Text
    ruleVersion: Text
    statementHash: Bytes32


class StatementProposalMessage(_Head, StatementProposalFields, _Tail):
    pass


STATEMENT_PROPOSAL: MessageKind[StatementProposalFields, StatementProposalMessage] = MessageKind(
    MessageType.STATEMENT_PROPOSAL, StatementProposalFields, StatementProposalMessage, (Refusal.CLOSED,)
)


class StatementSignatureFields(TypedDict):
    statement: Bytes32
    signer: SignerAddress
    statementHash: Bytes32


class StatementSignatureMessage(_Head, StatementSignatureFields, _Tail):
    pass


STATEMENT_SIGNATURE: MessageKind[StatementSignatureFields, StatementSignatureMessage] = MessageKind(
    MessageType.STATEMENT_SIGNATURE, StatementSignatureFields, StatementSignatureMessage, ()
)


# A dispute's lines as canonical JSON: flow keys of about 200 characters each (docs/settlement.md, section 6).
StatementLines = Annotated[str, Solidity("string"), Chars(8000)]


class StatementDisputeFields(TypedDict):
    statement: Bytes32
    member: SignerAddress
    statementHash: Bytes32
    reason: Text
    lines: StatementLines


class StatementDisputeMessage(_Head, StatementDisputeFields, _Tail):
    pass


STATEMENT_DISPUTE: MessageKind[StatementDisputeFields, StatementDisputeMessage] = MessageKind(
    MessageType.STATEMENT_DISPUTE, StatementDisputeFields, StatementDisputeMessage, (Refusal.NOT_YOURS,)
)


class StatementWithdrawalFields(TypedDict):
    statement: Bytes32
    proposer: SignerAddress
    statementHash: Bytes32
    reason: Text


class StatementWithdrawalMessage(_Head, StatementWithdrawalFields, _Tail):
    pass


STATEMENT_WITHDRAWAL: MessageKind[StatementWithdrawalFields, StatementWithdrawalMessage] = MessageKind(
    MessageType.STATEMENT_WITHDRAWAL,
    StatementWithdrawalFields,
    StatementWithdrawalMessage,
    (Refusal.NOT_YOURS, Refusal.CLOSED),
)


class RulingFields(TypedDict):
    dispute: Bytes32
    arbitrator: SignerAddress
    decision: Text
    award: Uint64
    payer: Address
    payee: Address
    ruleVersion: Text


class RulingMessage(_Head, RulingFields, _Tail):
    pass


RULING: MessageKind[RulingFields, RulingMessage] = MessageKind(
    MessageType.RULING, RulingFields, RulingMessage, (Refusal.UNKNOWN_SUBJECT, Refusal.CLOSED, Refusal.RULE_VERSION)
)


AnyMessageKind = MessageKind[Any, Any]

# Every declaration, in MessageType's order: the tables derive from this tuple.
MESSAGES: tuple[AnyMessageKind, ...] = (
    INVITATION,
    OFFER,
    NO_OFFER,
    ACCEPTANCE,
    SHIPMENT,
    RECEIPT,
    CANCELLATION,
    DISPUTE,
    CONSIGNMENT_SALE,
    JOINT_PURCHASE,
    JOINT_PURCHASE_ACCEPTANCE,
    LOAN_REQUEST,
    LOAN,
    LOAN_RETURN,
    QUOTE_REQUEST,
    STATEMENT_PROPOSAL,
    STATEMENT_SIGNATURE,
    STATEMENT_DISPUTE,
    STATEMENT_WITHDRAWAL,
    RULING,
)
KIND_OF: dict[MessageType, AnyMessageKind] = {k.type: k for k in MESSAGES}
if list(KIND_OF) != list(MessageType):
    raise TypeError("every MessageType is declared exactly once in MESSAGES, in the enum's order")
