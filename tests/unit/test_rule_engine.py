"""The demo rule book as policy: weights switched by customer tier, scenario cells, prices and freight in
minor units, business rules, and safety stock from demand."""

import random
from datetime import date
from pathlib import Path

import pytest
import yaml

from negotiation.plan_step import OpenInvitation, decide_plan
from negotiation.planning import ReceivedOffer
from negotiation.rules.book import check_book, load_book, parse_book
from negotiation.rules.engine import (
    CalendarFacts,
    CandidateLot,
    OfferedLot,
    Policy,
    RequestFacts,
    SkuFacts,
    StockFacts,
)
from negotiation.rules.safety_stock import decide_safety_level, safety_level, smooth_demand

DEMO = Path(__file__).resolve().parents[2] / "node" / "demo" / "rulebook.yaml"
SKU = SkuFacts("DIAPER-L-60", transfer_price=8_900, purchase_price=1_900)
PLENTY = StockFacts(available=1_000, safety_level=0, on_hand=1_000)
# An old lot with less life left, a fresh one received last week: FIFO and shelf-life-first disagree.
LOTS = [CandidateLot("old", "WH", 200, 90, 60), CandidateLot("fresh", "WH", 700, 5, 80)]


@pytest.fixture(scope="module")
def policy() -> Policy:
    return Policy(load_book(DEMO))


def picked(
    policy: Policy, request: RequestFacts, stock: StockFacts = PLENTY, lots: list[CandidateLot] = LOTS
) -> list[tuple[str, int]]:
    picks, _terms = policy.pick_lots(lots, request, SKU, stock, CalendarFacts(), 15)
    return [(p.lot, p.quantity) for p in picks]


def test_customer_tier_switches_the_weights_of_one_objective(policy: Policy) -> None:
    assert picked(policy, RequestFacts(100, 30, customer_tier="standard")) == [("old", 60), ("fresh", 40)]
    assert picked(policy, RequestFacts(100, 30, customer_tier="hospital")) == [("fresh", 80), ("old", 20)]


def test_scenario_requirements_and_the_requesters_floor_filter_lots(policy: Policy) -> None:
    # clinical_trial requires 180 days at least: both lots qualify; a 100-day lot does not.
    lots = [*LOTS, CandidateLot("short", "WH", 100, 200, 500)]
    assert ("short", 500) not in picked(policy, RequestFacts(900, 0, scenario="clinical_trial"), lots=lots)
    assert ("short", 500) in picked(policy, RequestFacts(900, 0), lots=lots)
    assert picked(policy, RequestFacts(900, 300), lots=lots) == [("fresh", 80)]


def test_only_stock_above_the_safety_level_and_never_while_the_rule_book_freezes_offering(policy: Policy) -> None:
    assert sum(q for _lot, q in picked(policy, RequestFacts(500, 0), StockFacts(140, 100, 140))) == 40
    # keep_last_units: at or below the safety level nothing is offered at all
    assert picked(policy, RequestFacts(500, 0), StockFacts(100, 100, 100)) == []


def test_scenario_cells_set_ownership_price_and_cost_sharing(policy: Policy) -> None:
    env = policy.env(RequestFacts(10, 0, scenario="consignment"), SKU)
    consignment = policy.terms("consignment", env)
    assert consignment.ownership == "consignment"
    # The consignment price is the transfer price: owed when the holder sells or buys out, not at the transfer.
    assert policy.unit_price(SKU, RequestFacts(10, 0), consignment) == 8900
    spare_parts = policy.terms("after_sales_spare_parts", policy.env(RequestFacts(1, 0, urgent=True), SKU))
    assert policy.unit_price(SKU, RequestFacts(1, 0), spare_parts) == 890
    assert spare_parts.max_transit_hours == 4
    joint = policy.terms("joint_purchase", policy.env(RequestFacts(60, 0), SKU))
    assert (joint.requester_freight_share, joint.min_order_quantity) == (0.5, 50)
    routine = policy.terms("routine_replenishment", policy.env(RequestFacts(60, 0), SKU))
    assert (routine.ownership, routine.min_order_quantity, routine.max_transit_hours) == ("transfer", 10, 24)
    assert routine.branches[0] == "matrix.routine_replenishment.shelf_life[0]"


def test_freight_and_penalty_formulas_give_whole_minor_units(policy: Policy) -> None:
    f = policy.freight(15)
    assert (f.per_unit, f.per_truck, f.transit_hours) == (80, 12_500, 2)
    assert policy.freight(81).transit_hours == 4
    assert policy.shortage_penalty(RequestFacts(1, 0, urgent=True)) == 500_000
    assert policy.shortage_penalty(RequestFacts(1, 0)) == 100_000
    assert policy.minor(policy.money(1) / 2) == 0 and policy.minor(policy.money(3) / 2) == 2  # half to even


def test_business_rules_suggest_actions(policy: Policy) -> None:
    short = StockFacts(available=3, safety_level=10, on_hand=3)
    found = policy.suggestions(policy.env(sku=SKU, stock=short))
    assert [(s.rule, s.kind, s.supplier, s.quantity) for s in found] == [
        ("quote_when_dear_and_short", "request_quote", "jiaxing-distributor", 17),
        ("keep_last_units", "freeze_offering", None, None),
    ]
    cheap = SkuFacts("DIAPER-L-60", 8_900, purchase_price=1_800)  # 18.00 is not above 18.00
    assert [s.rule for s in policy.suggestions(policy.env(sku=cheap, stock=short))] == ["keep_last_units"]


