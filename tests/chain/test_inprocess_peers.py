"""The negotiation protocol between nodes served in-process (tests/helpers/inprocess.py): each node's Outbox
posts through an injected `httpx.Client` whose transport routes by the public URL the member registry holds,
on a real Anvil chain. Step by step (`deliver()`) without workers; by the workers inside `running()`."""

from __future__ import annotations

from typing import Any

from chain.anvil import AnvilProcess
from negotiation.messages import Domain
from negotiation.rules.book import load_book
from tests.helpers.inprocess import InProcessNetwork, InProcessNode
from tests.helpers.messages import invitation_envelope
from tests.helpers.nodes import HANGZHOU, TEST_RULEBOOK, XIAOSHAN, fund_new_key, soon, stock_up_through, until

ACTIVE = load_book(TEST_RULEBOOK).version


def stock_up(node: InProcessNode, lots: list[tuple[str, str, int]]) -> None:
    stock_up_through(node.client, lots)


def pair(network: InProcessNetwork, tag: str) -> tuple[InProcessNode, InProcessNode]:
    """A requester in Hangzhou with no stock, a supplier in Xiaoshan (15 km) with 50 units of lot X1."""
    hz = network.node(f"hz-{tag}", HANGZHOU[0], HANGZHOU[1])
    xs = network.node(f"xs-{tag}", XIAOSHAN[0], XIAOSHAN[1])
    stock_up(hz, [])
    stock_up(xs, [("X1", soon(400), 50)])
    return hz, xs


def invite(hz: InProcessNode, quantity: int) -> dict[str, Any]:
    r = hz.client.post(
        "/negotiation/invitations", json={"sku": "FORMULA-900G", "quantity": quantity, "needed_by": soon(2)}
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_an_invitation_and_its_offer_travel_between_in_process_nodes_step_by_step(network: InProcessNetwork) -> None:
    hz, xs = pair(network, "steps")
    sent = invite(hz, 30)
    assert sent["invited"] == [{"address": xs.address, "name": "xs-steps"}]
    inv_id = sent["invitation"]["id"]
    # No worker running: the signed invitation waits in the requester's outbox.
    assert xs.client.get("/negotiation/invitations").json() == []
    assert xs.stock() == {("X1", "available"): 50}

    # The requester's outbox posts it to the URL the registry holds for the supplier, through the router.
    assert hz.deliver() == 1
    [received] = xs.client.get("/negotiation/invitations").json()
    assert (received["id"], received["requester"], received["quantity"]) == (inv_id, hz.address, 30)
    assert xs.stock() == {("X1", "available"): 20, ("X1", "reserved"): 30}
    # The supplier's answer is queued, not yet delivered.
    assert hz.client.get("/negotiation/offers").json() == []

    assert xs.deliver() == 1
    [offer] = hz.client.get("/negotiation/offers", params={"invitation": inv_id}).json()
    assert (offer["supplier"], offer["lot"], offer["quantity"], offer["mine"]) == (xs.address, "X1", 30, False)
    [own] = xs.client.get("/negotiation/offers", params={"mine": True}).json()
    assert (own["id"], own["quantity"]) == (offer["id"], 30)
    assert (hz.deliver(), xs.deliver()) == (0, 0)  # each message went exactly once


def test_with_their_workers_running_the_outboxes_deliver_by_themselves(network: InProcessNetwork) -> None:
    hz, xs = pair(network, "workers")
    with hz.running(), xs.running():  # the negotiation workers start on their own threads
        inv_id = invite(hz, 30)["invitation"]["id"]
        [offer] = until(lambda: hz.client.get("/negotiation/offers", params={"invitation": inv_id}).json())
        assert (offer["supplier"], offer["lot"], offer["quantity"]) == (xs.address, "X1", 30)
        assert xs.stock() == {("X1", "available"): 20, ("X1", "reserved"): 30}
    assert (hz.deliver(), xs.deliver()) == (0, 0)  # the workers left nothing behind


def state(node: InProcessNode) -> tuple[Any, ...]:
    """What a message could change at a node: stock, invitations, offers, records."""
    c = node.client
    return (
        c.get("/stock").json(),
        c.get("/negotiation/invitations").json(),
        c.get("/negotiation/offers").json(),
        c.get("/ledger/records", params={"limit": 5000}).json(),
    )


def invitation(domain: Domain, key: str) -> dict[str, Any]:
    """A well-formed Invitation under the rule book in force, from the key's address, signed by that key."""
    return invitation_envelope(domain, key, ACTIVE)


def test_a_message_signed_by_a_non_member_is_refused_in_process_and_changes_nothing(
    network: InProcessNetwork, anvil: AnvilProcess
) -> None:
    hz, xs = pair(network, "inbox")
    outsider = fund_new_key(anvil.rpc_url)  # funded, but never registered
    domain = xs.negotiator.signer.domain
    inbox = f"{xs.url}/negotiation/messages"

    before = state(xs)
    with network.peer_client() as peer:
        r = peer.post(inbox, json=invitation(domain, outsider))
    assert (r.status_code, r.json()["error"]) == (403, "not_a_member"), r.text
    assert state(xs) == before
    assert xs.deliver() == 0  # nothing was queued to answer it

    # The control: the same invitation from a member 15 km away is admitted and answered with reserved stock.
    with network.peer_client() as peer:
        r = peer.post(inbox, json=invitation(domain, hz.key))
    assert r.status_code == 202, r.text
    assert len(r.json()["offers"]) == 1
    assert xs.stock() == {("X1", "available"): 40, ("X1", "reserved"): 10}
