"""The statement of format 2 (docs/settlement.md): money paid is money made, on goods actually delivered, and
each reference is settled once.

- A delivered transfer (its `received` units, on both books, recorded before the statement's cut) creates
  `gain = max(0, units x (unit_value - cost_basis) - freight)`, with `unit_value` = min(the requester's sale
  price, the alternative supply cost the plan's rule book states for the SKU). Offers not used, and goods
  not delivered, create nothing.
- A plan's game is the sum of what its delivered transfers made: v_p(S) = the gains of the transfers whose
  requester and supplier are both in S. Every lane of a plan leaves one supplier, so the game is a sum of
  two-player games and every method shares each transfer's gain between its two parties (Shapley and the
  nucleolus: half each); the pair checks its own line from its own two records.
- The invoice (transfer price, freight) stands; a `profit_split` flow per acceptance moves the difference
  between what the invoice gave the supplier and its fair part, either way.
- A statement settles the references no final statement has settled (`after` names those it builds on),
  and a correcting statement gives back the flows of the one it corrects.

Pure: records, the terms and the cut in, the statement out.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from chain.canonical import canonical_json
from chain.records import RecordType
from negotiation.matching import Allocation, ProblemError, cost_breakdown, parse_problem
from settlement.contribution import Dealings, FlowKind, Metrics, Period, Record, Transfer, contributions
from settlement.document import (
    REALISED_FORMAT,
    CoreCheck,
    DeliveredValue,
    MemberInputs,
    MemberShare,
    MoneyFlow,
    PairSection,
    Statement,
)
from settlement.games import MAX_ENUMERATED, ConsortiumGame, PlanGame, core_check_by_plan, nucleolus
from settlement.money import Payment, net_positions, rounded_in_core, settle
from settlement.statement import (
    MAX_LISTED,
    SettlementTerms,
    _coalitions,
    _flow,
    every_coalition_checked,
    fraction_text,
    money_flows,
    statement_hash,
)


class StatementStopped(ValueError):
    """A statement that must not be paid as computed: a plan whose recorded cost does not hold, a member worse
    off in cash than without the plan. The message names the plan and the member."""


@dataclass(frozen=True)
class ValueTerms:
    """What one rule book says a delivered unit is worth to its requester at most: the alternative supply
    cost per SKU (minor units per unit)."""

    alternative_supply_cost: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Cut:
    """Where a statement stops and what it builds on: its proposer, the moment the period was closed (records
    at or after it wait for a later statement), the final statements whose references it leaves out (id ->
    the references they settled) and the final statement it corrects, if any."""

    proposer: str
    at: str
    after: Mapping[str, Sequence[str]] = field(default_factory=dict)
    corrects: Statement | None = None


@dataclass(frozen=True)
class PlanRef:
    plan: str  # "<requester>#<seq>"
    rule_version: str


def proposal_id(proposer: str, hash_: str) -> str:
    """A format-2 statement's id: its proposer and its hash, so two proposals for one period never collide."""
    return "0x" + hashlib.sha256(canonical_json({"proposer": proposer, "statement_hash": hash_})).hexdigest()


def checked_plans(records_by_member: Mapping[str, Sequence[Record]]) -> dict[str, PlanRef]:
    """offer id -> the plan that allocated it, for every plan record whose recorded cost its own allocations
    bear out (StatementStopped naming the plan otherwise): a plan's cost is recomputed, never trusted."""
    out: dict[str, PlanRef] = {}
    for records in records_by_member.values():
        for r in records:
            if r.get("type") != RecordType.PLAN:
                continue
            ref = PlanRef(f"{r['node']}#{r['seq']}", str(r["plan"].get("rule_version", "")))
            allocations = _check_plan_cost(r, ref.plan)
            for a in allocations:
                out.setdefault(a.offer, ref)
    return out


def _check_plan_cost(record: Record, plan: str) -> list[Allocation]:
    try:
        problem = parse_problem(record["plan"]["problem"])
        answer = record["plan"]["answer"]
        allocations = [Allocation(a["request"], a["offer"], int(a["quantity"])) for a in answer["allocations"]]
        recorded = int(answer["total_cost"])
        cost = cost_breakdown(problem, allocations)["total"]
    except (KeyError, TypeError, ValueError, ProblemError) as exc:
        raise StatementStopped(f"plan {plan}: its record cannot be read ({exc})") from exc
    if cost != recorded:
        raise StatementStopped(f"plan {plan}: recorded total_cost {recorded}, its own allocations cost {cost}")
    return allocations


