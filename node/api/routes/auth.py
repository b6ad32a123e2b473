"""Members sign in with Ethereum (EIP-4361, docs/protocol.md "Signing in"): a nonce, a signed message, a bearer
credential. The unauthenticated endpoints are rate-limited per client IP (a token bucket per worker)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Request

from node.api.deps import BearerDep, MemberDep, SignInDep
from node.api.errors import ERROR_RESPONSES
from node.api.limits import TokenBucket
from node.api.responses import AccessTokenOut, NonceOut, WhoAmIOut
from node.api.schemas import SiweIn
from node.errors import TooManyRequests


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def rate_limited(request: Request) -> None:
    limiter: TokenBucket = request.app.state.auth_limiter
    client = request.client.host if request.client else "unknown"
    if not limiter.take(client):
        raise TooManyRequests("too many sign-in requests from this address: try again shortly", client=client)


router = APIRouter(prefix="/auth", tags=["auth"], responses=ERROR_RESPONSES)
LIMITED = [Depends(rate_limited)]


@router.get("/nonce", dependencies=LIMITED)
def nonce(signin: SignInDep) -> NonceOut:
    return NonceOut(nonce=signin.nonce(datetime.now(UTC)))


@router.post("/siwe", dependencies=LIMITED)
def siwe(body: SiweIn, signin: SignInDep) -> AccessTokenOut:
    token, principal = signin.sign_in(body.message, body.signature, datetime.now(UTC))
    return AccessTokenOut(access_token=token, expires_at=rfc3339(principal.expires_at))


@router.get("/whoami")
async def whoami(member: MemberDep) -> WhoAmIOut:
    return WhoAmIOut(address=member.address, kind=member.kind, expires_at=rfc3339(member.expires_at))


@router.post("/revoke", status_code=204, dependencies=LIMITED)
def revoke(signin: SignInDep, member: MemberDep, token: BearerDep) -> None:
    """The bearer's own credential signs nobody in from now on."""
    signin.revoke(token, datetime.now(UTC))
