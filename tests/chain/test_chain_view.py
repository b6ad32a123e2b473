"""A node follows membership and the rule book schedule from the chain's events (node/services/chain_view.py):
answers from memory are exactly what the chain held at the block last read, a change is seen at the next poll,
and a view that stopped following asks the chain again."""

from __future__ import annotations

import json
import sqlite3

import httpx
from eth_account import Account

from chain.anvil import LocalChain
from chain.deploy import Deployment
from chain.registry_client import MemberRegistryClient, Role
from chain.rules_client import RuleRegistryClient
from chain.tx import connect
from negotiation.messages import Domain
from node.services.chain_view import ChainView
from tests.helpers.messages import signed_copies
from tests.helpers.nodes import ADMIN_KEY, HANGZHOU, XIAOSHAN, NodeFactory, soon, stock_up, until

JSON = {"Content-Type": "application/json"}


def test_a_member_removed_is_seen_at_the_next_poll_and_a_stale_view_asks_the_chain(
    anvil: LocalChain, deployment: Deployment
) -> None:
    web3 = connect(anvil.rpc_url)
    admin = MemberRegistryClient(anvil.rpc_url, deployment.registry, ADMIN_KEY)
    assert deployment.rules is not None
    rules = RuleRegistryClient(web3, deployment.rules)
    view = ChainView(web3, MemberRegistryClient(web3, deployment.registry), rules, follow_seconds=60)
    member = Account.create().address
    admin.add_member(member, "followed", Role.PARTNER, "http://127.0.0.1:1", 30_000_000, 120_000_000)
    view.poll()
    assert view.member(member).active
    assert view.active() == rules.active()  # the version in force at the block the view read, and that block
    calls = _count_calls(web3)
    assert view.member(member).active and view.active() is not None
    assert calls() == 0  # answered from memory
    admin.remove_member(member)
    assert view.member(member).active  # not polled yet: the answer of the block last read (the stated staleness)
    view.poll()
    assert not view.member(member).active
    # A view that stopped following (its last read older than 3 follow intervals) asks the chain each time.
    view.follow_seconds = 0.0001
    admin.add_member(member, "back", Role.PARTNER, "http://127.0.0.1:1", 30_000_000, 120_000_000)
    assert not view.fresh() and view.active() is None
    assert view.member(member).active and view.member(member).name == "back"


def _count_calls(web3: object) -> object:
    """How many eth_call requests the provider sent from now on."""
    provider = web3.provider  # type: ignore[attr-defined]
    sent: list[str] = []
    original = provider.make_request

    def counting(method: str, params: object) -> object:
        sent.append(method)
        return original(method, params)

    provider.make_request = counting
    return lambda: sum(1 for m in sent if m == "eth_call")


def test_a_node_refuses_a_removed_members_messages_once_its_view_has_read_the_removal(nodes: NodeFactory) -> None:
    hz = nodes.new("hz-view", lat_e6=HANGZHOU[0], lon_e6=HANGZHOU[1])
    xs = nodes.new("xs-view", lat_e6=XIAOSHAN[0], lon_e6=XIAOSHAN[1])
    stock_up(hz, [])
    stock_up(xs, [("L1", soon(400), 1_000)])
    with hz.client() as c:
        c.post("/negotiation/invitations", json={"sku": "FORMULA-900G", "quantity": 10, "needed_by": "2099-01-01"})
        until(lambda: c.get("/negotiation/offers").json())
    with sqlite3.connect(hz.db_path) as db:
        (envelope,) = db.execute(
            "SELECT envelope FROM negotiationmessage WHERE type = 'Offer' AND signer = ?", (xs.address,)
        ).fetchone()
    web3 = connect(nodes.anvil.rpc_url)
    domain = Domain("consortium-inventory", int(web3.eth.chain_id), nodes.deployment.registry)
    offers = iter(signed_copies(json.loads(envelope), domain, xs.key, 200))

    def post_offer() -> httpx.Response:
        return httpx.post(f"{hz.url}/negotiation/messages", content=next(offers), headers=JSON)

    assert post_offer().status_code == 202  # Hangzhou's view knows Xiaoshan (answered from memory)
    MemberRegistryClient(nodes.anvil.rpc_url, nodes.deployment.registry, ADMIN_KEY).remove_member(xs.address)
    refused = until(lambda: (r := post_offer()).status_code != 202 and r)  # within a follow interval
    assert refused.status_code == 403 and refused.json()["error"] == "not_a_member"
