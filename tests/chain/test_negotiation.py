"""Invitations and offers between real node processes over HTTP, on a real Anvil registry."""

from __future__ import annotations

import time
from typing import Any

import httpx

from chain.anvil import AnvilProcess
from chain.deploy import Deployment
from negotiation.messages import Domain, new_id, new_nonce, sign
from negotiation.rules.book import load_book
from tests.helpers import stock
from tests.helpers.messages import invitation_envelope
from tests.helpers.nodes import (
    HANGZHOU,
    JIAXING,
    SHAOXING,
    TEST_RULEBOOK,
    XIAOSHAN,
    NodeFactory,
    fund_new_key,
    soon,
    stock_up,
    until,
)

ACTIVE = load_book(TEST_RULEBOOK).version


def test_invitation_reaches_members_within_the_radius_and_they_offer_reserved_stock(nodes: NodeFactory) -> None:
    hz = nodes.new("hz-store", lat_e6=HANGZHOU[0], lon_e6=HANGZHOU[1])
    xs = nodes.new("xs-dealer", lat_e6=XIAOSHAN[0], lon_e6=XIAOSHAN[1], CONSORTIUM_SAFETY_STOCK="20")
    sx = nodes.new("sx-dealer", lat_e6=SHAOXING[0], lon_e6=SHAOXING[1])
    jx = nodes.new("jx-distributor", lat_e6=JIAXING[0], lon_e6=JIAXING[1])
    stock_up(hz, [])
    stock_up(xs, [("X1", soon(400), 100)])
    stock_up(sx, [("S-SHORT", soon(30), 50), ("S-LONG", soon(300), 40)])
    stock_up(jx, [("J1", soon(400), 500)])

    with hz.client() as c:
        r = c.post(
            "/negotiation/invitations",
            json={"sku": "FORMULA-900G", "quantity": 150, "needed_by": soon(3), "min_shelf_life_days": 90},
        )
        assert r.status_code == 201, r.text
        invitation = r.json()
    assert {m["address"] for m in invitation["invited"]} == {xs.address, sx.address}
    inv_id = invitation["invitation"]["id"]

    def offers() -> list[dict[str, Any]]:
        with hz.client() as c:
            got = c.get("/negotiation/offers", params={"invitation": inv_id}).json()
        return got if len(got) == 2 else []

    received = {(o["supplier"], o["lot"]): o["quantity"] for o in until(offers)}
    # Xiaoshan keeps its safety stock of 20; Shaoxing's short-dated lot misses the 90-day floor.
    assert received == {(xs.address, "X1"): 80, (sx.address, "S-LONG"): 40}
    assert stock(xs) == {("X1", "available"): 20, ("X1", "reserved"): 80}
    assert stock(sx) == {("S-SHORT", "available"): 50, ("S-LONG", "reserved"): 40}
    assert stock(jx) == {("J1", "available"): 500}
    with jx.client() as c:
        assert c.get("/negotiation/invitations").json() == []

    # Declining an offer makes the supplier release its reservation, with a ledger record saying why.
    sx_offer = next(o for o in offers() if o["supplier"] == sx.address)
    with hz.client() as c:
        assert c.post(f"/negotiation/offers/{sx_offer['id']}/decline").status_code == 200
    until(lambda: stock(sx) == {("S-SHORT", "available"): 50, ("S-LONG", "available"): 40})
    with sx.client() as c:
        last = c.get("/ledger/records", params={"type": "status_change"}).json()[-1]["record"]
    assert last["evidence"] == [
        {"source": "offer", "reference": sx_offer["id"]},
        {"source": "invitation", "reference": inv_id},
    ]


def envelope(domain: Domain, key: str, **over: Any) -> dict[str, Any]:
    return invitation_envelope(domain, key, "1", **over)


def test_forged_replayed_expired_and_non_member_messages_are_refused_and_change_nothing(
    nodes: NodeFactory, anvil: AnvilProcess, deployment: Deployment
) -> None:
    hz = nodes.new("hz-inbox", lat_e6=HANGZHOU[0], lon_e6=HANGZHOU[1])
    peer = nodes.new("xs-peer", lat_e6=XIAOSHAN[0], lon_e6=XIAOSHAN[1])
    outsider_key = fund_new_key(anvil.rpc_url)
    domain = Domain("consortium-inventory", 31337, deployment.registry)
    inbox = f"{hz.url}/negotiation/messages"

    def refused(env: dict[str, Any], status: int, reason: str) -> None:
        r = httpx.post(inbox, json=env)
        assert (r.status_code, r.json()["error"]) == (status, reason), r.text

    before = stock(hz)
    refused(envelope(domain, outsider_key), 403, "not_a_member")
    refused(envelope(domain, peer.key, deadline=int(time.time()) - 5), 410, "expired")
    forged = envelope(domain, outsider_key)
    forged["message"]["requester"] = peer.address  # claims to come from a member
    refused(forged, 401, "bad_signature")
    tampered = envelope(domain, peer.key)
    tampered["message"]["quantity"] = "10000"
    refused(tampered, 401, "bad_signature")
    tampered["message"]["quantity"] = 10_000  # a uint64 travels as a decimal string
    refused(tampered, 422, "malformed")
    refused({**tampered, "message": {**tampered["message"], "nonce": str(2**64 - 1)}}, 422, "malformed")
    other_chain = envelope(Domain("consortium-inventory", 1, deployment.registry), peer.key)
    refused(other_chain, 401, "bad_signature")
    refused({"type": "Invitation", "message": {"id": "0x12"}, "signature": "0x"}, 422, "malformed")
    offer = sign(
        domain,
        "Offer",
        {
            "id": new_id(),
            "invitation": new_id(),
            "supplier": peer.address,
            "sku": "X",
            "lot": "L",
            "quantity": 1,
            "shelfLifeDays": 1,
            "minOrderQuantity": 1,
            "unitPrice": 1,
            "ruleVersion": ACTIVE,
            "nonce": new_nonce(),
            "deadline": int(time.time()) + 60,
        },
        peer.key,
    ).as_json()
    refused(offer, 404, "unknown_subject")
    with hz.client() as c:
        assert c.get("/negotiation/invitations").json() == []

    # Signed by a member, in time, but made under a rule book that is not the one in force.
    refused(envelope(domain, peer.key, ruleVersion="0x" + "ab" * 32), 409, "rule_version")
    valid = envelope(domain, peer.key, ruleVersion=ACTIVE)
    assert httpx.post(inbox, json=valid).status_code == 202
    refused(valid, 409, "replayed")
    with hz.client() as c:
        assert [i["id"] for i in c.get("/negotiation/invitations").json()] == [valid["message"]["id"]]
    assert stock(hz) == before
