"""Joint purchases (docs/protocol.md, section 4, step 10): the buyer records one and asks each participant to bear its
share; a participant's operator accepts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from node.api.deps import OperatorDep, StepsDep
from node.api.errors import ERROR_RESPONSES
from node.api.responses import JointPurchaseMadeOut, JointPurchaseOut, ShareAcceptedOut
from node.api.schemas import JointPurchaseIn

router = APIRouter(
    prefix="/joint-purchases", tags=["joint purchases"], dependencies=[OperatorDep], responses=ERROR_RESPONSES
)
PurchaseId = Annotated[str, Path(pattern=r"^0x[0-9a-f]{64}$", description="0x + 64 lowercase hex digits")]


@router.post("", status_code=201)
def buy(body: JointPurchaseIn, steps: StepsDep) -> JointPurchaseMadeOut:
    """Record a purchase this node made for several members: each participant's share is the rule book's
    `settlement.joint_purchase_share`; this node bears what the shares leave of the total cost."""
    made = steps.joint_purchases.buy(body.sku, body.lot, body.reference, body.total_cost, body.units())
    return JointPurchaseMadeOut.model_validate(made)


@router.get("")
def purchases(steps: StepsDep) -> list[JointPurchaseOut]:
    return [JointPurchaseOut.model_validate(p) for p in steps.joint_purchases.listing()]


@router.post("/{purchase}/accept")
def accept(purchase: PurchaseId, steps: StepsDep) -> ShareAcceptedOut:
    """Take this node's share on: recorded (`joint_purchase_share`) and the buyer told."""
    return ShareAcceptedOut.model_validate(steps.joint_purchases.accept(purchase))
