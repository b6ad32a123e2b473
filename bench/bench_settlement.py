"""Settlement of a year (docs/settlement.md): contributions, every coalition's value, Shapley and the core
check, the whole statement, for consortia of 4 to 12 members with about 100,000 transfer records.

    .venv/bin/python -m bench.bench_settlement [--members 12] [--transfer-records 100000]

The records are synthetic but shaped as nodes write them (plan records holding a solved problem with truck
costs, transfer_out / transfer_in / transfer_settled per allocation, daily issues): seeded, so every run
computes the same statement. Timed with the statement built from plain records (no node, no chain).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from datetime import date, timedelta
from typing import Any

from negotiation.matching import SolverParameters, parse_problem, plan_to_json, solve
from settlement.contribution import Period
from settlement.statement import SettlementTerms, build_statement

YEAR = Period(date(2026, 1, 1), date(2026, 12, 31))
SKUS = [f"SKU-{i:02d}" for i in range(20)]


def _line(sku: str, qty: int, owner: str, holder: str, status: str) -> dict[str, Any]:
    return {"sku": sku, "lot": "L1", "location": "WH", "owner": owner, "holder": holder, "status": status} | {
        "quantity": qty
    }


def year_of_records(members: int, transfer_records: int, seed: int = 7) -> dict[str, list[dict[str, Any]]]:
    rng = random.Random(seed)
    addresses = [f"0x{i:040x}" for i in range(1, members + 1)]
    books: dict[str, list[dict[str, Any]]] = {a: [] for a in addresses}

    def add(node: str, type_: str, at: str, **body: Any) -> dict[str, Any]:
        record = {"kind": "ledger", "node": node, "seq": len(books[node]) + 1, "type": type_, "at": at}
        record |= {"lines": [], "evidence": [], "memo": "", "corrects": None, **body}
        books[node].append(record)
        return record

    for a in addresses:
        add(a, "receipt", "2025-12-31T00:00:00.000000Z", lines=[_line(s, 10**7, a, a, "available") for s in SKUS])
    written, n = 0, 0
    while written < transfer_records:
        day = YEAR.start + timedelta(days=n * 365 // max(1, transfer_records // 6))
        at = f"{min(day, YEAR.end).isoformat()}T{(n % 20) + 2:02d}:00:00.{n % 1_000_000:06d}Z"
        requester = rng.choice(addresses)
        suppliers = rng.sample([a for a in addresses if a != requester], rng.randint(1, 3))
        sku = rng.choice(SKUS)
        problem = {
            "radius_km": 50,
            "requests": [
                {
                    "id": f"r{n}",
                    "node": requester,
                    "sku": sku,
                    "quantity": rng.randint(20, 200),
                    "min_shelf_life_days": 0,
                    "max_transit_hours": 24,
                    "shortage_penalty": 1000,
                }
            ],
            "offers": [
                {
                    "id": f"o{n}-{j}",
                    "node": s,
                    "sku": sku,
                    "quantity": rng.randint(10, 150),
                    "shelf_life_days": 300,
                    "min_order_quantity": 1,
                    "unit_price": rng.randint(300, 700),
                }
                for j, s in enumerate(suppliers)
            ],
            "lanes": [
                {
                    "from": s,
                    "to": requester,
                    "distance_km": (d := rng.randint(5, 45)),
                    "transit_hours": 2,
                    "cost_per_unit": 50 + 2 * d,
                    "fixed_cost": 8000 + 300 * d,
                }
                for s in suppliers
            ],
        }
        params = SolverParameters()
        plan = solve(parse_problem(problem), params)
        answer = plan_to_json(plan)
        answer.pop("gap")
        add(requester, "plan", at, plan={"problem": problem, "parameters": params.as_dict(), "answer": answer})
        for a in plan.allocations:
            offer = next(o for o in problem["offers"] if o["id"] == a.offer)
            s, q = offer["node"], a.quantity
            t = {"acceptance": f"acc-{a.offer}", "supplier": s, "requester": requester, "messages": []}
            ev = [{"source": "acceptance", "reference": t["acceptance"]}, {"source": "offer", "reference": a.offer}]
            price = offer["unit_price"]
            add(s, "transfer_out", at, lines=[_line(sku, -q, s, s, "available"), _line(sku, q, s, s, "in_transit")],
                evidence=ev, transfer={**t, "freight_compensation": 900, "unit_price": price})  # fmt: skip
            add(requester, "transfer_in", at, lines=[_line(sku, q, requester, requester, "available")], evidence=ev,
                transfer={**t, "shipped": q, "received": q, "freight_compensation": 900})  # fmt: skip
            add(s, "transfer_settled", at, lines=[_line(sku, -q, s, s, "in_transit")], evidence=ev,
                transfer={**t, "shipped": q, "received": q, "freight_compensation": 900})  # fmt: skip
            add(requester, "issue", at, lines=[_line(sku, -q // 2, requester, requester, "available")])
            written += 3
        n += 1
    return books


def run(members: int = 12, transfer_records: int = 100_000) -> dict[str, Any]:
    started = time.perf_counter()
    books = year_of_records(members, transfer_records)
    generated = time.perf_counter() - started
    started = time.perf_counter()
    statement = build_statement(books, YEAR, "0x01", SettlementTerms(method="shapley"))
    seconds = time.perf_counter() - started
    return {
        "members": members,
        "transfer_records": sum(1 for b in books.values() for r in b if r["type"].startswith("transfer")),
        "records": sum(len(b) for b in books.values()),
        "plans": len(statement["plans"]),
        "coalitions": len(statement["coalitions"] or []),
        "statement_seconds": round(seconds, 2),
        "generate_seconds": round(generated, 2),
        "surplus": statement["surplus"],
        "in_core": statement["core_check"]["in_core"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, nargs="*", default=[12])
    parser.add_argument("--transfer-records", type=int, default=100_000)
    args = parser.parse_args()
    for m in args.members:
        print(json.dumps(run(m, args.transfer_records)), flush=True)


if __name__ == "__main__":
    main()
