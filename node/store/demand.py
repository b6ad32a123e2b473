"""The demand projection: units issued per SKU and day, kept with each issue record (node/store/pool.py)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

from sqlmodel import Session, col, select

from node.store.tables import DemandDay

DEMAND_HISTORY_DAYS = 56


def daily_demand(s: Session, today: date, skus: Iterable[str], days: int = DEMAND_HISTORY_DAYS) -> dict[str, list[int]]:
    """Units of each SKU issued per day over the last `days` days (oldest first), as the ledger's issue records
    counted them (node.store.pool keeps DemandDay with each one): the input of the safety-stock algorithm."""
    since = today - timedelta(days=days - 1)
    per_day = {sku: [0] * days for sku in skus}
    rows = s.exec(
        select(DemandDay).where(col(DemandDay.sku).in_(list(per_day)), DemandDay.day >= since.isoformat())
    ).all()
    for row in rows:
        day = (date.fromisoformat(row.day) - since).days
        if 0 <= day < days:
            per_day[row.sku][day] += row.issued
    return per_day
