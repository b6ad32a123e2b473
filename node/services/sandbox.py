"""The node's recorded history, read from its database as the sandbox's plain input."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import TypedDict, cast

import orjson
from sqlalchemy import Engine
from sqlmodel import col, select

from chain.records import RecordType
from negotiation.rules.book import CheckedBook
from negotiation.rules.engine import Policy
from negotiation.rules.sandbox import NodeHistory, PlanSnapshot, ReceivedInvitation, compare
from node.errors import InvalidRequest
from node.services.rules_keeper import request_facts, sku_facts
from node.store.engine import session_scope
from node.store.records import LEDGER
from node.store.tables import Invitation, Lot, Record, Sku


class SandboxSeconds(TypedDict):
    load: float
    replay: float


# Both books' runs side by side (docs/rules.md, "Sandbox"): negotiation/rules/sandbox.py's report, timed.
SandboxRun = TypedDict(
    "SandboxRun",
    {
        "current": str,
        "proposed": str,
        "from": str,
        "to": str,
        "records_replayed": int,
        "days": int,
        "totals": dict[str, dict[str, int]],  # each book's totals, by name
        "safety_changes": list[Mapping[str, object]],
        "offer_changes": list[Mapping[str, object]],
        "plan_changes": list[Mapping[str, object]],
        "seconds": SandboxSeconds,
    },
)


def load_history(engine: Engine, me: str, until: date, safety_floor: int = 0) -> NodeHistory:
    """Every ledger record up to the end of `until` (the stock at any moment needs all before it), the
    invitations this node received, and the plans it made."""
    limit = (until + timedelta(days=1)).isoformat()
    with session_scope(engine) as s:
        rows = s.exec(
            select(Record.at, Record.type, Record.body)
            .where(Record.kind == LEDGER, Record.at < limit)
            .order_by(col(Record.seq))
        ).all()
        records, plans = [], []
        mine = {i.id: i for i in s.exec(select(Invitation).where(Invitation.mine)).all()}
        for at, type_, body in rows:
            data = orjson.loads(body)
            records.append({"at": at, "type": type_, "lines": data.get("lines", [])})
            if type_ == RecordType.PLAN:
                problem = data["plan"]["problem"]
                requests = {r["id"]: request_facts(mine[r["id"]]) for r in problem["requests"] if r["id"] in mine}
                plans.append(PlanSnapshot(at, data["seq"], problem, requests))
        received = [
            ReceivedInvitation(
                i.id,
                i.created_at,
                request_facts(i),
                i.sku,
                datetime.fromtimestamp(i.needed_by, UTC).date(),
                i.distance_km or 0,
            )
            for i in s.exec(select(Invitation).where(~col(Invitation.mine), Invitation.created_at < limit)).all()
        ]
        skus = {k.code: sku_facts(k) for k in s.exec(select(Sku)).all()}
        lots = {
            (lot.sku, lot.code): (
                date.fromisoformat(lot.expires_on) if lot.expires_on else None,
                date.fromisoformat(lot.received_on) if lot.received_on else None,
            )
            for lot in s.exec(select(Lot)).all()
        }
    return NodeHistory(me, records, received, plans, skus, lots, safety_floor)


def last_decided_version(engine: Engine) -> str | None:
    """The rule book of this node's most recent decision: what the sandbox compares against by default."""
    with session_scope(engine) as s:
        inv = s.exec(
            select(Invitation).where(Invitation.rule_version != "").order_by(col(Invitation.created_at).desc())
        ).first()
        return inv.rule_version if inv else None


def run_sandbox(
    engine: Engine, me: str, current: CheckedBook, proposed: CheckedBook, start: date, end: date, safety_floor: int = 0
) -> SandboxRun:
    if end < start:
        raise InvalidRequest("the sandbox window ends before it starts", start=str(start), end=str(end))
    started = time.perf_counter()
    history = load_history(engine, me, end, safety_floor)
    loaded = time.perf_counter()
    report = compare(history, Policy(current), Policy(proposed), start, end)
    done = time.perf_counter()
    seconds: SandboxSeconds = {"load": round(loaded - started, 3), "replay": round(done - loaded, 3)}
    return cast(SandboxRun, {**report.as_dict(), "seconds": seconds})  # as_dict declares no keys of its own
