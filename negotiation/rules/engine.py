"""The active rule book as policy: what a node offers, at what price, what a lane costs, what a request may
accept, which business rules fire. Plain facts in, plain decisions out; every money result in minor units.

Precedence, documented in docs/rules.md: a scenario's priority cell overrides the weight profiles, a
profile overrides the default weights; within one cell the branches that apply must agree (the conflict
search makes sure they do), so the first applying branch that sets a value gives it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from typing import Any

from negotiation.offers import shelf_life_days
from negotiation.rules.book import CheckedBook, CompiledBranch
from negotiation.rules.expr import Expression, Value
from negotiation.rules.safety_stock import DemandEstimate, SafetyDecision, decide_from_estimate, smooth_demand

DEFAULT_SCENARIO = "routine_replenishment"
DEFAULT_MAX_TRANSIT_HOURS = 24  # a request's transport limit when neither its scenario nor the SLA sets one


@dataclass(frozen=True)
class RequestFacts:
    quantity: int
    min_shelf_life_days: int
    max_transit_hours: int = DEFAULT_MAX_TRANSIT_HOURS
    customer_tier: str = "standard"
    scenario: str = DEFAULT_SCENARIO
    urgent: bool = False
    unmet_days: int = 0

    def as_names(self) -> dict[str, Value]:
        return {
            "request.quantity": self.quantity,
            "request.min_shelf_life_days": self.min_shelf_life_days,
            "request.max_transit_hours": self.max_transit_hours,
            "request.customer_tier": self.customer_tier,
            "request.scenario": self.scenario,
            "request.urgent": self.urgent,
            "request.unmet_days": self.unmet_days,
        }


@dataclass(frozen=True)
class SkuFacts:
    id: str
    transfer_price: int  # minor units
    purchase_price: int = 0
    category: str = ""
    sale_price: int = 0  # minor units: this node's price to its own customers


@dataclass(frozen=True)
class StockFacts:
    available: int
    safety_level: int
    on_hand: int

    def as_names(self) -> dict[str, Value]:
        return {
            "stock.available": self.available,
            "stock.safety_level": self.safety_level,
            "stock.on_hand": self.on_hand,
        }


@dataclass(frozen=True)
class CalendarFacts:
    promotion: bool = False
    slow_season: bool = False
    month: int = 1
    weekday: int = 1

    @classmethod
    def of(cls, day: date, promotion: bool = False, slow_season: bool = False) -> CalendarFacts:
        return cls(promotion, slow_season, day.month, day.isoweekday())

    def as_names(self) -> dict[str, Value]:
        return {
            "calendar.promotion": self.promotion,
            "calendar.slow_season": self.slow_season,
            "calendar.month": self.month,
            "calendar.weekday": self.weekday,
        }


@dataclass(frozen=True)
class CandidateLot:
    lot: str
    location: str
    shelf_life_days: int
    age_days: int
    available: int

    @classmethod
    def of(
        cls,
        lot: str,
        location: str,
        available: int,
        expires_on: date | None,
        received_on: date | None,
        needed_by: date,
        today: date,
    ) -> CandidateLot:
        """Shelf life counted on the day the stock is needed; age since this node received the lot."""
        age = (today - received_on).days if received_on else 0
        return cls(lot, location, shelf_life_days(expires_on, needed_by), age, available)

    def as_names(self) -> dict[str, Value]:
        return {
            "lot.shelf_life_days": self.shelf_life_days,
            "lot.age_days": self.age_days,
            "lot.available": self.available,
        }


@dataclass(frozen=True)
class PickedLot:
    lot: str
    location: str
    quantity: int
    shelf_life_days: int
    score: Fraction


@dataclass(frozen=True)
class OfferedLot:
    """An offer as the requester sees it: what its weights can score."""

    id: str
    shelf_life_days: int
    distance_km: int
    unit_price: int
    quantity: int


@dataclass(frozen=True)
class ScenarioTerms:
    """What a scenario's cells say for one situation."""

    min_shelf_life_days: int | None = None
    min_order_quantity: int = 1
    max_transit_hours: int | None = None
    ownership: str = "transfer"
    requester_freight_share: Fraction = Fraction(1)
    price_factor: Fraction = Fraction(1)
    weights: Mapping[str, Fraction] = field(default_factory=dict)
    branches: tuple[str, ...] = ()  # the cells that applied: the evidence of the decision


@dataclass(frozen=True)
class OfferLine:
    """One lot offered, as the offer message states it."""

    lot: str
    location: str
    quantity: int
    shelf_life_days: int
    unit_price: int
    min_order_quantity: int


