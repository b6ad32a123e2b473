"""The sandbox: a node's recorded history replayed under two rule books side by side, so a proposed book
is judged on what it would have decided, before it goes live.

Replayed day by day: the ledger rebuilds the node's own available lots and its daily demand; each day
both books compute each SKU's safety level; each invitation the node received is answered by both (which
lots, how many, at what price); each plan the node made is solved again with both books' freight,
penalties and scenario terms. Plain data in, a report out; docs/rules.md describes every figure.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

from chain.records import RecordType
from negotiation.matching import Lane, MatchingProblem, Request, parse_problem, solve
from negotiation.planning import ReceivedOffer, plan_actions
from negotiation.rules.engine import (
    CalendarFacts,
    CandidateLot,
    Policy,
    RequestFacts,
    RequestTerms,
    SkuFacts,
    StockFacts,
)

HISTORY_DAYS = 56
AVAILABLE = "available"


@dataclass(frozen=True)
class ReceivedInvitation:
    id: str
    at: str  # ISO time it was received
    request: RequestFacts
    sku: str
    needed_by: date
    distance_km: int


@dataclass(frozen=True)
class PlanSnapshot:
    at: str
    record_seq: int
    problem: Mapping[str, Any]  # as recorded (docs/matching.md)
    requests: Mapping[str, RequestFacts]  # by request (invitation) id


@dataclass(frozen=True)
class NodeHistory:
    me: str
    records: Sequence[Mapping[str, Any]]  # ledger records (at, type, lines), in seq order
    invitations: Sequence[ReceivedInvitation]
    plans: Sequence[PlanSnapshot]
    skus: Mapping[str, SkuFacts]
    lots: Mapping[tuple[str, str], tuple[date | None, date | None]]  # (sku, lot) -> (expires_on, received_on)
    safety_floor: int = 0


@dataclass
class Side:
    """One book's totals over the window."""

    safety_unit_days: int = 0
    capital_tied_up: int = 0  # average over the days: sum of safety level x transfer price, minor units
    offered_units: int = 0
    offered_value: int = 0
    plan_cost: int = 0
    unfilled: int = 0
    compensation: int = 0


@dataclass
class SandboxReport:
    current: str
    proposed: str
    start: date
    end: date
    records_replayed: int = 0
    days: int = 0
    totals: dict[str, Side] = field(default_factory=lambda: {"current": Side(), "proposed": Side()})
    safety_changes: list[dict[str, Any]] = field(default_factory=list)
    offer_changes: list[dict[str, Any]] = field(default_factory=list)
    plan_changes: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "current": self.current,
            "proposed": self.proposed,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "records_replayed": self.records_replayed,
            "days": self.days,
            "totals": {k: vars(v) for k, v in self.totals.items()},
            "safety_changes": self.safety_changes,
            "offer_changes": self.offer_changes,
            "plan_changes": self.plan_changes,
        }


def compare(history: NodeHistory, current: Policy, proposed: Policy, start: date, end: date) -> SandboxReport:
    """The node's history replayed day by day under both books; what they decide differently from `start` to
    `end` (the days before only build up stock and demand)."""
    replay = _Replay(history, {"current": current, "proposed": proposed}, start, end)
    day = _first_day(history.records, start)
    while day <= end:
        replay.day(day)
        day += timedelta(days=1)
    return replay.finished()


def _first_day(records: Sequence[Mapping[str, Any]], start: date) -> date:
    """Replay starts early enough for the demand history of the window's first day, or at the first record."""
    first = start - timedelta(days=HISTORY_DAYS)
    if records:
        first = min(first, date.fromisoformat(str(records[0]["at"])[:10]))
    return first


