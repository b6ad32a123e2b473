"""Rule books: evaluation rate per decision, conflict search time, and the sandbox on one year of a node's
history (100k ledger records in a real SQLite file, read the way `consortium rules try` reads it)."""

from __future__ import annotations

import json
import random
import sys
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from bench.chainkit import bench_chain
from bench.common import best_of, machine, timed
from chain.anvil import DEFAULT_PRIVATE_KEYS
from chain.deploy import RuleGenesis
from negotiation.rules.book import check_book, load_book, parse_book
from negotiation.rules.conflicts import find_conflicts
from negotiation.rules.engine import CalendarFacts, CandidateLot, Policy, RequestFacts, SkuFacts, StockFacts
from node.services.rules_keeper import RuleKeeper, governance_terms
from node.services.sandbox import run_sandbox
from node.store.engine import make_engine, session_scope
from node.store.tables import Invitation, Lot, Record, Sku

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "node" / "demo" / "rulebook.yaml"
ME = "0x" + "11" * 20
PEER = "0x" + "22" * 20
ADMIN = DEFAULT_PRIVATE_KEYS[0]


def evaluation_rate() -> dict[str, Any]:
    """One offering decision with the demo book: scenario cells, requirements on every lot, weighted score,
    safety level and business rules, over 20 candidate lots."""
    policy = Policy(load_book(DEMO))
    rng = random.Random(1)
    lots = [
        CandidateLot(f"L{i}", "WH", rng.randint(10, 900), rng.randint(0, 200), rng.randint(1, 500)) for i in range(20)
    ]
    sku = SkuFacts("DIAPER-L-60", 8_900, 1_900)
    stock = StockFacts(5_000, 300, 5_000)
    requests = [
        RequestFacts(
            rng.randint(10, 2_000),
            rng.choice([0, 30, 180]),
            24,
            rng.choice(["standard", "member", "hospital"]),
            rng.choice(["routine_replenishment", "clinical_trial", "emergency_substitution"]),
            rng.random() < 0.2,
        )
        for _ in range(1_000)
    ]
    cal = CalendarFacts.of(date(2026, 11, 26))

    def decide_all() -> int:
        n = 0
        for r in requests:
            picks, terms = policy.pick_lots(lots, r, sku, stock, cal, 15)
            policy.unit_price(sku, r, terms)
            policy.suggestions(policy.env(sku=sku, stock=stock, calendar=cal))
            n += len(picks)
        return n

    _, seconds = best_of(3, decide_all)
    simple = policy.checked.rules[0][1]
    env = policy.env(sku=sku, stock=stock, calendar=cal)
    _, expr_seconds = best_of(3, lambda: [simple.evaluate(env) for _ in range(100_000)])
    _, conflict_seconds = best_of(3, lambda: find_conflicts(policy.checked))
    data = yaml.safe_load(DEMO.read_text())
    _, check_seconds = best_of(3, lambda: check_book(parse_book(data)))
    return {
        "decisions_per_second": round(len(requests) / seconds),
        "lots_per_decision": len(lots),
        "expression_evaluations_per_second": round(100_000 / expr_seconds),
        "demo_book_check_seconds": round(check_seconds, 4),
        "demo_book_conflict_search_seconds": round(conflict_seconds, 3),
    }


def active_check() -> dict[str, Any]:
    """What a node pays before each decision: ask the RuleRegistry which version is active (one block-number
    call and one eth_call against a local Anvil), then take the compiled book from its cache."""
    demo = load_book(DEMO)
    with (
        bench_chain(RuleGenesis(demo.version, governance_terms(demo), "demo")) as chain,
        tempfile.TemporaryDirectory() as tmp,
    ):
        engine = make_engine(f"sqlite:///{Path(tmp) / 'node.db'}")
        keeper = RuleKeeper(engine, chain.anvil.rpc_url, chain.deployment.rules, None, ADMIN, lambda: "")
        keeper.add_file(DEMO)
        keeper.active()  # the first call also checks the governance on-chain once
        n = 300
        _, seconds = best_of(3, lambda: [keeper.active() for _ in range(n)])
    return {"active_version_checks_per_second": round(n / seconds), "ms_per_check": round(1000 * seconds / n, 2)}


