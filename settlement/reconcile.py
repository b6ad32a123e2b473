"""Reconciling two partners' books of the transfers, loans and joint purchases between them: pure, over their
ledger records."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

from chain.records import RecordType

TRANSFER_TYPES = frozenset(
    {RecordType.TRANSFER_OUT, RecordType.TRANSFER_SETTLED, RecordType.TRANSFER_IN, RecordType.DISCREPANCY}
)
LOAN_TERMS = frozenset({RecordType.LEND, RecordType.BORROW})  # both sides' records of the Loan as signed


class Dealing(StrEnum):
    """What a difference is about: its subject's kind, as `consortium reconcile` names it."""

    TRANSFER = "transfer"
    LOAN = "loan"
    JOINT_PURCHASE = "joint_purchase"


@dataclass
class TransferView:
    """What one node's records say about one transfer (keyed by the acceptance id)."""

    supplier: str = ""
    requester: str = ""
    sku: str = ""
    lot: str = ""
    shipped: int | None = None
    received: int | None = None
    freight_compensation: int | None = None
    discrepancy: int | None = None
    records: list[int] = field(default_factory=list)


COMPARED = tuple(f.name for f in fields(TransferView) if f.name != "records")  # each side's own seqs differ


@dataclass(frozen=True)
class Difference:
    transfer: str  # the subject's id: a transfer's acceptance, a loan, a joint purchase
    field: str
    left: Any
    right: Any
    what: Dealing = Dealing.TRANSFER


def views(node: str, records: Iterable[Mapping[str, Any]]) -> dict[str, TransferView]:
    out: dict[str, TransferView] = defaultdict(TransferView)
    for r in records:
        if r.get("type") not in TRANSFER_TYPES or "transfer" not in r:
            continue
        t = r["transfer"]
        v = out[t["acceptance"]]
        v.supplier, v.requester = t["supplier"], t["requester"]
        v.records.append(int(r["seq"]))
        lines = r.get("lines") or []
        if lines:
            v.sku, v.lot = lines[0]["sku"], lines[0]["lot"]
        if r["type"] == RecordType.TRANSFER_OUT:
            v.shipped = sum(ln["quantity"] for ln in lines if ln["status"] == "in_transit")
            v.freight_compensation = t.get("freight_compensation")
        elif r["type"] in (RecordType.TRANSFER_IN, RecordType.TRANSFER_SETTLED):
            v.shipped = t.get("shipped", v.shipped)
            v.received = t.get("received")
            v.freight_compensation = t.get("freight_compensation", v.freight_compensation)
        elif r["type"] == RecordType.DISCREPANCY:
            v.discrepancy = t.get("difference")
    return {k: v for k, v in out.items() if node in (v.supplier, v.requester)}


def reconcile(
    a: str, a_records: Iterable[Mapping[str, Any]], b: str, b_records: Iterable[Mapping[str, Any]]
) -> tuple[list[str], list[Difference]]:
    """Transfers between a and b, and every field on which their books disagree (or a side is silent)."""
    left = {k: v for k, v in views(a, a_records).items() if {v.supplier, v.requester} == {a, b}}
    right = {k: v for k, v in views(b, b_records).items() if {v.supplier, v.requester} == {a, b}}
    diffs: list[Difference] = []
    for tid in sorted(set(left) | set(right)):
        lv, rv = left.get(tid), right.get(tid)
        if lv is None or rv is None:
            diffs.append(Difference(tid, "records", "present" if lv else "missing", "present" if rv else "missing"))
            continue
        for name in COMPARED:
            x, y = getattr(lv, name), getattr(rv, name)
            if name in ("sku", "lot") and (not x or not y):
                continue  # a discrepancy-only or zero-quantity receipt record has no lines to compare
            if x != y:
                diffs.append(Difference(tid, name, x, y))
    return sorted(set(left) | set(right)), diffs


def _dealings(node: str, other: str, records: Iterable[Mapping[str, Any]]) -> dict[tuple[Dealing, str], dict[str, Any]]:
    """(dealing, id) -> what one node's records say of each loan and joint purchase share with `other`."""
    out: dict[tuple[Dealing, str], dict[str, Any]] = defaultdict(dict)
    records = list(records)
    # A LoanReturn names the loan and the borrower, not the lender: its loan's parties come from lend/borrow.
    between = {
        r["loan"]["loan"]
        for r in records
        if r.get("type") in LOAN_TERMS and {r["loan"]["lender"], r["loan"]["borrower"]} == {node, other}
    }
    for r in records:
        kind = r.get("type")
        if kind in LOAN_TERMS and r["loan"]["loan"] in between:
            view = out[(Dealing.LOAN, r["loan"]["loan"])]
            view["signed_loan"], view["quantity"] = r["loan"]["id"], int(r["loan"]["quantity"])
        elif kind == RecordType.LOAN_RETURN and r["loan_return"]["loan"] in between:
            back = r["loan_return"]
            out[(Dealing.LOAN, back["loan"])].setdefault("returns", {})[back["id"]] = int(back["quantity"])
        elif kind == RecordType.LOAN_SALE and {r["loan_sale"]["lender"], r["loan_sale"]["borrower"]} == {node, other}:
            out[(Dealing.LOAN, r["loan_sale"]["loan"])]["sold"] = int(r["loan_sale"]["units"])
        elif kind == RecordType.JOINT_PURCHASE and r["joint_purchase"]["buyer"] == node:
            for sh in r["joint_purchase"]["shares"]:
                if sh["participant"] == other:
                    out[(Dealing.JOINT_PURCHASE, r["joint_purchase"]["id"])] = {
                        "share": int(sh["share"]),
                        ROLE: "buyer",
                    }
        elif kind == RecordType.LOAN_REFUSED and r["loan"]["loan"] in between:
            out[(Dealing.LOAN, r["loan"]["loan"])][REFUSED] = True
        elif kind == RecordType.JOINT_PURCHASE_SHARE and r["joint_purchase"]["buyer"] == other:
            share = int(r["joint_purchase"]["share"])  # wire form: a decimal string
            out[(Dealing.JOINT_PURCHASE, r["joint_purchase"]["purchase"])] = {"share": share, ROLE: "participant"}
    return out


ROLE = "_role"
REFUSED = "_refused"  # the lender's node took back a loan the borrower refused: nothing to match


def reconcile_dealings(
    a: str, a_records: Iterable[Mapping[str, Any]], b: str, b_records: Iterable[Mapping[str, Any]]
) -> tuple[list[str], list[Difference]]:
    """Loans and joint purchases between a and b, and every field on which their books disagree. A share the
    buyer proposed and the participant has not accepted yet is pending, not a difference."""
    left, right = _dealings(a, b, a_records), _dealings(b, a, b_records)
    diffs = []
    subjects = sorted(set(left) | set(right))
    for what, sid in subjects:
        lv, rv = left.get((what, sid), {}), right.get((what, sid), {})
        if what == Dealing.JOINT_PURCHASE and not (lv and rv) and (lv or rv).get(ROLE) == "buyer":
            continue
        if lv.get(REFUSED) or rv.get(REFUSED):
            continue
        for name in sorted((set(lv) | set(rv)) - {ROLE, REFUSED}):
            x, y = lv.get(name), rv.get(name)
            if x != y:
                diffs.append(Difference(sid, name, x, y, what))
    return [sid for _what, sid in subjects], diffs
