"""node/services/signin.py on a real database, with the registry answered by a stand-in: nonces expire and
serve once, credentials expire and are revoked, an unreachable chain is a 503, never a 500."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest
from eth_account import Account

from chain.registry_client import MemberInfo, Role
from chain.siwe import SiweReason, SiweRejected, sign_in_message, sign_text
from node.errors import ChainUnreachable, Unauthorized
from node.services.directory import Directory
from node.services.signin import CREDENTIAL_LIFETIME, NONCE_LIFETIME, SignIn
from node.store.engine import make_engine

KEY = "0x" + "33" * 32
ADDRESS = Account.from_key(KEY).address
NODE = "0x" + "44" * 20
URL = "http://127.0.0.1:8123"
NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class Registry:
    """The registry as the node's Directory answers it: this node at URL, the signer a member unless not."""

    def __init__(self) -> None:
        self.members = {ADDRESS}
        self.down = False

    def member(self, address: str) -> MemberInfo:
        if self.down:
            raise ConnectionError("the chain does not answer")
        active = address == NODE or address in self.members
        return MemberInfo(address, "x", Role.PARTNER, URL if address == NODE else "", 0, 0, active)

    def is_member(self, address: str) -> bool:
        return self.member(address).active


@pytest.fixture
def registry() -> Registry:
    return Registry()


@pytest.fixture
def signin(tmp_path: Path, registry: Registry) -> SignIn:
    return SignIn(make_engine(f"sqlite:///{tmp_path / 'node.db'}"), cast(Directory, registry), NODE, lambda: 31337)


def _signed(signin: SignIn, at: datetime, nonce_at: datetime | None = None) -> tuple[str, str]:
    message = sign_in_message(URL, ADDRESS, 31337, signin.nonce(nonce_at or at), now=at)
    return message.text(), sign_text(message.text(), KEY)


def test_a_credential_lasts_its_lifetime_and_no_longer(signin: SignIn) -> None:
    token, principal = signin.sign_in(*_signed(signin, NOW), NOW)
    assert principal.address == ADDRESS and principal.expires_at == NOW + CREDENTIAL_LIFETIME
    assert signin.principal(token, NOW + CREDENTIAL_LIFETIME - timedelta(seconds=1)) == principal
    with pytest.raises(Unauthorized):
        signin.principal(token, NOW + CREDENTIAL_LIFETIME)
    with pytest.raises(Unauthorized):
        signin.principal("made-up", NOW)


def test_a_revoked_credential_signs_nobody_in(signin: SignIn) -> None:
    token, _ = signin.sign_in(*_signed(signin, NOW), NOW)
    signin.revoke(token, NOW)
    with pytest.raises(Unauthorized):
        signin.principal(token, NOW)


def test_a_nonce_expires_after_its_lifetime(signin: SignIn) -> None:
    later = NOW + NONCE_LIFETIME + timedelta(seconds=1)
    with pytest.raises(SiweRejected) as refused:
        signin.sign_in(*_signed(signin, later, nonce_at=NOW), later)
    assert refused.value.reason == SiweReason.UNKNOWN_NONCE


def test_a_member_removed_signs_in_no_more(signin: SignIn, registry: Registry) -> None:
    registry.members.clear()
    with pytest.raises(SiweRejected) as refused:
        signin.sign_in(*_signed(signin, NOW), NOW)
    assert refused.value.reason == SiweReason.NOT_A_MEMBER


def test_an_unreachable_chain_is_said_so(signin: SignIn, registry: Registry) -> None:
    signed = _signed(signin, NOW)
    registry.down = True
    with pytest.raises(ChainUnreachable):
        signin.sign_in(*signed, NOW)
