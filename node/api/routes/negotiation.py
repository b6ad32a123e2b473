"""HTTP routes of the negotiation protocol (docs/protocol.md): the signed inbox and the operator's side."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool
from web3 import Web3

from negotiation.messages import MAX_MESSAGES_PER_BATCH, MessageRefused
from negotiation.wire import Refusal
from node.api.deps import NegotiatorDep, OperatorDep, RouterDep, SessionDep, SettingsDep, StepsDep
from node.api.errors import ERROR_RESPONSES, answer_to, log_message_refusal
from node.api.limits import MAX_MESSAGE_BYTES
from node.api.logs import envelope_facts
from node.api.responses import (
    DeclinedOut,
    DisputeOpenedOut,
    DisputeOut,
    InvitationOut,
    InvitationSentOut,
    InvitationWithOffersOut,
    MemberOut,
    MessageAcceptedOut,
    MessageBatchOut,
    MessageOutcomeOut,
    NoOfferOut,
    OfferOut,
    PeerOut,
    PlanOut,
    QuoteRequestOut,
    ReceivedOut,
    ReplenishmentRequestOut,
    TransferOut,
    TriggeredOut,
)
from node.api.schemas import CheckIn, DisputeIn, InvitationIn, ReceiveIn, ReplenishmentIn
from node.errors import BodyTooLarge
from node.services.router import MessageRouter
from node.store.pool import require_location, require_sku
from node.store.tables import Invitation, ReplenishmentRequest, Transfer, TransferOffer

router = APIRouter(prefix="/negotiation", tags=["negotiation"], responses=ERROR_RESPONSES)
operator = [OperatorDep]


@router.post("/messages", status_code=202)
async def inbox(request: Request, inbox_router: RouterDep) -> MessageAcceptedOut:
    """Signed messages from other members' nodes. Authenticated by the EIP-712 signature, not a token."""
    envelope = await _json_body(request)
    return MessageAcceptedOut.model_validate(await run_in_threadpool(inbox_router.receive, envelope))


@router.post("/messages/batch", status_code=200)
async def inbox_batch(request: Request, inbox_router: RouterDep) -> MessageBatchOut:
    """Up to 100 signed messages in one request (a peer's outbox sends what waits for this node together): each
    admitted or refused by itself, in order, exactly as `POST /negotiation/messages` would; `results[i]` is the
    status and body that endpoint would have answered message i with."""
    raw = await request.body()
    # Parsed and admitted off the event loop: a batch is up to 1 MiB and 100 signature recoveries.
    return await run_in_threadpool(_admit_batch, inbox_router, raw)


def _admit_batch(inbox_router: MessageRouter, raw: bytes) -> MessageBatchOut:
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise MessageRefused(Refusal.MALFORMED, "the body is not JSON") from exc
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list) or not 1 <= len(messages) <= MAX_MESSAGES_PER_BATCH:
        said = f'a batch is {{"messages": [1 to {MAX_MESSAGES_PER_BATCH} signed messages]}}'
        raise MessageRefused(Refusal.MALFORMED, said)
    # A message over the single inbox's limit is refused as that inbox would refuse it, the others go on.
    too_large = BodyTooLarge(f"a signed message may hold at most {MAX_MESSAGE_BYTES} bytes", limit=MAX_MESSAGE_BYTES)
    sized = [m if len(json.dumps(m)) <= MAX_MESSAGE_BYTES else too_large for m in messages]
    admitted = iter(inbox_router.receive_many([m for m in sized if m is not too_large]))
    results = []
    for envelope, checked in zip(messages, sized, strict=True):
        outcome = too_large if checked is too_large else next(admitted)
        if isinstance(outcome, Exception):
            status, refusal = answer_to(outcome)
            log_message_refusal(status, refusal, envelope_facts(envelope), outcome, where=" in a batch")
            results.append(MessageOutcomeOut(status=status, body=refusal))
        else:
            results.append(MessageOutcomeOut(status=202, body=MessageAcceptedOut.model_validate(outcome).model_dump()))
    return MessageBatchOut(results=results)


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError as exc:
        raise MessageRefused(Refusal.MALFORMED, "the body is not JSON") from exc


