"""Master data (SKUs, locations, lots) and the pool's balances in their three dimensions."""

from __future__ import annotations

from fastapi import APIRouter
from sqlmodel import col, select

from node.api.deps import OperatorDep, SessionDep
from node.api.errors import ERROR_RESPONSES
from node.api.responses import LocationOut, LotOut, SkuOut, StockBalanceOut
from node.api.schemas import LocationIn, LotIn, SkuIn
from node.store.pool import add_location, add_lot, add_sku
from node.store.tables import Location, Lot, Sku, StockBalance

router = APIRouter(tags=["pool"], dependencies=[OperatorDep], responses=ERROR_RESPONSES)


@router.post("/skus", status_code=201)
def create_sku(body: SkuIn, s: SessionDep) -> SkuOut:
    return SkuOut.model_validate(add_sku(s, Sku(**body.model_dump())), from_attributes=True)


@router.get("/skus")
def list_skus(s: SessionDep) -> list[SkuOut]:
    return [SkuOut.model_validate(r, from_attributes=True) for r in s.exec(select(Sku).order_by(Sku.code)).all()]


@router.post("/locations", status_code=201)
def create_location(body: LocationIn, s: SessionDep) -> LocationOut:
    location = Location(
        code=body.code,
        name=body.name,
        kind=body.kind,
        lat_e6=int(body.lat * 1_000_000),
        lon_e6=int(body.lon * 1_000_000),
    )
    return LocationOut.of(add_location(s, location))


@router.get("/locations")
def list_locations(s: SessionDep) -> list[LocationOut]:
    return [LocationOut.of(r) for r in s.exec(select(Location).order_by(Location.code)).all()]


@router.post("/lots", status_code=201)
def create_lot(body: LotIn, s: SessionDep) -> LotOut:
    return LotOut.model_validate(add_lot(s, Lot(**body.model_dump())), from_attributes=True)


@router.get("/lots")
def list_lots(s: SessionDep, sku: str | None = None) -> list[LotOut]:
    q = select(Lot)
    if sku:
        q = q.where(Lot.sku == sku)
    return [LotOut.model_validate(r, from_attributes=True) for r in s.exec(q.order_by(Lot.sku, Lot.code)).all()]


@router.get("/stock")
def stock(
    s: SessionDep,
    sku: str | None = None,
    lot: str | None = None,
    location: str | None = None,
    owner: str | None = None,
    holder: str | None = None,
    status: str | None = None,
) -> list[StockBalanceOut]:
    q = select(StockBalance).where(StockBalance.quantity > 0)
    for column, value in (
        (StockBalance.sku, sku),
        (StockBalance.lot, lot),
        (StockBalance.location, location),
        (StockBalance.owner, owner),
        (StockBalance.holder, holder),
        (StockBalance.status, status),
    ):
        if value is not None:
            q = q.where(col(column) == value)
    rows = s.exec(q.order_by(StockBalance.sku, StockBalance.location)).all()
    return [StockBalanceOut.model_validate(r, from_attributes=True) for r in rows]
