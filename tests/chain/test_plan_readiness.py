"""A requester plans an invitation once every member it invited has answered (an offer, or a NoOffer) or its
offer window has closed; an offer that arrives after the plan gives its reservation back. Nodes in-process,
delivered step by step (tests/helpers/inprocess.py), on a real Anvil chain."""

from __future__ import annotations

from tests.helpers.inprocess import InProcessNetwork, InProcessNode
from tests.helpers.nodes import HANGZHOU, SHAOXING, XIAOSHAN, soon, stock_up_through


def three(network: InProcessNetwork, tag: str) -> tuple[InProcessNode, InProcessNode, InProcessNode]:
    """Hangzhou (requester), Xiaoshan (15 km, 50 units to spare), Shaoxing (40 km, none of the SKU's stock)."""
    hz = network.node(f"hz-{tag}", *HANGZHOU)
    xs = network.node(f"xs-{tag}", *XIAOSHAN)
    sx = network.node(f"sx-{tag}", *SHAOXING)
    stock_up_through(hz.client, [])
    stock_up_through(xs.client, [("X1", soon(400), 50)])
    stock_up_through(sx.client, [])
    return hz, xs, sx


def invite(hz: InProcessNode, quantity: int) -> str:
    body = {"sku": "FORMULA-900G", "quantity": quantity, "needed_by": soon(2)}
    r = hz.client.post("/negotiation/invitations", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["invitation"]["id"])


def pending(hz: InProcessNode) -> list[str]:
    [mine] = [i for i in hz.client.get("/negotiation/invitations").json() if i["mine"]]
    return list(mine["pending"])


def test_the_plan_waits_for_every_member_invited_to_answer_offer_or_no_offer(network: InProcessNetwork) -> None:
    hz, xs, sx = three(network, "ready")
    invite(hz, 30)
    assert hz.deliver() == 2  # to Xiaoshan and Shaoxing
    assert pending(hz) == sorted([xs.address, sx.address])
    early = hz.client.post("/negotiation/plan", params={"wait": 0})
    assert early.status_code == 409 and early.json()["error"] == "plan_early"
    [waiting] = early.json()["detail"]["pending"]
    assert waiting["members"] == sorted([xs.address, sx.address])
    assert hz.client.get("/ledger/records", params={"type": "plan"}).json() == []  # refused: nothing planned

    assert sx.deliver() == 1  # Shaoxing has nothing to spare: its NoOffer is an answer
    assert pending(hz) == [xs.address]
    assert xs.deliver() == 1
    assert pending(hz) == []
    plan = hz.client.post("/negotiation/plan", params={"wait": 0})
    assert plan.status_code == 200, plan.text
    [accepted] = plan.json()["acceptances"]
    assert (accepted["supplier"], accepted["quantity"]) == (xs.address, 30)


def test_an_offer_arriving_after_a_forced_plan_is_refused_and_its_reservation_given_back(
    network: InProcessNetwork,
) -> None:
    hz, xs, _sx = three(network, "late")
    invite(hz, 30)
    assert hz.deliver() == 2
    assert xs.stock() == {("X1", "available"): 20, ("X1", "reserved"): 30}
    forced = hz.client.post("/negotiation/plan", params={"force": True})
    assert forced.status_code == 200 and forced.json()["acceptances"] == []  # no offer had arrived

    xs.deliver()  # the offer reaches a planned invitation: refused for good ("closed")
    assert xs.stock() == {("X1", "available"): 50}  # nothing stays reserved for a plan that has been made
    [own] = xs.client.get("/negotiation/offers", params={"mine": True}).json()
    assert own["status"] == "declined"
    assert hz.client.get("/negotiation/offers").json() == []


def test_requests_no_partner_could_serve_are_open_again_not_stranded(network: InProcessNetwork) -> None:
    from datetime import UTC, datetime, timedelta

    hz = network.node("hz-unserved", *HANGZHOU)
    sx = network.node("sx-unserved", *SHAOXING)  # carries the SKU, has none of it to spare
    stock_up_through(hz.client, [])
    stock_up_through(sx.client, [])
    hz.client.post("/locations", json={"code": "SHOP", "name": "Shop", "lat": 30.26, "lon": 120.13}).raise_for_status()
    today = datetime.now(UTC).date()
    for days_ago in (0, 1, 2):
        request = {
            "sku": "FORMULA-900G",
            "location": "SHOP",
            "quantity": 10,
            "requested_on": (today - timedelta(days=days_ago)).isoformat(),
        }
        hz.client.post("/negotiation/replenishment", json=request).raise_for_status()
    [triggered] = hz.client.post("/negotiation/replenishment/check", json={}).json()
    assert triggered["invited"] == [sx.address]
    assert hz.deliver() == 1 and sx.deliver() == 1  # the invitation, then Shaoxing's NoOffer
    plan = hz.client.post("/negotiation/plan", params={"wait": 0})
    assert plan.status_code == 200 and plan.json()["acceptances"] == []
    requests = hz.client.get("/negotiation/replenishment").json()
    assert {(r["status"], r["invitation"]) for r in requests} == {("open", None)}
    # Open again, and asked for again only once the last invitation's window has passed: not in a loop.
    assert hz.client.post("/negotiation/replenishment/check", json={}).json() == []
