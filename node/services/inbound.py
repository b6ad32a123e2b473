"""What a node learns about an incoming message before its transaction opens (chain calls, the rule book),
handed to the step that acts on it, so no step reaches for the chain while holding the write lock."""

from __future__ import annotations

from dataclasses import dataclass

from negotiation.messages import MessageRefused
from negotiation.rules.engine import Policy
from negotiation.wire import Refusal


@dataclass(frozen=True)
class Inbound:
    policy: Policy | None = None  # the book in force, for messages decided under one
    distance_m: int | None = None  # from the message's signer, for an Invitation

    @property
    def distance_km(self) -> int:
        assert self.distance_m is not None
        return round(self.distance_m / 1000)

    def policy_for(self, version: str, what: str) -> Policy:
        """Our active policy, refusing a message made under any other rule book version."""
        assert self.policy is not None  # receive() looked it up for this message type
        if version != self.policy.version:
            raise MessageRefused(
                Refusal.RULE_VERSION, f"{what} was made under rule book {version}; {self.policy.version} is in force"
            )
        return self.policy
