"""What each member contributed in a period, from the members' anchored ledger records alone
(docs/settlement.md, section 1). Pure: records in (plain dicts, as `/audit/records` serves them), integers
and exact ratios out.

A transfer is seen from both sides: the supplier's `transfer_out` (price, freight compensation) and the
requester's `transfer_in` (what arrived, whether the supplier kept ownership: consignment). It belongs to
the period in which it was received (the `transfer_in` record's time).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from fractions import Fraction
from functools import cached_property
from typing import Any

from typing_extensions import TypedDict

from chain.records import RecordType
from settlement.lending import kept_fee, return_fee, sale_amount

Record = Mapping[str, Any]
# A member's metrics as the statement and the contribution view show them: integers, ratios as decimal text
# (turnover) and units by SKU.
MetricValues = dict[str, int | str | dict[str, int]]
SECONDS_PER_HOUR = 3600
DAYS_PER_YEAR = 365
ON_HAND = ("available", "reserved")


# A period as documents show it: ISO dates, both included.
PeriodDates = TypedDict("PeriodDates", {"from": str, "to": str})


@dataclass(frozen=True)
class Period:
    """From the first moment of `start` to the first moment after `end` (dates, UTC, both included)."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"a period ends on or after it starts: {self.start} .. {self.end}")

    @cached_property
    def opens(self) -> str:
        return _iso(datetime.combine(self.start, time(0), UTC))

    @cached_property
    def closes(self) -> str:
        return _iso(datetime.combine(self.end + timedelta(days=1), time(0), UTC))

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def holds(self, at: str) -> bool:
        return self.opens <= at < self.closes

    def as_dict(self) -> PeriodDates:
        return {"from": self.start.isoformat(), "to": self.end.isoformat()}


@dataclass(frozen=True)
class Terms:
    """The rule book's `settlement` terms the metrics need."""

    cost_of_capital_per_year: Fraction = Fraction(8, 100)
    max_idle_days: int = 90


@dataclass(frozen=True)
class Transfer:
    """One transfer as both books tell it."""

    acceptance: str
    supplier: str
    requester: str
    sku: str
    lot: str
    offer: str | None
    received: int
    unit_price: int
    freight_compensation: int
    consignment: bool
    received_at: str
    # What the supplier's own books say one unit cost it, and what the requester sells one for: the value of a
    # delivered unit (docs/settlement.md, section 2). None in records written before they were carried.
    cost_basis: int | None = None
    sale_price: int | None = None


@dataclass
class Metrics:
    units_supplied: dict[str, int] = field(default_factory=dict)
    units_received: dict[str, int] = field(default_factory=dict)
    value_supplied: int = 0
    value_received: int = 0
    consignment_unit_hours: int = 0
    reserved_unit_hours: int = 0
    shortages_avoided: int = 0
    capital_freed: int = 0
    freight_paid: int = 0
    freight_compensated: int = 0
    awards_paid: int = 0
    awards_received: int = 0
    loan_fees_paid: int = 0
    loan_fees_received: int = 0
    joint_purchase_paid: int = 0
    joint_purchase_received: int = 0
    units_issued: int = 0
    turnover: Fraction = Fraction(0)
    turnover_without_transfers: Fraction = Fraction(0)

    def as_dict(self) -> MetricValues:
        out: MetricValues = dict(self.__dict__)
        out["units_supplied"] = dict(sorted(self.units_supplied.items()))
        out["units_received"] = dict(sorted(self.units_received.items()))
        out["turnover"] = ratio_text(self.turnover)
        out["turnover_without_transfers"] = ratio_text(self.turnover_without_transfers)
        return out

    def metric(self, name: str) -> int:
        """An integer metric by name, for weights (`units_supplied` sums over SKUs)."""
        value = getattr(self, name)
        return sum(value.values()) if isinstance(value, dict) else int(value)


