"""Money in a statement: exact shares rounded to minor units that still add up, and net positions settled by
few payments (docs/settlement.md, sections 4 and 5). Integers in, integers out; no floats anywhere."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True, order=True)
class Payment:
    payer: str
    payee: str
    amount: int


def largest_remainder(exact: Mapping[str, Fraction | int], total: int) -> dict[str, int]:
    """Whole minor units for exact shares that sum to `total`: each gets the floor of its share, and the units
    left go one each to the largest fractional parts (ties: the smaller address first). Requires
    sum(exact) == total."""
    if sum(Fraction(v) for v in exact.values()) != total:
        raise ValueError(f"shares add up to {sum(Fraction(v) for v in exact.values())}, not {total}")
    floors = {k: math.floor(Fraction(v)) for k, v in exact.items()}
    left = total - sum(floors.values())
    by_remainder = sorted(exact, key=lambda k: (-(Fraction(exact[k]) - floors[k]), k.lower()))
    for k in by_remainder[:left]:
        floors[k] += 1
    return floors


def net_positions(flows: Iterable[Payment]) -> dict[str, int]:
    """What each party receives (positive) or pays (negative) once every flow is counted; sums to 0."""
    net: dict[str, int] = {}
    for f in flows:
        if f.amount < 0:
            raise ValueError(f"a flow from {f.payer} to {f.payee} is negative: {f.amount}")
        net[f.payer] = net.get(f.payer, 0) - f.amount
        net[f.payee] = net.get(f.payee, 0) + f.amount
    return net


def settle(net: Mapping[str, int]) -> list[Payment]:
    """Payments that bring every net position to 0: the largest debtor pays the largest creditor, repeatedly
    (ties: the smaller address first). At most (parties - 1) payments; deterministic."""
    if sum(net.values()) != 0:
        raise ValueError(f"net positions add up to {sum(net.values())}, not 0")
    owes = {k: -v for k, v in net.items() if v < 0}
    owed = {k: v for k, v in net.items() if v > 0}
    payments = []
    while owes:
        payer = min(owes, key=lambda k: (-owes[k], k.lower()))
        payee = min(owed, key=lambda k: (-owed[k], k.lower()))
        amount = min(owes[payer], owed[payee])
        payments.append(Payment(payer, payee, amount))
        for book, party in ((owes, payer), (owed, payee)):
            book[party] -= amount
            if book[party] == 0:
                del book[party]
    return payments
