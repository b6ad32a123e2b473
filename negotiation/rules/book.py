"""The rule book: data, never code. Its shape (a pydantic model, published as docs/rulebook.schema.json),
its checks (schema, names and types of every expression, each error with the path of its cell) and its
identity (keccak-256 of its canonical JSON).

A rule book is what headquarters writes instead of sending orders: the meta-rules (safety stock, trigger,
pricing and freight, emergency SLA), the strategy matrix (scenario columns x constraint rows, each cell
its own branches), the objective weights that switch by context, and business rules (condition -> action).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from eth_utils.crypto import keccak
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from chain.canonical import canonical_json
from negotiation.errors import NegotiationError
from negotiation.rules.expr import Expression, ExpressionError, NameSpec, Type, compile_expression
from negotiation.rules.names import Scenario, names_for

FORMAT = 1
# Every field of the first format is hashed as it stands; fields added since are marked `Since` (below).
FIRST_FORMAT = 1

Decimal = Annotated[str, StringConstraints(pattern=r"^-?\d+(\.\d+)?$")]
# An amount of money in major units, never negative, with no more decimals than the currency's minor units
# (checked by check_book, which knows the currency).
Money = Annotated[str, StringConstraints(pattern=r"^\d+(\.\d+)?$", max_length=32)]
# A SKU code as the nodes' master data spells it (POST /skus).
SkuCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$", max_length=64)]
Ratio = Annotated[str, StringConstraints(pattern=r"^(0(\.\d+)?|1(\.0+)?)$")]
Address = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{40}$")]
Source = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]

Constraint = Literal[
    "shelf_life", "min_order_quantity", "transport_time", "ownership", "cost_sharing", "pricing", "priority"
]

# What each constraint row may set, and the type of each setting. A cell sets only its own row's settings,
# so two rows can never disagree about one value.
ROW_SETTINGS: dict[str, dict[str, Type]] = {
    "shelf_life": {"min_shelf_life_days": Type.INT},
    "min_order_quantity": {"min_order_quantity": Type.INT},
    "transport_time": {"max_transit_hours": Type.INT},
    "ownership": {"ownership": Type.TEXT},
    "cost_sharing": {"requester_freight_share": Type.DECIMAL},
    "pricing": {"price_factor": Type.DECIMAL},
    "priority": {},
}
OWNERSHIP_MODES = ("transfer", "consignment")


@dataclass(frozen=True)
class Since:
    """Marks a field added to the rule book after format 1, with the format that introduced it:
    `grace_days: Annotated[int, Since(2)] = 0`. While such a field holds its default it is left out of the
    book's data, and so of its version: every book written before the field existed keeps its version, and
    so do the versions already recorded on chain. The published schema marks the field `x-added-in-format`."""

    format: int

    def __get_pydantic_json_schema__(self, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema["x-added-in-format"] = self.format
        return schema


def _added_later(info: FieldInfo) -> Since | None:
    return next((m for m in info.metadata if isinstance(m, Since)), None)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        # A later field without a default would make every older book invalid, and one marked as of format 1
        # would say the older books' versions left it out when they did not.
        for name, info in cls.model_fields.items():
            since = _added_later(info)
            if since is not None and since.format <= FIRST_FORMAT:
                raise TypeError(f"{cls.__name__}.{name}: Since({since.format}) marks fields added after format 1")
            if since is not None and info.is_required():
                raise TypeError(f"{cls.__name__}.{name}: a field added after format 1 needs a default")


# Money the book states becomes integers in records and statements, which any JSON reader must read exactly
# (docs/proof-format.md: within 2^53 - 1).
MAX_EXACT_MINOR = 2**53 - 1


class Currency(_Strict):
    code: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "CNY"
    minor_units: int = Field(default=2, ge=0, le=6)

    def minor(self, amount: str) -> int:
        """`amount` (major units, a decimal string such as "228.00") in whole minor units; ValueError if it has
        more decimals than the currency has minor units: money in the book is exact, never rounded."""
        minor = Fraction(amount) * 10**self.minor_units
        if minor.denominator != 1:
            raise ValueError(f"{amount} {self.code} has more than {self.minor_units} decimals")
        if abs(minor) > MAX_EXACT_MINOR:
            raise ValueError(f"{amount} {self.code} is more than {MAX_EXACT_MINOR} minor units")
        return int(minor)


class Governance(_Strict):
    """Who approves the next version: `quorum` of `approvers`, always including everyone in `required`
    (headquarters, typically). The next version becomes active `activation_delay_blocks` after its last
    needed approval."""

    approvers: list[Address] = Field(min_length=1)
    quorum: int = Field(ge=1)
    required: list[Address] = []
    activation_delay_blocks: int = Field(default=2, ge=0, le=1_000_000)
    arbitrator: Address | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Governance:
        lowered = [a.lower() for a in self.approvers]
        if len(set(lowered)) != len(lowered):
            raise ValueError("approvers are listed twice")
        if self.quorum > len(self.approvers):
            raise ValueError(f"quorum {self.quorum} is more than the {len(self.approvers)} approvers")
        missing = [a for a in self.required if a.lower() not in lowered]
        if missing:
            raise ValueError(f"required approvers {missing} are not approvers")
        return self


class SafetyAdjustment(_Strict):
    when: Source
    service_level: Ratio | None = None
    lead_time_days: int | None = Field(default=None, ge=0, le=365)


class SafetyStock(_Strict):
    """`smoothed_demand`: level = ceil(z(service_level) x deviation x sqrt(lead_time_days + review_days)),
    demand and its deviation exponentially smoothed with `smoothing`; `fixed`: always `fixed_units`."""

    method: Literal["fixed", "smoothed_demand"] = "smoothed_demand"
    fixed_units: int = Field(default=0, ge=0)
    service_level: Ratio = "0.95"
    smoothing: Ratio = "0.2"
    lead_time_days: int = Field(default=2, ge=0, le=365)
    review_days: int = Field(default=1, ge=0, le=365)
    min_units: int = Field(default=0, ge=0)
    adjustments: list[SafetyAdjustment] = []


class Trigger(_Strict):
    days_unmet: int = Field(default=3, ge=1, le=365)
    radius_km: int = Field(default=50, ge=1, le=20_000)
    invitation_ttl_seconds: int = Field(default=3600, ge=1)
    offer_ttl_seconds: int = Field(default=3600, ge=1)
    needed_within_days: int = Field(default=2, ge=0, le=365)


class Pricing(_Strict):
    """Formulas in major units per unit (or per truck); results are rounded half to even into minor units."""

    transfer_price: Source = "sku.transfer_price"
    freight_per_unit: Source = "0.50 + 0.02 * lane.distance_km"
    freight_per_truck: Source = "80.00 + 3.00 * lane.distance_km"
    transit_hours: Source = "1 + ceil(lane.distance_km / 40)"
    shortage_penalty: Source = "1000.00"


class Limits(_Strict):
    """What one member may hold of another member's node at once. The receiving node enforces them on what
    it is sent, whatever the sender's software does, so no member floods another's ledger or reservations."""

    open_disputes_per_member: int = Field(default=3, ge=1, le=1000)
    disputes_per_member_per_day: int = Field(default=10, ge=1, le=10_000)
    # One invitation per SKU a requester lacks: high enough for a store short of many SKUs at once.
    open_invitations_per_member: int = Field(default=50, ge=1, le=1000)
    reserved_share_per_member: Ratio = "1"


SettlementMetric = Literal[
    "units_supplied",
    "value_supplied",
    "consignment_unit_hours",
    "reserved_unit_hours",
    "shortages_avoided",
    "capital_freed",
    "freight_compensated",
]


class Settlement(_Strict):
    """How a period's surplus is split and what the contribution metrics assume (docs/settlement.md)."""

    method: Literal["proportional", "shapley", "core"] = "shapley"
    # For `proportional`: each member's weight is the sum of weight x metric.
    weights: dict[SettlementMetric, Decimal] = {"value_supplied": "1"}
    cost_of_capital_per_year: Ratio = "0.08"
    max_idle_days: int = Field(default=90, ge=1, le=3650)
    # A participant's share of a joint purchase, money in major units (rounded down to minor units);
    # the buyer bears what the other participants' shares leave of the total cost.
    joint_purchase_share: Source = "purchase.total_cost * participant.units / purchase.total_units"
    # A loaned part returned after its due time may still be on its way: the lender takes returns signed
    # before the due time for this long, then counts what has not come back as sold.
    loan_return_grace_minutes: int = Field(default=60, ge=0, le=7 * 24 * 60)
    # Per SKU code, what a requester pays per unit to get it elsewhere (an emergency order from the brand: its
    # price plus freight), major units: a delivered unit is worth at most this to the requester.
    alternative_supply_cost: Annotated[dict[SkuCode, Money], Since(2)] = {}
    # A member whose operator neither approves nor disputes a statement this long after its node has it ready
    # is deemed to approve it: its node signs (docs/settlement.md, section 6). Seconds, so a test can wait it out.
    approval_deadline_seconds: Annotated[int, Since(2), Field(ge=1, le=90 * 24 * 3600)] = 3 * 24 * 3600
    # Money in major units: a member's node approves at once for it when its net payable on the statement is
    # below this ("0.00": never).
    auto_approve_below: Annotated[Money, Since(2)] = "0.00"


