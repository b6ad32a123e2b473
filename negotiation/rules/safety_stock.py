"""Safety stock from recorded demand, not a constant: exponentially smoothed daily demand and deviation,
over the lead time plus the review period, at the service level the rule book sets (adjusted by context:
promotions weigh responsiveness, slow seasons capital tied up).

The level is a whole number of units; the statistics behind it are floating point (the normal quantile has
no exact form), so the recorded integer, not the arithmetic, is what partners compare.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from statistics import NormalDist
from typing import Any

from negotiation.rules.book import CheckedBook


@dataclass(frozen=True)
class DemandEstimate:
    mean: float  # smoothed units per day
    deviation: float  # smoothed standard deviation of a day's demand around the forecast
    days: int  # how many days of history went in


def smooth_demand(daily: Iterable[int], alpha: float, seed_days: int = 7) -> DemandEstimate:
    """Exponential smoothing of the level and of the squared forecast error, started from the first
    `seed_days` days' plain mean and variance so a short history does not start from zero."""
    values = list(daily)
    if not values:
        return DemandEstimate(0.0, 0.0, 0)
    seed = values[:seed_days]
    mean = sum(seed) / len(seed)
    variance = sum((v - mean) ** 2 for v in seed) / len(seed)
    for v in values[len(seed) :]:
        error = v - mean
        variance = (1 - alpha) * variance + alpha * error * error
        mean = mean + alpha * error
    return DemandEstimate(mean, math.sqrt(variance), len(values))


def safety_level(estimate: DemandEstimate, service_level: float, cover_days: int, min_units: int = 0) -> int:
    """ceil(z(service level) x deviation x sqrt(days covered)), never below `min_units`."""
    if estimate.deviation <= 0 or cover_days <= 0:
        return min_units
    z = NormalDist().inv_cdf(service_level)
    return max(min_units, math.ceil(z * estimate.deviation * math.sqrt(cover_days) - 1e-9))


@dataclass(frozen=True)
class SafetyDecision:
    level: int
    method: str
    service_level: str
    cover_days: int
    mean_daily: float
    deviation_daily: float
    adjustments: tuple[str, ...]  # paths of the adjustments that applied: the evidence

    def as_evidence(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "method": self.method,
            "service_level": self.service_level,
            "cover_days": self.cover_days,
            "mean_daily": round(self.mean_daily, 4),
            "deviation_daily": round(self.deviation_daily, 4),
            "adjustments": list(self.adjustments),
        }


def decide_safety_level(book: CheckedBook, daily_demand: Sequence[int], env: Mapping[str, Any]) -> SafetyDecision:
    """The rule book's safety level for one SKU at one node, from its daily demand history (oldest first)."""
    alpha = float(Fraction(book.book.safety_stock.smoothing))
    return decide_from_estimate(book, smooth_demand(daily_demand, alpha), env)


def decide_from_estimate(book: CheckedBook, estimate: DemandEstimate, env: Mapping[str, Any]) -> SafetyDecision:
    """The same decision from an already smoothed estimate (the sandbox keeps one per SKU and day)."""
    rule = book.book.safety_stock
    if rule.method == "fixed":
        return SafetyDecision(rule.fixed_units, "fixed", rule.service_level, 0, 0.0, 0.0, ())
    service, lead = rule.service_level, rule.lead_time_days
    applied = []
    for path, when, adjustment in book.safety_adjustments:
        if all(n in env for n in when.names) and when.evaluate(env):
            applied.append(path)
            if adjustment.service_level is not None:
                service = adjustment.service_level
            if adjustment.lead_time_days is not None:
                lead = adjustment.lead_time_days
    cover = lead + rule.review_days
    # A service level of exactly 1 has no quantile: cap just below it.
    level = safety_level(estimate, min(float(Fraction(service)), 0.9999), cover, rule.min_units)
    return SafetyDecision(level, "smoothed_demand", service, cover, estimate.mean, estimate.deviation, tuple(applied))