def settlement_keys(dealings: Dealings) -> dict[str, object]:
    """Every reference the dealings settle, by key, with the dealing: what a later statement leaves out."""
    keys: dict[str, object] = {}
    for t in dealings.transfers:
        keys[f"transfer:{t.acceptance}"] = t
    for s in dealings.sales:
        keys[f"{FlowKind.CONSIGNMENT_SALE}:{s.reference}:{s.owner}:{s.sku}:{s.lot}"] = s
    for a in dealings.awards:
        keys[f"{FlowKind.ARBITRATION_AWARD}:{a.ruling}"] = a
    for j in dealings.joint_shares:
        keys[f"{FlowKind.JOINT_PURCHASE_SHARE}:{j.purchase}:{j.participant}"] = j
    for c in dealings.loans:
        keys[f"{c.kind}:{c.reference}"] = c
    return keys


def unsettled(dealings: Dealings, settled: frozenset[str]) -> Dealings:
    """The dealings whose references no final statement has settled."""
    left = {id(d) for key, d in settlement_keys(dealings).items() if key not in settled}
    return Dealings(
        [t for t in dealings.transfers if id(t) in left],
        [s for s in dealings.sales if id(s) in left],
        [a for a in dealings.awards if id(a) in left],
        [j for j in dealings.joint_shares if id(j) in left],
        [c for c in dealings.loans if id(c) in left],
    )


def delivered_value(t: Transfer, plan: str, terms: ValueTerms) -> DeliveredValue:
    """The gain of one delivered transfer (not yet split). A consignment transfer, or one whose unit value is
    unknown (no sale price and no alternative supply cost), creates none: its invoice stands."""
    known = [p for p in (t.sale_price or None, terms.alternative_supply_cost.get(t.sku)) if p is not None]
    unit_value = min(known) if known and not t.consignment else 0
    cost_basis = t.unit_price if t.cost_basis is None else t.cost_basis
    gain = max(0, t.received * (unit_value - cost_basis) - t.freight_compensation) if unit_value else 0
    return {
        "acceptance": t.acceptance,
        "plan": plan,
        "requester": t.requester,
        "supplier": t.supplier,
        "sku": t.sku,
        "units": t.received,
        "unit_price": 0 if t.consignment else t.unit_price,
        "freight": t.freight_compensation,
        "cost_basis": cost_basis,
        "unit_value": unit_value,
        "gain": gain,
        "requester_gain": gain,
        "supplier_gain": 0,
    }


def plan_games_of(lines: Sequence[DeliveredValue]) -> list[PlanGame]:
    """Each plan's game over what its delivered transfers made, in plan order."""
    by_plan: dict[str, list[DeliveredValue]] = defaultdict(list)
    for line in lines:
        by_plan[line["plan"]].append(line)
    games = []
    for plan, own in sorted(by_plan.items(), key=lambda kv: kv[0].lower()):
        players = {x["requester"] for x in own} | {x["supplier"] for x in own}

        def value(coalition: frozenset[str], own: list[DeliveredValue] = own) -> int:
            return sum(x["gain"] for x in own if x["requester"] in coalition and x["supplier"] in coalition)

        games.append(PlanGame.of(plan, players, value, own[0]["requester"]))
    return games


def plan_shares(game: PlanGame, terms: SettlementTerms, weight: Mapping[str, Fraction]) -> dict[str, Fraction]:
    """A plan's value shared among its own players by the method: `proportional` by the members' weights
    (equally when all are 0); members outside the plan get nothing of it."""
    if terms.method == "shapley":
        return game.shapley()
    if terms.method == "core":
        return nucleolus(game.players, game.masks())
    total = sum((weight.get(p, Fraction(0)) for p in game.players), Fraction(0))
    if total == 0:
        return {p: Fraction(game.grand, len(game.players)) for p in game.players}
    return {p: game.grand * weight.get(p, Fraction(0)) / total for p in game.players}