def ratio_text(x: Fraction, places: int = 4) -> str:
    """An exact ratio as a decimal string, rounded half to even at `places` decimals (no floats involved)."""
    scaled = round(x * 10**places)
    sign, scaled = ("-", -scaled) if scaled < 0 else ("", scaled)
    whole, frac = divmod(scaled, 10**places)
    return f"{sign}{whole}.{frac:0{places}d}"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _seconds(at: str) -> int:
    """Whole seconds since the epoch of a record time (YYYY-MM-DDTHH:MM:SS.ffffffZ, UTC). A time without
    its Z would be read in the machine's own zone: refused, so every machine reads the same second."""
    if not at.endswith("Z"):
        raise ValueError(f"a record time is UTC, written with a Z: {at!r}")
    return int(datetime.fromisoformat(at).timestamp())


def _evidence(record: Record, source: str) -> str | None:
    return next((e["reference"] for e in record.get("evidence", []) if e.get("source") == source), None)


def transfers(records_by_member: Mapping[str, Sequence[Record]], period: Period) -> list[Transfer]:
    """Transfers received in the period, joining the supplier's `transfer_out` and the requester's
    `transfer_in` by acceptance id. Each side counts only from its own books (a `transfer_out` written by
    the supplier, a `transfer_in` by the requester: no member speaks for another). One side missing: the
    transfer is left out (reconcile names it)."""
    outs: dict[str, Record] = {}
    ins: dict[str, Record] = {}
    for records in records_by_member.values():
        for r in records:
            if r.get("type") == RecordType.TRANSFER_OUT and r["node"] == r["transfer"]["supplier"]:
                outs[r["transfer"]["acceptance"]] = r
            elif (
                r.get("type") == RecordType.TRANSFER_IN
                and r["node"] == r["transfer"]["requester"]
                and period.holds(str(r.get("at")))
            ):
                ins[r["transfer"]["acceptance"]] = r
    out = []
    for acceptance, r_in in sorted(ins.items()):
        r_out = outs.get(acceptance)
        if r_out is None:
            continue
        t_in, t_out = r_in["transfer"], r_out["transfer"]
        lines = r_in.get("lines") or [{}]
        out.append(
            Transfer(
                acceptance=acceptance,
                supplier=t_in["supplier"],
                requester=t_in["requester"],
                sku=str(lines[0].get("sku", "")),
                lot=str(lines[0].get("lot", "")),
                offer=_evidence(r_in, "offer"),
                received=int(t_in.get("received", 0)),
                unit_price=int(t_out.get("unit_price", 0)),
                freight_compensation=int(t_out.get("freight_compensation", 0)),
                consignment=any(ln.get("owner") == t_in["supplier"] for ln in r_in.get("lines", [])),
                received_at=str(r_in["at"]),
                cost_basis=_price(t_out.get("cost_basis")),
                sale_price=_price(t_in.get("sale_price")),
            )
        )
    return out


def _price(value: object) -> int | None:
    return None if value is None else int(str(value))


Timeline = list[tuple[int, Sequence[Mapping[str, Any]]]]


LOAN_RECORDS = frozenset({RecordType.LEND, RecordType.BORROW, RecordType.LOAN_RETURN, RecordType.LOAN_SALE})
SALES = frozenset({RecordType.ISSUE, RecordType.BUY_OUT})  # to a customer, or to the holder


def _timeline(records: Sequence[Record], period: Period, skip: frozenset[str] = frozenset()) -> Timeline:
    """(second, lines) of a member's records up to the period's end, in seq order (records of the types in
    `skip` left out): read once, integrated for each metric."""
    closes = period.closes
    ordered = sorted(records, key=lambda r: int(r["seq"]))
    return [
        (_seconds(str(r["at"])), r.get("lines", []))
        for r in ordered
        if str(r["at"]) < closes and r.get("type") not in skip
    ]


@dataclass(frozen=True)
class ConsignmentSale:
    """Units a holder issued (sold) of stock another member owns: the owner is owed the consignment price."""

    holder: str
    owner: str
    sku: str
    lot: str
    units: int
    unit_price: int
    reference: str  # the holder's issue record: "<holder>#<seq>"


