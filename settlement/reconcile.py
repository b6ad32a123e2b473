"""Reconciling two partners' books of the transfers between them: pure, over their ledger records."""

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
    transfer: str
    field: str
    left: Any
    right: Any


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
