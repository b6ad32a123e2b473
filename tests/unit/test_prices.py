"""The prices the value of a transfer is computed from: a SKU's sale price beside its purchase price (POST and
GET /skus), and the price an issue sold at, kept in the issue record only when given (absent, never null)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml

from chain.records import read_body
from negotiation.rules.book import load_book
from negotiation.rules.engine import Policy, RequestFacts, SkuFacts
from node.api.app import create_app
from node.domain.ledger import Movement, MovementType, postings_for
from node.errors import InvalidMovement
from node.settings import NodeSettings

DEMO = Path(__file__).resolve().parents[2] / "node" / "demo"
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


def issue(quantity: int, **extra: object) -> dict[str, object]:
    return {"type": "issue", "sku": "S", "lot": "L", "location": "SHOP", "quantity": quantity, **extra}


def test_an_issue_carries_its_unit_price_only_when_given(tmp_path: Path) -> None:
    receipt = {**issue(10), "type": "receipt", "expires_on": "2027-01-01"}

    async def talk(c: httpx.AsyncClient) -> list[httpx.Response]:
        await c.post("/skus", json={"code": "S", "name": "S", "sale_price": 2480})
        await c.post("/locations", json={"code": "SHOP", "name": "Shop", "lat": 30, "lon": 120})
        await c.post("/ledger/movements", json=receipt)
        return [
            await c.post("/ledger/movements", json=issue(2, unit_price=2350)),
            await c.post("/ledger/movements", json=issue(1)),
            await c.post("/ledger/movements/batch", json={"movements": [issue(1, unit_price=0)]}),
            await c.post("/ledger/movements", json=issue(1, unit_price=None)),  # as a POS sends "no price"
            await c.post("/ledger/movements", json=issue(1, unit_price=-1)),
            await c.post("/ledger/movements", json=issue(1, unit_price=23.5)),
            await c.post("/ledger/movements", json={**receipt, "unit_price": 2350}),
        ]

    priced, unpriced, batch, null, negative, fraction, on_a_receipt = on_a_node(tmp_path, talk)
    assert [r.status_code for r in (priced, unpriced, batch, null)] == [201, 201, 201, 201]
    assert priced.json()["record"]["unit_price"] == 2350
    assert batch.json()["records"][0]["record"]["unit_price"] == 0
    for r in (unpriced, null):
        assert "unit_price" not in r.json()["record"]  # absent, never null
    for r in (priced, unpriced):
        assert read_body(r.json()["record"]) == r.json()["record"]
    assert [r.status_code for r in (negative, fraction, on_a_receipt)] == [422, 422, 422]


def test_only_an_issue_sells_at_a_unit_price() -> None:
    receipt = Movement(MovementType.RECEIPT, "S", "L", "WH", 1, "0xme", "0xme", unit_price=100)
    with pytest.raises(InvalidMovement, match="only an issue sells at a unit price, not a receipt"):
        postings_for(receipt)


def test_the_demo_prices_agree_with_the_demo_book() -> None:
    """Each demo SKU is bought below what the brand charges in an emergency, which is below the shelf price; the
    book's shortage penalty (a planning weight) is at least that emergency cost plus the margin a missed sale
    loses, so the plan prefers a member's stock whenever it is cheaper (docs/rules.md, section 1b)."""
    skus = yaml.safe_load((DEMO / "pool.yaml").read_text())["skus"]
    book = load_book(DEMO / "rulebook.yaml")
    alternative = book.book.alternative_supply_cost_minor()
    assert set(alternative) == {k["code"] for k in skus}
    policy = Policy(book)
    for k in skus:
        assert k["purchase_price"] < alternative[k["code"]] < k["sale_price"], k["code"]
        assert k["transfer_price"] < k["sale_price"], k["code"]
        facts = SkuFacts(k["code"], k["transfer_price"], k["purchase_price"])
        penalty = policy.shortage_penalty(RequestFacts(1, 0), facts)
        assert penalty >= alternative[k["code"]] + k["sale_price"] - k["purchase_price"], k["code"]
