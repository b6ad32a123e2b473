"""The wire shape of each signed message: one TypedDict per EIP-712 type in `messages.MESSAGE_TYPES`.

`SignedMessage.message` is a plain dict because it is exactly what was signed and what goes on the wire;
these TypedDicts give that dict a static shape, so code reading `msg.as_(OfferMessage)["unitPrice"]` is
checked by mypy instead of trusting a string key. MESSAGE_TYPES stays the single source of truth for what
is signed: tests/unit/test_wire_shapes.py fails if a field is added there and not here (or the reverse),
or if a Solidity type and its Python type disagree (uint*/int* -> int, address/bytes32/string -> str,
bool -> bool). Field order is the EIP-712 order.

Pure declarations: no imports from the rest of the package, so `messages` can import this module.
"""

from __future__ import annotations

from typing import TypedDict


class InvitationMessage(TypedDict):
    id: str
    requester: str
    sku: str
    quantity: int
    neededBy: int
    minShelfLifeDays: int
    radiusKm: int
    scenario: str
    customerTier: str
    urgent: bool
    ruleVersion: str
    nonce: int
    deadline: int


class OfferMessage(TypedDict):
    id: str
    invitation: str
    supplier: str
    sku: str
    lot: str
    quantity: int
    shelfLifeDays: int
    minOrderQuantity: int
    unitPrice: int
    ruleVersion: str
    nonce: int
    deadline: int


class NoOfferMessage(TypedDict):
    id: str
    invitation: str
    supplier: str
    reason: str
    ruleVersion: str
    nonce: int
    deadline: int


class AcceptanceMessage(TypedDict):
    id: str
    offer: str
    requester: str
    quantity: int
    freightCompensation: int
    planHash: str
    consignment: bool
    nonce: int
    deadline: int


class ShipmentMessage(TypedDict):
    id: str
    acceptance: str
    supplier: str
    lot: str
    quantity: int
    nonce: int
    deadline: int


class ReceiptMessage(TypedDict):
    id: str
    shipment: str
    requester: str
    quantityReceived: int
    nonce: int
    deadline: int


class CancellationMessage(TypedDict):
    id: str
    subject: str
    sender: str
    reason: str
    nonce: int
    deadline: int


class DisputeMessage(TypedDict):
    id: str
    subject: str
    opener: str
    respondent: str
    reason: str
    claimAmount: int
    ruleVersion: str
    nonce: int
    deadline: int


class RulingMessage(TypedDict):
    id: str
    dispute: str
    arbitrator: str
    decision: str
    award: int
    payer: str
    payee: str
    ruleVersion: str
    nonce: int
    deadline: int


class ConsignmentSaleMessage(TypedDict):
    id: str
    holder: str
    owner: str
    sku: str
    lot: str
    quantity: int
    unitPrice: int
    nonce: int
    deadline: int


class JointPurchaseMessage(TypedDict):
    id: str
    purchase: str
    buyer: str
    participant: str
    sku: str
    lot: str
    reference: str
    units: int
    totalUnits: int
    participants: int
    totalCost: int
    share: int
    ruleVersion: str
    nonce: int
    deadline: int


class JointPurchaseAcceptanceMessage(TypedDict):
    id: str
    purchase: str
    participant: str
    share: int
    nonce: int
    deadline: int


class LoanRequestMessage(TypedDict):
    id: str
    borrower: str
    lender: str
    sku: str
    quantity: int
    maxFeePerUnitDay: int
    maxUnitSalePrice: int
    returnBy: int
    nonce: int
    deadline: int


class LoanMessage(TypedDict):
    id: str
    loan: str
    lender: str
    borrower: str
    sku: str
    lot: str
    quantity: int
    feePerUnitDay: int
    unitSalePrice: int
    lentAt: int
    dueAt: int
    ruleVersion: str
    nonce: int
    deadline: int


class LoanReturnMessage(TypedDict):
    id: str
    loan: str
    borrower: str
    quantity: int
    nonce: int
    deadline: int


class QuoteRequestMessage(TypedDict):
    id: str
    requester: str
    supplier: str
    sku: str
    quantity: int
    rule: str
    ruleVersion: str
    nonce: int
    deadline: int


class StatementProposalMessage(TypedDict):
    id: str
    statement: str
    proposer: str
    periodFrom: str
    periodTo: str
    ruleVersion: str
    statementHash: str
    nonce: int
    deadline: int


class StatementSignatureMessage(TypedDict):
    id: str
    statement: str
    signer: str
    statementHash: str
    nonce: int
    deadline: int


# EIP-712 type name -> its TypedDict; the keys are exactly those of MESSAGE_TYPES.
MESSAGE_SHAPES: dict[str, type] = {
    "Invitation": InvitationMessage,
    "Offer": OfferMessage,
    "NoOffer": NoOfferMessage,
    "Acceptance": AcceptanceMessage,
    "Shipment": ShipmentMessage,
    "Receipt": ReceiptMessage,
    "Cancellation": CancellationMessage,
    "Dispute": DisputeMessage,
    "Ruling": RulingMessage,
    "ConsignmentSale": ConsignmentSaleMessage,
    "JointPurchase": JointPurchaseMessage,
    "JointPurchaseAcceptance": JointPurchaseAcceptanceMessage,
    "LoanRequest": LoanRequestMessage,
    "Loan": LoanMessage,
    "LoanReturn": LoanReturnMessage,
    "QuoteRequest": QuoteRequestMessage,
    "StatementProposal": StatementProposalMessage,
    "StatementSignature": StatementSignatureMessage,
}
