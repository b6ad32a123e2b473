"""Members sign in with Ethereum (EIP-4361, docs/protocol.md "Signing in"): a nonce from this node, a message
naming this node's URL and chain signed with the member's key, and a bearer credential for at most an hour.

Nonces and credentials live in the database, so every worker of a node shares them: a nonce is deleted by the
sign-in that uses it (one DELETE, so two workers cannot both use it), a credential is stored as the SHA-256 of
its token. Membership is checked at sign-in; a credential then lasts its (short) lifetime or until revoked.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import Engine, delete, update
from sqlmodel import col

from chain.siwe import SiweExpectation, SiweMessage, SiweReason, SiweRejected, check_message, moment
from chain.tx import CONNECTION_ERRORS
from node.domain.states import PrincipalKind
from node.errors import ChainUnreachable, NotConfigured, Unauthorized
from node.services.directory import Directory
from node.store.engine import session_scope
from node.store.tables import SignInCredential, SignInNonce

log = logging.getLogger(__name__)

NONCE_LIFETIME = timedelta(minutes=5)
CREDENTIAL_LIFETIME = timedelta(hours=1)
CLOCK_SKEW = timedelta(seconds=60)  # how far in the future a message's Issued At / Not Before may lie


@dataclass(frozen=True)
class Principal:
    """Who a bearer credential speaks for: an address, of a kind, until a moment (UTC)."""

    address: str
    kind: PrincipalKind
    expires_at: datetime


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _unix(at: datetime) -> int:
    return int(at.timestamp())


class SignIn:
    def __init__(self, engine: Engine, directory: Directory | None, me: str, chain_id: Callable[[], int]) -> None:
        """`chain_id`: asked once, at the first sign-in (the chain a node runs on does not change under it)."""
        self.engine = engine
        self.directory = directory
        self.me = me
        self._chain_id = chain_id
        self._known_chain: int | None = None

    def nonce(self, now: datetime) -> str:
        """A fresh nonce; the expired ones are forgotten on the way."""
        value = secrets.token_hex(12)
        with session_scope(self.engine) as s:
            s.execute(delete(SignInNonce).where(col(SignInNonce.issued_at) < _unix(now - NONCE_LIFETIME)))
            s.add(SignInNonce(nonce=value, issued_at=_unix(now)))
        return value

    def expectation(self) -> SiweExpectation:
        """This node's URL as the registry lists it, and its chain: what a message must name."""
        if self.directory is None:
            raise NotConfigured("sign-in needs the member registry (CONSORTIUM_REGISTRY_ADDRESS)")
        url = self.directory.member(self.me).node_url
        if not url:
            raise NotConfigured("sign-in needs this node's URL in the member registry")
        if self._known_chain is None:
            self._known_chain = self._chain_id()
        return SiweExpectation(urlsplit(url).netloc, url, self._known_chain, CLOCK_SKEW)

    def kind_of(self, address: str) -> PrincipalKind:
        """What the address may sign in as; an operator-named auditor would be the next kind asked here."""
        assert self.directory is not None  # expectation() was asked first
        if self.directory.is_member(address):
            return PrincipalKind.MEMBER
        raise SiweRejected(SiweReason.NOT_A_MEMBER, f"{address} is not an active member of the registry")

    def sign_in(self, text: str, signature: str, now: datetime) -> tuple[str, Principal]:
        """A new bearer token and whom it speaks for; SiweMalformed (422) or SiweRejected (401) otherwise."""
        message = SiweMessage.parse(text)
        try:  # the chain calls, made before the transaction opens
            expected = self.expectation()
            check_message(message, signature, expected, now)
            kind = self.kind_of(message.address)
        except CONNECTION_ERRORS as exc:
            raise ChainUnreachable(f"cannot read the member registry: {exc}") from exc
        expires = now + CREDENTIAL_LIFETIME
        if message.expiration_time is not None:
            expires = min(expires, moment(message.expiration_time).astimezone(UTC))
        token = secrets.token_urlsafe(32)
        with session_scope(self.engine) as s:
            used = s.execute(
                delete(SignInNonce)
                .where(
                    col(SignInNonce.nonce) == message.nonce,
                    col(SignInNonce.issued_at) >= _unix(now - NONCE_LIFETIME),
                )
                .returning(col(SignInNonce.nonce))
            ).first()
            if used is None:
                raise SiweRejected(SiweReason.UNKNOWN_NONCE, "the nonce was not issued here, was used or expired")
            s.execute(delete(SignInCredential).where(col(SignInCredential.expires_at) < _unix(now)))
            s.add(
                SignInCredential(
                    token_hash=token_hash(token),
                    address=message.address,
                    kind=kind,
                    issued_at=_unix(now),
                    expires_at=_unix(expires),
                )
            )
        log.info("%s %s signed in until %s", kind, message.address, expires.isoformat())
        return token, Principal(message.address, kind, datetime.fromtimestamp(_unix(expires), UTC))

    def principal(self, token: str, now: datetime) -> Principal:
        """Whom a bearer token speaks for; Unauthorized if it is unknown, expired or revoked."""
        with session_scope(self.engine) as s:
            found = s.get(SignInCredential, token_hash(token))
        if found is None or found.revoked_at is not None or found.expires_at <= _unix(now):
            raise Unauthorized("no valid sign-in credential (sign in again: GET /auth/nonce, POST /auth/siwe)")
        return Principal(found.address, PrincipalKind(found.kind), datetime.fromtimestamp(found.expires_at, UTC))

    def revoke(self, token: str, now: datetime) -> None:
        """The credential no longer signs anyone in (the row stays until it would have expired)."""
        with session_scope(self.engine) as s:
            s.execute(
                update(SignInCredential)
                .where(col(SignInCredential.token_hash) == token_hash(token))
                .values(revoked_at=_unix(now))
            )
