"""What routes depend on, as FastAPI dependencies: a test overrides any of them with
`app.dependency_overrides[...]`, nothing is captured by a closure.

The dependencies that only look something up are `async def`: FastAPI runs a plain `def` dependency in its
thread pool, a hand-off between threads per dependency and request that cost a receipt more CPU than its
database work (bench/bench_write_path.py). Only the session, which blocks on the database, stays a thread's."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy import Engine
from sqlmodel import Session

from node.domain.states import PrincipalKind
from node.errors import NotConfigured, Unauthorized
from node.services.anchoring import AnchoringService
from node.services.container import NodeServices
from node.services.negotiator import Negotiator
from node.services.router import MessageRouter
from node.services.rules_keeper import RuleKeeper
from node.services.settlements import Settlements
from node.services.signin import Principal, SignIn
from node.services.steps import StepGroups
from node.settings import NodeSettings
from node.store.engine import session_scope


def services_of(request: Request) -> NodeServices:
    services: NodeServices = request.app.state.services
    return services


async def get_services(request: Request) -> NodeServices:
    return services_of(request)


ServicesDep = Annotated[NodeServices, Depends(get_services)]


async def get_settings(services: ServicesDep) -> NodeSettings:
    return services.settings


SettingsDep = Annotated[NodeSettings, Depends(get_settings)]


async def get_engine(services: ServicesDep) -> Engine:
    return services.engine


EngineDep = Annotated[Engine, Depends(get_engine)]


def get_session(engine: EngineDep) -> Iterator[Session]:
    """One transaction per request, committed before the answer is sent (scope="function" below): a client
    never sees a success whose commit then failed."""
    with session_scope(engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


async def get_address(services: ServicesDep) -> str:
    return services.address


AddressDep = Annotated[str, Depends(get_address)]


async def get_negotiator(services: ServicesDep) -> Negotiator:
    return services.negotiating().negotiator


NegotiatorDep = Annotated[Negotiator, Depends(get_negotiator)]


async def get_steps(services: ServicesDep) -> StepGroups:
    return services.negotiating().steps


StepsDep = Annotated[StepGroups, Depends(get_steps)]


async def get_router(services: ServicesDep) -> MessageRouter:
    return services.negotiating().router


RouterDep = Annotated[MessageRouter, Depends(get_router)]


async def get_settlements(steps: StepsDep) -> Settlements:
    return steps.settlements


SettlementsDep = Annotated[Settlements, Depends(get_settlements)]


async def get_rules(services: ServicesDep) -> RuleKeeper:
    return services.rules


RulesDep = Annotated[RuleKeeper, Depends(get_rules)]


async def get_anchoring(services: ServicesDep) -> AnchoringService:
    if services.anchoring is None:
        raise NotConfigured("anchoring is not configured on this node (CONSORTIUM_ANCHOR_ADDRESS)")
    return services.anchoring


AnchoringDep = Annotated[AnchoringService, Depends(get_anchoring)]


def bearer_is(authorization: str | None, *tokens: str) -> bool:
    """The one comparison of an `Authorization: Bearer` header with the tokens that open a door (constant
    time): the operator dependency, the auditor dependency and the body limits all ask it."""
    if not authorization or not authorization.startswith("Bearer "):
        return False
    given = authorization.removeprefix("Bearer ").strip().encode()
    return bool(given) and any(hmac.compare_digest(given, token.encode()) for token in tokens)


async def require_operator(settings: SettingsDep, authorization: Annotated[str | None, Header()] = None) -> None:
    if not authorization or not authorization.startswith("Bearer "):
        raise Unauthorized("missing bearer token (Authorization: Bearer <token>)")
    if not bearer_is(authorization, settings.api_token):
        raise Unauthorized("wrong bearer token")


async def require_auditor(settings: SettingsDep, authorization: Annotated[str | None, Header()] = None) -> None:
    """With an audit token set, /audit/* asks for it (or the operator's); without one, proofs are public."""
    if settings.audit_token and not bearer_is(authorization, settings.audit_token, settings.api_token):
        raise Unauthorized("an auditor's or operator's bearer token is required")


OperatorDep = Depends(require_operator)
AuditorDep = Depends(require_auditor)


async def get_signin(services: ServicesDep) -> SignIn:
    return services.signin


SignInDep = Annotated[SignIn, Depends(get_signin)]


def bearer_token(authorization: Annotated[str | None, Header()] = None) -> str:
    if not authorization or not authorization.startswith("Bearer "):
        raise Unauthorized("missing bearer token (Authorization: Bearer <token>)")
    token = authorization.removeprefix("Bearer ").strip()
    if not token:
        raise Unauthorized("missing bearer token (Authorization: Bearer <token>)")
    return token


BearerDep = Annotated[str, Depends(bearer_token)]


def require_principal(signin: SignInDep, token: BearerDep) -> Principal:
    """Whoever a sign-in credential speaks for (node/services/signin.py); a plain `def`: it reads the database."""
    return signin.principal(token, datetime.now(UTC))


PrincipalDep = Annotated[Principal, Depends(require_principal)]


async def require_member(principal: PrincipalDep) -> Principal:
    """A member of the registry, signed in with Ethereum (EIP-4361): its address is `principal.address`."""
    if principal.kind != PrincipalKind.MEMBER:
        raise Unauthorized("a member's sign-in credential is required")
    return principal


MemberDep = Annotated[Principal, Depends(require_member)]