class EmergencySla(_Strict):
    respond_within_minutes: int = Field(default=30, ge=1)
    deliver_within_hours: int = Field(default=6, ge=1)


class Branch(_Strict):
    """One branch of a cell: when `when` holds for the situation, `require` must hold for a lot to be offered
    or allocated, `set` fixes this row's settings, and `weights` replace the objective's weights."""

    when: Source = "true"
    require: Source | None = None
    set: dict[Identifier, int | Annotated[str, StringConstraints(max_length=100)]] = {}
    weights: dict[Identifier, Decimal] = {}
    note: str = ""


class WeightProfile(_Strict):
    when: Source
    weights: dict[Identifier, Decimal]


class Objective(_Strict):
    """One objective, many terms: each term scores a candidate lot; a higher weighted sum is preferred.
    `money_per_point` turns a point of score into money per unit, so preference and cost share one scale."""

    terms: dict[Identifier, Source] = {"freshness": "lot.shelf_life_days", "first_in": "lot.age_days"}
    default_weights: dict[Identifier, Decimal] = {"freshness": "1", "first_in": "1"}
    profiles: list[WeightProfile] = []
    money_per_point: Decimal = "0.01"


ActionKind = Literal["request_quote", "stop_purchasing", "freeze_offering", "set_safety_level", "notify"]
# Pairs no situation may ask for at once.
CONTRADICTORY_ACTIONS = {("request_quote", "stop_purchasing")}


