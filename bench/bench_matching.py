"""The matcher at scale against two baselines: the fixed-cost-aware heuristic (what `solve` must never do
worse than) and the old cheapest-first greedy that ignores trucks; optionally against the matcher of an
earlier commit too (`--baseline-commit`), on the same instances in the same run.

Two families of seeded synthetic consortia:

- `tuned`: the instances the solver was first tuned on (nodes scattered over a 300 km square, light
  trucks of 2,000 + 40/km, a third of the offers with an MOQ of 20);
- `hard`, unlike those: nodes in a dozen clusters, heavy trucks (30,000 + 300/km, 5,000 within a node),
  tight minimum order quantities (20 to 100 on most offers), many SKUs (one per 8 requests), and 5 % of
  the requests that nothing can serve (an SKU nobody offers, or a shelf life no offer has).

`python -m bench.bench_matching 1000x5000x300 ...` runs each size in its own process so peak memory is its
own; `run(scale="tiny")` is the few-second version a unit test runs so this file never rots.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import subprocess
import sys
import time
import types
from typing import Any, Literal

import numpy as np

from bench.common import machine, module_at
from negotiation.matching import (
    MatchingProblem,
    SolverParameters,
    TransferPlan,
    arc_table,
    fixed_cost_heuristic,
    greedy,
    parse_problem,
    solve,
)

Family = Literal["tuned", "hard"]


def synthetic(n_requests: int, n_offers: int, n_nodes: int, seed: int = 1) -> dict[str, Any]:
    """The `tuned` family (kept as it was: tests and earlier figures use it)."""
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


def hard(n_requests: int, n_offers: int, n_nodes: int, seed: int = 1) -> dict[str, Any]:
    """The `hard` family (module docstring): clustered, heavy trucks, tight MOQs, many SKUs, some hopeless."""
    rng = random.Random(seed)
    np_rng = np.random.default_rng(seed)
    centres = np_rng.uniform(0, 400, size=(12, 2))
    pos = centres[np_rng.integers(0, 12, n_nodes)] + np_rng.normal(0, 18, size=(n_nodes, 2))
    dist = np.sqrt(((pos[:, None, :] - pos[None, :, :]) ** 2).sum(axis=2))
    skus = [f"SKU-{k}" for k in range(max(5, n_requests // 8))]
    lanes = []
    for a, b in zip(*np.nonzero(dist <= 120), strict=True):
        km = round(float(dist[a, b]))
        lanes.append(
            {
                "from": f"N{a}",
                "to": f"N{b}",
                "distance_km": km,
                "transit_hours": 1 + km // 30,
                "cost_per_unit": 15 + km * 4,
                "fixed_cost": 5_000 if a == b else 30_000 + 300 * km,
            }
        )
    requests = []
    for i in range(n_requests):
        hopeless = rng.random() < 0.05
        requests.append(
            {
                "id": f"r{i}",
                "node": f"N{rng.randrange(n_nodes)}",
                "sku": f"NOBODY-{i}" if hopeless and i % 2 else rng.choice(skus),
                "quantity": rng.randint(5, 250),
                "min_shelf_life_days": 5_000 if hopeless and not i % 2 else rng.choice([0, 30, 90, 180]),
                "max_transit_hours": rng.choice([2, 3, 6, 24]),
                "shortage_penalty": rng.randint(900, 4000),
            }
        )
    offers = [
        {
            "id": f"o{j}",
            "node": f"N{rng.randrange(n_nodes)}",
            "sku": rng.choice(skus),
            "quantity": rng.randint(10, 400),
            "shelf_life_days": rng.randint(10, 400),
            "min_order_quantity": rng.choice([1, 20, 50, 100]),
            "unit_price": rng.randint(300, 1500),
        }
        for j in range(n_offers)
    ]
    return {"radius_km": 50, "requests": requests, "offers": offers, "lanes": lanes}


def _peak_rss_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024  # KiB on Linux


def _rss_mb() -> int:
    """Resident memory now (the generated instance and the parsed problem, before any solve), or 0."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 2**20
    except (OSError, ValueError, IndexError):
        return 0


def _old_matcher(commit: str) -> types.ModuleType:
    """The matcher as it was at `commit` (read from git), to measure it beside the current one."""
    return module_at(commit, "negotiation/matching.py", "old_matching")


def _row(plan: TransferPlan, seconds: float, heuristic_cost: int) -> dict[str, Any]:
    return {
        "solver": plan.solver,
        "status": plan.status,
        "seconds": round(seconds, 2),
        "cost": plan.total_cost,
        "cost_over_heuristic": round(plan.total_cost / heuristic_cost, 5) if heuristic_cost else 1.0,
        "gap_pct": round(100 * plan.gap, 3),
        "lower_bound": plan.lower_bound,
    }


SIZES: tuple[tuple[int, int, int], ...] = ((1_000, 5_000, 300), (10_000, 50_000, 800))
TINY: tuple[tuple[int, int, int], ...] = ((30, 150, 12),)