@router.post("/invitations", status_code=201, dependencies=operator)
def invite(body: Annotated[InvitationIn, Body()], steps: StepsDep) -> InvitationSentOut:
    """Invite every member within the radius to offer stock for an unmet need."""
    inv, invited = steps.invitations.invite(
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
    return InvitationSentOut(
        invitation=InvitationOut.model_validate(inv, from_attributes=True),
        invited=[MemberOut(address=m.address, name=m.name) for m in invited],
    )


@router.get("/invitations", dependencies=operator)
def invitations(s: SessionDep, steps: StepsDep) -> list[InvitationWithOffersOut]:
    out = []
    for inv in s.exec(select(Invitation).order_by(Invitation.created_at)).all():
        offers = s.exec(select(TransferOffer).where(TransferOffer.invitation == inv.id)).all()
        # Validated first: a row read back holds its state as text, the answer as the state's enum.
        row = InvitationOut.model_validate(inv, from_attributes=True).model_dump()
        pending = list(steps.invitations.readiness(s, inv).pending) if inv.mine else []
        offers_out = [OfferOut.model_validate(o, from_attributes=True) for o in offers]
        no_offers = [NoOfferOut(supplier=a, reason=r) for a, r in steps.invitations.no_offers(s, inv)]
        out.append(InvitationWithOffersOut(**row, offers=offers_out, pending=pending, no_offers=no_offers))
    return out


@router.post("/disputes", status_code=201, dependencies=operator)
def open_dispute(body: DisputeIn, steps: StepsDep) -> DisputeOpenedOut:
    """Dispute a transfer, an offer or a decision: both sides record it; the rule book's arbitrator rules."""
    respondent = Web3.to_checksum_address(body.respondent) if body.respondent else None
    return DisputeOpenedOut.model_validate(
        steps.disputes.open_dispute(body.subject.lower(), body.reason, body.claim_amount, respondent)
    )


@router.get("/disputes", dependencies=operator)
def disputes(steps: StepsDep) -> list[DisputeOut]:
    return [DisputeOut.model_validate(d, from_attributes=True) for d in steps.disputes.all()]


@router.get("/offers", dependencies=operator)
def offers(s: SessionDep, invitation: str | None = None, mine: bool | None = None) -> list[OfferOut]:
    q = select(TransferOffer)
    if invitation is not None:
        q = q.where(TransferOffer.invitation == invitation)
    if mine is not None:
        q = q.where(TransferOffer.mine == mine)
    return [OfferOut.model_validate(o, from_attributes=True) for o in s.exec(q).all()]


@router.post("/offers/{offer_id}/decline", dependencies=operator)
def decline(offer_id: str, steps: StepsDep) -> DeclinedOut:
    """Decline an offer received for one of our invitations: the supplier releases its reservation."""
    steps.invitations.decline(offer_id)
    return DeclinedOut(declined=offer_id)


@router.post("/plan", dependencies=operator, responses={409: {"description": "plan_early: members have not answered"}})
def plan(
    negotiator: NegotiatorDep,
    wait: Annotated[float, Query(ge=0, le=300, description="seconds to wait for the members' answers")] = 30,
    force: Annotated[bool, Query(description="plan now, even before every member invited has answered")] = False,
) -> PlanOut:
    """Solve the cost-optimal plan over all open invitations and received offers; accept and decline.

    An invitation is planned once every member invited has answered (an offer, or a NoOffer) or its offer
    window has closed; until then this waits up to `wait` seconds, and answers 409 `plan_early` naming who has
    not answered if the wait ends first (`force` plans at once)."""
    return PlanOut.model_validate(negotiator.plan(wait, force))


@router.get("/transfers", dependencies=operator)
def transfers(s: SessionDep, status: str | None = None) -> list[TransferOut]:
    q = select(Transfer)
    if status is not None:
        q = q.where(Transfer.status == status)
    rows = s.exec(q.order_by(Transfer.updated_at)).all()
    return [TransferOut.model_validate(t, from_attributes=True) for t in rows]


@router.post("/transfers/{transfer_id}/receive", dependencies=operator)
def receive(transfer_id: str, body: ReceiveIn, steps: StepsDep) -> ReceivedOut:
    """Confirm what arrived of an incoming transfer; a shortfall becomes a discrepancy on both sides."""
    return ReceivedOut.model_validate(steps.transfers.confirm_receipt(transfer_id, body.quantity, body.location))


@router.post("/replenishment", status_code=201, dependencies=operator)
def add_request(body: ReplenishmentIn, s: SessionDep) -> ReplenishmentRequestOut:
    """A store's replenishment request (from its POS or ordering system)."""
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
    return ReplenishmentRequestOut.model_validate(row, from_attributes=True)


@router.get("/replenishment", dependencies=operator)
def list_requests(s: SessionDep, status: str | None = None) -> list[ReplenishmentRequestOut]:
    q = select(ReplenishmentRequest)
    if status is not None:
        q = q.where(ReplenishmentRequest.status == status)
    rows = s.exec(q.order_by(col(ReplenishmentRequest.id))).all()
    return [ReplenishmentRequestOut.model_validate(r, from_attributes=True) for r in rows]


@router.post("/replenishment/check", dependencies=operator)
def check(negotiator: NegotiatorDep, body: CheckIn | None = None) -> list[TriggeredOut]:
    """Invite partners now for SKUs unmet long enough (the worker also does this by itself)."""
    today = date.fromisoformat(body.today) if body and body.today else None
    return [TriggeredOut.model_validate(t) for t in negotiator.check_requests(today)]


@router.get("/peers", dependencies=operator)
def peers(negotiator: NegotiatorDep) -> list[PeerOut]:
    return [
        PeerOut(address=m.address, name=m.name, node_url=m.node_url, distance_km=round(d / 1000, 3))
        for m, d in negotiator.directory.peers()
    ]


@router.post("/quotes/check", dependencies=operator)
def check_quotes(steps: StepsDep, settings: SettingsDep) -> list[QuoteRequestOut]:
    """Send now the quote requests the rules in force ask for (the worker does it every minute); the ones sent.
    Each (supplier, SKU, rule) is asked at most once a day."""
    sent = steps.quotes.ask_due(settings.safety_stock)
    return [QuoteRequestOut.model_validate(q, from_attributes=True) for q in sent]


@router.get("/quotes", dependencies=operator)
def quotes(steps: StepsDep) -> list[QuoteRequestOut]:
    """Quote requests this node's rules sent, and those other members' rules sent it."""
    return [QuoteRequestOut.model_validate(q, from_attributes=True) for q in steps.quotes.listing()]