def consignment_sales(records_by_member: Mapping[str, Sequence[Record]], period: Period) -> list[ConsignmentSale]:
    """Every issue (a sale to a customer) or buy-out (a sale to the holder) in the period of consigned stock,
    priced at the unit price of the latest consignment
    transfer of that SKU and lot from its owner to its holder received before the sale (0 if there is none:
    the statement then shows a sale at 0, for the partners to dispute)."""
    everything = Period(date(1970, 1, 1), period.end)
    prices: dict[tuple[str, str, str, str], list[tuple[str, int]]] = defaultdict(list)
    for t in transfers(records_by_member, everything):
        if t.consignment:
            prices[(t.supplier, t.requester, t.sku, t.lot)].append((t.received_at, t.unit_price))
    sales = []
    for holder, records in records_by_member.items():
        for r in records:
            if r.get("type") not in SALES or not period.holds(str(r.get("at"))):
                continue
            for ln in r.get("lines", []):
                if ln["owner"] == holder or int(ln["quantity"]) >= 0:
                    continue
                key = (ln["owner"], holder, ln["sku"], ln["lot"])
                earlier = [price for at, price in sorted(prices.get(key, [])) if at <= str(r["at"])]
                sales.append(
                    ConsignmentSale(
                        holder,
                        ln["owner"],
                        ln["sku"],
                        ln["lot"],
                        -int(ln["quantity"]),
                        earlier[-1] if earlier else 0,
                        f"{holder}#{r['seq']}",
                    )
                )
    return sorted(sales, key=lambda x: (x.reference.lower(), x.owner.lower(), x.sku, x.lot))


def _unit_seconds(timeline: Timeline, period: Period, counts: Any) -> int:
    """The integral over the period of the units in the buckets `counts(line)` selects, in unit-seconds."""
    opens, closes = _seconds(period.opens), _seconds(period.closes)
    level, last, total = 0, opens, 0
    for at, lines in timeline:
        delta = sum(int(ln["quantity"]) for ln in lines if counts(ln))
        if at > opens:
            total += level * (at - max(last, opens))
            last = at
        level += delta
    return total + level * (closes - max(last, opens))


def _issued_by_sku(records: Sequence[Record], period: Period) -> dict[str, int]:
    """Units leaving in the period's `issue` records, by SKU."""
    out: dict[str, int] = defaultdict(int)
    for r in records:
        if r.get("type") == RecordType.ISSUE and period.holds(str(r.get("at"))):
            for ln in r.get("lines", []):
                if int(ln["quantity"]) < 0:
                    out[ln["sku"]] -= int(ln["quantity"])
    return out


def _served_penalties(records_by_member: Mapping[str, Sequence[Record]]) -> dict[str, list[tuple[int, int]]]:
    """offer id -> [(units allocated, shortage penalty per unit of the request served)] from plan records."""
    out: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for records in records_by_member.values():
        for r in records:
            if r.get("type") != RecordType.PLAN:
                continue
            problem = r["plan"]["problem"]
            penalty = {q["id"]: int(q["shortage_penalty"]) for q in problem.get("requests", [])}
            for a in r["plan"]["answer"].get("allocations", []):
                out[a["offer"]].append((int(a["quantity"]), penalty.get(a["request"], 0)))
    return out


def _award(ruling: Mapping[str, Any]) -> int:
    return int(ruling.get("award", 0))  # wire form: a decimal string


@dataclass(frozen=True)
class JointShare:
    """A participant's share of a joint purchase, owed to the buyer."""

    purchase: str
    buyer: str
    participant: str
    amount: int