@dataclass(frozen=True)
class SafetyInForce:
    decision: SafetyDecision  # what the algorithm computed, with its evidence
    level: int  # what is kept back: the decision, a set_safety_level rule, or the node's floor
    set_by_rule: str | None


@dataclass(frozen=True)
class RequestTerms:
    scenario: ScenarioTerms
    min_shelf_life_days: int
    max_transit_hours: int
    shortage_penalty: int


@dataclass(frozen=True)
class Freight:
    per_unit: int
    per_truck: int
    transit_hours: int


@dataclass(frozen=True)
class Suggestion:
    rule: str
    kind: str
    text: str
    supplier: str | None = None
    quantity: int | None = None


class Policy:
    """A checked rule book, compiled for decisions. Build once per version; it holds no state."""

    def __init__(self, checked: CheckedBook) -> None:
        self.checked = checked
        self.book = checked.book
        self.version = checked.version
        self.scale: int = 10**self.book.currency.minor_units
        self.trigger = self.book.trigger
        self._freight: dict[int, Freight] = {}

    def calendar(self, day: date) -> CalendarFacts:
        """The day as the book's calendar sees it: in a promotion period, in a slow month."""
        c = self.book.calendar
        promotion = any(p.start <= day <= p.end for p in c.promotions)
        return CalendarFacts(promotion, day.month in c.slow_months, day.month, day.isoweekday())

    # -- facts to names ------------------------------------------------------------------------------
    def money(self, minor: int) -> Fraction:
        return Fraction(minor, self.scale)

    def minor(self, major: Fraction | int) -> int:
        """A formula's money back into whole minor units, half to even (Python's round on a Fraction)."""
        return round(Fraction(major) * self.scale)

    def env(
        self,
        request: RequestFacts | None = None,
        sku: SkuFacts | None = None,
        stock: StockFacts | None = None,
        calendar: CalendarFacts | None = None,
        lot: CandidateLot | None = None,
        distance_km: int | None = None,
        partner_tier: str = "partner",
        partner_name: str = "",
        demand: tuple[Fraction, Fraction] | None = None,
    ) -> dict[str, Any]:
        """The names a rule may read in this situation; only the facts given are named (docs/rules.md, section 2)."""
        e: dict[str, Any] = {"partner.tier": partner_tier, "partner.name": partner_name}
        if request is not None:
            e.update(request.as_names())
        if sku is not None:
            e.update(self._sku_names(sku))
        if stock is not None:
            e.update(stock.as_names())
        if calendar is not None:
            e.update(calendar.as_names())
        if lot is not None:
            e.update(lot.as_names())
        if distance_km is not None:
            e["lane.distance_km"] = distance_km
            e["lane.transit_hours"] = self.freight(distance_km).transit_hours
        if demand is not None:
            e["demand.daily_mean"], e["demand.daily_deviation"] = demand
        return e

    def _sku_names(self, sku: SkuFacts) -> dict[str, Value]:
        """Prices are read in major units, as the book writes them."""
        return {
            "sku.id": sku.id,
            "sku.transfer_price": self.money(sku.transfer_price),
            "sku.purchase_price": self.money(sku.purchase_price),
            "sku.sale_price": self.money(sku.sale_price),
            "sku.category": sku.category,
        }

    # -- the matrix ----------------------------------------------------------------------------------
    def _applying(self, scenario: str, env: Mapping[str, Any]) -> list[tuple[str, CompiledBranch]]:
        rows = self.checked.cells.get(scenario, {})
        return [(row, b) for row, branches in rows.items() for b in branches if self._fires(b.when, env)]

    def terms(self, scenario: str, env: Mapping[str, Any]) -> ScenarioTerms:
        settings: dict[str, Any] = {}
        weights: dict[str, Fraction] | None = None
        applied = []
        for _row, b in self._applying(scenario, env):
            applied.append(b.path)
            for k, v in b.settings.items():
                settings.setdefault(k, v)
            if b.weights and weights is None:
                weights = dict(b.weights)
        if weights is None:
            weights = self._profile_weights(env)
        max_transit = settings.get("max_transit_hours")
        if max_transit is None and env.get("request.urgent"):
            # Urgent, and the scenario sets no transport limit: the emergency SLA's delivery time applies.
            max_transit = self.book.emergency_sla.deliver_within_hours
        return ScenarioTerms(
            min_shelf_life_days=settings.get("min_shelf_life_days"),
            min_order_quantity=int(settings.get("min_order_quantity", 1)),
            max_transit_hours=max_transit,
            ownership=str(settings.get("ownership", "transfer")),
            requester_freight_share=Fraction(settings.get("requester_freight_share", 1)),
            price_factor=Fraction(settings.get("price_factor", 1)),
            weights=weights,
            branches=tuple(applied),
        )

    def _profile_weights(self, env: Mapping[str, Any]) -> dict[str, Fraction]:
        weights = {k: Fraction(v) for k, v in self.book.objective.default_weights.items()}
        for _path, when, profile in self.checked.profiles:
            if self._fires(when, env):
                return {**weights, **profile}
        return weights

    def admits(self, scenario: str, env: Mapping[str, Any]) -> bool:
        """Every applying requirement of the scenario holds for this candidate."""
        return all(b.require is None or b.require.evaluate(env) for _row, b in self._applying(scenario, env))

    def score(self, weights: Mapping[str, Fraction], env: Mapping[str, Any]) -> Fraction:
        total = Fraction(0)
        for term, expression in self.checked.terms.items():
            w = weights.get(term, Fraction(0))
            if w and all(n in env for n in expression.names):
                total += w * Fraction(expression.evaluate(env))
        return total

    # -- offering ------------------------------------------------------------------------------------
    def pick_lots(
        self,
        lots: Sequence[CandidateLot],
        request: RequestFacts,
        sku: SkuFacts,
        stock: StockFacts,
        calendar: CalendarFacts,
        distance_km: int,
    ) -> tuple[list[PickedLot], ScenarioTerms]:
        """What this node offers: only above its safety level, only lots the scenario's requirements admit,
        best score first (the weights of the applying profile or priority cell), never below the shelf-life
        floor the requester asked for."""
        base = self.env(request, sku, stock, calendar, distance_km=distance_km)
        terms = self.terms(request.scenario, base)
        if self.offering_frozen(base):
            return [], terms
        spare = min(request.quantity, stock.available - stock.safety_level)
        ranked = []
        for lot in lots:
            if lot.available <= 0 or lot.shelf_life_days < request.min_shelf_life_days:
                continue
            env = {**base, **self.env(lot=lot)}
            if terms.min_shelf_life_days is not None and lot.shelf_life_days < terms.min_shelf_life_days:
                continue
            if not self.admits(request.scenario, env):
                continue
            ranked.append((self.score(terms.weights, env), lot))
        ranked.sort(key=lambda p: (-p[0], p[1].lot, p[1].location))
        picks = []
        for score, lot in ranked:
            if spare <= 0:
                break
            q = min(lot.available, spare)
            picks.append(PickedLot(lot.lot, lot.location, q, lot.shelf_life_days, score))
            spare -= q
        return picks, terms

    def offer(
        self,
        lots: Sequence[CandidateLot],
        request: RequestFacts,
        sku: SkuFacts,
        stock: StockFacts,
        calendar: CalendarFacts,
        distance_km: int,
    ) -> tuple[list[OfferLine], ScenarioTerms]:
        """The offer lines an invited node sends: the lots it picks, at the scenario's price and minimum."""
        picks, terms = self.pick_lots(lots, request, sku, stock, calendar, distance_km)
        price = self.unit_price(sku, request, terms)
        lines = [
            OfferLine(
                p.lot, p.location, p.quantity, p.shelf_life_days, price, min(terms.min_order_quantity, p.quantity)
            )
            for p in picks
        ]
        return lines, terms

    def preferences(
        self, request: RequestFacts, sku: SkuFacts, terms: ScenarioTerms, offers: Sequence[OfferedLot]
    ) -> dict[str, int]:
        """Per offer, what the requester's weights make it cost per unit over the best-scoring offer: money
        per point x (best score - its score), whole minor units. The planner adds it to the offer's cost, so
        weights steer the plan without overriding price, freight or shortage."""
        per_point = Fraction(self.book.objective.money_per_point)
        scores = {}
        for o in offers:
            env = self.env(request, sku, distance_km=o.distance_km)
            env["lot.shelf_life_days"] = o.shelf_life_days
            env["offer.unit_price"] = self.money(o.unit_price)
            env["offer.quantity"] = o.quantity
            scores[o.id] = self.score(terms.weights, env)
        if not scores:
            return {}
        best = max(scores.values())
        return {oid: self.minor(per_point * (best - score)) for oid, score in scores.items()}

    def request_terms(self, request: RequestFacts, sku: SkuFacts | None = None) -> RequestTerms:
        """What a request of ours is in the plan under this book: its scenario's cells, its shelf-life floor
        (the stricter of the request's and the cell's), transport limit and shortage penalty."""
        terms = self.terms(request.scenario, self.env(request, sku))
        return RequestTerms(
            terms,
            max(request.min_shelf_life_days, terms.min_shelf_life_days or 0),
            terms.max_transit_hours if terms.max_transit_hours is not None else request.max_transit_hours,
            self.shortage_penalty(request, sku),
        )

    def unit_price(self, sku: SkuFacts, request: RequestFacts, terms: ScenarioTerms) -> int:
        env = self.env(request, sku)
        return self.minor(Fraction(self.checked.pricing["transfer_price"].evaluate(env)) * terms.price_factor)

    # -- planning ------------------------------------------------------------------------------------
    def freight(self, distance_km: int) -> Freight:
        """The book's freight formulas for one distance (kept: a plan asks for each lane several times)."""
        if distance_km not in self._freight:
            env: dict[str, Any] = {"lane.distance_km": distance_km}
            hours = math.ceil(Fraction(self.checked.pricing["transit_hours"].evaluate(env)))
            env["lane.transit_hours"] = hours
            self._freight[distance_km] = Freight(
                self._money_formula("freight_per_unit", env), self._money_formula("freight_per_truck", env), hours
            )
        return self._freight[distance_km]

    # The planner's FreightCosts (negotiation/offers.py): a Policy is one.
    def cost_per_unit(self, distance_km: int) -> int:
        return self.freight(distance_km).per_unit

    def fixed_cost(self, distance_km: int) -> int:
        return self.freight(distance_km).per_truck

    def transit_hours(self, distance_km: int) -> int:
        return self.freight(distance_km).transit_hours

    def _money_formula(self, name: str, env: Mapping[str, Any]) -> int:
        expression: Expression = self.checked.pricing[name]
        return self.minor(Fraction(expression.evaluate(env)))

    def shortage_penalty(self, request: RequestFacts, sku: SkuFacts | None = None) -> int:
        return self._money_formula("shortage_penalty", self.env(request, sku))

    # -- business rules ------------------------------------------------------------------------------
    def offering_frozen(self, env: Mapping[str, Any]) -> bool:
        return any(
            r.action.kind == "freeze_offering" and self._fires(when, env) for _p, when, r, _v in self.checked.rules
        )

    def safety_override(self, env: Mapping[str, Any]) -> tuple[int, str] | None:
        """A firing `set_safety_level` rule's level (whole units, rounded up) and its id: it replaces the
        computed level. Two that could fire together with different values are a conflict, so the first
        firing one is the one."""
        for _path, when, rule, value in self.checked.rules:
            if rule.action.kind == "set_safety_level" and value is not None and self._fires(when, env):
                return max(0, math.ceil(Fraction(value.evaluate(env)))), rule.id
        return None

    def safety_level_for(
        self, computed: int, sku: SkuFacts, available: int, on_hand: int, calendar: CalendarFacts
    ) -> tuple[int, str | None]:
        """The safety level in force: the computed one, unless a `set_safety_level` rule fires on it."""
        env = self.env(sku=sku, stock=StockFacts(available, computed, on_hand), calendar=calendar)
        override = self.safety_override(env)
        return (computed, None) if override is None else override

    def estimate(self, daily_demand: Sequence[int]) -> DemandEstimate:
        return smooth_demand(daily_demand, float(Fraction(self.book.safety_stock.smoothing)))

    def safety(
        self,
        estimate: DemandEstimate,
        sku: SkuFacts,
        available: int,
        on_hand: int,
        calendar: CalendarFacts,
        floor: int = 0,
    ) -> SafetyInForce:
        """The safety level a node keeps back for one SKU: the book's algorithm on its demand, replaced by a
        firing set_safety_level rule, never below the node's own floor."""
        decision = decide_from_estimate(self.checked, estimate, self.env(sku=sku, calendar=calendar))
        level, rule = self.safety_level_for(decision.level, sku, available, on_hand, calendar)
        return SafetyInForce(decision, max(floor, level), rule)

    def suggestions(self, env: Mapping[str, Any]) -> list[Suggestion]:
        out = []
        for _path, when, rule, value in self.checked.rules:
            if not self._fires(when, env):
                continue
            a = rule.action
            amount = None if value is None else math.ceil(Fraction(value.evaluate(env)))
            sku = env.get("sku.id", "?")
            text = {
                "request_quote": f"ask {a.supplier} for a quote on {amount if amount is not None else ''} of {sku}",
                "stop_purchasing": f"stop purchasing {sku}",
                "freeze_offering": f"do not offer {sku} to partners",
                "set_safety_level": f"set the safety level of {sku} to {amount}",
                "notify": f"{sku}: {a.message}",
            }[a.kind]
            out.append(Suggestion(rule.id, a.kind, " ".join(text.split()), a.supplier, amount))
        return out

    @staticmethod
    def _fires(when: Expression, env: Mapping[str, Any]) -> bool:
        # A rule about names this situation does not carry does not fire (a stock rule, while pricing a lane).
        return all(n in env for n in when.names) and bool(when.evaluate(env))