class Action(_Strict):
    kind: ActionKind
    supplier: str | None = None
    quantity: Source | None = None
    value: Source | None = None
    message: str = ""


class Period(_Strict):
    start: date = Field(alias="from")
    end: date = Field(alias="to")

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.end < self.start:
            raise ValueError("a period ends before it starts")
        return self


class Calendar(_Strict):
    """What `calendar.promotion` and `calendar.slow_season` mean: dates every node reads the same way."""

    promotions: list[Period] = []
    slow_months: list[Annotated[int, Field(ge=1, le=12)]] = []


class BusinessRule(_Strict):
    id: Identifier
    when: Source
    action: Action
    note: str = ""


class RuleBook(_Strict):
    format: Literal[1] = 1
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    label: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    currency: Currency = Currency()
    customer_tiers: list[Identifier] = Field(default=["standard"], min_length=1)
    governance: Governance
    safety_stock: SafetyStock = SafetyStock()
    trigger: Trigger = Trigger()
    pricing: Pricing = Pricing()
    emergency_sla: EmergencySla = EmergencySla()
    limits: Limits = Limits()
    settlement: Settlement = Settlement()
    calendar: Calendar = Calendar()
    matrix: dict[Scenario, dict[Constraint, list[Branch]]] = {}
    objective: Objective = Objective()
    rules: list[BusinessRule] = []

    def alternative_supply_cost_minor(self) -> dict[str, int]:
        """`settlement.alternative_supply_cost` in minor units of the book's currency, per SKU code."""
        costs = self.settlement.alternative_supply_cost
        return {sku: self.currency.minor(cost) for sku, cost in costs.items()}

    @field_validator("matrix", mode="before")
    @classmethod
    def _cells_as_lists(cls, v: Any) -> Any:
        # A cell with one branch may be written as that branch.
        if isinstance(v, dict):
            return {
                s: {c: [b] if isinstance(b, dict) else b for c, b in row.items()} if isinstance(row, dict) else row
                for s, row in v.items()
            }
        return v


