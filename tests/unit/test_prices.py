"""The prices the value of a transfer is computed from: a SKU's sale price beside its purchase price (POST and
GET /skus)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx

from node.api.app import create_app
from node.settings import NodeSettings

TOKEN = "an-operator-token-for-prices"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T = TypeVar("T")


def on_a_node(tmp_path: Path, talk: Callable[[httpx.AsyncClient], Coroutine[Any, Any, T]]) -> T:
    app = create_app(NodeSettings(database_url=f"sqlite:///{tmp_path / 'n.db'}", api_token=TOKEN, anchor_enabled=False))

    async def go() -> T:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://node", headers=AUTH) as c:
            return await talk(c)

    return asyncio.run(go())


def test_a_sku_keeps_its_sale_price_beside_its_purchase_price(tmp_path: Path) -> None:
    formula = {"code": "FORMULA-900G", "name": "Formula", "transfer_price": 21800, "purchase_price": 19650}

    async def talk(c: httpx.AsyncClient) -> list[httpx.Response]:
        return [
            await c.post("/skus", json={**formula, "sale_price": 24800}),
            await c.post("/skus", json={"code": "WIPES-80", "name": "Wipes"}),
            await c.post("/skus", json={"code": "X", "name": "X", "sale_price": -1}),
            await c.post("/skus", json={"code": "Y", "name": "Y", "sale_price": "24800"}),
            await c.post("/skus", json={"code": "Z", "name": "Z", "sale_price": 2**53}),
            await c.get("/skus"),
        ]

    created, defaulted, negative, text, too_big, listed = on_a_node(tmp_path, talk)
    assert created.status_code == 201 and created.json()["sale_price"] == 24800
    assert defaulted.status_code == 201 and defaulted.json()["sale_price"] == 0
    assert [r.status_code for r in (negative, text, too_big)] == [422, 422, 422]
    assert [(k["code"], k["purchase_price"], k["sale_price"]) for k in listed.json()] == [
        ("FORMULA-900G", 19650, 24800),
        ("WIPES-80", 0, 0),
    ]
