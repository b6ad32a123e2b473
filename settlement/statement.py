"""The settlement statement of a period (docs/settlement.md): the surplus the period's plans created, each
member's share of it by the rule book's method, the core check, every money flow between members, and the
few payments that settle them, as one canonical JSON document whose hash every member signs.

Pure: the members' verified anchored records and the rule book's terms in, the statement out. Any member
(or an auditor) recomputes it from the same records and gets the same bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from chain.canonical import canonical_json
from chain.records import RecordType
from negotiation.rules.book import RuleBook
from settlement.contribution import (
    Dealings,
    FlowKind,
    Metrics,
    Period,
    PeriodDates,
    Record,
    Terms,
    contributions,
)
from settlement.document import (
    STATEMENT_FORMAT,
    Coalition,
    CoreCheck,
    MemberInputs,
    Method,
    MoneyFlow,
    Statement,
    signed_content,
)
from settlement.games import ConsortiumGame, PlanGame, nucleolus
from settlement.money import Payment, largest_remainder, net_positions, settle
from settlement.plans import plan_game

# Coalitions are listed in the statement up to this many members (4,095 of them at 12).
MAX_LISTED = 12


@dataclass(frozen=True)
class SettlementTerms:
    """The rule book's `settlement` section, as plain data."""

    method: Method = "shapley"
    weights: Mapping[str, Fraction] = field(default_factory=lambda: {"value_supplied": Fraction(1)})
    metric_terms: Terms = field(default_factory=Terms)


def fraction_text(x: Fraction) -> str:
    """An exact rational as text: "7", "-3", "200/3"."""
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


def shares(game: ConsortiumGame, metrics: Mapping[str, Metrics], terms: SettlementTerms) -> dict[str, Fraction]:
    """Each member's exact share of the surplus by the method (they add up to the surplus exactly)."""
    members = sorted(set(game.members) | set(metrics))
    surplus = game.surplus
    if terms.method == "shapley":
        phi = game.shapley()
        return {m: phi.get(m, Fraction(0)) for m in members}
    if terms.method == "core":
        # The nucleolus of each plan's game, summed: in the core of the whole game whenever every plan's core
        # is non-empty (a sum of core allocations of games is in the core of their sum), and exactly
        # computable for any number of members, since each plan has only a few.
        out = dict.fromkeys(members, Fraction(0))
        for g in game.plans:
            for player, x in nucleolus(g.players, g.masks()).items():
                out[player] += x
        return out
    weight = {m: sum((w * metrics[m].metric(name) for name, w in terms.weights.items()), Fraction(0)) for m in members}
    total = sum(weight.values(), Fraction(0))
    if total == 0:
        return {m: Fraction(surplus, len(members)) for m in members} if members else {}
    return {m: surplus * weight[m] / total for m in members}


def money_flows(dealings: Dealings) -> list[MoneyFlow]:
    """Every money flow of the period between members, itemised (minor units, payer -> payee)."""
    flows: list[MoneyFlow] = []
    for t in dealings.transfers:
        if not t.consignment and t.received * t.unit_price:
            flows.append(
                _flow(FlowKind.TRANSFER_PRICE, t.requester, t.supplier, t.received * t.unit_price, t.acceptance)
            )
        if t.freight_compensation:
            flows.append(
                _flow(FlowKind.FREIGHT_COMPENSATION, t.requester, t.supplier, t.freight_compensation, t.acceptance)
            )
    for sale in dealings.sales:
        flows.append(
            _flow(FlowKind.CONSIGNMENT_SALE, sale.holder, sale.owner, sale.units * sale.unit_price, sale.reference)
        )
    for a in dealings.awards:
        flows.append(_flow(FlowKind.ARBITRATION_AWARD, a.payer, a.payee, a.amount, a.ruling))
    for j in dealings.joint_shares:
        flows.append(_flow(FlowKind.JOINT_PURCHASE_SHARE, j.participant, j.buyer, j.amount, j.purchase))
    for c in dealings.loans:
        if c.amount:
            flows.append(_flow(c.kind, c.borrower, c.lender, c.amount, c.reference))
    return sorted(flows, key=lambda f: (f["kind"], f["reference"], f["from"], f["to"]))


def _flow(kind: FlowKind, payer: str, payee: str, amount: int, reference: str) -> MoneyFlow:
    return {"kind": kind, "from": payer, "to": payee, "amount": amount, "reference": reference}


def plan_games(records_by_member: Mapping[str, Sequence[Record]], period: Period) -> list[PlanGame]:
    """The game of every plan recorded in the period, in (node, seq) order."""
    plans = [
        r
        for records in records_by_member.values()
        for r in records
        if r.get("type") == RecordType.PLAN and period.holds(str(r.get("at")))
    ]
    return [plan_game(r) for r in sorted(plans, key=lambda r: (str(r["node"]).lower(), int(r["seq"])))]


