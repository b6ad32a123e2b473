"""The records a node commits to, declared once: their kinds, their types and, per type, the exact body.

A record's body is hashed into its leaf (chain/canonical.py) and anchored, so a key renamed, added or turned to
null by accident changes every proof after it. Each record type therefore has one TypedDict of its fields
(`RECORD_FIELDS`), built by the node through `record_body` and read back by settlement and auditors through
`read_body`, which checks the body against the same declaration and names what does not fit. A key absent from
a type's body is absent, never null; a key declared `X | None` is always present, null or not; a key declared
`NotRequired[X]` (added after nodes first wrote the type, or given only sometimes) is present or absent, never null.
docs/proof-format.md describes the bodies for other implementations; testdata/records/golden.json holds bodies
of every type as nodes wrote them before this module existed, and tests/unit/test_record_bodies.py proves each
one reads and rebuilds to the same bytes and leaf.

Pure declarations and checks: no imports from the rest of the project.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any, NotRequired, TypedDict, Union, cast, get_args, get_origin, get_type_hints, is_typeddict


class RecordKind(StrEnum):
    """A node's record sequences, each gapless and anchored on its own (docs/proof-format.md)."""

    LEDGER = "ledger"  # stock movements, transfers, loans, joint purchases, disputes and rulings
    SETTLEMENT = "settlement"  # the final statements this node signed


class RecordType(StrEnum):
    # What an operator writes (node/domain/ledger.py MovementType has the same values).
    RECEIPT = "receipt"
    ISSUE = "issue"
    MOVE = "move"
    STATUS_CHANGE = "status_change"
    ADJUSTMENT = "adjustment"
    BUY_OUT = "buy_out"
    # Transfers between partners (docs/protocol.md).
    PLAN = "plan"
    TRANSFER_OUT = "transfer_out"
    TRANSFER_IN = "transfer_in"
    TRANSFER_SETTLED = "transfer_settled"
    DISCREPANCY = "discrepancy"
    # Joint purchases, loans of spare parts, disputes.
    JOINT_PURCHASE = "joint_purchase"
    JOINT_PURCHASE_SHARE = "joint_purchase_share"
    LEND = "lend"
    BORROW = "borrow"
    LOAN_RETURN = "loan_return"
    LOAN_SALE = "loan_sale"
    LOAN_REFUSED = "loan_refused"
    DISPUTE = "dispute"
    RULING = "ruling"
    # The settlement kind's one type.
    SETTLEMENT = "settlement"


# Any JSON value, for the parts of a record whose format another document owns (a plan's problem and answer:
# docs/matching.md): the record keeps them as they came.
JsonValue = Any


class RecordHead(TypedDict):
    kind: str
    node: str  # the address of the node whose sequence this is
    seq: int
    type: str
    at: str  # ISO 8601 UTC with microseconds, e.g. 2026-12-07T20:59:27.124614Z


class EvidenceRef(TypedDict):
    source: str
    reference: str


class Line(TypedDict):
    """One posting: a change of `quantity` in one bucket of stock."""

    sku: str
    lot: str
    location: str
    owner: str
    holder: str
    status: str
    quantity: int


class LedgerRecord(TypedDict):
    """What every record type carries; a movement (receipt, issue, move, status change, adjustment, buy-out)
    carries nothing else."""

    lines: list[Line]
    evidence: list[EvidenceRef]
    memo: str
    corrects: int | None  # the seq of the record an adjustment corrects


class IssueRecord(LedgerRecord):
    """An issue: stock sold to a customer (or, on the owner's side, its consigned stock a holder sold)."""

    # What one unit sold at, minor units: only when the seller gave it (POST /ledger/movements).
    unit_price: NotRequired[int]


class MessageRef(TypedDict):
    """A signed message behind a transfer step, named with both partners' signatures."""

    type: str
    id: str
    signer: str
    signature: str


# A signed message copied whole into a record: its fields as they travel (uint64 as decimal strings,
# docs/protocol.md section 1) and its `signature`.
SignedCopy = dict[str, str | int | bool]


class TransferParties(TypedDict):
    acceptance: str
    supplier: str
    requester: str
    messages: list[MessageRef]


class TransferShipped(TransferParties):
    freight_compensation: int
    unit_price: int
    # The supplier's purchase price of the SKU per unit when it shipped, minor units: what the units cost it, so
    # anyone holding the record values the transfer. Absent from records written before nodes kept it.
    cost_basis: NotRequired[int]


class TransferReceived(TransferParties):
    shipped: int
    received: int
    freight_compensation: int


class TransferArrived(TransferReceived):
    """What the requester received (transfer_in)."""

    # The requester's sale price of the SKU per unit when the units arrived, minor units: what the units are
    # worth to it at most. Absent from records written before nodes kept it.
    sale_price: NotRequired[int]


class TransferShort(TransferParties):
    shipped: int
    received: int
    difference: int


class TransferOutRecord(LedgerRecord):
    transfer: TransferShipped


