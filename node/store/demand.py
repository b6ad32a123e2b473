"""The demand projection: units issued per SKU and day, kept with each issue record (node/store/pool.py)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, timedelta

from sqlmodel import Session, col, select

from chain.records import RecordType
from node.store.records import LEDGER
from node.store.tables import DemandDay, Record

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


def location_demand(
    s: Session, today: date, skus: Iterable[str], days: int = DEMAND_HISTORY_DAYS
) -> dict[tuple[str, str], list[int]]:
    """Units of each SKU issued per day at each location over the last `days` days (oldest first), read from
    the issue records themselves (each line names its location): a store's shelf and a warehouse need
    different safety levels, and the per-SKU projection above cannot tell them apart."""
    since = today - timedelta(days=days - 1)
    wanted = set(skus)
    per_day: dict[tuple[str, str], list[int]] = {}
    rows = s.exec(
        select(Record.at, Record.body).where(
            Record.kind == LEDGER, Record.type == RecordType.ISSUE, col(Record.at) >= since.isoformat()
        )
    ).all()
    for at, body in rows:
        day = (date.fromisoformat(at[:10]) - since).days
        if not 0 <= day < days:
            continue
        for line in json.loads(body).get("lines", []):
            if line["sku"] in wanted and int(line["quantity"]) < 0:
                series = per_day.setdefault((line["sku"], line["location"]), [0] * days)
                series[day] -= int(line["quantity"])
    return per_day
