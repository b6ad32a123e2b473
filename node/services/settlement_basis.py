"""What a format-2 statement builds on, as this node knows it (docs/settlement.md, "Format 2"): the final
statements whose references it leaves out, the rule books its plans were made under, and the cut. The
proposer takes them from its own store; a member checking a proposal takes the proposer's word for the cut
and the statements built on, and holds them itself, or does not sign.

The statement itself is pure (settlement/realised.py); this module reads the node's store and rule books.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date
from typing import cast

from sqlmodel import Session, select

from chain.records import RecordType
from negotiation.rules.book import CheckedBook, RuleBook
from node.domain.states import StatementStatus
from node.errors import InvalidRequest, SettlementInputsInvalid, SettlementStopped
from node.store.tables import SettlementStatement
from settlement.contribution import FlowKind, Period, Record
from settlement.document import REALISED_FORMAT, MemberInputs, Statement
from settlement.realised import Cut, StatementStopped, ValueTerms, build_realised_statement
from settlement.statement import terms_of

# Flows of a format-1 statement, by kind: the key of the reference each one settled (format 1 lists none).
_FORMAT_1_KEYS: dict[str, str] = {
    FlowKind.TRANSFER_PRICE: "transfer:{reference}",
    FlowKind.FREIGHT_COMPENSATION: "transfer:{reference}",
    FlowKind.ARBITRATION_AWARD: "arbitration_award:{reference}",
    FlowKind.JOINT_PURCHASE_SHARE: "joint_purchase_share:{reference}:{payer}",
    FlowKind.LOAN_FEE: "loan_fee:{reference}",
    FlowKind.LOAN_SALE: "loan_sale:{reference}",
}


def period_closable(start: date, end: date, today: date) -> Period:
    """A period a node may close: it has ended or ends today (a period that ends later would settle days
    not yet over)."""
    if end < start:
        raise InvalidRequest("a period ends on or after it starts", start=str(start), end=str(end))
    if end > today:
        raise InvalidRequest(f"the period ends on {end}, after today ({today}): close it once it is over", end=str(end))
    return Period(start, end)


def settled_keys(statement: Statement) -> list[str]:
    """The references a final statement settled: its own list from format 2; for format 1, read from its
    flows (consignment sales of format 1 name no owner, lot or SKU, and stay open to a later statement)."""
    if statement.get("format") == REALISED_FORMAT:
        return list(statement.get("settles") or [])
    keys = set()
    for f in statement["flows"]:
        pattern = _FORMAT_1_KEYS.get(f["kind"])  # a StrEnum member is found by its text
        if pattern is not None:
            keys.add(pattern.format(reference=f["reference"], payer=f["from"]))
    return sorted(keys)


def final_statements(s: Session) -> dict[str, Statement]:
    """Every statement final on this node, by id."""
    rows = s.exec(select(SettlementStatement).where(SettlementStatement.status == StatementStatus.FINAL)).all()
    return {r.id: cast(Statement, json.loads(r.document)) for r in rows if r.document}


def proposer_cut(s: Session, proposer: str, at: str, corrects: str | None = None) -> Cut:
    """The proposer's cut: now, built on every statement final on this node; correcting one of them, if named
    (InvalidRequest when it is not final here)."""
    finals = final_statements(s)
    if corrects is not None and corrects not in finals:
        raise InvalidRequest(f"statement {corrects} is not final on this node: only a final one is corrected")
    after = {i: settled_keys(doc) for i, doc in sorted(finals.items())}
    return Cut(proposer, at, after, None if corrects is None else finals[corrects])


def members_cut(s: Session, document: Statement) -> Cut:
    """A proposal's cut as a member checks it: the proposer's time, built on every statement final here. The
    member must hold as final each one the proposal names (SettlementInputsInvalid naming the first it does not:
    tried again, as a final statement may still be on its way); one final here that the proposal does not name
    makes another statement, which the member disputes: the proposal may settle what that one settled."""
    finals = final_statements(s)
    missing = [i for i in document.get("after", []) if i not in finals]
    if missing:
        raise SettlementInputsInvalid(f"the statement builds on {missing[0]}, which is not final on this node")
    corrected = document.get("corrects")
    if corrected is not None and corrected not in finals:
        raise SettlementInputsInvalid(f"the statement corrects {corrected}, which is not final on this node")
    return Cut(
        str(document.get("proposer", "")),
        str(document.get("cut", "")),
        {i: settled_keys(doc) for i, doc in sorted(finals.items())},
        None if corrected is None else finals[corrected],
    )


def documents_cut(document: Statement, finals: Mapping[str, Statement]) -> Cut:
    """A statement's cut as an auditor reads it: the proposer's time, over the final statements it names
    (SettlementInputsInvalid naming the first one not given)."""
    named = [*document.get("after", []), *([c] if (c := document.get("corrects")) else [])]
    missing = [i for i in named if i not in finals]
    if missing:
        raise SettlementInputsInvalid(f"the statement builds on {missing[0]}, which could not be read")
    corrected = document.get("corrects")
    return Cut(
        str(document.get("proposer", "")),
        str(document.get("cut", "")),
        {i: settled_keys(finals[i]) for i in document.get("after", [])},
        None if corrected is None else finals[corrected],
    )


def plan_books(records_by_member: Mapping[str, Sequence[Record]]) -> set[str]:
    """The rule-book versions the members' plans were made under."""
    return {
        str(r["plan"].get("rule_version", ""))
        for records in records_by_member.values()
        for r in records
        if r.get("type") == RecordType.PLAN
    }


def value_terms(book: RuleBook) -> ValueTerms:
    """What a rule book says a delivered unit is worth at most: its alternative supply cost per SKU."""
    return ValueTerms(book.alternative_supply_cost_minor())


def realised_statement(
    records_by_member: Mapping[str, Sequence[Record]],
    inputs: Mapping[str, MemberInputs],
    period: Period,
    book: tuple[str, RuleBook],
    books: Mapping[str, RuleBook],
    cut: Cut,
) -> Statement:
    """The format-2 statement of verified records under the book (version, book) in force. `books` holds the
    other versions the node knows; a plan made under one it does not know stops the statement, named.
    Records that verify against the chain may still be malformed: named, never a crash."""
    version, in_force = book
    terms = {v: value_terms(b) for v, b in books.items()} | {version: value_terms(in_force)}
    try:
        return build_realised_statement(records_by_member, period, version, terms_of(in_force), terms, cut, inputs)
    except StatementStopped as exc:
        raise SettlementStopped(str(exc)) from exc
    except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
        raise SettlementInputsInvalid(f"a member's record cannot be read for settlement: {exc!r}") from exc


def known_books(versions: Iterable[str], lookup: Callable[[str], RuleBook | None]) -> dict[str, RuleBook]:
    """The rule books of `versions` that `lookup(version)` finds."""
    found = {v: lookup(v) for v in versions}
    return {v: book for v, book in found.items() if book is not None}


def held_book(checked: CheckedBook | None) -> RuleBook | None:
    return None if checked is None else checked.book