def joint_purchase_shares(records_by_member: Mapping[str, Sequence[Record]], period: Period) -> list[JointShare]:
    """Shares accepted in the period: the participant's `joint_purchase_share` record (its own word that it
    owes the share) matching a share for it in a `joint_purchase` record the buyer named in the message wrote
    (the buyer's claim). Records only add evidence, never take it away: a second record of either side
    cannot cancel a share both books show. Each (purchase, participant) counts once, in the period of the
    participant's first acceptance record."""
    claimed: dict[tuple[str, str, str], set[int]] = defaultdict(set)  # (purchase, buyer, participant) -> shares
    for records in records_by_member.values():
        for r in records:
            if r.get("type") == RecordType.JOINT_PURCHASE and r["node"] == r["joint_purchase"]["buyer"]:
                p = r["joint_purchase"]
                for sh in p["shares"]:
                    claimed[(p["id"], p["buyer"], sh["participant"])].add(int(sh["share"]))
    accepted: dict[tuple[str, str], tuple[str, str, int]] = {}  # (purchase, participant) -> (at, buyer, share)
    for member, records in records_by_member.items():
        for r in sorted(records, key=lambda r: int(r["seq"])):
            if r.get("type") != RecordType.JOINT_PURCHASE_SHARE or r["node"] != member:
                continue
            m = r["joint_purchase"]
            share = int(m["share"])  # wire form: a decimal string
            key = (m["purchase"], member)
            if (
                m["participant"] != member
                or key in accepted
                or share not in claimed.get((*key[:1], m["buyer"], member), set())
            ):
                continue
            accepted[key] = (str(r["at"]), m["buyer"], share)
    out = [
        JointShare(purchase, buyer, participant, share)
        for (purchase, participant), (at, buyer, share) in accepted.items()
        if share and period.holds(at)
    ]
    return sorted(out, key=lambda x: (x.purchase, x.participant.lower()))


class FlowKind(StrEnum):
    """What a money flow between members pays for: the `kind` of each of the statement's flows."""

    TRANSFER_PRICE = "transfer_price"
    FREIGHT_COMPENSATION = "freight_compensation"
    CONSIGNMENT_SALE = "consignment_sale"
    ARBITRATION_AWARD = "arbitration_award"
    JOINT_PURCHASE_SHARE = "joint_purchase_share"
    LOAN_FEE = "loan_fee"
    LOAN_SALE = "loan_sale"
    PROFIT_SPLIT = "profit_split"  # a member's share of the surplus, moved from the requesters who realised it
    REVERSAL = "reversal"  # a flow of a final statement that a correcting statement gives back


@dataclass(frozen=True)
class LoanCharge:
    """What a borrower owes a lender for one loan event: a fee for units given back, or the sale (and the
    fee up to the due time) of units kept."""

    loan: str
    lender: str
    borrower: str
    kind: FlowKind  # LOAN_FEE or LOAN_SALE
    amount: int
    units: int
    reference: str  # the LoanReturn's id, or the loan's for a sale


def _copies(records: Iterable[Record], type_: RecordType, field: str) -> dict[str, list[tuple[str, Mapping[str, Any]]]]:
    """message id -> [(record time, the message as recorded)] of one member's records of a type."""
    out: dict[str, list[tuple[str, Mapping[str, Any]]]] = defaultdict(list)
    for r in records:
        if r.get("type") == type_:
            out[str(r[field]["id"])].append((str(r["at"]), r[field]))
    return out


def _in_both(
    a: Mapping[str, list[tuple[str, Mapping[str, Any]]]], b: Mapping[str, list[tuple[str, Mapping[str, Any]]]]
) -> dict[str, tuple[str, str, Mapping[str, Any]]]:
    """Messages both books hold, word for word: message id -> (first time in a, first time in b, message).
    A copy only one side holds, or that differs, is no evidence; more copies never take evidence away."""
    out = {}
    for mid, copies in a.items():
        for at_a, message in sorted(copies, key=lambda c: c[0]):
            match = sorted(at for at, other in b.get(mid, []) if other == message)
            if match:
                out[mid] = (at_a, match[0], message)
                break
    return out