def run(
    sizes: tuple[tuple[int, int, int], ...] | None = None,
    time_limit: float = 10.0,
    scale: Literal["tiny", "normal"] = "normal",
    family: Family = "hard",
    solvers: tuple[str, ...] = ("highs", "cbc"),
    reference_seconds: float = 0.0,
    baseline_commit: str | None = None,
    seed: int = 1,
) -> list[dict[str, Any]]:
    """One row per size and solver: wall time, peak RSS (of this process so far), cost against the heuristic
    and the old greedy, proven gap. `scale="tiny"` runs a 30 x 150 instance with a 2 s budget;
    `reference_seconds` adds a HiGHS run that long (the best plan it finds is `reference_cost`)."""
    if sizes is None:
        sizes = TINY if scale == "tiny" else SIZES
    if scale == "tiny":
        time_limit = min(time_limit, 2.0)
    old = _old_matcher(baseline_commit) if baseline_commit else None
    rows: list[dict[str, Any]] = []
    for n_req, n_off, n_nodes in sizes:
        data = (hard if family == "hard" else synthetic)(n_req, n_off, n_nodes, seed)
        problem: MatchingProblem = parse_problem(data)
        rss_before = _rss_mb()
        started = time.perf_counter()
        n_arcs = len(arc_table(problem))
        arcs_seconds = time.perf_counter() - started
        heuristic = fixed_cost_heuristic(problem)
        base = greedy(problem)
        common = {
            "family": family,
            "requests": n_req,
            "offers": n_off,
            "nodes": n_nodes,
            "lanes": len(problem.lanes),
            "arcs": n_arcs,
            "arcs_seconds": round(arcs_seconds, 3),
            "budget_seconds": time_limit,
            "heuristic_cost": heuristic.total_cost,
            "heuristic_seconds": round(heuristic.seconds, 2),
            "greedy_cost": base.total_cost,
            "rss_before_solve_mb": rss_before,
        }
        runs: list[tuple[str, float]] = [(s, time_limit) for s in solvers]
        if reference_seconds:
            runs.append(("highs", reference_seconds))
        reference = None
        for solver, seconds in runs:
            started = time.perf_counter()
            plan = solve(problem, SolverParameters(relative_gap=0.0, time_limit=seconds, solver=solver))  # type: ignore[arg-type]
            wall = time.perf_counter() - started
            row = {**common, **_row(plan, wall, heuristic.total_cost), "peak_rss_mb": _peak_rss_mb()}
            row["greedy_over_cost"] = round(base.total_cost / plan.total_cost, 4) if plan.total_cost else 1.0
            if seconds != time_limit:
                row["role"] = "reference"
                reference = plan.total_cost
            rows.append(row)
        if reference is not None:
            for row in rows[-len(runs) :]:
                row["reference_cost"] = reference
                row["cost_over_reference"] = round(row["cost"] / reference, 5)
        if old is not None:
            started = time.perf_counter()
            old_arcs = len(old.allowed_arcs(old.parse_problem(data)))
            old_arcs_seconds = time.perf_counter() - started
            started = time.perf_counter()
            old_plan = old.solve(old.parse_problem(data), old.SolverParameters(relative_gap=0.0, time_limit=time_limit))
            wall = time.perf_counter() - started
            rows.append(
                {
                    **common,
                    **_row(old_plan, wall, heuristic.total_cost),
                    "role": f"baseline {baseline_commit}",
                    "arcs_seconds": round(old_arcs_seconds, 3),
                    "arcs_equal": old_arcs == n_arcs,
                    "peak_rss_mb": _peak_rss_mb(),
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sizes", nargs="*", help="REQUESTSxOFFERSxNODES, each run in its own process")
    parser.add_argument("--budget", type=float, default=10.0, help="time_limit of solve, seconds")
    parser.add_argument("--family", choices=("tuned", "hard"), default="hard")
    parser.add_argument("--solvers", default="highs,cbc")
    parser.add_argument("--reference", type=float, default=0.0, help="seconds of a reference HiGHS run")
    parser.add_argument("--baseline-commit", default=None, help="also run the matcher of this git commit")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--inline", action="store_true", help="run in this process (used by the per-size child)")
    args = parser.parse_args()
    sizes = tuple(tuple(int(x) for x in s.split("x")) for s in args.sizes) or SIZES
    if not args.inline:
        print(machine(), "load average", os.getloadavg(), flush=True)
        for size in sizes:
            child = [sys.executable, "-m", "bench.bench_matching", "x".join(map(str, size)), "--inline"]
            child += [a for a in sys.argv[1:] if "x" not in a or a.startswith("-")]
            subprocess.run(child, check=True)
        return
    for row in run(
        sizes,  # type: ignore[arg-type]
        time_limit=args.budget,
        family=args.family,
        solvers=tuple(s for s in args.solvers.split(",") if s),
        reference_seconds=args.reference,
        baseline_commit=args.baseline_commit,
        seed=args.seed,
    ):
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
