"""The settlement statement document (docs/settlement.md, section 5), declared once: settlement/statement.py
builds it, node/services/settlements.py stores, fetches, compares and serves it, and the API answers it
(node/api/responses.py `StatementOut` derives from `ServedStatement`).

A new part is added here, with a new `format`: the hash covers every part of the model a statement holds, and
`differing_lines` compares every part, so neither can forget it. A part a statement does not hold is not
hashed, so adding one leaves the hash of every statement of an older format as it was.

The parts are declared in the order the API has always served them: the statement's own in document order,
the inner ones in canonical (sorted) order, as the stored document holds them. Pydantic validates these
TypedDicts for the API (on Python 3.11 it needs typing_extensions' TypedDict).
"""

import json
from collections.abc import Mapping
from typing import Literal, NotRequired

from typing_extensions import TypedDict

from settlement.contribution import MetricValues, PeriodDates

STATEMENT_FORMAT = "consortium-settlement/1"
# Format 2: only delivered goods create value, each reference is settled once, identity by proposer and hash.
REALISED_FORMAT = "consortium-settlement/2"
Method = Literal["proportional", "shapley", "core"]
CoreCheckScope = Literal["all coalitions", "each plan", "not checked"]


class PlanValue(TypedDict):
    """A plan of the period and the surplus it created: its game's value for all its players."""

    plan: str  # "<requester>#<seq>"
    players: list[str]
    value: int


class MemberGains(TypedDict):
    """A member's gain as a controller reads it (format 2): what it gained at invoice prices on the goods it
    received and on the stock it supplied, and the share of the joint gain the split gives it instead."""

    from_stock_supplied: int
    from_transfers_received: int
    share_of_joint_gain: int


class MemberShare(TypedDict):
    """A member's metrics, its exact and rounded share of the surplus, what it captured and its net position."""

    captured: int
    exact_share: str  # an exact rational: "7", "-3", "200/3"
    gains: NotRequired[MemberGains]
    member: str
    metrics: MetricValues
    net: int
    share: int


class Coalition(TypedDict):
    members: list[str]
    value: int


class CoreCheck(TypedDict):
    """Whether the shares are in the core; `in_core` and `deficit` are null when not checked."""

    deficit: str | None
    in_core: bool | None
    scope: CoreCheckScope
    worst_coalition: list[str]


# A money flow between two members (minor units, payer -> payee), and a payment that settles the flows.
MoneyFlow = TypedDict("MoneyFlow", {"amount": int, "from": str, "kind": str, "reference": str, "to": str})
StatementPayment = TypedDict("StatementPayment", {"amount": int, "from": str, "to": str})


class DeliveredValue(TypedDict):
    """One delivered transfer and the gain it made (format 2): everything in it comes from the pair's two
    records (the supplier's `transfer_out`, the requester's `transfer_in`) and the rule book of its plan, so
    each pair checks its own line. Money in minor units; `unit_value` = min(sale price, alternative supply
    cost); `gain` = max(0, units x (unit_value - cost_basis) - freight), split into the two parts."""

    acceptance: str
    cost_basis: int
    freight: int
    gain: int
    plan: str
    requester: str
    requester_gain: int
    sku: str
    supplier: str
    supplier_gain: int
    unit_price: int
    unit_value: int
    units: int


class PairSection(TypedDict):
    """Two members' own part of a format-2 statement: what the second receives from the first, net of every
    flow between them, and a commitment (sha256 of the canonical JSON of `{"transfers", "flows"}`: their
    delivered transfers' lines and their flows, each in the statement's order) to the details, which only
    the two need to see to check it."""

    commitment: str
    members: list[str]
    net: int


class MemberInputs(TypedDict):
    """The cut of a member's records the statement was computed from."""

    batch_roots: list[str]
    last_seq: int


class SignatureEntry(TypedDict):
    """A member's signed StatementSignature: its wire message and signature."""

    signer: str
    message: dict[str, str]
    signature: str


class Statement(TypedDict):
    format: str
    id: str
    period: PeriodDates
    rule_version: str
    method: Method
    status: str
    surplus: int
    plans: list[PlanValue]
    members: list[MemberShare]
    coalitions: list[Coalition] | None  # null past MAX_LISTED members
    core_check: CoreCheck
    flows: list[MoneyFlow]
    payments: list[StatementPayment]
    inputs: dict[str, MemberInputs]
    statement_hash: str
    signatures: list[SignatureEntry]
    # Format 2: who proposed it, when the period was cut, the final statements whose references it leaves out
    # (and the one it corrects), each delivered transfer's gain, and every reference it settles.
    proposer: NotRequired[str]
    cut: NotRequired[str]
    after: NotRequired[list[str]]
    corrects: NotRequired[str | None]
    transfers: NotRequired[list[DeliveredValue]]
    settles: NotRequired[list[str]]
    pairs: NotRequired[list[PairSection]]


class ServedStatement(Statement):
    """A statement as a node serves it: with why this node has not countersigned it, when it has not."""

    problem: NotRequired[str]


# What changes as the members agree (the status, the hash itself, the signatures): every other part is signed.
AGREEMENT_PARTS = ("status", "statement_hash", "signatures")
SIGNED_PARTS = tuple(part for part in Statement.__annotations__ if part not in AGREEMENT_PARTS)
SERVED_PARTS = frozenset(ServedStatement.__annotations__)


def signed_content(statement: Mapping[str, object]) -> dict[str, object]:
    """The parts of a statement every member signs the hash of (those of the model it holds). From format 2
    the id is derived from the hash (and the proposer), so it is not part of it."""
    unsigned = ("id",) if statement.get("format") == REALISED_FORMAT else ()
    return {part: statement[part] for part in SIGNED_PARTS if part in statement and part not in unsigned}


def differing_lines(theirs: Mapping[str, object], mine: Statement) -> list[str]:
    """Which signed parts of two statements differ, in words an operator can act on; members one by one,
    naming the parts of each member's line that differ."""
    ours: Mapping[str, object] = mine
    out = []
    for part in SIGNED_PARTS:
        if part == "members":
            out += _differing_members(theirs.get(part), mine["members"])
        elif theirs.get(part) != ours.get(part):
            out.append(f"{part}: theirs {_short(theirs.get(part))}, ours {_short(ours.get(part))}")
    return out or ["the same content under another hash"]


def _differing_members(theirs: object, mine: list[MemberShare]) -> list[str]:
    if not isinstance(theirs, list):
        return [f"members: theirs {_short(theirs)}"]
    ours: dict[str, Mapping[str, object]] = {m["member"]: m for m in mine}
    listed: dict[str, Mapping[str, object]] = {str(m.get("member")): m for m in theirs if isinstance(m, dict)}
    out = []
    for member in sorted(listed.keys() | ours.keys(), key=str.lower):
        a, b = listed.get(member), ours.get(member)
        if a is None or b is None:
            out.append(f"member {member}: only in {'ours' if a is None else 'theirs'}")
        elif a != b:
            known = tuple(MemberShare.__annotations__)
            parts = [p for p in (*known, *(k for k in a if k not in known)) if a.get(p) != b.get(p)]
            out.append(f"member {member}: {', '.join(parts)}")
    return out


def _short(value: object) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."