def test_safety_level_follows_demand_and_the_calendar(policy: Policy) -> None:
    rng = random.Random(7)
    steady = [20] * 60
    noisy = [max(0, round(rng.gauss(20, 6))) for _ in range(60)]
    assert decide_safety_level(policy.checked, steady, policy.env(calendar=CalendarFacts())).level == 0
    normal = decide_safety_level(policy.checked, noisy, policy.env(calendar=CalendarFacts()))
    promo = decide_safety_level(policy.checked, noisy, policy.env(calendar=CalendarFacts(promotion=True)))
    slow = decide_safety_level(policy.checked, noisy, policy.env(calendar=CalendarFacts(slow_season=True)))
    assert slow.level < normal.level < promo.level
    assert promo.adjustments == ("safety_stock.adjustments[0]",) and promo.service_level == "0.98"
    assert normal.cover_days == 3


def test_smoothing_tracks_a_shift_in_demand() -> None:
    est = smooth_demand([10] * 30 + [30] * 30, alpha=0.2)
    assert 29 < est.mean <= 30
    assert safety_level(smooth_demand([10, 30] * 20, 0.2), 0.95, 4) > safety_level(
        smooth_demand([19, 21] * 20, 0.2), 0.95, 4
    )


def test_the_requesters_weights_become_a_per_unit_preference_over_its_best_offer(policy: Policy) -> None:
    fresh = OfferedLot("fresh", 700, 15, 5_200, 100)
    short = OfferedLot("short", 200, 15, 5_200, 100)
    hospital = RequestFacts(100, 30, customer_tier="hospital")
    terms = policy.terms("routine_replenishment", policy.env(hospital, SKU))
    # hospital weights: freshness 4; 0.01 a point: 500 days less shelf life cost 20.00 a unit
    assert policy.preferences(hospital, SKU, terms, [fresh, short]) == {"fresh": 0, "short": 2_000}
    standard = RequestFacts(100, 30)
    terms = policy.terms("routine_replenishment", policy.env(standard, SKU))
    assert policy.preferences(standard, SKU, terms, [fresh, short]) == {"fresh": 0, "short": 100}  # 0.2 a day


def test_an_urgent_request_without_a_transport_cell_gets_the_emergency_sla(policy: Policy) -> None:
    urgent = RequestFacts(5, 0, urgent=True, scenario="clinical_trial")
    assert policy.terms("clinical_trial", policy.env(urgent, SKU)).max_transit_hours == 6
    assert (
        policy.terms("clinical_trial", policy.env(RequestFacts(5, 0, scenario="clinical_trial"), SKU)).max_transit_hours
        is None
    )
    # A scenario that sets its own limit keeps it.
    assert (
        policy.terms("routine_replenishment", policy.env(RequestFacts(5, 0, urgent=True), SKU)).max_transit_hours == 24
    )


def test_the_books_calendar_says_when_promotions_and_slow_seasons_are(policy: Policy) -> None:
    assert policy.calendar(date(2026, 11, 11)).promotion and not policy.calendar(date(2026, 11, 12)).promotion
    assert policy.calendar(date(2027, 1, 15)).slow_season and not policy.calendar(date(2026, 6, 5)).slow_season
    noisy = [20, 35, 12, 28, 9, 31, 22] * 8
    on_double_11 = decide_safety_level(policy.checked, noisy, policy.env(calendar=policy.calendar(date(2026, 11, 5))))
    assert on_double_11.adjustments == ("safety_stock.adjustments[0]",)
    in_january = decide_safety_level(policy.checked, noisy, policy.env(calendar=policy.calendar(date(2027, 1, 5))))
    assert in_january.adjustments == ("safety_stock.adjustments[1]",) and in_january.level < on_double_11.level


def test_a_set_safety_level_rule_replaces_the_computed_level_while_it_fires(policy: Policy) -> None:
    data = yaml.safe_load(DEMO.read_text())
    data["rules"].append(
        {
            "id": "cover_promotions",
            "when": "calendar.promotion and stock.safety_level < 100",
            "action": {"kind": "set_safety_level", "value": "100 + 0.5 * stock.safety_level"},
        }
    )
    custom = Policy(check_book(parse_book(data)))
    double_11 = custom.calendar(date(2026, 11, 5))
    assert custom.safety_level_for(41, SKU, 500, 500, double_11) == (121, "cover_promotions")  # ceil(120.5)
    assert custom.safety_level_for(41, SKU, 500, 500, custom.calendar(date(2026, 12, 5))) == (41, None)
    assert custom.safety_level_for(150, SKU, 500, 500, double_11) == (150, None)


def test_a_penalty_formula_reads_the_requesters_own_sku_prices_when_it_plans() -> None:
    # A book deriving its penalty as docs/rules.md section 1b says: alternative supply cost + the margin lost.
    data = yaml.safe_load(DEMO.read_text())
    data["pricing"]["shortage_penalty"] = "228.00 + sku.sale_price - sku.purchase_price"
    policy = Policy(check_book(parse_book(data)))
    formula = SkuFacts("FORMULA-900G", 21_800, purchase_price=19_650, sale_price=24_800)
    assert policy.shortage_penalty(RequestFacts(1, 0), formula) == 22_800 + 24_800 - 19_650
    invitation = OpenInvitation("0x" + "01" * 32, "FORMULA-900G", formula, RequestFacts(10, 0), 50, False)
    offer = ReceivedOffer("0x" + "02" * 32, "0xsupplier", "supplier", "FORMULA-900G", "L1", 10, 300, 1, 21_800)
    decision = decide_plan(
        "0xrequester", "requester", [invitation], [offer], {"0xsupplier": 15}, policy, {offer.id: invitation.id}
    )
    assert [n.shortage_penalty for n in decision.needs] == [27_950]
    assert decision.problem.requests[0].shortage_penalty == 27_950
