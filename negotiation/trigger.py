"""When unmet replenishment requests turn into a transfer invitation: pure."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class OpenRequest:
    id: int
    sku: str
    location: str
    quantity: int
    requested_on: date
    min_shelf_life_days: int


@dataclass(frozen=True)
class Need:
    sku: str
    quantity: int
    min_shelf_life_days: int
    requests: tuple[int, ...]
    unmet_days: int


def due_needs(
    open_requests: Iterable[OpenRequest], today: date, days_unmet: int, skus_already_invited: set[str]
) -> list[Need]:
    """A SKU whose requests have stayed open for `days_unmet` consecutive days (counting the day of the
    oldest and today) needs an invitation, unless one is already out for it. One invitation per SKU covers
    all its open requests."""
    by_sku: dict[str, list[OpenRequest]] = defaultdict(list)
    for r in open_requests:
        by_sku[r.sku].append(r)
    needs = []
    for sku, reqs in sorted(by_sku.items()):
        unmet = (today - min(r.requested_on for r in reqs)).days + 1
        if unmet >= days_unmet and sku not in skus_already_invited:
            needs.append(
                Need(
                    sku,
                    sum(r.quantity for r in reqs),
                    max(r.min_shelf_life_days for r in reqs),
                    tuple(sorted(r.id for r in reqs)),
                    unmet,
                )
            )
    return needs
