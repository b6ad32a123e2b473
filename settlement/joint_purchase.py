"""A joint purchase's cost, shared by the rule book's formula (docs/settlement.md, section 4a). Pure.

One member (the buyer) buys for several; each other participant owes it a share computed from the purchase
alone, so a participant checks its own share without seeing the others': the formula reads the total cost,
the total units, the number of participants and the participant's own units. Rounded down to minor units (a
participant never pays more than the formula says), the shares leave a few units of the cost: the buyer bears
them (it placed the order).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction

from negotiation.rules.expr import Expression


class SharesInvalid(ValueError):
    """The formula gives shares that cannot be: negative, or more than the purchase cost."""


def share_of(
    formula: Expression, minor_units: int, total_cost: int, total_units: int, participants: int, units: int
) -> int:
    """One participant's share in whole minor units, rounded down, as its node recomputes it."""
    scale = 10**minor_units
    env: dict[str, int | Fraction] = {
        "purchase.total_cost": Fraction(total_cost, scale),
        "purchase.total_units": total_units,
        "purchase.participants": participants,
        "participant.units": units,
    }
    share: int = math.floor(Fraction(formula.evaluate(env)) * scale)
    if share < 0:
        raise SharesInvalid(f"the joint purchase formula gives a negative share ({share}) for {units} units")
    return share


def cost_shares(
    formula: Expression, minor_units: int, total_cost: int, buyer: str, units: Mapping[str, int]
) -> dict[str, int]:
    """Every participant's share; the buyer's (whether or not it takes units) is what the others leave."""
    if not units or any(u <= 0 for u in units.values()):
        raise SharesInvalid("a joint purchase has participants, each taking at least one unit")
    total_units = sum(units.values())
    others = {
        m: share_of(formula, minor_units, total_cost, total_units, len(units), u)
        for m, u in units.items()
        if m != buyer
    }
    left = total_cost - sum(others.values())
    if left < 0:
        raise SharesInvalid(
            f"the participants' shares add up to {sum(others.values())}, more than the cost {total_cost}"
        )
    return {**others, buyer: left}
