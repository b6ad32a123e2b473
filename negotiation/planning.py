"""From open invitations and received offers to a matching problem, and from a plan to actions: pure."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction

from negotiation.matching import Lane, MatchingProblem, Offer, Preference, Request, TransferPlan
from negotiation.offers import FreightCosts


@dataclass(frozen=True)
class OpenNeed:
    invitation: str
    sku: str
    quantity: int
    min_shelf_life_days: int
    # From the scenario's cells; None: the plan-wide value.
    max_transit_hours: int | None = None
    shortage_penalty: int | None = None


@dataclass(frozen=True)
class ReceivedOffer:
    id: str
    supplier: str
    supplier_name: str
    sku: str
    lot: str
    quantity: int
    shelf_life_days: int
    min_order_quantity: int
    unit_price: int


@dataclass(frozen=True)
class Acceptance:
    offer: ReceivedOffer
    quantity: int
    freight_compensation: int


@dataclass(frozen=True)
class PlanActions:
    acceptances: list[Acceptance]
    declined: list[ReceivedOffer]
    suggestions: list[str]


def build_problem(
    requester: str,
    needs: list[OpenNeed],
    offers: list[ReceivedOffer],
    distances_km: dict[str, int],
    formula: FreightCosts,
    radius_km: int,
    max_transit_hours: int,
    shortage_penalty: int,
    preferences: Mapping[str, Mapping[str, int]] | None = None,
) -> MatchingProblem:
    """One request per open invitation, one offer per received offer, one lane per supplier into us."""
    requests = tuple(
        Request(
            n.invitation,
            requester,
            n.sku,
            n.quantity,
            n.min_shelf_life_days,
            max_transit_hours if n.max_transit_hours is None else n.max_transit_hours,
            shortage_penalty if n.shortage_penalty is None else n.shortage_penalty,
        )
        for n in needs
    )
    matching_offers = tuple(
        Offer(o.id, o.supplier, o.sku, o.quantity, o.shelf_life_days, o.min_order_quantity, o.unit_price)
        for o in offers
    )
    lanes = tuple(
        Lane(supplier, requester, km, formula.transit_hours(km), formula.cost_per_unit(km), formula.fixed_cost(km))
        for supplier, km in sorted(distances_km.items())
    )
    # Only the non-zero ones: a problem whose weights change nothing looks like one without weights.
    prefs = tuple(
        Preference(n.invitation, o.id, per_unit)
        for n in needs
        for o in offers
        if (per_unit := (preferences or {}).get(n.invitation, {}).get(o.id, 0)) > 0 and o.sku == n.sku
    )
    return MatchingProblem(radius_km, requests, matching_offers, lanes, prefs)


def split_fixed_cost(total: int, quantities: list[int]) -> list[int]:
    """A lane's truck cost shared by the transfers on it, pro rata by quantity, in whole minor units
    (largest remainders get the leftover units, ties to the earlier transfer)."""
    whole = sum(quantities)
    shares = [total * q // whole for q in quantities]
    order = sorted(range(len(quantities)), key=lambda i: (-(total * quantities[i] % whole), i))
    for i in order[: total - sum(shares)]:
        shares[i] += 1
    return shares


def plan_actions(
    plan: TransferPlan,
    offers: list[ReceivedOffer],
    distances_km: dict[str, int],
    formula: FreightCosts,
    requester_name: str,
    sku_of: dict[str, str],
    requester_share: Mapping[str, Fraction] | None = None,
) -> PlanActions:
    """Acceptances with their freight compensation, offers to decline, and what to tell the operator.

    `requester_share` (by offer) is the part of the freight the requester pays when the scenario shares
    the cost (joint purchase); rounded half to even into minor units."""
    by_id = {o.id: o for o in offers}
    allocated = [(by_id[a.offer], a.quantity) for a in plan.allocations]
    by_supplier: dict[str, list[int]] = defaultdict(list)
    for i, (offer, _q) in enumerate(allocated):
        by_supplier[offer.supplier].append(i)
    compensation = [0] * len(allocated)
    for supplier, idx in by_supplier.items():
        km = distances_km[supplier]
        shares = split_fixed_cost(formula.fixed_cost(km), [allocated[i][1] for i in idx])
        for i, share in zip(idx, shares, strict=True):
            full = formula.cost_per_unit(km) * allocated[i][1] + share
            part = (requester_share or {}).get(allocated[i][0].id, Fraction(1))
            compensation[i] = round(full * part)
    acceptances = [Acceptance(o, q, c) for (o, q), c in zip(allocated, compensation, strict=True)]
    taken = {a.offer.id for a in acceptances}
    declined = [o for o in offers if o.id not in taken]
    suggestions = [
        f"transfer {a.quantity} units of {a.offer.sku} lot {a.offer.lot} from {a.offer.supplier_name} to "
        f"{requester_name}, compensation {a.freight_compensation / 100:,.2f}"
        for a in acceptances
    ]
    suggestions += [
        f"release the {o.quantity} units reserved at {o.supplier_name} (offer {o.id[:10]})" for o in declined
    ]
    suggestions += [
        f"{s.quantity} units of {sku_of.get(s.request, '?')} remain unmet (invitation {s.request[:10]})"
        for s in plan.shortages
    ]
    return PlanActions(acceptances, declined, suggestions)


@dataclass(frozen=True)
class Readiness:
    """Whether the requester may plan an invitation now: every member it invited has answered (an offer, a
    NoOffer, or a refusal of the invitation itself), or its offer window (the invitation's deadline) has closed."""

    invitation: str
    pending: tuple[str, ...]  # invited members that have not answered, sorted
    window_closes_at: int  # unix seconds

    @property
    def ready(self) -> bool:
        return not self.pending

    def ready_at(self, now: int) -> bool:
        return self.ready or now >= self.window_closes_at


def plan_readiness(invitation: str, invited: Iterable[str], answered: Iterable[str], deadline: int) -> Readiness:
    return Readiness(invitation, tuple(sorted(set(invited) - set(answered))), deadline)
