"""Backtest: safety stock from demand (the demo rule book's algorithm, promotions and slow season included)
against a fixed safety level, on one year of generated demand with a known pattern.

Demand: 40 units a day, weekends +30 %, slow season (January, February) x0.6, four 10-day promotions x2.0,
noise with a 25 % deviation. Both policies review daily and order up to forecast x (lead time + review)
+ safety level, with the same smoothed forecast; lead time 2 days; unmet demand is lost. The fixed level is
computed once from the first 8 weeks (the "monthly constant"), and a second fixed level is set to the
dynamic policy's own average, so that the comparison is at equal average safety stock too.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from statistics import NormalDist
from typing import Any

from bench.common import machine
from negotiation.rules.book import load_book
from negotiation.rules.engine import CalendarFacts, Policy
from negotiation.rules.safety_stock import decide_safety_level, smooth_demand

DEMO = Path(__file__).resolve().parents[1] / "node" / "demo" / "rulebook.yaml"
START = date(2025, 1, 1)
PROMOTIONS = [(date(2025, 3, 8), 10), (date(2025, 6, 10), 10), (date(2025, 9, 1), 10), (date(2025, 11, 1), 10)]
LEAD, REVIEW = 2, 1


def in_promotion(day: date) -> bool:
    return any(start <= day < start + timedelta(days=n) for start, n in PROMOTIONS)


def slow(day: date) -> bool:
    return day.month in (1, 2)


def demand_year(seed: int) -> list[int]:
    rng = random.Random(seed)
    out = []
    for d in range(365 + 56):
        day = START - timedelta(days=56) + timedelta(days=d)
        mean = 40.0 * (1.3 if day.isoweekday() >= 6 else 1.0) * (0.6 if slow(day) else 1.0)
        mean *= 2.0 if in_promotion(day) else 1.0
        out.append(max(0, round(rng.gauss(mean, 0.25 * mean))))
    return out


@dataclass
class Outcome:
    stockout_days: int = 0
    units_short: int = 0
    demand: int = 0
    stock_sum: int = 0
    safety_sum: int = 0

    def row(self, name: str, days: int) -> dict[str, Any]:
        return {
            "policy": name,
            "stockout_days": self.stockout_days,
            "units_short": self.units_short,
            "fill_rate_pct": round(100 * (1 - self.units_short / self.demand), 2),
            "average_stock": round(self.stock_sum / days, 1),
            "average_safety_level": round(self.safety_sum / days, 1),
        }


def simulate(demand: list[int], safety: Callable[[int, list[int], date], int], alpha: float) -> Outcome:
    history = demand[:56]
    on_hand = 200
    pipeline = [0] * (LEAD + 1)
    out = Outcome()
    for d in range(365):
        day = START + timedelta(days=d)
        on_hand += pipeline.pop(0)
        pipeline.append(0)
        wanted = demand[56 + d]
        sold = min(on_hand, wanted)
        on_hand -= sold
        out.demand += wanted
        if sold < wanted:
            out.stockout_days += 1
            out.units_short += wanted - sold
        history.append(wanted)
        level = safety(d, history[-56:], day + timedelta(days=1))
        forecast = smooth_demand(history[-56:], alpha).mean
        target = round(forecast * (LEAD + REVIEW)) + level
        position = on_hand + sum(pipeline)
        pipeline[LEAD - 1] += max(0, target - position)
        out.stock_sum += on_hand
        out.safety_sum += level
    return out


def run(seeds: tuple[int, ...] = (1, 2, 3, 4, 5)) -> list[dict[str, Any]]:
    policy = Policy(load_book(DEMO))
    alpha = float(policy.book.safety_stock.smoothing)
    cover = policy.book.safety_stock.lead_time_days + policy.book.safety_stock.review_days
    rows: dict[str, list[dict[str, Any]]] = {}
    for seed in seeds:
        demand = demand_year(seed)
        first_weeks = smooth_demand(demand[:56], alpha)
        constant = round(NormalDist().inv_cdf(0.95) * first_weeks.deviation * cover**0.5)

        def dynamic(_d: int, hist: list[int], day: date) -> int:
            env = policy.env(calendar=CalendarFacts.of(day, promotion=in_promotion(day), slow_season=slow(day)))
            return decide_safety_level(policy.checked, hist, env).level

        results = {"from_demand": simulate(demand, dynamic, alpha)}
        results["fixed_first_8_weeks"] = simulate(demand, lambda *_, c=constant: c, alpha)
        same_average = round(results["from_demand"].safety_sum / 365)
        results["fixed_same_average"] = simulate(demand, lambda *_, c=same_average: c, alpha)
        for name, outcome in results.items():
            rows.setdefault(name, []).append(outcome.row(name, 365))
    summary = []
    for name, runs in rows.items():
        summary.append(
            {
                "policy": name,
                "seeds": len(runs),
                **{
                    k: round(sum(r[k] for r in runs) / len(runs), 2)
                    for k in ("stockout_days", "units_short", "fill_rate_pct", "average_stock", "average_safety_level")
                },
            }
        )
    return summary


if __name__ == "__main__":
    print(json.dumps({"machine": machine()}))
    for row in run():
        print(json.dumps(row))