class TransferInRecord(LedgerRecord):
    """transfer_in: the requester's."""

    transfer: TransferArrived


class TransferSettledRecord(LedgerRecord):
    """transfer_settled: the supplier's, once the requester confirmed what arrived."""

    transfer: TransferReceived


class DiscrepancyRecord(LedgerRecord):
    transfer: TransferShort


class PlanInfo(TypedDict):
    problem: JsonValue
    parameters: JsonValue
    answer: JsonValue
    rule_version: str
    rule_block: int
    cells: dict[str, list[str]]


class PlanRecord(LedgerRecord):
    plan: PlanInfo


class PurchaseShare(TypedDict):
    participant: str
    share: int
    units: int


class JointPurchaseInfo(TypedDict):
    id: str
    buyer: str
    sku: str
    lot: str
    reference: str
    rule_version: str
    total_cost: int
    total_units: int
    shares: list[PurchaseShare]
    created_at: str


class JointPurchaseRecord(LedgerRecord):
    joint_purchase: JointPurchaseInfo


class JointPurchaseShareRecord(LedgerRecord):
    joint_purchase: SignedCopy


class LoanRecord(LedgerRecord):
    """lend, borrow and loan_refused: the Loan message as signed by the lender."""

    loan: SignedCopy


class LoanReturnRecord(LedgerRecord):
    loan_return: SignedCopy


class LoanSale(TypedDict):
    loan: str
    lender: str
    borrower: str
    units: int
    unit_sale_price: int
    due_at: int


class LoanSaleRecord(LedgerRecord):
    loan_sale: LoanSale


class DisputeRecord(LedgerRecord):
    dispute: SignedCopy


class RulingRecord(LedgerRecord):
    ruling: SignedCopy


Period = TypedDict("Period", {"from": str, "to": str})


class StatementSignatureCopy(TypedDict):
    signer: str
    message: dict[str, str]  # the StatementSignature as it travels: every field of it is a string there
    signature: str


class SettlementInfo(TypedDict):
    statement: str
    statement_hash: str
    period: Period
    rule_version: str
    signatures: list[StatementSignatureCopy]


class SettlementRecord(LedgerRecord):
    settlement: SettlementInfo


AnyRecord = Union[  # noqa: UP007  # a runtime value: TypedDicts do not take `|`
    LedgerRecord,
    IssueRecord,
    TransferOutRecord,
    TransferInRecord,
    TransferSettledRecord,
    DiscrepancyRecord,
    PlanRecord,
    JointPurchaseRecord,
    JointPurchaseShareRecord,
    LoanRecord,
    LoanReturnRecord,
    LoanSaleRecord,
    DisputeRecord,
    RulingRecord,
    SettlementRecord,
]

# Each record type's fields, beside its head: the one declaration builders and readers share.
RECORD_FIELDS: dict[RecordType, type] = {
    RecordType.RECEIPT: LedgerRecord,
    RecordType.ISSUE: IssueRecord,
    RecordType.MOVE: LedgerRecord,
    RecordType.STATUS_CHANGE: LedgerRecord,
    RecordType.ADJUSTMENT: LedgerRecord,
    RecordType.BUY_OUT: LedgerRecord,
    RecordType.PLAN: PlanRecord,
    RecordType.TRANSFER_OUT: TransferOutRecord,
    RecordType.TRANSFER_IN: TransferInRecord,
    RecordType.TRANSFER_SETTLED: TransferSettledRecord,
    RecordType.DISCREPANCY: DiscrepancyRecord,
    RecordType.JOINT_PURCHASE: JointPurchaseRecord,
    RecordType.JOINT_PURCHASE_SHARE: JointPurchaseShareRecord,
    RecordType.LEND: LoanRecord,
    RecordType.BORROW: LoanRecord,
    RecordType.LOAN_REFUSED: LoanRecord,
    RecordType.LOAN_RETURN: LoanReturnRecord,
    RecordType.LOAN_SALE: LoanSaleRecord,
    RecordType.DISPUTE: DisputeRecord,
    RecordType.RULING: RulingRecord,
    RecordType.SETTLEMENT: SettlementRecord,
}
KIND_OF_TYPE: dict[RecordType, RecordKind] = {
    t: RecordKind.SETTLEMENT if t is RecordType.SETTLEMENT else RecordKind.LEDGER for t in RecordType
}


