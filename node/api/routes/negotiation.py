"""HTTP routes of the negotiation protocol (docs/protocol.md): the signed inbox and the operator's side."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from pydantic import Field, StrictInt, field_validator
from sqlmodel import select
from web3 import Web3

from negotiation.rules.names import Scenario
from node.api.schemas import Code, Strict
from node.errors import NotFound
from node.services.negotiator import Negotiator
from node.store.engine import session_scope
from node.store.pool import require_location, require_sku
from node.store.tables import Invitation, ReplenishmentRequest, Transfer, TransferOffer


class InvitationIn(Strict):
    sku: Code
    quantity: StrictInt = Field(gt=0)
    needed_by: str = Field(description="ISO-8601 date or time by which the stock is needed")
    min_shelf_life_days: StrictInt = Field(default=0, ge=0)
    radius_km: StrictInt | None = Field(default=None, gt=0, le=20_000)
    consignment: bool = Field(default=False, description="ownership stays with the supplier after receipt")
    scenario: Scenario = Field(default="routine_replenishment", description="the strategy matrix column")
    customer_tier: str | None = Field(default=None, description="one of the rule book's customer tiers")
    urgent: bool = False

    @field_validator("needed_by")
    @classmethod
    def _iso(cls, value: str) -> str:
        datetime.fromisoformat(value)
        return value

    def needed_by_unix(self) -> int:
        moment = datetime.fromisoformat(self.needed_by)
        return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


class ReceiveIn(Strict):
    quantity: StrictInt = Field(ge=0, description="what actually arrived")
    location: Code


class ReplenishmentIn(Strict):
    sku: Code
    location: Code
    quantity: StrictInt = Field(gt=0)
    requested_on: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$", description="default: today")
    min_shelf_life_days: StrictInt = Field(default=0, ge=0)


class DisputeIn(Strict):
    subject: str = Field(
        pattern=r"^0x[0-9a-fA-F]{64}$", description="a transfer (acceptance) id, offer id or record leaf"
    )
    reason: str = Field(min_length=1, max_length=256)
    claim_amount: StrictInt = Field(default=0, ge=0, description="minor units")
    respondent: str | None = Field(default=None, pattern=r"^0x[0-9a-fA-F]{40}$", description="if not a transfer/offer")


class CheckIn(Strict):
    today: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")


def negotiation_router(negotiator: Callable[[], Negotiator], operator: Sequence[Any]) -> APIRouter:
    router = APIRouter(prefix="/negotiation", tags=["negotiation"])

    @router.post("/messages", status_code=202)
    async def inbox(request: Request) -> dict[str, Any]:
        """Signed messages from other members' nodes. Authenticated by the EIP-712 signature, not a token."""
        from negotiation.messages import MessageRefused

        try:
            envelope = json.loads(await request.body())
        except ValueError as exc:
            raise MessageRefused("malformed", "the body is not JSON") from exc
        from starlette.concurrency import run_in_threadpool

        result: dict[str, Any] = await run_in_threadpool(negotiator().receive, envelope)
        return result

    @router.post("/invitations", status_code=201, dependencies=list(operator))
    def invite(body: Annotated[InvitationIn, Body()]) -> dict[str, Any]:
        """Invite every member within the radius to offer stock for an unmet need."""
        n = negotiator()
        inv, invited = n.invite(
            body.sku,
            body.quantity,
            body.needed_by_unix(),
            body.min_shelf_life_days,
            body.radius_km,
            body.consignment,
            body.scenario,
            body.customer_tier,
            body.urgent,
        )
        return {"invitation": inv.model_dump(), "invited": [{"address": m.address, "name": m.name} for m in invited]}

    @router.get("/invitations", dependencies=list(operator))
    def invitations() -> list[dict[str, Any]]:
        with session_scope(negotiator().engine) as s:
            out = []
            for inv in s.exec(select(Invitation).order_by(Invitation.created_at)).all():
                offers = s.exec(select(TransferOffer).where(TransferOffer.invitation == inv.id)).all()
                out.append({**inv.model_dump(), "offers": [o.model_dump() for o in offers]})
            return out

    @router.post("/disputes", status_code=201, dependencies=list(operator))
    def open_dispute(body: DisputeIn) -> dict[str, Any]:
        """Dispute a transfer, an offer or a decision: both sides record it; the rule book's arbitrator rules."""
        respondent = Web3.to_checksum_address(body.respondent) if body.respondent else None
        return negotiator().open_dispute(body.subject.lower(), body.reason, body.claim_amount, respondent)

    @router.get("/disputes", dependencies=list(operator))
    def disputes() -> list[dict[str, Any]]:
        return negotiator().disputes()

    @router.get("/offers", dependencies=list(operator))
    def offers(invitation: str | None = None, mine: bool | None = None) -> list[TransferOffer]:
        with session_scope(negotiator().engine) as s:
            q = select(TransferOffer)
            if invitation is not None:
                q = q.where(TransferOffer.invitation == invitation)
            if mine is not None:
                q = q.where(TransferOffer.mine == mine)
            return list(s.exec(q).all())

    @router.post("/offers/{offer_id}/decline", dependencies=list(operator))
    def decline(offer_id: str) -> dict[str, Any]:
        """Decline an offer received for one of our invitations: the supplier releases its reservation."""
        n = negotiator()
        with session_scope(n.engine) as s:
            offer = s.get(TransferOffer, offer_id)
            if offer is None or offer.mine:
                raise NotFound(f"no received offer {offer_id}", offer=offer_id)
        n.decline(offer_id)
        return {"declined": offer_id}

    @router.post("/plan", dependencies=list(operator))
    def plan() -> dict[str, Any]:
        """Solve the cost-optimal plan over all open invitations and received offers; accept and decline."""
        return negotiator().plan()

    @router.get("/transfers", dependencies=list(operator))
    def transfers(status: str | None = None) -> list[Transfer]:
        with session_scope(negotiator().engine) as s:
            q = select(Transfer)
            if status is not None:
                q = q.where(Transfer.status == status)
            return list(s.exec(q.order_by(Transfer.updated_at)).all())

    @router.post("/transfers/{transfer_id}/receive", dependencies=list(operator))
    def receive(transfer_id: str, body: ReceiveIn) -> dict[str, Any]:
        """Confirm what arrived of an incoming transfer; a shortfall becomes a discrepancy on both sides."""
        return negotiator().confirm_receipt(transfer_id, body.quantity, body.location)

    @router.post("/replenishment", status_code=201, dependencies=list(operator))
    def add_request(body: ReplenishmentIn) -> ReplenishmentRequest:
        """A store's replenishment request (from its POS or ordering system)."""
        with session_scope(negotiator().engine) as s:
            require_sku(s, body.sku)
            require_location(s, body.location)
            row = ReplenishmentRequest(
                sku=body.sku,
                location=body.location,
                quantity=body.quantity,
                requested_on=body.requested_on or datetime.now(UTC).date().isoformat(),
                min_shelf_life_days=body.min_shelf_life_days,
            )
            s.add(row)
            s.flush()
            return row

    @router.get("/replenishment", dependencies=list(operator))
    def list_requests(status: str | None = None) -> list[ReplenishmentRequest]:
        with session_scope(negotiator().engine) as s:
            q = select(ReplenishmentRequest)
            if status is not None:
                q = q.where(ReplenishmentRequest.status == status)
            return list(s.exec(q.order_by(ReplenishmentRequest.id)).all())  # type: ignore[arg-type]

    @router.post("/replenishment/check", dependencies=list(operator))
    def check(body: CheckIn | None = None) -> list[dict[str, Any]]:
        """Invite partners now for SKUs unmet long enough (the worker also does this by itself)."""
        today = date.fromisoformat(body.today) if body and body.today else None
        return negotiator().check_requests(today)

    @router.get("/peers", dependencies=list(operator))
    def peers() -> list[dict[str, Any]]:
        return [
            {"address": m.address, "name": m.name, "node_url": m.node_url, "distance_km": round(d / 1000, 3)}
            for m, d in negotiator().peers()
        ]

    return router
