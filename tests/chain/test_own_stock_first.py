"""A requester's own stock at its other locations is the first offer: unmet store requests are covered by an
internal move before any partner is invited, and partners are asked only for the rest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.helpers.inprocess import InProcessNetwork
from tests.helpers.nodes import HANGZHOU, XIAOSHAN, soon, stock_up_through


def test_own_stock_elsewhere_moves_first_and_partners_are_invited_only_for_the_rest(
    network: InProcessNetwork,
) -> None:
    hz = network.node("hz-own", *HANGZHOU)
    xs = network.node("xs-own", *XIAOSHAN)
    stock_up_through(hz.client, [("W1", soon(400), 100)])  # 100 in Hangzhou's own warehouse
    stock_up_through(xs.client, [("X1", soon(400), 50)])
    shop = {"code": "SHOP", "name": "Shop floor", "lat": 30.26, "lon": 120.13, "kind": "store"}
    hz.client.post("/locations", json=shop).raise_for_status()
    today = datetime.now(UTC).date()
    for days_ago in (2, 1, 0):
        request = {
            "sku": "FORMULA-900G",
            "location": "SHOP",
            "quantity": 40,
            "requested_on": (today - timedelta(days=days_ago)).isoformat(),
        }
        hz.client.post("/negotiation/replenishment", json=request).raise_for_status()

    [triggered] = hz.client.post("/negotiation/replenishment/check", json={}).json()
    assert [(m["from_location"], m["to_location"], m["quantity"]) for m in triggered["internal_moves"]] == [
        ("WH", "SHOP", 40),
        ("WH", "SHOP", 40),
        ("WH", "SHOP", 20),
    ]
    assert hz.stock() == {("W1", "available"): 100}  # all of it, now on the shop floor
    shop_stock = hz.client.get("/stock", params={"location": "SHOP"}).json()
    assert [(b["lot"], b["quantity"]) for b in shop_stock] == [("W1", 100)]
    moves = hz.client.get("/ledger/records", params={"type": "move"}).json()
    assert len(moves) == 3 and all(
        {e["source"] for e in r["record"]["evidence"]} == {"replenishment_request", "unmet_days"} for r in moves
    )
    # Partners are asked for the 20 the warehouse could not cover, for the rest of the youngest request.
    assert triggered["quantity"] == 20 and triggered["invited"] == [xs.address]
    requests = hz.client.get("/negotiation/replenishment").json()
    assert sorted((r["quantity"], r["status"]) for r in requests) == [
        (20, "fulfilled"),
        (20, "invited"),
        (40, "fulfilled"),
        (40, "fulfilled"),
    ]
    [rest] = [r for r in requests if r["status"] == "invited"]
    assert rest["invitation"] == triggered["invitation"] and triggered["requests"] == [rest["id"]]
    [invitation] = [i for i in hz.client.get("/negotiation/invitations").json() if i["mine"]]
    assert invitation["quantity"] == 20


def test_a_request_no_worker_can_read_is_set_aside_and_shown_not_fatal(network: InProcessNetwork) -> None:
    from node.store.engine import session_scope
    from node.store.tables import ReplenishmentRequest

    hz = network.node("hz-unreadable", *HANGZHOU)
    stock_up_through(hz.client, [])
    hz.client.post("/locations", json={"code": "SHOP", "name": "Shop", "lat": 30.26, "lon": 120.13}).raise_for_status()
    # A row written before dates were validated (the API refuses 9999-99-99 now): read back by every pass.
    with session_scope(hz.services.engine) as s:
        s.add(ReplenishmentRequest(sku="FORMULA-900G", location="SHOP", quantity=5, requested_on="9999-99-99"))
    good = {"sku": "FORMULA-900G", "location": "SHOP", "quantity": 5}
    hz.client.post("/negotiation/replenishment", json=good).raise_for_status()

    check = hz.client.post("/negotiation/replenishment/check", json={})
    assert check.status_code == 200, check.text  # the readable request is still checked (not due yet)
    health = hz.client.get("/health").json()
    assert health["status"] == "degraded" and health["set_aside"] == {"replenishment_requests": 1}
    statuses = sorted(r["status"] for r in hz.client.get("/negotiation/replenishment").json())
    assert statuses == ["open", "set_aside"]
