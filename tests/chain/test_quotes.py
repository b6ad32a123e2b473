"""The rule language's own example acting on live nodes (docs/rules.md, section 4): "when the purchase price of
an SKU passes 18.00 and stock is short, ask supplier Y for a quote" sends the named member a signed
QuoteRequest, once a day, which its node keeps and shows; a cheap or well-stocked SKU asks nothing."""

from __future__ import annotations

from tests.helpers.nodes import NodeFactory, soon, until


def test_a_dear_sku_running_short_asks_the_member_the_rule_names_for_a_quote_once_a_day(nodes: NodeFactory) -> None:
    store = nodes.new("quote-store")
    supplier = nodes.new("quote-supplier")  # the name the test rule book's request_quote action gives
    with store.client() as c:
        c.post("/locations", json={"code": "WH", "name": "Warehouse", "lat": 30.2, "lon": 120.2}).raise_for_status()
        # 18.50 passes 18.00 with 3 units (short); 17.00 does not pass it; 19.00 passes it with 8 (not short).
        for code, price, units in (("PUMP-KIT", 1850, 3), ("CHEAP-KIT", 1700, 3), ("FULL-KIT", 1900, 8)):
            body = {"code": code, "name": code, "transfer_price": 2000, "purchase_price": price}
            assert c.post("/skus", json=body).json()["purchase_price"] == price
            receipt = {"type": "receipt", "sku": code, "lot": "L1", "location": "WH", "quantity": units,
                       "expires_on": soon(900)}  # fmt: skip
            c.post("/ledger/movements", json=receipt).raise_for_status()
        sent = c.post("/negotiation/quotes/check").json()
    assert [(q["sku"], q["supplier"], q["quantity"], q["rule"]) for q in sent] == [
        ("PUMP-KIT", supplier.address, 10 - 3, "quote_when_dear_and_short")
    ]

    def received() -> list[dict[str, object]]:
        with supplier.client() as c:
            return list(c.get("/negotiation/quotes").json())

    (got,) = until(received)
    assert (got["requester"], got["sku"], got["quantity"], got["mine"]) == (store.address, "PUMP-KIT", 7, False)
    with store.client() as c:
        assert c.post("/negotiation/quotes/check").json() == []  # asked today already
        mine = c.get("/negotiation/quotes").json()
    assert [(q["sku"], q["mine"]) for q in mine] == [("PUMP-KIT", True)]
