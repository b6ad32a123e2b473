"""Reconciling two partners' books of the transfers, loans and joint purchases between them: pure, over their
ledger records."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

TRANSFER_TYPES = {"transfer_out", "transfer_settled", "transfer_in", "discrepancy"}


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


@dataclass(frozen=True)
class Difference:
    transfer: str  # the subject's id: a transfer's acceptance, a loan, a joint purchase
    field: str
    left: Any
    right: Any
    what: str = "transfer"


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
        if r["type"] == "transfer_out":
            v.shipped = sum(ln["quantity"] for ln in lines if ln["status"] == "in_transit")
            v.freight_compensation = t.get("freight_compensation")
        elif r["type"] in ("transfer_in", "transfer_settled"):
            v.shipped = t.get("shipped", v.shipped)
            v.received = t.get("received")
            v.freight_compensation = t.get("freight_compensation", v.freight_compensation)
        elif r["type"] == "discrepancy":
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
        for name in (
            "supplier",
            "requester",
            "sku",
            "lot",
            "shipped",
            "received",
            "freight_compensation",
            "discrepancy",
        ):
            x, y = getattr(lv, name), getattr(rv, name)
            if name in ("sku", "lot") and (not x or not y):
                continue  # a discrepancy-only or zero-quantity receipt record has no lines to compare
            if x != y:
                diffs.append(Difference(tid, name, x, y))
    return sorted(set(left) | set(right)), diffs


def _dealings(node: str, other: str, records: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, id) -> what one node's records say of each loan and joint purchase share with `other`."""
    out: dict[tuple[str, str], dict[str, Any]] = defaultdict(dict)
    records = list(records)
    # A LoanReturn names the loan and the borrower, not the lender: its loan's parties come from lend/borrow.
    between = {
        r["loan"]["loan"]
        for r in records
        if r.get("type") in ("lend", "borrow") and {r["loan"]["lender"], r["loan"]["borrower"]} == {node, other}
    }
    for r in records:
        kind = r.get("type")
        if kind in ("lend", "borrow") and r["loan"]["loan"] in between:
            view = out[("loan", r["loan"]["loan"])]
            view["signed_loan"], view["quantity"] = r["loan"]["id"], int(r["loan"]["quantity"])
        elif kind == "loan_return" and r["loan_return"]["loan"] in between:
            back = r["loan_return"]
            out[("loan", back["loan"])].setdefault("returns", {})[back["id"]] = int(back["quantity"])
        elif kind == "loan_sale" and {r["loan_sale"]["lender"], r["loan_sale"]["borrower"]} == {node, other}:
            out[("loan", r["loan_sale"]["loan"])]["sold"] = int(r["loan_sale"]["units"])
        elif kind == "joint_purchase" and r["joint_purchase"]["buyer"] == node:
            for sh in r["joint_purchase"]["shares"]:
                if sh["participant"] == other:
                    out[("joint_purchase", r["joint_purchase"]["id"])] = {"share": int(sh["share"]), ROLE: "buyer"}
        elif kind == "loan_refused" and r["loan"]["loan"] in between:
            out[("loan", r["loan"]["loan"])][REFUSED] = True
        elif kind == "joint_purchase_share" and r["joint_purchase"]["buyer"] == other:
            share = int(r["joint_purchase"]["share"])  # wire form: a decimal string
            out[("joint_purchase", r["joint_purchase"]["purchase"])] = {"share": share, ROLE: "participant"}
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
        if what == "joint_purchase" and not (lv and rv) and (lv or rv).get(ROLE) == "buyer":
            continue
        if lv.get(REFUSED) or rv.get(REFUSED):
            continue
        for name in sorted((set(lv) | set(rv)) - {ROLE, REFUSED}):
            x, y = lv.get(name), rv.get(name)
            if x != y:
                diffs.append(Difference(sid, name, x, y, what))
    return [sid for _what, sid in subjects], diffs
