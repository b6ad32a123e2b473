"""What the protocol's step mixins (transfers, disputes) share of the Negotiator they are mixed into."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlmodel import Session

from chain.registry_client import MemberRegistryClient
from negotiation.messages import Domain, SignedMessage, new_id, new_nonce, sign

if TYPE_CHECKING:
    from node.services.rules_keeper import RuleKeeper

# Steps of a transfer or a dispute may be delivered late (a peer down for days): the longest deadline the
# protocol allows, less a minute of clock skew.
STEP_DEADLINE_SECONDS = 7 * 24 * 3600 - 60


class NodeSide:
    engine: Engine
    address: str
    private_key: str
    directory: MemberRegistryClient
    rules: RuleKeeper

    if TYPE_CHECKING:

        @property
        def domain(self) -> Domain: ...

        def _enqueue(self, s: Session, msg: SignedMessage, recipient: str) -> None: ...

        def _wake_worker(self) -> None: ...

    def _sign(self, type_: str, fields: dict[str, Any]) -> SignedMessage:
        message = {"id": new_id(), **fields, "nonce": new_nonce(), "deadline": int(time.time()) + STEP_DEADLINE_SECONDS}
        return sign(self.domain, type_, message, self.private_key)
