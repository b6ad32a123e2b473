"""What a node may serve of one of its records to one reader: the disclosure policy of each partner's own data space.

A node holds records that concern several partners, and a partner asking for them must see only those it is a
party to (docs/proof-format.md, "Disclosure by relationship"). The policy is one pure function, `disclose`, of
the record body and a typed `Reader`; it answers a `Decision`: WHOLE (the body as written), PART (a redacted body
and a commitment to each withheld item) or NONE. Each record type has its rule in `RULES`, keyed by every
`RecordType`, so a type added without deciding who sees it fails tests/unit/test_disclosure.py.

The policy only: no read path applies it yet; a later change enforces it where records are served.

In the chain room so that auditors' tools can check a disclosed part as the node does: no imports from above it.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, cast

from chain.canonical import canonical_json
from chain.records import KIND_OF_TYPE, RecordKind, RecordType

Body = Mapping[str, Any]
PathStep = str | int
Path = tuple[PathStep, ...]

# The evidence source that names the invitation a reservation was made for (node/services/invitations.py).
INVITATION_SOURCE = "invitation"


class Disclosure(StrEnum):
    WHOLE = "whole"
    PART = "part"
    NONE = "none"


class ReaderRole(StrEnum):
    OPERATOR = "operator"  # the node's own company: its whole ledger
    AUDITOR = "auditor"  # whoever the consortium lets audit, within an AuditScope
    MEMBER = "member"  # a partner, known by its member address


@dataclass(frozen=True)
class AuditScope:
    """What an auditor may read: the whole ledger when every bound is None; otherwise only records of the given
    kinds and types whose `at` lies in [since, until) (`at` is ISO 8601 UTC, so text order is time order)."""

    kinds: frozenset[RecordKind] | None = None
    types: frozenset[RecordType] | None = None
    since: str | None = None
    until: str | None = None

    def covers(self, record_type: RecordType, at: str) -> bool:
        if self.kinds is not None and KIND_OF_TYPE[record_type] not in self.kinds:
            return False
        if self.types is not None and record_type not in self.types:
            return False
        if self.since is not None and at < self.since:
            return False
        return self.until is None or at < self.until


@dataclass(frozen=True)
class Reader:
    role: ReaderRole
    address: str | None = None  # members only
    scope: AuditScope | None = None  # auditors only

    @staticmethod
    def operator() -> Reader:
        return Reader(ReaderRole.OPERATOR)

    @staticmethod
    def auditor(scope: AuditScope | None = None) -> Reader:
        return Reader(ReaderRole.AUDITOR, scope=scope or AuditScope())

    @staticmethod
    def member(address: str) -> Reader:
        return Reader(ReaderRole.MEMBER, address=address)


@dataclass(frozen=True)
class Withheld:
    """One item taken out of a disclosed part: where it was (keys and array indices, from the body's top) and
    sha256 of its canonical JSON, lowercase hex."""

    path: Path
    commitment: str


@dataclass(frozen=True)
class Decision:
    disclosure: Disclosure
    body: dict[str, Any] | None = None  # None for NONE; the body itself for WHOLE; the redacted body for PART
    withheld: tuple[Withheld, ...] = field(default=())


NONE = Decision(Disclosure.NONE)


def commitment(value: object) -> str:
    """sha256 of the canonical JSON of one withheld value (docs/proof-format.md, section 2), lowercase hex."""
    return hashlib.sha256(canonical_json(cast(dict[str, Any], value))).hexdigest()


def _same(a: object, b: str) -> bool:
    # Addresses come EIP-55 checksummed from some writers and lowercase from others: the letters' case is no part
    # of who is named.
    return isinstance(a, str) and a.lower() == b.lower()


# A rule answers, for a record of its type and a member that did not write it, what that member sees.
Rule = Callable[[Body, str, Mapping[str, str]], Decision]


def _path(dotted: str) -> Path:
    """A path written as text, keys joined by "." ("*": every element of an array)."""
    return tuple(dotted.split("."))


def _parties(*places: str) -> Rule:
    """The rule of a record whose parties are named at fixed places: each party sees it whole, no one else."""
    paths = [_path(place) for place in places]

    def rule(body: Body, member: str, _requesters: Mapping[str, str]) -> Decision:
        named = [value for path in paths for value in _values_at(body, path)]
        return Decision(Disclosure.WHOLE, dict(body)) if any(_same(v, member) for v in named) else NONE

    return rule


def _values_at(value: object, path: Path) -> list[object]:
    """The values at `path`, where a step "*" runs over every element of an array."""
    if not path:
        return [value]
    step, rest = path[0], path[1:]
    if step == "*":
        return [v for item in value for v in _values_at(item, rest)] if isinstance(value, list) else []
    if isinstance(value, Mapping) and isinstance(step, str) and step in value:
        return _values_at(value[step], rest)
    return []


def _line_names(line: object, member: str) -> bool:
    return isinstance(line, Mapping) and (_same(line.get("owner"), member) or _same(line.get("holder"), member))


def _stock(body: Body, member: str, requesters: Mapping[str, str]) -> Decision:
    """A movement of stock: a member sees the lines of stock it owns or holds (consignment) and nothing else of
    the operator's stock; a reservation made for its invitation it sees whole."""
    if _reserved_for(body, member, requesters):
        return Decision(Disclosure.WHOLE, dict(body))
    lines = list(body.get("lines", []))
    mine = [i for i, line in enumerate(lines) if _line_names(line, member)]
    if not mine:
        return NONE
    if len(mine) == len(lines):
        return Decision(Disclosure.WHOLE, dict(body))
    others: list[Path] = [(*_path("lines"), i) for i in range(len(lines)) if i not in mine]
    return _redact(body, [*others, _path("memo")])


def _reserved_for(body: Body, member: str, requesters: Mapping[str, str]) -> bool:
    # A reservation names its requester only in its memo text, which the policy does not parse: the caller, which
    # keeps the invitations it answered, says whose each invitation is.
    invitations = [e.get("reference") for e in body.get("evidence", []) if e.get("source") == INVITATION_SOURCE]
    return any(_same(requesters.get(cast(str, ref), ""), member) for ref in invitations)


def _plan(body: Body, member: str, _requesters: Mapping[str, str]) -> Decision:
    """A plan: a member whose offer or request it weighed sees its own offers, requests, lanes and allocations,
    and a commitment to everything else of the problem and the answer; never a competitor's offer or price."""
    plan = body["plan"]
    problem, answer = plan.get("problem") or {}, plan.get("answer") or {}
    offers = {o.get("id") for o in problem.get("offers", []) if _same(o.get("node"), member)}
    requests = {r.get("id") for r in problem.get("requests", []) if _same(r.get("node"), member)}
    mine_alloc = [a for a in answer.get("allocations", []) if a.get("offer") in offers or a.get("request") in requests]
    requests |= {a.get("request") for a in mine_alloc}
    if not offers and not requests:
        return NONE
    keep: dict[Path, Callable[[Any], bool]] = {
        _path("plan.problem.offers"): lambda o: o.get("id") in offers,
        _path("plan.problem.requests"): lambda r: r.get("id") in requests,
        _path("plan.problem.lanes"): lambda ln: _same(ln.get("from"), member) or _same(ln.get("to"), member),
        _path("plan.answer.allocations"): lambda a: a in mine_alloc,
        _path("evidence"): lambda e: e.get("reference") in offers | requests,
        _path("lines"): lambda line: _line_names(line, member),
    }
    withheld = [_path("memo"), _path("plan.parameters"), _path("plan.cells")]
    for parent, container in ((_path("plan.problem"), problem), (_path("plan.answer"), answer)):
        withheld += [(*parent, k) for k in sorted(container) if (*parent, k) not in keep]
    for path, wanted in keep.items():
        items = cast(list[Any], (_values_at(body, path) or [[]])[0])
        withheld += [(*path, i) for i, item in enumerate(items) if not wanted(item)]
    return _redact(body, withheld)


def _redact(body: Body, paths: Iterable[Path]) -> Decision:
    """The body without the items at `paths`, and a commitment to each. Array elements go from the highest index
    down, so the indices named stay those of the written body."""
    part = copy.deepcopy(dict(body))
    taken = []
    for path in sorted(set(paths), key=_path_order, reverse=True):
        if not _values_at(part, path[:-1]):
            continue
        parent = _values_at(part, path[:-1])[0]
        last = path[-1]
        in_list = isinstance(parent, list) and isinstance(last, int) and last < len(parent)
        if in_list or (isinstance(parent, dict) and last in parent):
            taken.append(Withheld(path, commitment(cast(Any, parent).pop(last))))
    return Decision(Disclosure.PART, part, tuple(sorted(taken, key=lambda w: _path_order(w.path))))


def _path_order(path: Path) -> tuple[tuple[int, str, int], ...]:
    return tuple((1, "", s) if isinstance(s, int) else (0, s, 0) for s in path)


def restore(part: Body, withheld: Sequence[Withheld], values: Mapping[Path, object]) -> dict[str, Any]:
    """The written body from a disclosed part and the withheld values (each checked against its commitment):
    what an auditor holding the values does to tie a part to the anchored leaf. ValueError on a value that does
    not match its commitment or on one missing."""
    body = copy.deepcopy(dict(part))
    for item in sorted(withheld, key=lambda w: _path_order(w.path)):
        value = values[item.path]
        if commitment(value) != item.commitment:
            raise ValueError(f"{list(item.path)}: the value does not match its commitment")
        parent: Any = _values_at(body, item.path[:-1])[0]
        if isinstance(parent, list):
            parent.insert(cast(int, item.path[-1]), copy.deepcopy(value))
        else:
            parent[item.path[-1]] = copy.deepcopy(value)
    return body


_MOVEMENT: Rule = _stock
_TRANSFER = _parties("transfer.supplier", "transfer.requester")
_LOAN = _parties("loan.lender", "loan.borrower")

# Every record type's rule: a member that did not write the record sees what its rule says.
RULES: dict[RecordType, Rule] = {
    RecordType.RECEIPT: _MOVEMENT,
    RecordType.ISSUE: _MOVEMENT,
    RecordType.MOVE: _MOVEMENT,
    RecordType.STATUS_CHANGE: _MOVEMENT,
    RecordType.ADJUSTMENT: _MOVEMENT,
    RecordType.BUY_OUT: _MOVEMENT,
    RecordType.PLAN: _plan,
    RecordType.TRANSFER_OUT: _TRANSFER,
    RecordType.TRANSFER_IN: _TRANSFER,
    RecordType.TRANSFER_SETTLED: _TRANSFER,
    RecordType.DISCREPANCY: _TRANSFER,
    RecordType.JOINT_PURCHASE: _parties("joint_purchase.buyer", "joint_purchase.shares.*.participant"),
    RecordType.JOINT_PURCHASE_SHARE: _parties("joint_purchase.buyer", "joint_purchase.participant"),
    RecordType.LEND: _LOAN,
    RecordType.BORROW: _LOAN,
    RecordType.LOAN_REFUSED: _LOAN,
    # A LoanReturn names only the borrower; the lender is the owner of the units coming back.
    RecordType.LOAN_RETURN: _parties("loan_return.borrower", "lines.*.owner"),
    RecordType.LOAN_SALE: _parties("loan_sale.lender", "loan_sale.borrower"),
    RecordType.DISPUTE: _parties("dispute.opener", "dispute.respondent"),
    RecordType.RULING: _parties("ruling.payer", "ruling.payee", "ruling.arbitrator"),
    RecordType.SETTLEMENT: _parties("settlement.signatures.*.signer"),
}


def disclose(record: Body, reader: Reader, invitation_requesters: Mapping[str, str] | None = None) -> Decision:
    """What `reader` may be served of `record` (a body as chain.records.read_body accepts it).

    `invitation_requesters` maps an invitation id to the member that sent it: a reservation names its requester
    only there (see `_reserved_for`); without it a reservation is disclosed to no member."""
    record_type = RecordType(record["type"])
    if reader.role is ReaderRole.OPERATOR:
        return Decision(Disclosure.WHOLE, dict(record))
    if reader.role is ReaderRole.AUDITOR:
        scope = reader.scope or AuditScope()
        return Decision(Disclosure.WHOLE, dict(record)) if scope.covers(record_type, record["at"]) else NONE
    if reader.address is None:
        return NONE
    if _same(record.get("node"), reader.address):
        return Decision(Disclosure.WHOLE, dict(record))  # what a member wrote is its own
    return RULES[record_type](record, reader.address, invitation_requesters or {})
