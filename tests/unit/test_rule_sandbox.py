"""The sandbox on a constructed history: the safety levels, offers and plans a proposed rule book changes,
and its totals, against the book in use."""

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml

from negotiation.rules.book import check_book, load_book, parse_book
from negotiation.rules.engine import CalendarFacts, Policy, RequestFacts, SkuFacts
from negotiation.rules.safety_stock import decide_safety_level
from negotiation.rules.sandbox import NodeHistory, PlanSnapshot, ReceivedInvitation, compare

TEST_BOOK = Path(__file__).resolve().parents[2] / "testdata" / "rulebook.yaml"
ME, PEER = "0xME", "0xPEER"
START = date(2026, 3, 1)


def line(sku: str, lot: str, qty: int, status: str = "available") -> dict[str, Any]:
    return {"sku": sku, "lot": lot, "location": "WH", "owner": ME, "holder": ME, "status": status, "quantity": qty}


def history() -> NodeHistory:
    records: list[dict[str, Any]] = [
        {"at": "2026-01-01T08:00:00.000Z", "type": "receipt", "lines": [line("F", "L1", 5_000)]}
    ]
    day = date(2026, 1, 2)
    n = 0
    while day <= date(2026, 3, 31):
        n += 1
        qty = 20 + (15 if n % 3 == 0 else 0) - (10 if n % 5 == 0 else 0)  # demand that varies
        records.append({"at": f"{day.isoformat()}T12:00:00.000Z", "type": "issue", "lines": [line("F", "L1", -qty)]})
        day += timedelta(days=1)
    invitation = ReceivedInvitation(
        "inv-1", "2026-03-10T09:00:00.000Z", RequestFacts(4_000, 30), "F", date(2026, 3, 12), 15
    )
    problem = {
        "radius_km": 50,
        "requests": [
            {
                "id": "req-1",
                "node": ME,
                "sku": "F",
                "quantity": 100,
                "min_shelf_life_days": 0,
                "max_transit_hours": 24,
                "shortage_penalty": 100_000,
            }
        ],
        "offers": [
            {
                "id": "off-1",
                "node": PEER,
                "sku": "F",
                "quantity": 100,
                "shelf_life_days": 300,
                "min_order_quantity": 1,
                "unit_price": 5_200,
            }
        ],
        "lanes": [
            {"from": PEER, "to": ME, "distance_km": 15, "transit_hours": 2, "cost_per_unit": 80, "fixed_cost": 12_500}
        ],
    }
    plan = PlanSnapshot("2026-03-20T10:00:00.000Z", 77, problem, {"req-1": RequestFacts(100, 0)})
    return NodeHistory(
        ME,
        records,
        [invitation],
        [plan],
        {"F": SkuFacts("F", 5_200)},
        {("F", "L1"): (date(2027, 1, 1), date(2026, 1, 1))},
    )


def proposed_book() -> Policy:
    data = yaml.safe_load(TEST_BOOK.read_text())
    data["label"] = "proposed"
    data["safety_stock"] = {"method": "smoothed_demand", "service_level": "0.99", "lead_time_days": 3}
    data["pricing"]["freight_per_unit"] = "1.50 + 0.02 * lane.distance_km"
    return Policy(check_book(parse_book(data)))


def test_the_sandbox_shows_what_a_proposed_book_would_have_changed() -> None:
    current, proposed = Policy(load_book(TEST_BOOK)), proposed_book()
    report = compare(history(), current, proposed, START, date(2026, 3, 31)).as_dict()
    assert report["days"] == 31 and report["records_replayed"] > 80
    [safety] = report["safety_changes"]
    assert safety["sku"] == "F" and safety["days_changed"] == 31 and safety["average_current"] == 0
    assert safety["average_proposed"] > 10
    # Stock on 10 March: what was received less what was issued before; the proposed safety level keeps
    # back the level it computes for that day.
    available = sum(ln["quantity"] for r in history().records if r["at"] < "2026-03-10T09" for ln in r["lines"])
    [offer] = report["offer_changes"]
    offered_now = sum(o["quantity"] for o in offer["current"])
    offered_then = sum(o["quantity"] for o in offer["proposed"])
    assert offered_now == min(4_000, available)
    demand = {r["at"][:10]: -r["lines"][0]["quantity"] for r in history().records if r["type"] == "issue"}
    window = [demand.get((date(2026, 3, 10) - timedelta(days=d)).isoformat(), 0) for d in range(56, 0, -1)]
    level = decide_safety_level(proposed.checked, window, proposed.env(calendar=CalendarFacts.of(date(2026, 3, 10))))
    assert level.level > 0 and offered_then == available - level.level
    [plan] = report["plan_changes"]
    assert plan["plan_record"] == 77
    assert plan["current"]["total_cost"] == 100 * (80 + 5_200) + 12_500
    assert plan["proposed"]["total_cost"] == 100 * (180 + 5_200) + 12_500
    assert plan["proposed"]["compensation"] - plan["current"]["compensation"] == 100 * 100
    totals = report["totals"]
    assert totals["current"]["capital_tied_up"] == 0
    assert totals["proposed"]["capital_tied_up"] > 10 * 5_200
    assert totals["current"]["unfilled"] == totals["proposed"]["unfilled"] == 0
    assert totals["proposed"]["offered_units"] == offered_then


def test_the_same_book_changes_nothing() -> None:
    current = Policy(load_book(TEST_BOOK))
    report = compare(history(), current, current, START, date(2026, 3, 31)).as_dict()
    assert report["safety_changes"] == report["offer_changes"] == report["plan_changes"] == []
    assert report["totals"]["current"] == report["totals"]["proposed"]
