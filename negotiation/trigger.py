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


@dataclass(frozen=True)
class OwnLot:
    """Stock the requester itself owns and holds, available, at one of its locations."""

    lot: str
    location: str
    quantity: int
    expires_on: date | None


@dataclass(frozen=True)
class InternalMove:
    """Own stock moved from another of the requester's locations to where a request needs it."""

    sku: str
    lot: str
    from_location: str
    to_location: str
    quantity: int
    request: int


@dataclass(frozen=True)
class OwnCover:
    moves: tuple[InternalMove, ...]
    uncovered: dict[int, int]  # request id -> quantity still needed from partners (0: covered in full)


def cover_from_own_stock(requests: Iterable[OpenRequest], own: Iterable[OwnLot], today: date) -> OwnCover:
    """The first offer for a store's requests is the requester's own stock at its other locations: oldest
    request first, each from lots elsewhere with enough shelf life left, earliest expiry first (FEFO)."""
    left = {(o.lot, o.location): o.quantity for o in own}
    lots = sorted(own, key=lambda o: (o.expires_on or date.max, o.lot, o.location))
    moves: list[InternalMove] = []
    uncovered: dict[int, int] = {}
    for r in sorted(requests, key=lambda r: (r.requested_on, r.id)):
        need = r.quantity
        for o in lots:
            if need == 0:
                break
            shelf_ok = o.expires_on is None or (o.expires_on - today).days >= r.min_shelf_life_days
            take = min(need, left[(o.lot, o.location)])
            if o.location == r.location or not shelf_ok or take == 0:
                continue
            moves.append(InternalMove(r.sku, o.lot, o.location, r.location, take, r.id))
            left[(o.lot, o.location)] -= take
            need -= take
        uncovered[r.id] = need
    return OwnCover(tuple(moves), uncovered)
