"""The protocol's step groups, each built once with everything it needs passed to its constructor: the API, the
console, the ledger, the negotiation worker and the message router all reach a step through this one object."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

from node.services.consignments import Consignments
from node.services.disputes import Disputes
from node.services.invitations import Invitations
from node.services.joint_purchases import JointPurchases
from node.services.loans import Loans
from node.services.quotes import Quotes
from node.services.settlements import Settlements
from node.services.side import Side
from node.services.transfers import Transfers


@dataclass(frozen=True)
class StepGroups:
    invitations: Invitations
    transfers: Transfers
    disputes: Disputes
    consignments: Consignments
    joint_purchases: JointPurchases
    loans: Loans
    quotes: Quotes
    settlements: Settlements

    @classmethod
    def build(cls, side: Side, safety_floor: int, settlements: Callable[[Disputes], Settlements]) -> StepGroups:
        """`settlements` builds the statements' steps, which ask the disputes of a period."""
        disputes = Disputes(side)
        return cls(
            invitations=Invitations(side, safety_floor),
            transfers=Transfers(side),
            disputes=disputes,
            consignments=Consignments(side),
            joint_purchases=JointPurchases(side),
            loans=Loans(side),
            quotes=Quotes(side),
            settlements=settlements(disputes),
        )

    def all(self) -> tuple[object, ...]:
        return tuple(getattr(self, f.name) for f in fields(self))