# --- loading and checking -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a rule book: where (a dotted path to the cell) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class RuleBookInvalid(NegotiationError, ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


def read_document(path: Path) -> Any:
    """A rule book file, YAML or JSON (JSON is YAML; both load the same data)."""
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise RuleBookInvalid([Problem("$", f"not readable as {path.suffix.lstrip('.') or 'YAML'}: {e}")]) from None


def _loc(parts: tuple[int | str, ...]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "$"


def parse_book(data: Any) -> RuleBook:
    """The rule book, or RuleBookInvalid with every schema error and its path."""
    try:
        return RuleBook.model_validate(data)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            # pydantic's loc names union members and key checks too ("function-...", "[key]"): not part of the path.
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "list[", "["))))
            problems.append(Problem(_loc(loc), err["msg"]))
        raise RuleBookInvalid(problems) from None


def _later_fields_at_default(value: Any) -> dict[Any, Any]:
    """What `book_json` leaves out, in pydantic's `exclude` form: at every depth, each field added after
    format 1 (marked `Since`) that holds its default."""
    if isinstance(value, BaseModel):
        leave_out: dict[Any, Any] = {}
        for name, info in type(value).model_fields.items():
            field_value = getattr(value, name)
            if _added_later(info) is not None and field_value == info.get_default(call_default_factory=True):
                leave_out[name] = True
            elif inner := _later_fields_at_default(field_value):
                leave_out[name] = inner
        return leave_out
    if isinstance(value, list | tuple):
        return {i: inner for i, item in enumerate(value) if (inner := _later_fields_at_default(item))}
    if isinstance(value, dict):
        return {k: inner for k, item in value.items() if (inner := _later_fields_at_default(item))}
    return {}


def book_json(book: RuleBook) -> dict[str, Any]:
    """The book as data, field names as written (`from`, not `start`): every format-1 default filled in, and
    every field added later present only when it differs from its default (docs/rules.md, section 7)."""
    data: dict[str, Any] = book.model_dump(mode="json", by_alias=True, exclude=_later_fields_at_default(book))
    return data


def rule_book_hash(book: RuleBook) -> str:
    """The version id: 0x + keccak-256 of the canonical JSON of `book_json`, so the same rules written in YAML
    or JSON, in any key order, with or without defaults, have one id, and a field added to the format later
    changes no version until a book sets it."""
    return "0x" + keccak(canonical_json(book_json(book))).hex()


@dataclass(frozen=True)
class CompiledBranch:
    path: str
    when: Expression
    require: Expression | None
    settings: Mapping[str, int | Fraction | str]
    weights: Mapping[str, Fraction]


@dataclass(frozen=True)
class CheckedBook:
    """A rule book whose every expression parsed and type-checked, ready for the engine and conflict search."""

    book: RuleBook
    version: str
    cells: Mapping[str, Mapping[str, tuple[CompiledBranch, ...]]]
    terms: Mapping[str, Expression]
    profiles: tuple[tuple[str, Expression, Mapping[str, Fraction]], ...]
    pricing: Mapping[str, Expression]
    safety_adjustments: tuple[tuple[str, Expression, SafetyAdjustment], ...]
    rules: tuple[tuple[str, Expression, BusinessRule, Expression | None], ...]
    joint_purchase_share: Expression | None = None

    def names(self, place: str) -> dict[str, NameSpec]:
        return names_for(place, self.book.customer_tiers)