def loan_charges(records_by_member: Mapping[str, Sequence[Record]], period: Period) -> list[LoanCharge]:
    """Every loan fee and loan sale of the period (docs/settlement.md, section 4b). A loan counts once the
    lender's `lend` and the borrower's `borrow` records hold the same signed Loan, word for word; a return
    once both members' `loan_return` records hold the same LoanReturn (its quantity, fee time: the earlier
    record; period: the later); the sale once both wrote their `loan_sale`, of the units the confirmed returns
    leave out of the loan (no side's count decides it), in the period of the later of the two records."""
    own = {m: [r for r in rs if r["node"] == m] for m, rs in records_by_member.items()}
    borrows = {m: _copies(rs, RecordType.BORROW, "loan") for m, rs in own.items()}
    lends = {m: _copies(rs, RecordType.LEND, "loan") for m, rs in own.items()}
    out = []
    loans: dict[str, Mapping[str, Any]] = {}
    for borrower, copies in borrows.items():
        for borrowed in copies.values():
            terms = borrowed[0][1]
            lender = str(terms["lender"])
            if terms["borrower"] != borrower or lender not in lends or str(terms["loan"]) in loans:
                continue
            if terms["id"] in _in_both({terms["id"]: borrowed}, lends[lender]):  # else reconcile names it
                loans[str(terms["loan"])] = terms
    for terms in loans.values():
        lender, borrower = str(terms["lender"]), str(terms["borrower"])
        out += _charges_of(terms, own[lender], own[borrower], period)
    return sorted(out, key=lambda c: (c.kind, c.reference, c.loan))


def _charges_of(
    terms: Mapping[str, Any], lender_records: Sequence[Record], borrower_records: Sequence[Record], period: Period
) -> list[LoanCharge]:
    loan_id, lender, borrower = str(terms["loan"]), str(terms["lender"]), str(terms["borrower"])
    fee, price = int(terms["feePerUnitDay"]), int(terms["unitSalePrice"])
    lent_at, due_at, quantity = int(terms["lentAt"]), int(terms["dueAt"]), int(terms["quantity"])

    def returns(records: Sequence[Record]) -> dict[str, list[tuple[str, Mapping[str, Any]]]]:
        return _copies(
            [r for r in records if r.get("loan_return", {}).get("loan") == loan_id],
            RecordType.LOAN_RETURN,
            "loan_return",
        )

    backs = _in_both(returns(borrower_records), returns(lender_records))
    out, returned = [], 0
    for rid, (at_b, at_l, back) in sorted(backs.items()):
        if back["borrower"] != borrower:
            continue
        units = min(int(back["quantity"]), quantity - returned)
        returned += units
        if units and period.holds(max(at_b, at_l)):
            amount = return_fee(units, fee, lent_at, _seconds(min(at_b, at_l)))
            out.append(LoanCharge(loan_id, lender, borrower, FlowKind.LOAN_FEE, amount, units, rid))

    def sold_at(records: Sequence[Record]) -> str | None:
        times = [
            str(r["at"]) for r in records if r.get("type") == RecordType.LOAN_SALE and r["loan_sale"]["loan"] == loan_id
        ]
        return min(times) if times else None

    kept = quantity - returned
    sold_l, sold_b = sold_at(lender_records), sold_at(borrower_records)
    if kept > 0 and sold_l and sold_b and period.holds(max(sold_l, sold_b)):
        out.append(
            LoanCharge(
                loan_id, lender, borrower, FlowKind.LOAN_FEE, kept_fee(kept, fee, lent_at, due_at), kept, loan_id
            )
        )
        out.append(LoanCharge(loan_id, lender, borrower, FlowKind.LOAN_SALE, sale_amount(kept, price), kept, loan_id))
    return out


@dataclass(frozen=True)
class Dealings:
    """What passed between members in a period, read once from the records: the contribution metrics and
    the statement's money flows both start from it."""

    transfers: list[Transfer]
    sales: list[ConsignmentSale]
    awards: list[Award]
    joint_shares: list[JointShare] = field(default_factory=list)
    loans: list[LoanCharge] = field(default_factory=list)

    @classmethod
    def of(cls, records_by_member: Mapping[str, Sequence[Record]], period: Period) -> Dealings:
        return cls(
            transfers(records_by_member, period),
            consignment_sales(records_by_member, period),
            awards(records_by_member, period),
            joint_purchase_shares(records_by_member, period),
            loan_charges(records_by_member, period),
        )