def split_lines(
    lines: Sequence[DeliveredValue], games: Sequence[PlanGame], terms: SettlementTerms, weight: Mapping[str, Fraction]
) -> tuple[list[DeliveredValue], dict[str, Fraction]]:
    """Each transfer's gain split between its two parties. With `shapley` and `core` a supplier's exact share
    of a plan is spread over its transfers of the plan by their gains and floored per transfer (the pair's
    own line; the requester keeps the odd unit). With `proportional` the plan's shares are first rounded by
    `rounded_in_core` (kept in the plan's core when they are in it exactly), and a supplier's whole share is
    spread over its transfers by their gains, by the largest remainder. Returns the lines and each member's
    exact share."""
    exact: dict[str, Fraction] = defaultdict(Fraction)
    out = []
    for game in games:
        x = plan_shares(game, terms, weight)
        for player, share in x.items():
            exact[player] += share
        whole: Mapping[str, Fraction | int] = x
        if terms.method == "proportional":
            whole = rounded_in_core(ConsortiumGame([game]), x, game.grand)
        own = [line for line in lines if line["plan"] == game.plan]
        for supplier in sorted({line["supplier"] for line in own}):
            out += _spread(Fraction(whole[supplier]), [line for line in own if line["supplier"] == supplier])
    return sorted(out, key=lambda x: x["acceptance"]), dict(exact)