class RecordMalformed(ValueError):
    """A record body that does not fit its type's declaration: `where` names the key, `problem` what is wrong."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


def record_body(
    kind: RecordKind, node: str, seq: int, type_: RecordType, at: str, fields: AnyRecord
) -> dict[str, object]:
    """The one builder of a record's body: its head and the type's fields, checked against the declaration (a
    builder that drifts from it is refused here, before anything is hashed)."""
    kind, type_ = RecordKind(kind), RecordType(type_)  # a name that is neither is a ValueError here
    if KIND_OF_TYPE[type_] is not kind:
        raise RecordMalformed("kind", f"a {type_} record belongs to the {KIND_OF_TYPE[type_]} kind, not {kind}")
    head: RecordHead = {"kind": kind.value, "node": node, "seq": seq, "type": type_.value, "at": at}
    _conforms(fields, RECORD_FIELDS[type_], type_.value)
    return {**head, **fields}


def read_body(body: Mapping[str, object]) -> dict[str, object]:
    """A record body read from a peer, an export or a database, checked against its type's declaration: the same
    mapping if it fits, RecordMalformed naming the first key that does not."""
    _conforms(body, RecordHead, "record", exact=False)
    try:
        type_ = RecordType(cast(str, body["type"]))
    except ValueError as exc:
        raise RecordMalformed("type", f"{body['type']!r} is no record type") from exc
    if body["kind"] != KIND_OF_TYPE[type_].value:
        raise RecordMalformed("kind", f"a {type_} record belongs to the {KIND_OF_TYPE[type_]} kind")
    fields = {k: v for k, v in body.items() if k not in RecordHead.__annotations__}
    _conforms(fields, RECORD_FIELDS[type_], type_.value)
    return dict(body)


def _conforms(value: object, hint: Any, where: str, exact: bool = True) -> None:
    try:
        _checker(hint, exact)(value)
    except _Misfit as exc:
        raise RecordMalformed(where + "".join(reversed(exc.path)), exc.problem) from None


class _Misfit(Exception):
    """Raised inside the checks, the path of keys added on the way out: no path is formatted while a body fits."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        self.path: list[str] = []


# A check per declared type, compiled once: the write path builds a body per record, and resolving a TypedDict's
# annotations on every call cost more than the rest of a receipt's write (~0.9 ms a body, measured).
_Check = Callable[[object], None]


@functools.cache
def _checker(hint: Any, exact: bool = True) -> _Check:
    if is_typeddict(hint):
        return _typeddict_checker(hint, exact)
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return _anything
    if origin in (Union, types.UnionType):
        return _union_checker(tuple(_checker(option) for option in args))
    if origin is list:
        return _list_checker(_checker(args[0]))
    if origin is dict:
        return _dict_checker(_checker(args[1]))
    return _scalar_checker(hint)


def _anything(_value: object) -> None:
    return None


def _union_checker(options: tuple[_Check, ...]) -> _Check:
    def check(value: object) -> None:
        problems = []
        for option in options:
            try:
                option(value)
                return
            except _Misfit as exc:
                problems.append(exc.problem)
        raise _Misfit(" or ".join(problems))

    return check


def _list_checker(item: _Check) -> _Check:
    def check(value: object) -> None:
        if not isinstance(value, list):
            raise _Misfit("must be a list")
        for i, element in enumerate(value):
            try:
                item(element)
            except _Misfit as exc:
                exc.path.append(f"[{i}]")
                raise

    return check


def _dict_checker(item: _Check) -> _Check:
    def check(value: object) -> None:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise _Misfit("must be an object")
        for k, element in value.items():
            try:
                item(element)
            except _Misfit as exc:
                exc.path.append(f".{k}")
                raise

    return check


def optional_keys(hint: type) -> frozenset[str]:
    """The keys of a TypedDict declared `NotRequired`. Its own `__optional_keys__` cannot tell: under
    `from __future__ import annotations` Python 3.11 sees only strings there and counts every key required."""
    hints = get_type_hints(hint, include_extras=True)
    return frozenset(key for key, key_hint in hints.items() if get_origin(key_hint) is NotRequired)


def _typeddict_checker(hint: type, exact: bool) -> _Check:
    declared = {key: _checker(key_hint) for key, key_hint in get_type_hints(hint).items()}
    optional = optional_keys(hint)
    required = [k for k in declared if k not in optional]
    name = hint.__name__

    def check(value: object) -> None:
        if not isinstance(value, Mapping):
            raise _Misfit("must be an object")
        missing = [k for k in required if k not in value]
        if missing:
            raise _Misfit(f"misses {missing}")
        if exact and len(value) != len(required) + sum(k in value for k in optional):
            extra = [k for k in value if k not in declared]
            raise _Misfit(f"holds {sorted(extra)[:10]}, which a {name} has not")
        for key, key_check in declared.items():
            if key in optional and key not in value:
                continue
            try:
                key_check(value[key])
            except _Misfit as exc:
                exc.path.append(f".{key}")
                raise

    return check


def _scalar_checker(hint: Any) -> _Check:
    fits: Callable[[object], bool]
    if hint is type(None):
        said, fits = "must be null", lambda v: v is None
    elif hint is int:
        said, fits = "must be an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)
    elif hint is str:
        said, fits = "must be a string", lambda v: isinstance(v, str)
    elif hint is bool:
        said, fits = "must be a boolean", lambda v: isinstance(v, bool)
    else:
        raise TypeError(f"no check for {hint!r}")

    def check(value: object) -> None:
        if not fits(value):
            raise _Misfit(said)

    return check
