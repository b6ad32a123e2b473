"""The names a rule may read, by the situation it is evaluated in.

Money is read in major units (decimal, exact), so a business person writes `18.00`, not `1800`; whatever a
formula yields as money is turned back into whole minor units (half to even) where it is used.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, get_args

from negotiation.rules.expr import NameSpec, Type

MONEY_HIGH = 10_000_000  # bound for conflict search only: no price or cost of ours passes 10 million

Scenario = Literal[
    "routine_replenishment",
    "emergency_substitution",
    "clinical_trial",
    "consignment",
    "joint_purchase",
    "after_sales_spare_parts",
]
SCENARIOS: tuple[str, ...] = get_args(Scenario)

_BASE: dict[str, NameSpec] = {
    # the request being served (an invitation, as the requester stated it)
    "request.quantity": NameSpec(Type.INT, "units asked for", 1, 10_000_000),
    "request.min_shelf_life_days": NameSpec(Type.INT, "remaining shelf life the requester needs", 0, 3650),
    "request.max_transit_hours": NameSpec(Type.INT, "longest transport the requester accepts", 0, 1000),
    "request.customer_tier": NameSpec(Type.TEXT, "tier of the customer behind the request", values=("standard",)),
    "request.scenario": NameSpec(Type.TEXT, "business scenario of the request", values=SCENARIOS),
    "request.urgent": NameSpec(Type.BOOL, "the requester marked it urgent"),
    "request.unmet_days": NameSpec(Type.INT, "consecutive days the requests stayed unmet", 0, 3650),
    # the lot that might be offered or allocated
    "lot.shelf_life_days": NameSpec(Type.INT, "days left before the lot expires (3650 if it never does)", 0, 3650),
    "lot.age_days": NameSpec(Type.INT, "days since the lot was received", 0, 3650),
    "lot.available": NameSpec(Type.INT, "units of the lot available", 0, 10_000_000),
    # the SKU
    "sku.transfer_price": NameSpec(Type.DECIMAL, "agreed price between partners, per unit", 0, MONEY_HIGH),
    "sku.purchase_price": NameSpec(Type.DECIMAL, "latest purchase price, per unit", 0, MONEY_HIGH),
    "sku.sale_price": NameSpec(Type.DECIMAL, "price to this member's own customers, per unit", 0, MONEY_HIGH),
    "sku.category": NameSpec(Type.TEXT, "product category"),
    "sku.id": NameSpec(Type.TEXT, "the SKU code"),
    # the node's own stock of the SKU
    "stock.available": NameSpec(Type.INT, "units available at this node", 0, 10_000_000),
    "stock.safety_level": NameSpec(Type.INT, "this node's computed safety level", 0, 10_000_000),
    "stock.on_hand": NameSpec(Type.INT, "units on hand, any status", 0, 10_000_000),
    # demand as recorded at this node
    "demand.daily_mean": NameSpec(Type.DECIMAL, "smoothed daily demand", 0, 10_000_000),
    "demand.daily_deviation": NameSpec(Type.DECIMAL, "smoothed deviation of daily demand", 0, 10_000_000),
    # the calendar
    "calendar.promotion": NameSpec(Type.BOOL, "a promotion period is on"),
    "calendar.slow_season": NameSpec(Type.BOOL, "the slow season is on"),
    "calendar.month": NameSpec(Type.INT, "month of the year", 1, 12),
    "calendar.weekday": NameSpec(Type.INT, "day of the week, Monday = 1", 1, 7),
    # the partner on the other side, and the road between
    "partner.tier": NameSpec(Type.TEXT, "the partner's tier in the consortium", values=("partner", "headquarters")),
    "partner.name": NameSpec(Type.TEXT, "the partner's registered name"),
    "lane.distance_km": NameSpec(Type.INT, "great-circle distance, whole km", 0, 20_000),
    "lane.transit_hours": NameSpec(Type.INT, "transport time on the lane", 0, 1000),
    # an offer on the requester's side
    "offer.unit_price": NameSpec(Type.DECIMAL, "price per unit asked by the supplier", 0, MONEY_HIGH),
    "offer.quantity": NameSpec(Type.INT, "units offered", 0, 10_000_000),
    # a joint purchase: one member buys for several, each participant bears a share of its cost
    "purchase.total_cost": NameSpec(Type.DECIMAL, "what the buyer paid the vendor for all units", 0, MONEY_HIGH),
    "purchase.total_units": NameSpec(Type.INT, "units bought for all participants", 1, 10_000_000),
    "purchase.participants": NameSpec(
        Type.INT, "members sharing the purchase, the buyer included if it takes units", 1, 1000
    ),
    "participant.units": NameSpec(Type.INT, "units bought for this participant", 1, 10_000_000),
}

# Which names each kind of expression may read. A rule reading a name its situation cannot carry is an
# error found when the rule book is checked, not when a decision is being made.
_PLACES: dict[str, tuple[str, ...]] = {
    "cell": ("request", "lot", "sku", "stock", "partner", "lane", "calendar"),
    "objective": ("request", "lot", "sku", "partner", "lane"),
    "freight": ("lane", "request", "sku"),
    "price": ("sku", "lot", "request", "partner"),
    "penalty": ("request", "sku"),
    "safety": ("sku", "stock", "demand", "calendar"),
    "rule": ("sku", "stock", "demand", "calendar"),
    "joint_purchase": ("purchase", "participant"),
}


def names_for(place: str, customer_tiers: Iterable[str]) -> dict[str, NameSpec]:
    """The catalogue of one place, with the tiers the rule book declares as the closed set of customer tiers."""
    prefixes = _PLACES[place]
    names = {k: v for k, v in _BASE.items() if k.split(".")[0] in prefixes}
    if "request.customer_tier" in names:
        spec = names["request.customer_tier"]
        names["request.customer_tier"] = NameSpec(spec.type, spec.description, values=tuple(customer_tiers))
    return names


def all_names() -> dict[str, NameSpec]:
    return dict(_BASE)
