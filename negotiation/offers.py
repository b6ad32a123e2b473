"""Shelf life as offered, and what a lane costs: the shapes the rule engine and the planner share."""

from __future__ import annotations

from datetime import date
from typing import Protocol

NO_EXPIRY_DAYS = 3650  # shelf life reported for lots that never expire (fits the protocol's uint32)


def shelf_life_days(expires_on: date | None, at: date) -> int:
    return NO_EXPIRY_DAYS if expires_on is None else max(0, (expires_on - at).days)


class FreightCosts(Protocol):
    """What a lane costs: the rule book's freight formulas (negotiation/rules/engine.py), in minor units."""

    def cost_per_unit(self, distance_km: int) -> int: ...

    def fixed_cost(self, distance_km: int) -> int: ...

    def transit_hours(self, distance_km: int) -> int: ...