def contributions(
    records_by_member: Mapping[str, Sequence[Record]],
    period: Period,
    terms: Terms = Terms(),
    dealings: Dealings | None = None,
    penalty_valued: bool = False,
) -> dict[str, Metrics]:
    """Every member's metrics for the period (docs/settlement.md, section 1): what its dealings with the
    others moved (units, value, freight, money owed) and how it held its stock. `shortages_avoided` counts
    the units received that served a request; format 1 (`penalty_valued`) valued each at its request's
    shortage penalty, a planning weight, and its statements are recomputed so."""
    members = sorted(records_by_member)
    metrics = {m: Metrics() for m in members}
    dealings = dealings or Dealings.of(records_by_member, period)
    issued = {m: _issued_by_sku(records_by_member[m], period) for m in members}
    served = _served_penalties(records_by_member)
    if not penalty_valued:
        served = {offer: [(units, 1) for units, _penalty in allocations] for offer, allocations in served.items()}
    _count_transfers(metrics, dealings.transfers, served, issued, period, terms)
    _count_money_owed(metrics, dealings)
    for m in members:
        moved = [t for t in dealings.transfers if m in (t.supplier, t.requester)]
        _count_stock_held(metrics[m], m, records_by_member[m], period, sum(issued[m].values()), moved)
    return metrics


def _both(metrics: dict[str, Metrics], a: str, b: str) -> tuple[Metrics, Metrics]:
    """The metrics of the two members of a dealing (one the records name without records of its own: zero)."""
    return metrics.setdefault(a, Metrics()), metrics.setdefault(b, Metrics())


def _count_transfers(
    metrics: dict[str, Metrics],
    moved: Iterable[Transfer],
    penalties: Mapping[str, list[tuple[int, int]]],
    issued: Mapping[str, Mapping[str, int]],
    period: Period,
    terms: Terms,
) -> None:
    """Units and value supplied and received, freight, the shortages a transfer avoided (the penalties of the
    requests its offer served) and the capital it freed at the supplier."""
    for t in moved:
        s, q = _both(metrics, t.supplier, t.requester)
        s.units_supplied[t.sku] = s.units_supplied.get(t.sku, 0) + t.received
        q.units_received[t.sku] = q.units_received.get(t.sku, 0) + t.received
        value = 0 if t.consignment else t.received * t.unit_price
        s.value_supplied += value
        q.value_received += value
        s.freight_compensated += t.freight_compensation
        q.freight_paid += t.freight_compensation
        left = t.received
        for units, penalty in penalties.get(t.offer or "", []):
            take = min(left, units)
            q.shortages_avoided += take * penalty
            left -= take
        if not t.consignment:
            s.capital_freed += _capital_freed(issued.get(t.supplier, {}).get(t.sku, 0), period, t, terms)


def _count_money_owed(metrics: dict[str, Metrics], dealings: Dealings) -> None:
    """Consignment sales, awards, joint purchase shares and loans: what each member owes or is owed."""
    for sale in dealings.sales:
        holder, owner = _both(metrics, sale.holder, sale.owner)
        owner.value_supplied += sale.units * sale.unit_price
        holder.value_received += sale.units * sale.unit_price
    for a in dealings.awards:
        payer, payee = _both(metrics, a.payer, a.payee)
        payer.awards_paid += a.amount
        payee.awards_received += a.amount
    for j in dealings.joint_shares:
        buyer, participant = _both(metrics, j.buyer, j.participant)
        participant.joint_purchase_paid += j.amount
        buyer.joint_purchase_received += j.amount
    for c in dealings.loans:
        lender, borrower = _both(metrics, c.lender, c.borrower)
        if c.kind == FlowKind.LOAN_SALE:
            lender.value_supplied += c.amount
            borrower.value_received += c.amount
        else:
            lender.loan_fees_received += c.amount
            borrower.loan_fees_paid += c.amount


