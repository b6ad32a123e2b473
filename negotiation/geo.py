"""Great-circle distance between members, from the registry's integer microdegrees."""

from __future__ import annotations

import math

# IUGG mean Earth radius. docs/protocol.md fixes the formula so that every node draws the same radius.
EARTH_RADIUS_M = 6_371_008.8


def distance_m(lat1_e6: int, lon1_e6: int, lat2_e6: int, lon2_e6: int) -> int:
    """Haversine distance in whole metres (rounded), so that comparisons with a radius are exact."""
    p1, p2 = math.radians(lat1_e6 / 1e6), math.radians(lat2_e6 / 1e6)
    dp = p2 - p1
    dl = math.radians((lon2_e6 - lon1_e6) / 1e6)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return round(2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a))))
