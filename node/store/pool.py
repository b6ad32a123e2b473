"""The inventory pool: master data and movements, at the edge between the API and the pure ledger rules."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import tuple_
from sqlmodel import Session, col, select

from chain.records import IssueRecord, RecordType
from node.domain.ledger import (
    Bucket,
    Evidence,
    Movement,
    MovementType,
    Posting,
    StockStatus,
    apply_postings,
    postings_for,
)
from node.domain.states import OfferStatus
from node.errors import AlreadyExists, EvidenceRequired, InvalidMovement, NotFound
from node.store.records import LEDGER, append_record
from node.store.tables import DemandDay, Location, Lot, Record, Sku, StockBalance, TransferOffer
from node.store.writers import require_writers_lock

T = TypeVar("T")


def add_sku(session: Session, sku: Sku) -> Sku:
    if session.get(Sku, sku.code) is not None:
        raise AlreadyExists(f"SKU {sku.code} exists already", sku=sku.code)
    session.add(sku)
    return sku


def add_location(session: Session, location: Location) -> Location:
    if session.get(Location, location.code) is not None:
        raise AlreadyExists(f"location {location.code} exists already", location=location.code)
    session.add(location)
    return location


def add_lot(session: Session, lot: Lot) -> Lot:
    require_sku(session, lot.sku)
    if session.get(Lot, (lot.sku, lot.code)) is not None:
        raise AlreadyExists(f"lot {lot.code} of {lot.sku} exists already", sku=lot.sku, lot=lot.code)
    session.add(lot)
    return lot


def require_sku(session: Session, code: str) -> Sku:
    sku = session.get(Sku, code)
    if sku is None:
        raise NotFound(f"unknown SKU {code}", sku=code)
    hold(session, sku)
    return sku


def require_location(session: Session, code: str) -> Location:
    location = session.get(Location, code)
    if location is None:
        raise NotFound(f"unknown location {code}", location=code)
    hold(session, location)
    return location


def ensure_lot(session: Session, sku: str, lot: str, expires_on: str | None) -> Lot:
    """A receipt may bring a new lot (with its expiry); any other movement needs a known one."""
    today = datetime.now(UTC).date().isoformat()
    found = session.get(Lot, (sku, lot))
    if found is not None:
        hold(session, found)
        if found.received_on is None:
            found.received_on = today
            session.add(found)
        return found
    if expires_on is None:
        raise NotFound(f"unknown lot {lot} of {sku}; a receipt creates it when it gives expires_on", lot=lot)
    return add_lot(session, Lot(sku=sku, code=lot, expires_on=expires_on, received_on=today))


def record_movement(session: Session, node: str, movement: Movement, expires_on: str | None = None) -> Record:
    """Check master data, apply the postings to the balances (never below zero), append the record."""
    require_sku(session, movement.sku)
    require_location(session, movement.location)
    if movement.to_location is not None:
        require_location(session, movement.to_location)
    if movement.type == MovementType.RECEIPT:
        ensure_lot(session, movement.sku, movement.lot, expires_on)
    elif (lot := session.get(Lot, (movement.sku, movement.lot))) is None:
        raise NotFound(f"unknown lot {movement.lot} of {movement.sku}", lot=movement.lot)
    else:
        hold(session, lot)
    postings = postings_for(movement)
    write_postings(session, postings)
    fields: IssueRecord = {
        "lines": [p.as_record() for p in postings],
        "evidence": [{"source": e.source, "reference": e.reference} for e in movement.evidence],
        "memo": movement.memo,
        "corrects": movement.corrects,
    }
    if movement.unit_price is not None:  # absent when not given: a record holds no null for "unknown"
        fields["unit_price"] = movement.unit_price
    record = append_record(session, LEDGER, node, RecordType(movement.type.value), fields)
    if movement.type == MovementType.ISSUE:
        _count_demand(session, movement.sku, record.at[:10], -sum(p.quantity for p in postings if p.quantity < 0))
    return record


def _count_demand(session: Session, sku: str, day: str, issued: int) -> None:
    row = session.get(DemandDay, (sku, day)) or DemandDay(sku=sku, day=day)
    row.issued += issued
    session.add(row)


def write_postings(session: Session, postings: Sequence[Posting]) -> None:
    require_writers_lock(session)  # balances are read and written by one ledger writer at a time
    rows = {p.bucket: _balance_row(session, p.bucket) for p in postings}
    new = apply_postings({b: row.quantity for b, row in rows.items() if row is not None}, postings)
    for bucket, qty in new.items():
        row = rows.get(bucket)
        if row is None:
            row = StockBalance(**bucket.__dict__, quantity=qty)
        row.quantity = qty
        session.add(row)
        hold(session, row)


def prefetch_rows(session: Session, movements: Sequence[Movement]) -> None:
    """Read the SKUs, locations, lots and balances `movements` will touch, a query per table, and hold them for
    the session: `record_movement` then finds each in the identity map instead of one query per row (in the
    group commit, most of a receipt's CPU). Call it under the ledger writers' lock, as the reads it replaces."""
    if not movements:
        return
    skus = {m.sku for m in movements}
    locations = {m.location for m in movements} | {m.to_location for m in movements if m.to_location}
    lots = {(m.sku, m.lot) for m in movements}
    buckets = {
        (p.bucket.sku, p.bucket.lot, p.bucket.location, p.bucket.owner, p.bucket.holder, p.bucket.status)
        for m in movements
        for p in _postings_or_none(m)
    }
    balance_key = tuple_(
        col(StockBalance.sku),
        col(StockBalance.lot),
        col(StockBalance.location),
        col(StockBalance.owner),
        col(StockBalance.holder),
        col(StockBalance.status),
    )
    # A few hundred keys a query: a group of large batches would pass a driver's bound on parameters.
    for codes in _parts(sorted(skus)):
        _hold_all(session, select(Sku).where(col(Sku.code).in_(codes)))
    for codes in _parts(sorted(locations)):
        _hold_all(session, select(Location).where(col(Location.code).in_(codes)))
    for pairs in _parts(sorted(lots)):
        _hold_all(session, select(Lot).where(tuple_(col(Lot.sku), col(Lot.code)).in_(pairs)))
    for keys in _parts(sorted(buckets)):
        _hold_all(session, select(StockBalance).where(balance_key.in_(keys)))


READ_AHEAD_KEYS = 500


def _parts(keys: list[T]) -> list[list[T]]:
    return [keys[i : i + READ_AHEAD_KEYS] for i in range(0, len(keys), READ_AHEAD_KEYS)]


def _hold_all(session: Session, query: Any) -> None:
    for row in session.exec(query):
        hold(session, row)


def _postings_or_none(movement: Movement) -> Sequence[Posting]:
    try:
        return postings_for(movement)
    except (InvalidMovement, EvidenceRequired):  # refused when its own turn comes, not while reading ahead
        return ()


def _balance_row(session: Session, b: Bucket) -> StockBalance | None:
    return session.get(StockBalance, (b.sku, b.lot, b.location, b.owner, b.holder, b.status))


def hold(session: Session, row: object) -> None:
    """Hold a row for the session's life. The identity map holds rows weakly, so a SKU, a lot or a balance read
    by one movement would be read again by the next; held, the next finds it without a query (a group of
    movements written in one transaction mostly touches the same few rows)."""
    session.info.setdefault("kept", {})[id(row)] = row


def change_reservation(
    session: Session,
    me: str,
    offer: TransferOffer,
    quantity: int,
    reserve: bool,
    memo: str,
    evidence: tuple[Evidence, ...],
) -> Record:
    """Move `quantity` of an offer's lot between available and reserved (the supplier's side of an offer)."""
    src, dst = (
        (StockStatus.AVAILABLE, StockStatus.RESERVED) if reserve else (StockStatus.RESERVED, StockStatus.AVAILABLE)
    )
    movement = Movement(
        MovementType.STATUS_CHANGE,
        offer.sku,
        offer.lot,
        offer.location or "",
        quantity,
        me,
        me,
        status=src.value,
        to_status=dst.value,
        evidence=evidence,
        memo=memo,
    )
    return record_movement(session, me, movement)


def unreserve(session: Session, me: str, offer: TransferOffer, quantity: int, why: str) -> None:
    change_reservation(
        session,
        me,
        offer,
        quantity,
        False,
        f"offer {offer.id} {why}: {quantity} released from reservation",
        (Evidence("offer", offer.id), Evidence("invitation", offer.invitation)),
    )


def release_offer(session: Session, me: str, offer: TransferOffer, status: OfferStatus) -> None:
    """Our offer will not be taken (declined or expired): its whole reservation is released."""
    unreserve(session, me, offer, offer.quantity, status.value)
    offer.status = status
    session.add(offer)