class _Replay:
    """The node's state as the replay moves through its history: own available stock, daily demand, each
    book's safety levels, and where it stands in the records, invitations and plans."""

    def __init__(self, history: NodeHistory, books: Mapping[str, Policy], start: date, end: date) -> None:
        self.history = history
        self.books = books
        self.start = start
        self.report = SandboxReport(books["current"].version, books["proposed"].version, start, end)
        self.stock: dict[tuple[str, str, str], int] = defaultdict(int)  # (sku, lot, location): own and held
        self.daily: dict[str, list[int]] = defaultdict(list)  # units issued per day, per SKU
        self.records = list(history.records)
        self.invitations = sorted(history.invitations, key=lambda i: i.at)
        self.plans = sorted(history.plans, key=lambda p: p.at)
        self.ri = self.ii = self.pi = 0
        self.levels: dict[str, dict[str, int]] = {name: {} for name in books}
        self.changed_days: dict[str, list[tuple[str, int, int]]] = defaultdict(list)

    def day(self, day: date) -> None:
        in_window = day >= self.start
        calendars = {name: policy.calendar(day) for name, policy in self.books.items()}
        if in_window:
            self.report.days += 1
            self._safety_levels(day, calendars)
        issued = self._events_until((day + timedelta(days=1)).isoformat(), in_window, calendars)
        for sku in set(self.history.skus) | set(issued):
            self.daily[sku].append(issued.get(sku, 0))

    def _safety_levels(self, day: date, calendars: Mapping[str, CalendarFacts]) -> None:
        """Each book's safety level of each SKU this day, on the demand so far: added to its totals, and
        remembered for the invitations of the day and for the days the books disagree."""
        available: dict[str, int] = defaultdict(int)
        for (sku_code, _lot, _location), qty in self.stock.items():
            available[sku_code] += qty
        for sku, facts in self.history.skus.items():
            pair = {}
            held = available.get(sku, 0)
            for name, policy in self.books.items():
                estimate = policy.estimate(self.daily[sku][-HISTORY_DAYS:])
                level = policy.safety(estimate, facts, held, held, calendars[name], self.history.safety_floor).level
                self.levels[name][sku] = level
                side = self.report.totals[name]
                side.safety_unit_days += level
                side.capital_tied_up += level * facts.transfer_price
                pair[name] = level
            if pair["current"] != pair["proposed"]:
                self.changed_days[sku].append((day.isoformat(), pair["current"], pair["proposed"]))

    def _events_until(self, day_end: str, in_window: bool, calendars: Mapping[str, CalendarFacts]) -> dict[str, int]:
        """The day's events in time order: records move stock; invitations and plans are decided on the stock
        as it stood when they arrived. Returns the units issued that day, per SKU."""
        issued: dict[str, int] = defaultdict(int)
        while (next_at := self._next_at()) < day_end:
            if self.ri < len(self.records) and str(self.records[self.ri]["at"]) == next_at:
                _apply(self.records[self.ri], self.history.me, self.stock, issued)
                self.report.records_replayed += 1
                self.ri += 1
            elif self.ii < len(self.invitations) and self.invitations[self.ii].at == next_at:
                if in_window:
                    invitation = self.invitations[self.ii]
                    _answer(self.history, self.books, self.levels, self.stock, invitation, calendars, self.report)
                self.ii += 1
            else:
                if in_window:
                    _replan(self.books, self.plans[self.pi], self.report)
                self.pi += 1
        return issued

    def _next_at(self) -> str:
        return min(
            str(self.records[self.ri]["at"]) if self.ri < len(self.records) else "~",
            self.invitations[self.ii].at if self.ii < len(self.invitations) else "~",
            self.plans[self.pi].at if self.pi < len(self.plans) else "~",
        )

    def finished(self) -> SandboxReport:
        """The report, capital averaged over the window's days and the safety changes summed up per SKU."""
        report = self.report
        if report.days:
            for side in report.totals.values():
                side.capital_tied_up //= report.days
        for sku, days in sorted(self.changed_days.items()):
            report.safety_changes.append(
                {
                    "sku": sku,
                    "days_changed": len(days),
                    "average_current": round(sum(d[1] for d in days) / len(days), 2),
                    "average_proposed": round(sum(d[2] for d in days) / len(days), 2),
                    "first": {"day": days[0][0], "current": days[0][1], "proposed": days[0][2]},
                }
            )
        return report