def _spread(share: Fraction, mine: Sequence[DeliveredValue]) -> list[DeliveredValue]:
    """A supplier's share of a plan over its transfers of it, by their gains (equally when they made none):
    each part floored, and what a whole share leaves over goes a unit each to the largest fractional parts
    (ties: the smaller acceptance)."""
    made = sum(line["gain"] for line in mine)
    parts = {
        line["acceptance"]: share * (Fraction(line["gain"], made) if made else Fraction(1, len(mine))) for line in mine
    }
    floors = {a: p.numerator // p.denominator for a, p in parts.items()}
    if share.denominator == 1:
        left = int(share) - sum(floors.values())
        for a in sorted(parts, key=lambda a: (-(parts[a] - floors[a]), a))[:left]:
            floors[a] += 1
    out = []
    for line in mine:
        shared = line.copy()
        supplier = floors[line["acceptance"]]
        shared["supplier_gain"], shared["requester_gain"] = supplier, line["gain"] - supplier
        out.append(shared)
    return out


def split_flows(lines: Sequence[DeliveredValue]) -> list[MoneyFlow]:
    """The split as money, per acceptance: the supplier's fair part less what the invoice already gave it
    (units x (transfer price - cost basis)); paid by the requester, or given back to it when negative."""
    flows = []
    for line in lines:
        if not line["unit_value"]:
            continue
        move = line["supplier_gain"] - line["units"] * (line["unit_price"] - line["cost_basis"])
        if move > 0:
            flows.append(_flow(FlowKind.PROFIT_SPLIT, line["requester"], line["supplier"], move, line["acceptance"]))
        elif move < 0:
            flows.append(_flow(FlowKind.PROFIT_SPLIT, line["supplier"], line["requester"], -move, line["acceptance"]))
    return flows


def no_member_worse_off(lines: Sequence[DeliveredValue]) -> None:
    """Each member's position on each plan, goods valued at their unit value and every flow of the plan
    counted, is at least what it would have without the plan (0); StatementStopped naming both otherwise.
    It fails only where a transfer lost money (its goods worth less to the requester than their cost basis
    and freight): no split can make that whole."""
    position: dict[tuple[str, str], int] = defaultdict(int)
    for line in lines:
        if not line["unit_value"]:
            continue
        actual = line["units"] * (line["unit_value"] - line["cost_basis"]) - line["freight"]
        position[(line["supplier"], line["plan"])] += line["supplier_gain"]
        position[(line["requester"], line["plan"])] += actual - line["supplier_gain"]
    for (member, plan), amount in sorted(position.items()):
        if amount < 0:
            raise StatementStopped(
                f"member {member} would be {-amount} minor units worse off in cash on plan {plan} than without it"
            )


def realised_core_check(game: ConsortiumGame, share: Mapping[str, int], lines: Sequence[DeliveredValue]) -> CoreCheck:
    """Every coalition checked up to MAX_ENUMERATED members (20). Beyond, each plan's rounded parts (what its
    transfers' lines give its players) are checked against its own game: `in_core` true when that proves the
    shares in the core, null when it cannot tell, never a false alarm; whatever the method."""
    if len(game.members) <= MAX_ENUMERATED:
        return every_coalition_checked(game, share)
    parts: list[dict[str, Fraction | int]] = []
    for g in game.plans:
        mine: dict[str, Fraction | int] = defaultdict(int)
        for line in lines:
            if line["plan"] == g.plan and line["gain"]:
                mine[line["requester"]] += line["requester_gain"]
                mine[line["supplier"]] += line["supplier_gain"]
        parts.append(dict(mine))
    by_plan = core_check_by_plan(game.plans, parts, dict(share))
    return {"in_core": by_plan.in_core, "worst_coalition": [], "deficit": None, "scope": "each plan"}


def pair_sections(lines: Sequence[DeliveredValue], flows: Sequence[MoneyFlow]) -> list[PairSection]:
    """Each pair of members with a delivered transfer or a flow between them: the net the second (in
    lower-case address order) receives from the first, and the commitment to their lines and flows."""
    keys = {_pair(x["requester"], x["supplier"]) for x in lines} | {_pair(f["from"], f["to"]) for f in flows}
    out: list[PairSection] = []
    for a, b in sorted(keys, key=lambda k: (k[0].lower(), k[1].lower())):
        own_lines = [x for x in lines if _pair(x["requester"], x["supplier"]) == (a, b)]
        own_flows = [f for f in flows if _pair(f["from"], f["to"]) == (a, b)]
        net = sum(f["amount"] if f["to"] == b else -f["amount"] for f in own_flows)
        out.append({"members": [a, b], "net": net, "commitment": pair_commitment(own_lines, own_flows)})
    return out


def pair_commitment(lines: Sequence[DeliveredValue], flows: Sequence[MoneyFlow]) -> str:
    """What a pair section commits to: its delivered transfers' lines and its flows, in the statement's order."""
    return "0x" + hashlib.sha256(canonical_json({"transfers": list(lines), "flows": list(flows)})).hexdigest()


def _pair(x: str, y: str) -> tuple[str, str]:
    a, b = sorted((x, y), key=str.lower)
    return a, b


def reversed_flows(corrected: Statement) -> list[MoneyFlow]:
    """The flows of a final statement given back by the statement that corrects it."""
    return [
        _flow(FlowKind.REVERSAL, f["to"], f["from"], f["amount"], f"{corrected['id']}:{f['kind']}:{f['reference']}")
        for f in corrected["flows"]
    ]


@dataclass(frozen=True)
class _Parts:
    """What the statement is assembled from."""

    members: list[str]
    metrics: dict[str, Metrics]
    lines: list[DeliveredValue]
    games: list[PlanGame]
    exact: dict[str, Fraction]
    flows: list[MoneyFlow]
    settles: list[str]


def _parts(
    records_by_member: Mapping[str, Sequence[Record]],
    period: Period,
    terms: SettlementTerms,
    books: Mapping[str, ValueTerms],
    rule_version: str,
    cut: Cut,
) -> _Parts:
    members = sorted(records_by_member, key=str.lower)
    before_cut = {m: [r for r in rs if str(r.get("at")) < cut.at] for m, rs in records_by_member.items()}
    settled = frozenset(k for keys in cut.after.values() for k in keys)
    if cut.corrects is not None:
        settled -= set(cut.corrects.get("settles") or [])
    dealings = unsettled(Dealings.of(before_cut, period), settled)
    plans = checked_plans(before_cut)
    lines = []
    for t in dealings.transfers:
        ref = plans.get(t.offer or "", PlanRef(f"transfer {t.acceptance}", rule_version))
        if ref.rule_version not in books:
            raise StatementStopped(f"plan {ref.plan}: its rule book {ref.rule_version} is not known")
        lines.append(delivered_value(t, ref.plan, books[ref.rule_version]))
    metrics = contributions(before_cut, period, terms.metric_terms, dealings)
    weight = {m: sum((w * metrics[m].metric(n) for n, w in terms.weights.items()), Fraction(0)) for m in metrics}
    games = plan_games_of([x for x in lines if x["gain"]])
    split, exact = split_lines(lines, games, terms, weight)
    split += [x for x in lines if not x["gain"]]
    split.sort(key=lambda x: x["acceptance"])
    no_member_worse_off(split)
    flows = money_flows(dealings) + split_flows(split)
    if cut.corrects is not None:
        flows += reversed_flows(cut.corrects)
    flows.sort(key=lambda f: (f["kind"], f["reference"], f["from"], f["to"]))
    strangers = (set(metrics) | {p for g in games for p in g.players}) - set(members)
    if strangers:
        raise ValueError(f"the period's records name {sorted(strangers, key=str.lower)}, not among the members read")
    return _Parts(members, metrics, split, games, exact, flows, sorted(settlement_keys(dealings)))


def _member_line(m: str, parts: _Parts, net: Mapping[str, int]) -> MemberShare:
    received = sum(
        x["units"] * (x["unit_value"] - x["unit_price"]) - x["freight"]
        for x in parts.lines
        if x["requester"] == m and x["unit_value"]
    )
    supplied = sum(
        x["units"] * (x["unit_price"] - x["cost_basis"]) for x in parts.lines if x["supplier"] == m and x["unit_value"]
    )
    share = sum(x["requester_gain"] for x in parts.lines if x["requester"] == m) + sum(
        x["supplier_gain"] for x in parts.lines if x["supplier"] == m
    )
    return {
        "member": m,
        "metrics": parts.metrics.get(m, Metrics()).as_dict(),
        "exact_share": fraction_text(parts.exact.get(m, Fraction(0))),
        "share": share,
        "captured": received + supplied,
        "gains": {"from_transfers_received": received, "from_stock_supplied": supplied, "share_of_joint_gain": share},
        "net": net.get(m, 0),
    }


def build_realised_statement(
    records_by_member: Mapping[str, Sequence[Record]],
    period: Period,
    rule_version: str,
    terms: SettlementTerms,
    books: Mapping[str, ValueTerms],
    cut: Cut,
    inputs: Mapping[str, MemberInputs] | None = None,
) -> Statement:
    """The format-2 statement (status `proposed`, no signatures), its hash and id included. `books` holds the
    value terms of every rule book a plan may name (by version), the statement's own included. A cut before the
    period opens leaves nothing of it to settle."""
    parts = _parts(records_by_member, period, terms, books, rule_version, cut)
    net = net_positions(Payment(f["from"], f["to"], f["amount"]) for f in parts.flows)
    share = {m: sum(x["requester_gain"] for x in parts.lines if x["requester"] == m) for m in parts.members}
    for x in parts.lines:
        share[x["supplier"]] = share.get(x["supplier"], 0) + x["supplier_gain"]
    game = ConsortiumGame(parts.games, others=tuple(parts.members))
    statement: Statement = {
        "format": REALISED_FORMAT,
        "id": "",
        "period": period.as_dict(),
        "rule_version": rule_version,
        "method": terms.method,
        "status": "proposed",
        "surplus": game.surplus,
        "plans": [{"plan": g.plan, "players": list(g.players), "value": g.grand} for g in parts.games],
        "members": [_member_line(m, parts, net) for m in parts.members],
        "coalitions": _coalitions(game) if len(parts.members) <= MAX_LISTED else None,
        "core_check": realised_core_check(game, share, parts.lines),
        "flows": parts.flows,
        "payments": [{"from": p.payer, "to": p.payee, "amount": p.amount} for p in settle(net)],
        "inputs": dict(sorted((inputs or {}).items())),
        "statement_hash": "",
        "signatures": [],
        "proposer": cut.proposer,
        "cut": cut.at,
        "after": sorted(cut.after),
        "corrects": None if cut.corrects is None else cut.corrects["id"],
        "transfers": parts.lines,
        "settles": parts.settles,
        "pairs": pair_sections(parts.lines, parts.flows),
    }
    statement["statement_hash"] = statement_hash(statement)
    statement["id"] = proposal_id(cut.proposer, statement["statement_hash"])
    return statement


def realised_id(statement: Statement) -> str:
    """The id a format-2 statement must carry."""
    return proposal_id(str(statement.get("proposer", "")), statement["statement_hash"])


def settled_twice(finals: Sequence[Statement]) -> list[str]:
    """What is wrong across a set of final statements: a reference two of them settle (unless the later
    corrects the earlier), a statement built on one that is not among them, a format-2 id that is not its
    proposer's and hash's. [] when each reference is settled once."""
    problems = []
    by_id = {s["id"]: s for s in finals}
    first: dict[str, str] = {}
    for s in sorted(finals, key=lambda s: (_depth(s, by_id), str(s.get("cut", "")), s["id"])):
        if s.get("format") != REALISED_FORMAT:
            continue
        if s["id"] != realised_id(s):
            problems.append(f"statement {s['id']}: its id is not that of its proposer and hash")
        problems += [
            f"statement {s['id']}: builds on {a}, which is not final" for a in s.get("after", []) if a not in by_id
        ]
        corrected = s.get("corrects")
        for key in s.get("settles", []):
            earlier = first.get(key)
            if earlier is not None and earlier != corrected:
                problems.append(f"{key}: settled by {earlier} and again by {s['id']}")
            first[key] = s["id"]
    return problems


def _depth(statement: Statement, by_id: Mapping[str, Statement], seen: frozenset[str] = frozenset()) -> int:
    """How many final statements this one builds on, one upon the other: a statement is read after those."""
    below = [by_id[a] for a in statement.get("after", []) if a in by_id and a not in seen]
    return 1 + max((_depth(b, by_id, seen | {statement["id"]}) for b in below), default=0)