def build_statement(
    records_by_member: Mapping[str, Sequence[Record]],
    period: Period,
    rule_version: str,
    terms: SettlementTerms,
    inputs: Mapping[str, MemberInputs] | None = None,
) -> Statement:
    """The statement (status `proposed`, no signatures), its `statement_hash` included. The members are those
    whose records are given (the registry's active members): every address a plan, a transfer, a sale or an
    award of the period names must be one of them (ValueError naming it otherwise)."""
    members = sorted(records_by_member, key=str.lower)
    dealings = Dealings.of(records_by_member, period)
    metrics = contributions(records_by_member, period, terms.metric_terms, dealings, penalty_valued=True)
    games = plan_games(records_by_member, period)
    game = ConsortiumGame(games, others=tuple(members))
    strangers = (set(metrics) | set(game.members)) - set(members)
    if strangers:
        raise ValueError(f"the period's records name {sorted(strangers, key=str.lower)}, not among the members read")
    exact = shares(game, metrics, terms)
    exact = {m: exact.get(m, Fraction(0)) for m in members}
    share = largest_remainder(exact, game.surplus)
    # A plan's value is realised by its requester (it avoided the shortages): the split moves it to the others.
    captured = dict.fromkeys(members, 0)
    for g in games:
        captured[g.requester] = captured.get(g.requester, 0) + g.grand
    flows = money_flows(dealings) + _split_flows(share, captured)
    net = net_positions(Payment(f["from"], f["to"], f["amount"]) for f in flows)
    payments = settle(net)
    statement: Statement = {
        "format": STATEMENT_FORMAT,
        "id": _id_of(period.as_dict(), rule_version, members),
        "period": period.as_dict(),
        "rule_version": rule_version,
        "method": terms.method,
        "status": "proposed",
        "surplus": game.surplus,
        "plans": [{"plan": g.plan, "players": list(g.players), "value": g.grand} for g in games],
        "members": [
            {
                "member": m,
                "metrics": metrics.get(m, Metrics()).as_dict(),
                "exact_share": fraction_text(exact[m]),
                "share": share[m],
                "captured": captured.get(m, 0),
                "net": net.get(m, 0),
            }
            for m in members
        ],
        "coalitions": _coalitions(game) if len(members) <= MAX_LISTED else None,
        "core_check": _core_check(game, share, terms.method),
        "flows": flows,
        "payments": [{"from": p.payer, "to": p.payee, "amount": p.amount} for p in payments],
        "inputs": dict(sorted((inputs or {}).items())),
        "statement_hash": "",
        "signatures": [],
    }
    statement["statement_hash"] = statement_hash(statement)
    return statement


def _split_flows(share: Mapping[str, int], captured: Mapping[str, int]) -> list[MoneyFlow]:
    """The profit split as flows: who captured more than its share pays the difference to those who got less
    (largest first, as `settle` pairs them)."""
    net = {m: share[m] - captured.get(m, 0) for m in share}
    return [_flow(FlowKind.PROFIT_SPLIT, p.payer, p.payee, p.amount, "surplus") for p in settle(net)]


def _coalitions(game: ConsortiumGame) -> list[Coalition]:
    members = game.members
    values = game.coalition_values()
    out: list[Coalition] = []
    for mask in sorted(values, key=lambda k: (k.bit_count(), k)):
        out.append({"members": [m for i, m in enumerate(members) if mask >> i & 1], "value": values[mask]})
    return out


# Format 1 enumerated every coalition up to 16 members: its statements are recomputed as they were made.
FORMAT_1_ENUMERATED = 16


def every_coalition_checked(game: ConsortiumGame, share: Mapping[str, int]) -> CoreCheck:
    """The core check over every proper coalition, as the statement shows it."""
    check = game.core_check(share)
    return {
        "in_core": check.in_core,
        "worst_coalition": list(check.worst_coalition),
        "deficit": fraction_text(check.deficit),
        "scope": "all coalitions",
    }


def _core_check(game: ConsortiumGame, share: Mapping[str, int], method: Method) -> CoreCheck:
    """Every coalition checked up to FORMAT_1_ENUMERATED members. Beyond, for the methods that add up plan by
    plan (shapley, core), each plan's allocation is checked against its own game: if every plan's is in its
    core, the sum is in the whole game's core (sufficient, not necessary); proportional shares are not checked."""
    if len(game.members) <= FORMAT_1_ENUMERATED:
        return every_coalition_checked(game, share)
    if method == "proportional":
        return {"in_core": None, "worst_coalition": [], "deficit": None, "scope": "not checked"}
    worst: tuple[Fraction, list[str]] | None = None
    for g in game.plans:
        allocation = g.shapley() if method == "shapley" else nucleolus(g.players, g.masks())
        c = ConsortiumGame([g]).core_check(allocation)
        if c.coalitions_checked and (worst is None or c.deficit > worst[0]):
            worst = (c.deficit, list(c.worst_coalition))
    if worst is None:
        worst = (Fraction(0), [])
    return {
        "in_core": worst[0] <= 0,
        "worst_coalition": worst[1],
        "deficit": fraction_text(worst[0]),
        "scope": "each plan",
    }


def statement_id(statement: Statement) -> str:
    """Names the period, its rule book and its members: the same id on every node."""
    return _id_of(statement["period"], statement["rule_version"], [m["member"] for m in statement["members"]])


def _id_of(period: PeriodDates, rule_version: str, members: Sequence[str]) -> str:
    basis = {"period": period, "rule_version": rule_version, "members": list(members)}
    return "0x" + hashlib.sha256(canonical_json(basis)).hexdigest()


def statement_hash(statement: Mapping[str, object]) -> str:
    """sha256 of the canonical JSON of the statement's signed parts (all but `status`, `statement_hash` and
    `signatures`): what every member signs; the status and the signatures change as it is agreed, the content
    does not. A document as received is hashed the same way: only the parts of the statement model count."""
    return "0x" + hashlib.sha256(canonical_json(signed_content(statement))).hexdigest()


def terms_of(book: RuleBook) -> SettlementTerms:
    """The rule book's `settlement` section as SettlementTerms."""
    s = book.settlement
    return SettlementTerms(
        method=s.method,
        weights={name: Fraction(w) for name, w in s.weights.items()},
        metric_terms=Terms(Fraction(s.cost_of_capital_per_year), s.max_idle_days),
    )