def _apply(record: Mapping[str, Any], me: str, stock: dict[tuple[str, str, str], int], issued: dict[str, int]) -> None:
    for line in record.get("lines", []):
        if line["owner"] == me and line["holder"] == me and line["status"] == AVAILABLE:
            stock[(line["sku"], line["lot"], line["location"])] += line["quantity"]
    if record.get("type") == RecordType.ISSUE:
        for line in record.get("lines", []):
            if line["quantity"] < 0:
                issued[line["sku"]] -= line["quantity"]


def _answer(
    history: NodeHistory,
    books: Mapping[str, Policy],
    levels: Mapping[str, Mapping[str, int]],
    stock: Mapping[tuple[str, str, str], int],
    inv: ReceivedInvitation,
    calendars: Mapping[str, CalendarFacts],
    report: SandboxReport,
) -> None:
    sku = history.skus.get(inv.sku)
    if sku is None:
        return
    today = date.fromisoformat(inv.at[:10])
    lots = [
        CandidateLot.of(lot, location, qty, *history.lots.get((s, lot), (None, None)), inv.needed_by, today)
        for (s, lot, location), qty in sorted(stock.items())
        if s == inv.sku and qty > 0
    ]
    available = sum(lot.available for lot in lots)
    answers = {}
    for name, policy in books.items():
        facts = StockFacts(available, levels[name].get(inv.sku, history.safety_floor), available)
        lines, _terms = policy.offer(lots, inv.request, sku, facts, calendars[name], inv.distance_km)
        side = report.totals[name]
        side.offered_units += sum(line.quantity for line in lines)
        side.offered_value += sum(line.quantity * line.unit_price for line in lines)
        answers[name] = [asdict(line) for line in lines]
    if answers["current"] != answers["proposed"]:
        report.offer_changes.append({"invitation": inv.id, "at": inv.at, "sku": inv.sku, **answers})


def _replan(books: Mapping[str, Policy], snapshot: PlanSnapshot, report: SandboxReport) -> None:
    recorded = parse_problem(snapshot.problem)
    outcome = {}
    for name, policy in books.items():
        terms = {rid: policy.request_terms(facts) for rid, facts in snapshot.requests.items()}
        problem = _under(policy, recorded, terms)
        plan = solve(problem)
        distances = {lane.from_node: lane.distance_km for lane in problem.lanes}
        offers = [
            ReceivedOffer(
                o.id, o.node, o.node, o.sku, "", o.quantity, o.shelf_life_days, o.min_order_quantity, o.unit_price
            )
            for o in problem.offers
        ]
        shares = {
            a.offer: terms[a.request].scenario.requester_freight_share for a in plan.allocations if a.request in terms
        }
        actions = plan_actions(plan, offers, distances, policy, "", {}, shares)
        unfilled = sum(s.quantity for s in plan.shortages)
        compensation = sum(a.freight_compensation for a in actions.acceptances)
        side = report.totals[name]
        side.plan_cost += plan.total_cost
        side.unfilled += unfilled
        side.compensation += compensation
        outcome[name] = {
            "total_cost": plan.total_cost,
            "unfilled": unfilled,
            "compensation": compensation,
            "allocations": sorted((a.request, a.offer, a.quantity) for a in plan.allocations),
        }
    if outcome["current"] != outcome["proposed"]:
        report.plan_changes.append({"plan_record": snapshot.record_seq, "at": snapshot.at, **outcome})


def _under(policy: Policy, recorded: MatchingProblem, terms: Mapping[str, RequestTerms]) -> MatchingProblem:
    """The recorded problem with this book's lane costs and each request's scenario terms and penalty."""
    lanes = tuple(
        Lane(
            lane.from_node,
            lane.to_node,
            lane.distance_km,
            policy.transit_hours(lane.distance_km),
            policy.cost_per_unit(lane.distance_km),
            policy.fixed_cost(lane.distance_km),
        )
        for lane in recorded.lanes
    )
    requests = tuple(
        r
        if r.id not in terms
        else Request(
            r.id,
            r.node,
            r.sku,
            r.quantity,
            terms[r.id].min_shelf_life_days,
            terms[r.id].max_transit_hours,
            terms[r.id].shortage_penalty,
        )
        for r in recorded.requests
    )
    return MatchingProblem(recorded.radius_km, requests, recorded.offers, lanes)