class _Checker:
    def __init__(self, book: RuleBook) -> None:
        self.book = book
        self.problems: list[Problem] = []

    def expr(self, path: str, source: str, place: str, want: Type | None) -> Expression | None:
        try:
            return compile_expression(source, names_for(place, self.book.customer_tiers), want)
        except ExpressionError as e:
            self.problems.append(Problem(path, f"{e} in {source!r}"))
            return None

    def weights(self, path: str, weights: Mapping[str, str]) -> dict[str, Fraction]:
        out = {}
        for term, w in weights.items():
            if term not in self.book.objective.terms:
                self.problems.append(Problem(f"{path}.{term}", f"no objective term {term!r}"))
            out[term] = Fraction(w)
        return out

    def setting(self, path: str, row: str, name: str, value: int | str) -> int | Fraction | str | None:
        allowed = ROW_SETTINGS[row]
        if name not in allowed:
            known = ", ".join(allowed) or "nothing (this row holds weights)"
            self.problems.append(Problem(path, f"row {row} cannot set {name}; it sets {known}"))
            return None
        kind = allowed[name]
        if kind == Type.TEXT:
            if value not in OWNERSHIP_MODES:
                self.problems.append(Problem(path, f"{name} is one of {', '.join(OWNERSHIP_MODES)}, not {value!r}"))
                return None
            return value
        if isinstance(value, str) and not re.fullmatch(r"-?\d+(\.\d+)?", value):
            self.problems.append(Problem(path, f"{name} needs a number, got {value!r}"))
            return None
        number = Fraction(value)
        if kind == Type.INT and number.denominator != 1:
            self.problems.append(Problem(path, f"{name} needs a whole number, got {value}"))
            return None
        if number < 0 or (name == "requester_freight_share" and number > 1):
            self.problems.append(Problem(path, f"{name} out of range: {value}"))
            return None
        return int(number) if kind == Type.INT else number


# Where each pricing formula is checked: the names it may read (docs/rules.md, section 2).
PRICING_PLACES = {
    "transfer_price": "price",
    "freight_per_unit": "freight",
    "freight_per_truck": "freight",
    "transit_hours": "freight",
    "shortage_penalty": "penalty",
}


def _matrix_cells(c: _Checker) -> dict[str, dict[str, tuple[CompiledBranch, ...]]]:
    cells: dict[str, dict[str, tuple[CompiledBranch, ...]]] = {}
    for scenario, row_map in c.book.matrix.items():
        for row, branches in row_map.items():
            compiled = (_branch(c, f"matrix.{scenario}.{row}[{i}]", row, b) for i, b in enumerate(branches))
            cells.setdefault(scenario, {})[row] = tuple(b for b in compiled if b is not None)
    return cells


def _branch(c: _Checker, path: str, row: str, b: Branch) -> CompiledBranch | None:
    """One branch of a cell, its settings checked against its row; None when its `when` does not compile."""
    when = c.expr(f"{path}.when", b.when, "cell", Type.BOOL)
    require = c.expr(f"{path}.require", b.require, "cell", Type.BOOL) if b.require else None
    settings = {k: c.setting(f"{path}.set.{k}", row, k, v) for k, v in b.set.items()}
    weights = c.weights(f"{path}.weights", b.weights)
    if b.weights and row != "priority":
        c.problems.append(Problem(f"{path}.weights", f"weights belong in the priority row, not {row}"))
    if when is None:
        return None
    kept = {k: v for k, v in settings.items() if v is not None}
    return CompiledBranch(path, when, require, kept, weights)


def _objective_terms(c: _Checker) -> dict[str, Expression]:
    terms = {}
    for term, source in c.book.objective.terms.items():
        e = c.expr(f"objective.terms.{term}", source, "objective", Type.DECIMAL)
        if e is not None:
            terms[term] = e
    return terms


def _weight_profiles(c: _Checker) -> tuple[tuple[str, Expression, Mapping[str, Fraction]], ...]:
    c.weights("objective.default_weights", c.book.objective.default_weights)
    profiles = []
    for i, p in enumerate(c.book.objective.profiles):
        path = f"objective.profiles[{i}]"
        when = c.expr(f"{path}.when", p.when, "objective", Type.BOOL)
        weights = c.weights(f"{path}.weights", p.weights)
        if when is not None:
            profiles.append((path, when, weights))
    return tuple(profiles)