def _count_stock_held(
    mine: Metrics, m: str, records: Sequence[Record], period: Period, units_issued: int, moved: Iterable[Transfer]
) -> None:
    """From the member's own stock lines: the unit-hours it held others' stock and reserved its own, the units
    it issued and its turnover."""
    timeline = _timeline(records, period)
    # Parts borrowed are held for the borrower's own repairs, not for their owner: not stock held for others.
    held_for_others = _timeline(records, period, LOAN_RECORDS)
    mine.consignment_unit_hours = (
        _unit_seconds(held_for_others, period, lambda ln: ln["holder"] == m and ln["owner"] != m) // SECONDS_PER_HOUR
    )
    mine.reserved_unit_hours = (
        _unit_seconds(
            timeline, period, lambda ln: ln["status"] == "reserved" and ln["owner"] == m and ln["holder"] == m
        )
        // SECONDS_PER_HOUR
    )
    mine.units_issued = units_issued
    _turnover(mine, timeline, period, moved, m)


def _capital_freed(issued: int, period: Period, t: Transfer, terms: Terms) -> int:
    """Value shipped x the days it would otherwise have sat (units over the supplier's own daily issues of
    the SKU in the period, `issued`, at most max_idle_days) x the cost of capital per day, floored."""
    idle_days = (
        Fraction(terms.max_idle_days)
        if issued == 0
        else min(Fraction(t.received * period.days, issued), Fraction(terms.max_idle_days))
    )
    freed = t.received * t.unit_price * idle_days * terms.cost_of_capital_per_year / DAYS_PER_YEAR
    return int(freed)  # int() of a non-negative Fraction floors


@dataclass(frozen=True)
class Award:
    ruling: str
    payer: str
    payee: str
    amount: int


def awards(records_by_member: Mapping[str, Sequence[Record]], period: Period) -> list[Award]:
    """Arbitration awards of the period: a ruling counts once both parties recorded it word for word (each node
    admits a ruling only when the rule book's arbitrator signed it, so the payer's record is its own
    admission: a payee alone cannot write itself an award, and a payer's second record cannot undo one),
    dated by the later of the two parties' first records of it."""
    rulings = {
        m: _copies([r for r in rs if r["node"] == m], RecordType.RULING, "ruling")
        for m, rs in records_by_member.items()
    }
    out = []
    seen: set[str] = set()
    for payer, copies in rulings.items():
        for rid, versions in copies.items():
            ruling = versions[0][1]
            if rid in seen or ruling["payer"] != payer or _award(ruling) == 0 or ruling["payee"] not in rulings:
                continue
            both = _in_both({rid: [v for v in versions if v[1]["payer"] == payer]}, rulings[ruling["payee"]])
            if rid not in both:
                continue
            at_payer, at_payee, agreed = both[rid]
            seen.add(rid)
            if period.holds(max(at_payer, at_payee)):
                out.append(Award(rid, agreed["payer"], agreed["payee"], _award(agreed)))
    return sorted(out, key=lambda a: a.ruling)


def _turnover(mine: Metrics, timeline: Timeline, period: Period, moved: Iterable[Transfer], m: str) -> None:
    """Units issued over the average units on hand (owned and held, available or reserved), with the period's
    transfers and as if they had not happened (what was shipped still on hand, what was received neither on
    hand nor sold)."""
    seconds = _seconds(period.closes) - _seconds(period.opens)
    on_hand = _unit_seconds(
        timeline, period, lambda ln: ln["owner"] == m and ln["holder"] == m and ln["status"] in ON_HAND
    )
    closes = _seconds(period.closes)
    shift, received = 0, 0
    for t in moved:
        after = closes - _seconds(t.received_at)
        if t.supplier == m and not t.consignment:
            shift += t.received * after
        elif t.requester == m and not t.consignment:
            shift -= t.received * after
            received += t.received
    mine.turnover = Fraction(mine.units_issued * seconds, on_hand) if on_hand > 0 else Fraction(0)
    without = max(0, on_hand + shift)
    issued_without = max(0, mine.units_issued - received)
    mine.turnover_without_transfers = Fraction(issued_without * seconds, without) if without > 0 else Fraction(0)
