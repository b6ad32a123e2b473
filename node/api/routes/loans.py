"""Spare parts lent between members (docs/protocol.md, section 4, step 11): the borrower asks, the lender lends, the
borrower gives back before the due time or keeps (buys) what it still has then."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from node.api.deps import OperatorDep, StepsDep
from node.api.errors import ERROR_RESPONSES
from node.api.responses import LoanOut
from node.api.schemas import GiveBackIn, LendIn, LoanRequestIn

router = APIRouter(prefix="/loans", tags=["loans"], dependencies=[OperatorDep], responses=ERROR_RESPONSES)
LoanId = Annotated[str, Path(pattern=r"^0x[0-9a-f]{64}$", description="0x + 64 lowercase hex digits")]


@router.post("", status_code=201)
def ask(body: LoanRequestIn, steps: StepsDep) -> LoanOut:
    """Ask a member to lend parts, with the most this node pays per unit and day and per unit kept."""
    loan = steps.loans.ask(
        body.lender,
        body.sku,
        body.quantity,
        body.location,
        body.max_fee_per_unit_day,
        body.max_unit_sale_price,
        body.return_by_unix(),
    )
    return LoanOut.model_validate(loan)


@router.get("")
def loans(steps: StepsDep) -> list[LoanOut]:
    return [LoanOut.model_validate(x) for x in steps.loans.listing()]


@router.get("/{loan}")
def loan(loan: LoanId, steps: StepsDep) -> LoanOut:
    return LoanOut.model_validate(steps.loans.get(loan))


@router.post("/{loan}/lend")
def lend(loan: LoanId, body: LendIn, steps: StepsDep) -> LoanOut:
    """Lend what was asked, from one lot and place, within the borrower's bounds."""
    lent = steps.loans.lend(loan, body.lot, body.from_location, body.fee_per_unit_day, body.unit_sale_price)
    return LoanOut.model_validate(lent)


@router.post("/{loan}/return")
def give_back(loan: LoanId, body: GiveBackIn, steps: StepsDep) -> LoanOut:
    """Give units back before the due time; what is still here at the due time becomes this node's, sold."""
    return LoanOut.model_validate(steps.loans.give_back(loan, body.quantity, body.location))
