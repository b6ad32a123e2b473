"""What an invited node offers from its own pool, and what a lane costs: pure rules over plain data."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class LotStock:
    lot: str
    location: str
    expires_on: date | None
    available: int


@dataclass(frozen=True)
class LotOffer:
    lot: str
    location: str
    quantity: int
    shelf_life_days: int


NO_EXPIRY_DAYS = 3650  # shelf life reported for lots that never expire (fits the protocol's uint32)


def shelf_life_days(expires_on: date | None, at: date) -> int:
    return NO_EXPIRY_DAYS if expires_on is None else max(0, (expires_on - at).days)


def select_lots(
    stock: list[LotStock], safety_level: int, wanted: int, min_shelf_life_days: int, needed_by: date
) -> list[LotOffer]:
    """Offer only what exceeds the node's own safety level, only lots that still meet the shelf-life floor
    on the day they are needed, earliest expiry first (the stock most at risk moves first)."""
    total = sum(s.available for s in stock if s.available > 0)
    spare = min(wanted, total - safety_level)
    offers: list[LotOffer] = []
    eligible = [s for s in stock if s.available > 0 and shelf_life_days(s.expires_on, needed_by) >= min_shelf_life_days]
    for s in sorted(eligible, key=lambda s: (s.expires_on or date.max, s.lot, s.location)):
        if spare <= 0:
            break
        q = min(s.available, spare)
        offers.append(LotOffer(s.lot, s.location, q, shelf_life_days(s.expires_on, needed_by)))
        spare -= q
    return offers


@dataclass(frozen=True)
class FreightFormula:
    """The preset freight compensation formula (issue 4 moves it into the rule book).

    Per unit: base + per-km rate; per truck (paid once per lane used): base + per-km rate. Minor units.
    """

    unit_base: int = 50
    unit_per_km: int = 2
    truck_base: int = 8_000
    truck_per_km: int = 300
    speed_kmh: int = 40
    handling_hours: int = 1

    def cost_per_unit(self, distance_km: int) -> int:
        return self.unit_base + self.unit_per_km * distance_km

    def fixed_cost(self, distance_km: int) -> int:
        return self.truck_base + self.truck_per_km * distance_km

    def transit_hours(self, distance_km: int) -> int:
        return self.handling_hours + math.ceil(distance_km / self.speed_kmh)

    def compensation(self, distance_km: int, quantity: int, trucks: int = 1) -> int:
        """What the requester pays the supplier for freight on one transfer."""
        return self.cost_per_unit(distance_km) * quantity + self.fixed_cost(distance_km) * trucks