def _pricing_formulas(c: _Checker) -> dict[str, Expression]:
    pricing = {}
    for field, place in PRICING_PLACES.items():
        e = c.expr(f"pricing.{field}", getattr(c.book.pricing, field), place, Type.DECIMAL)
        if e is not None:
            pricing[field] = e
    return pricing


def _safety_adjustments(c: _Checker) -> tuple[tuple[str, Expression, SafetyAdjustment], ...]:
    adjustments = []
    for i, a in enumerate(c.book.safety_stock.adjustments):
        path = f"safety_stock.adjustments[{i}]"
        when = c.expr(f"{path}.when", a.when, "safety", Type.BOOL)
        if a.service_level is None and a.lead_time_days is None:
            c.problems.append(Problem(path, "an adjustment sets service_level or lead_time_days"))
        if when is not None:
            adjustments.append((path, when, a))
    return tuple(adjustments)


def _business_rules(c: _Checker) -> tuple[tuple[str, Expression, BusinessRule, Expression | None], ...]:
    rules = []
    seen: set[str] = set()
    for i, r in enumerate(c.book.rules):
        path = f"rules[{i}]"
        if r.id in seen:
            c.problems.append(Problem(f"{path}.id", f"rule id {r.id!r} is used twice"))
        seen.add(r.id)
        when = c.expr(f"{path}.when", r.when, "rule", Type.BOOL)
        value = _action_amount(c, path, r.action)
        if when is not None:
            rules.append((path, when, r, value))
    return tuple(rules)


def _action_amount(c: _Checker, path: str, action: Action) -> Expression | None:
    """The amount an action names: the level `set_safety_level` sets, or the quantity a quote asks for.
    An action missing what its kind needs (the level, the supplier to ask) is a problem."""
    sets_level = action.kind == "set_safety_level"
    if sets_level and not action.value:
        c.problems.append(Problem(f"{path}.action.value", "set_safety_level needs a value"))
    source = action.value if sets_level else action.quantity
    field = "value" if sets_level else "quantity"
    amount = c.expr(f"{path}.action.{field}", source, "rule", Type.DECIMAL) if source else None
    if action.kind == "request_quote" and not action.supplier:
        c.problems.append(Problem(f"{path}.action.supplier", "request_quote names the supplier to ask"))
    return amount


def _exact_money(c: _Checker, path: str, amounts: Mapping[str, str]) -> None:
    for key, amount in amounts.items():
        try:
            c.book.currency.minor(amount)
        except ValueError as e:
            c.problems.append(Problem(f"{path}.{key}", str(e)))


def check_book(book: RuleBook) -> CheckedBook:
    """Every expression parsed and type-checked where it stands; RuleBookInvalid lists each problem's path."""
    c = _Checker(book)
    cells = _matrix_cells(c)
    terms = _objective_terms(c)
    profiles = _weight_profiles(c)
    pricing = _pricing_formulas(c)
    adjustments = _safety_adjustments(c)
    rules = _business_rules(c)
    share = c.expr(
        "settlement.joint_purchase_share", book.settlement.joint_purchase_share, "joint_purchase", Type.DECIMAL
    )
    _exact_money(c, "settlement.alternative_supply_cost", book.settlement.alternative_supply_cost)
    if c.problems:
        raise RuleBookInvalid(c.problems)
    return CheckedBook(book, rule_book_hash(book), cells, terms, profiles, pricing, adjustments, rules, share)


def load_book(path: Path) -> CheckedBook:
    return check_book(parse_book(read_document(path)))


def json_schema() -> dict[str, Any]:
    """The published schema (docs/rulebook.schema.json is this, written by `consortium rules schema`)."""
    schema = RuleBook.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "urn:consortium-inventory:rulebook:1"
    # A cell of one branch may be written as that branch (the model's before-validator wraps it in a list).
    cell = schema["properties"]["matrix"]["additionalProperties"]["additionalProperties"]
    schema["properties"]["matrix"]["additionalProperties"]["additionalProperties"] = {
        "anyOf": [cell, {"$ref": "#/$defs/Branch"}]
    }
    return schema
