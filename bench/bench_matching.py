"""The matcher at scale against the greedy cheapest-first baseline, on seeded synthetic consortia.

Nodes are scattered over a 300 km square; lanes exist between nodes up to 120 km apart (the radius is
50 km, so pruning matters); costs per unit grow with distance; a third of the offers have a minimum order
quantity and lanes carry a fixed truck cost, so CP-SAT is needed.
"""

from __future__ import annotations

import math
import random
import sys
from typing import Any

from bench.common import machine
from negotiation.matching import SolverParameters, greedy, parse_problem, solve


def synthetic(n_requests: int, n_offers: int, n_nodes: int, seed: int = 1) -> dict[str, Any]:
    rng = random.Random(seed)
    pos = [(rng.uniform(0, 300), rng.uniform(0, 300)) for _ in range(n_nodes)]
    skus = [f"SKU-{k}" for k in range(max(5, n_requests // 20))]
    lanes = []
    for a in range(n_nodes):
        for b in range(n_nodes):
            d = math.dist(pos[a], pos[b])
            if d <= 120:
                km = round(d)
                lanes.append(
                    {
                        "from": f"N{a}",
                        "to": f"N{b}",
                        "distance_km": km,
                        "transit_hours": 1 + km // 40,
                        "cost_per_unit": 20 + km * 3,
                        "fixed_cost": 0 if a == b else 2_000 + km * 40,
                    }
                )
    requests = [
        {
            "id": f"r{i}",
            "node": f"N{rng.randrange(n_nodes)}",
            "sku": rng.choice(skus),
            "quantity": rng.randint(5, 200),
            "min_shelf_life_days": rng.choice([0, 30, 90]),
            "max_transit_hours": rng.choice([2, 4, 24]),
            "shortage_penalty": rng.randint(800, 3000),
        }
        for i in range(n_requests)
    ]
    offers = [
        {
            "id": f"o{j}",
            "node": f"N{rng.randrange(n_nodes)}",
            "sku": rng.choice(skus),
            "quantity": rng.randint(10, 300),
            "shelf_life_days": rng.randint(10, 400),
            "min_order_quantity": rng.choice([1, 1, 20]),
            "unit_price": rng.randint(300, 900),
        }
        for j in range(n_offers)
    ]
    return {"radius_km": 50, "requests": requests, "offers": offers, "lanes": lanes}


def run(
    sizes: tuple[tuple[int, int, int], ...] = ((100, 500, 100), (1_000, 5_000, 300), (10_000, 50_000, 800)),
    time_limit: float = 10.0,
) -> list[dict[str, object]]:
    rows = []
    for n_req, n_off, n_nodes in sizes:
        problem = parse_problem(synthetic(n_req, n_off, n_nodes))
        plan = solve(problem, SolverParameters(relative_gap=0.004, time_limit=time_limit))
        base = greedy(problem)
        rows.append(
            {
                "requests": n_req,
                "offers": n_off,
                "nodes": n_nodes,
                "lanes": len(problem.lanes),
                "status": plan.status,
                "solver": plan.solver,
                "seconds": round(plan.seconds, 2),
                "gap_pct": round(100 * plan.gap, 3),
                "cost": plan.total_cost,
                "greedy_cost": base.total_cost,
                "greedy_over_optimal": round(base.total_cost / plan.total_cost, 4),
                "greedy_seconds": round(base.seconds, 2),
            }
        )
    return rows


if __name__ == "__main__":
    print(machine())
    only = tuple(tuple(int(x) for x in arg.split("x")) for arg in sys.argv[1:])
    for row in run(only) if only else run():  # type: ignore[arg-type]
        print(row, flush=True)
