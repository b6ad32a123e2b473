"""Per-member limits of the rule book (`limits`, docs/rules.md section 1), as pure decisions.

A node applies them to what other members send it: how much of its spare stock one member's open offers
may hold reserved, how many of one member's invitations it answers at once, how many disputes one member
may open against it. Plain numbers in, plain numbers out; the node counts, this decides.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from fractions import Fraction

from negotiation.rules.engine import OfferLine


def within_share(lines: Sequence[OfferLine], held: int, available: int, share: Fraction) -> list[OfferLine]:
    """The lines, in their order, trimmed so that what one member holds reserved here stays within `share` of
    what it could hold: `held` (units of this SKU in its open offers to it) plus `available` (units of this SKU
    available here now). A line trimmed below its minimum order quantity is left out."""
    room = max(0, math.floor(share * (held + available)) - held)
    out = []
    for line in lines:
        take = min(line.quantity, room)
        if take >= max(line.min_order_quantity, 1):
            out.append(line if take == line.quantity else replace(line, quantity=take))
            room -= take
    return out


def dispute_refusal(open_now: int, opened_today: int, max_open: int, max_per_day: int) -> str | None:
    """Why one more dispute from a member is refused, or None: `open_now` of its disputes with this node are
    unruled and `opened_today` were opened in the last 24 hours."""
    if open_now >= max_open:
        return f"{open_now} disputes of this member are open here (limit {max_open}): wait for a ruling"
    if opened_today >= max_per_day:
        return f"{opened_today} disputes of this member were opened here in 24 hours (limit {max_per_day})"
    return None
