"""The movement ledger's rules, as pure functions over plain data.

A movement (receipt, issue, move, status change, adjustment) becomes a list of postings, each a signed
quantity on one stock bucket. Balances are the sum of postings per bucket and may never go negative.
The same `apply_postings` serves the live node and the auditor's timeline replay, so both agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from chain.records import Line, RecordType
from node.errors import EvidenceRequired, InsufficientStock, InvalidMovement


class StockStatus(StrEnum):
    AVAILABLE = "available"
    RESERVED = "reserved"
    QUARANTINE = "quarantine"
    DAMAGED = "damaged"
    EXPIRED = "expired"
    # Shipped to a partner, not yet received: only transfers write it.
    IN_TRANSIT = "in_transit"


class MovementType(StrEnum):
    """The record types an operator writes: each is recorded under the record type of the same value."""

    RECEIPT = RecordType.RECEIPT.value
    ISSUE = RecordType.ISSUE.value
    MOVE = RecordType.MOVE.value
    STATUS_CHANGE = RecordType.STATUS_CHANGE.value
    ADJUSTMENT = RecordType.ADJUSTMENT.value
    BUY_OUT = RecordType.BUY_OUT.value  # consigned stock the holder buys: the owner becomes the holder


@dataclass(frozen=True, order=True)
class Bucket:
    """One stock position: what, which lot, where, owned by whom, held by whom, in what state."""

    sku: str
    lot: str
    location: str
    owner: str
    holder: str
    status: str


@dataclass(frozen=True)
class Posting:
    bucket: Bucket
    quantity: int

    def as_record(self) -> Line:
        b = self.bucket
        return {
            "sku": b.sku,
            "lot": b.lot,
            "location": b.location,
            "owner": b.owner,
            "holder": b.holder,
            "status": b.status,
            "quantity": self.quantity,
        }

    @staticmethod
    def from_record(line: Mapping[str, Any]) -> Posting:
        bucket = Bucket(
            sku=line["sku"],
            lot=line["lot"],
            location=line["location"],
            owner=line["owner"],
            holder=line["holder"],
            status=line["status"],
        )
        return Posting(bucket=bucket, quantity=int(line["quantity"]))


@dataclass(frozen=True)
class Evidence:
    source: str
    reference: str


@dataclass(frozen=True)
class Movement:
    """What an operator asks for, already resolved to buckets (owner/holder defaults filled in)."""

    type: MovementType
    sku: str
    lot: str
    location: str
    quantity: int
    owner: str
    holder: str
    status: str = StockStatus.AVAILABLE
    to_location: str | None = None
    to_status: str | None = None
    evidence: tuple[Evidence, ...] = ()
    memo: str = ""
    corrects: int | None = None
    # What one unit of an issue sold at, minor units, when the seller gives it (its record then carries it).
    unit_price: int | None = None


MIN_ADJUSTMENT_EVIDENCE = 2


def postings_for(movement: Movement) -> list[Posting]:
    """The postings a movement writes; raises InvalidMovement / EvidenceRequired when it breaks a rule."""
    m = movement
    here = Bucket(m.sku, m.lot, m.location, m.owner, m.holder, m.status)
    if m.unit_price is not None and m.type is not MovementType.ISSUE:
        raise InvalidMovement(f"only an issue sells at a unit price, not a {m.type.value}")
    if m.type is MovementType.ADJUSTMENT:
        if m.quantity == 0:
            raise InvalidMovement("an adjustment changes stock: quantity must not be 0")
        sources = {(e.source.strip(), e.reference.strip()) for e in m.evidence}
        if len(sources) < MIN_ADJUSTMENT_EVIDENCE or any(not s or not r for s, r in sources):
            raise EvidenceRequired(
                f"a manual adjustment needs at least {MIN_ADJUSTMENT_EVIDENCE} distinct pieces of evidence "
                "(source and reference)",
                given=len(m.evidence),
            )
        return [Posting(here, m.quantity)]
    if m.quantity <= 0:
        raise InvalidMovement(f"quantity must be a positive integer for a {m.type.value}", quantity=m.quantity)
    if m.type is MovementType.RECEIPT:
        return [Posting(here, m.quantity)]
    if m.type is MovementType.ISSUE:
        return [Posting(here, -m.quantity)]
    if m.type is MovementType.MOVE:
        if not m.to_location or m.to_location == m.location:
            raise InvalidMovement("a move needs a target location different from its source")
        there = Bucket(m.sku, m.lot, m.to_location, m.owner, m.holder, m.status)
        return [Posting(here, -m.quantity), Posting(there, m.quantity)]
    if m.type is MovementType.STATUS_CHANGE:
        if not m.to_status or m.to_status == m.status:
            raise InvalidMovement("a status change needs a target status different from the current one")
        there = Bucket(m.sku, m.lot, m.location, m.owner, m.holder, m.to_status)
        return [Posting(here, -m.quantity), Posting(there, m.quantity)]
    if m.type is MovementType.BUY_OUT:
        if m.owner == m.holder:
            raise InvalidMovement("a buy-out takes over stock another member owns: name its owner")
        bought = Bucket(m.sku, m.lot, m.location, m.holder, m.holder, m.status)
        return [Posting(here, -m.quantity), Posting(bought, m.quantity)]
    raise InvalidMovement(f"unknown movement type {m.type!r}")


def apply_postings(balances: Mapping[Bucket, int], postings: Iterable[Posting]) -> dict[Bucket, int]:
    """New balances of the touched buckets; raises InsufficientStock if any would go below zero."""
    changed: dict[Bucket, int] = {}
    for p in postings:
        current = changed.get(p.bucket, balances.get(p.bucket, 0))
        changed[p.bucket] = current + p.quantity
    for bucket, qty in changed.items():
        if qty < 0:
            raise InsufficientStock(
                f"not enough {bucket.status} stock of {bucket.sku} lot {bucket.lot} at {bucket.location}",
                sku=bucket.sku,
                lot=bucket.lot,
                location=bucket.location,
                owner=bucket.owner,
                holder=bucket.holder,
                status=bucket.status,
                shortfall=-qty,
            )
    return changed


@dataclass
class Replay:
    balances: dict[Bucket, int]
    # Records that would have driven a bucket below zero: an auditor wants them named, not a crash.
    violations: list[tuple[int, str]]


def replay(records: Iterable[Mapping[str, Any]]) -> Replay:
    """Balances after `records` (ledger record dicts in sequence order), zero buckets dropped."""
    balances: dict[Bucket, int] = {}
    violations: list[tuple[int, str]] = []
    for record in records:
        postings = [Posting.from_record(line) for line in record.get("lines", [])]
        try:
            balances.update(apply_postings(balances, postings))
        except InsufficientStock as exc:
            violations.append((int(record.get("seq", 0)), exc.message))
            for p in postings:
                balances[p.bucket] = balances.get(p.bucket, 0) + p.quantity
    return Replay({b: q for b, q in balances.items() if q != 0}, violations)
