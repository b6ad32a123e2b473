"""This node's signing key, built once: every signed message of the protocol goes through `Signer`.

Like web3.py's signing middleware, the key lives in one object; the steps ask it to sign and never see it.
The EIP-712 domain names the chain id, which is asked of the chain lazily: a node starts while the chain
is down and learns the id once it is up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any, TypeVar, cast

from eth_account import Account
from eth_account.signers.local import LocalAccount

from negotiation.messages import Domain, SignedMessage, new_id, new_nonce, sign
from negotiation.wire import MessageKind

F = TypeVar("F")
M = TypeVar("M")

# Steps of a transfer or a dispute may be delivered late (a peer down for days): the longest deadline the
# protocol allows, less a minute of clock skew.
STEP_DEADLINE_SECONDS = 7 * 24 * 3600 - 60


class Signer:
    def __init__(self, private_key: str, domain: Callable[[], Domain]) -> None:
        self._account: LocalAccount = Account.from_key(private_key)
        self._private_key = private_key
        self._domain_of = domain

    @property
    def address(self) -> str:
        return str(self._account.address)

    @cached_property
    def domain(self) -> Domain:
        return self._domain_of()

    def sign(self, kind: MessageKind[Any, M], message: M) -> SignedMessage:
        """Sign a complete message (its id, nonce and deadline already set)."""
        return sign(self.domain, kind.type, cast(Mapping[str, Any], message), self._private_key)

    def sign_step(self, kind: MessageKind[F, Any], fields: F) -> SignedMessage:
        """Sign a protocol step: a fresh id and nonce, and the longest deadline the protocol allows. `fields` is
        the kind's own fields (e.g. `OfferFields` for OFFER): mypy checks them against its declaration."""
        deadline = int(time.time()) + STEP_DEADLINE_SECONDS
        message = {"id": new_id(), **cast(Mapping[str, Any], fields), "nonce": new_nonce(), "deadline": deadline}
        return sign(self.domain, kind.type, message, self._private_key)