def write_year(path: Path, records: int, skus: int, invitations: int, plans: int) -> None:
    """A node's year: receipts every week per SKU, issues every day, reservations for offers, plans."""
    engine = make_engine(f"sqlite:///{path}", "OFF")
    rng = random.Random(7)
    start = datetime(2025, 1, 1, 8)
    sku_codes = [f"SKU-{i:03d}" for i in range(skus)]
    rows: list[Record] = []
    seq = 0

    def add(at: datetime, type_: str, lines: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> None:
        nonlocal seq
        seq += 1
        body = {
            "kind": "ledger",
            "node": ME,
            "seq": seq,
            "type": type_,
            "at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "lines": lines,
            "evidence": [],
            "memo": "",
            "corrects": None,
            **(extra or {}),
        }
        rows.append(Record(kind="ledger", seq=seq, type=type_, at=body["at"], body=json.dumps(body), leaf="0" * 64))

    def line(sku: str, lot: str, qty: int) -> dict[str, Any]:
        return {
            "sku": sku,
            "lot": lot,
            "location": "WH",
            "owner": ME,
            "holder": ME,
            "status": "available",
            "quantity": qty,
        }

    per_day = records // 365
    lots: dict[str, str] = {}
    with session_scope(engine) as s:
        for code in sku_codes:
            s.add(Sku(code=code, name=code, transfer_price=rng.randint(500, 20_000)))
    for day in range(365):
        at = start + timedelta(days=day)
        for i, code in enumerate(sku_codes):
            if (day + i) % 7 == 0 or day == 0:
                lots[code] = f"{code}-W{day}"
                add(at, "receipt", [line(code, lots[code], 5_000)])
        for k in range(per_day - sum(1 for i in range(skus) if (day + i) % 7 == 0 or day == 0)):
            code = sku_codes[k % skus]
            add(at + timedelta(seconds=10 + k), "issue", [line(code, lots[code], -rng.randint(1, 12))])
    problem = {
        "radius_km": 50,
        "requests": [
            {
                "id": "r",
                "node": ME,
                "sku": sku_codes[0],
                "quantity": 300,
                "min_shelf_life_days": 0,
                "max_transit_hours": 24,
                "shortage_penalty": 100_000,
            }
        ],
        "offers": [
            {
                "id": f"o{j}",
                "node": PEER,
                "sku": sku_codes[0],
                "quantity": 120,
                "shelf_life_days": 300,
                "min_order_quantity": 1,
                "unit_price": 5_200,
            }
            for j in range(4)
        ],
        "lanes": [
            {"from": PEER, "to": ME, "distance_km": 15, "transit_hours": 2, "cost_per_unit": 80, "fixed_cost": 12_500}
        ],
    }
    for j in range(plans):
        at = start + timedelta(days=j * 365 // plans, hours=9)
        add(at, "plan", [], {"plan": {"problem": problem}})
    rows.sort(key=lambda r: r.at)
    for i, r in enumerate(rows, 1):  # records are appended in time order on a node
        body = json.loads(r.body)
        body["seq"] = r.seq = i
        r.body = json.dumps(body)
    with session_scope(engine) as s:
        s.add_all(rows)
        for code in sku_codes:
            for day in range(0, 365, 1):
                if (day + sku_codes.index(code)) % 7 == 0 or day == 0:
                    s.add(
                        Lot(
                            sku=code,
                            code=f"{code}-W{day}",
                            expires_on="2027-06-30",
                            received_on=(start + timedelta(days=day)).date().isoformat(),
                        )
                    )
        for j in range(invitations):
            at = start + timedelta(days=j * 365 // invitations, hours=11)
            s.add(
                Invitation(
                    id=f"0x{j:064x}",
                    requester=PEER,
                    sku=sku_codes[j % skus],
                    quantity=rng.randint(10, 400),
                    needed_by=int((at + timedelta(days=2)).timestamp()),
                    min_shelf_life_days=30,
                    radius_km=50,
                    deadline=0,
                    mine=False,
                    created_at=at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    distance_km=15,
                )
            )
    engine.dispose()


def sandbox_year(records: int = 100_000) -> dict[str, Any]:
    current = load_book(DEMO)
    data = yaml.safe_load(DEMO.read_text())
    data["label"] = "proposed"
    data["safety_stock"]["service_level"] = "0.99"
    data["pricing"]["freight_per_unit"] = "0.80 + 0.02 * lane.distance_km"
    proposed = check_book(parse_book(data))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "node.db"
        invitations, plans = max(10, min(1_000, records // 100)), max(2, min(50, records // 2_000))
        _, write_seconds = timed(lambda: write_year(path, records, skus=50, invitations=invitations, plans=plans))
        engine = make_engine(f"sqlite:///{path}")
        report, seconds = timed(
            lambda: run_sandbox(engine, ME, current, proposed, date(2025, 1, 1), date(2025, 12, 31))
        )
    return {
        "ledger_records": report["records_replayed"],
        "days": report["days"],
        "skus": 50,
        "invitations_answered_twice": invitations,
        "plans_solved_twice": plans,
        "seconds_total": round(seconds, 2),
        "seconds_load": report["seconds"]["load"],
        "seconds_replay": report["seconds"]["replay"],
        "offer_changes": len(report["offer_changes"]),
        "plan_changes": len(report["plan_changes"]),
        "safety_changes": len(report["safety_changes"]),
        "generated_in_seconds": round(write_seconds, 1),
    }


def run(sandbox_records: int = 100_000) -> list[dict[str, Any]]:
    return [
        {"what": "evaluation", **evaluation_rate()},
        {"what": "active_check", **active_check()},
        {"what": "sandbox_year", **sandbox_year(sandbox_records)},
    ]


if __name__ == "__main__":
    print(json.dumps({"machine": machine()}))
    for row in run():
        print(json.dumps(row), flush=True)
    sys.exit(0)
