"""HTTP routes of the rule books (docs/rules.md): what is in force, the versions held, proposing and
approving, the on-chain history, and what the active book computes for this node right now."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from fastapi import APIRouter, Body, Response
from pydantic import Field
from sqlmodel import select

from negotiation.rules.conflicts import find_conflicts
from negotiation.rules.engine import SkuFacts, StockFacts
from node.api.schemas import Strict
from node.domain.ledger import StockStatus
from node.errors import NotFound
from node.services.rules_keeper import RuleKeeper, conflict_json, daily_demand
from node.services.sandbox import run_sandbox
from node.store.engine import session_scope
from node.store.tables import Sku, StockBalance


class TryIn(Strict):
    book: dict[str, Any]
    start: date = Field(alias="from")
    end: date = Field(alias="to")
    against: str | None = None


def rules_router(rules: RuleKeeper, operator: Sequence[Any], me: str, safety_floor: int) -> APIRouter:
    router = APIRouter(prefix="/rules", tags=["rules"])

    @router.get("/active")
    def active() -> dict[str, Any]:
        """The version the chain says is in force, and whether this node can run it (409 if not)."""
        a = rules.active()
        return {"version": a.policy.version, "label": a.policy.book.label, "block": a.block}

    @router.get("/history")
    def history() -> list[dict[str, Any]]:
        return rules.history()

    @router.get("/books", dependencies=operator)
    def held() -> list[dict[str, str]]:
        return rules.held()

    @router.get("/books/{version}")
    def book(version: str) -> Response:
        """The canonical JSON of a version: public, so that every member can fetch it and check its hash."""
        return Response(content=rules.body(version), media_type="application/json")

    @router.post("/books", status_code=201, dependencies=operator)
    def add(body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        """Keep a rule book (validated; its conflicts listed: a book with any cannot be proposed)."""
        checked, conflicts = rules.add(body)
        return {
            "version": checked.version,
            "label": checked.book.label,
            "conflicts": [conflict_json(c) for c in conflicts],
        }

    @router.get("/books/{version}/conflicts", dependencies=operator)
    def conflicts(version: str) -> list[dict[str, Any]]:
        checked = rules.book(version)
        if checked is None:
            raise NotFound(f"this node holds no rule book {version}", version=version)
        return [conflict_json(c) for c in find_conflicts(checked)]

    @router.post("/books/{version}/propose", dependencies=operator)
    def propose(version: str) -> dict[str, Any]:
        return rules.propose(version)

    @router.post("/books/{version}/approve", dependencies=operator)
    def approve(version: str) -> dict[str, Any]:
        return rules.approve(version)

    @router.post("/try", dependencies=operator)
    def try_book(body: TryIn) -> dict[str, Any]:
        """The sandbox: this node's history from `from` to `to` replayed under the given rule book and the
        one in force (or `against`), side by side. Changes nothing."""
        proposed, _conflicts = rules.add(body.book)
        if body.against:
            current = rules.book(body.against)
            if current is None:
                raise NotFound(f"this node holds no rule book {body.against}", version=body.against)
        else:
            current = rules.active().policy.checked
        return run_sandbox(rules.engine, me, current, proposed, body.start, body.end, safety_floor)

    @router.get("/decisions", dependencies=operator)
    def decisions() -> dict[str, Any]:
        """What the active rule book computes for this node now: each SKU's safety level (with the demand
        behind it) and the business rules that fire, as action suggestions."""
        a = rules.active()
        policy = a.policy
        today = datetime.now(UTC).date()
        calendar = policy.calendar(today)
        out = []
        with session_scope(rules.engine) as s:
            skus = s.exec(select(Sku).order_by(Sku.code)).all()
            available: dict[str, int] = defaultdict(int)
            on_hand: dict[str, int] = defaultdict(int)
            for b in s.exec(select(StockBalance)).all():
                available[b.sku] += b.quantity if b.status == StockStatus.AVAILABLE.value else 0
                on_hand[b.sku] += b.quantity if b.status != StockStatus.IN_TRANSIT.value else 0
            demand = daily_demand(s, today, [k.code for k in skus])
        for sku in skus:
            facts = SkuFacts(sku.code, sku.transfer_price)
            held, total = available[sku.code], on_hand[sku.code]
            safety = policy.safety(policy.estimate(demand[sku.code]), facts, held, total, calendar, safety_floor)
            env = policy.env(sku=facts, stock=StockFacts(held, safety.level, total), calendar=calendar)
            out.append(
                {
                    "sku": sku.code,
                    "available": held,
                    "safety_level": safety.level,
                    "set_by_rule": safety.set_by_rule,
                    "safety": safety.decision.as_evidence(),
                    "suggestions": [s_.text for s_ in policy.suggestions(env)],
                }
            )
        return {"rule_version": policy.version, "block": a.block, "skus": out}

    return router
