"""Members sign in with Ethereum (EIP-4361) on a real node: a nonce, the signed message, a bearer credential that
`GET /auth/whoami` reads; what must not sign anyone in is refused with its reason."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from eth_account import Account

from chain.anvil import LocalChain
from chain.deploy import Deployment
from chain.peers import PeerAnsweredError, PeerClient
from chain.siwe import SiweMessage, sign_in_message, sign_text
from chain.tx import connect
from tests.helpers.nodes import NodeFactory, RunningNode
from tests.helpers.signin import member_key, signs_in_once_across_workers


def _post(node: RunningNode, message: SiweMessage, signature: str) -> httpx.Response:
    return httpx.post(f"{node.url}/auth/siwe", json={"message": message.text(), "signature": signature}, timeout=30)


def _refused(resp: httpx.Response, status: int, error: str) -> None:
    assert (resp.status_code, resp.json()["error"]) == (status, error), resp.text


def _message(node: RunningNode, key: str, chain_id: int) -> SiweMessage:
    nonce = httpx.get(f"{node.url}/auth/nonce", timeout=30).raise_for_status().json()["nonce"]
    return sign_in_message(node.url, Account.from_key(key).address, chain_id, nonce, "Sign in to the node.")


def test_a_member_signs_in_and_the_node_knows_who_it_is(
    nodes: NodeFactory, anvil: LocalChain, deployment: Deployment
) -> None:
    node = nodes.new("siwe")
    key, chain_id = member_key(anvil, deployment), int(connect(anvil.rpc_url).eth.chain_id)
    signed = PeerClient().sign_in(node.url, key, chain_id)
    bearer = {"Authorization": f"Bearer {signed.access_token}"}
    me = httpx.get(f"{node.url}/auth/whoami", headers=bearer, timeout=30).raise_for_status().json()
    assert me["address"] == Account.from_key(key).address and me["expires_at"] == signed.expires_at
    expires = datetime.fromisoformat(signed.expires_at)
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)
    # The credential opens no door the operator's token opens, and the operator's token is no member's.
    assert httpx.get(f"{node.url}/stock", headers=bearer, timeout=30).status_code == 401
    operator = {"Authorization": f"Bearer {node.token}"}
    assert httpx.get(f"{node.url}/auth/whoami", headers=operator, timeout=30).status_code == 401
    # Revoked by its bearer, it signs nobody in any more.
    assert httpx.post(f"{node.url}/auth/revoke", headers=bearer, timeout=30).status_code == 204
    _refused(httpx.get(f"{node.url}/auth/whoami", headers=bearer, timeout=30), 401, "unauthorized")


def test_what_signs_nobody_in_is_refused_with_its_reason(
    nodes: NodeFactory, anvil: LocalChain, deployment: Deployment
) -> None:
    node = nodes.new("siwe-refusals")
    key, chain_id = member_key(anvil, deployment), int(connect(anvil.rpc_url).eth.chain_id)
    stranger = "0x" + str(Account.create().key.hex()).removeprefix("0x")
    with pytest.raises(PeerAnsweredError) as refused:
        PeerClient().sign_in(node.url, stranger, chain_id)
    assert (refused.value.status, refused.value.error) == (401, "not_a_member")
    message = _message(node, key, chain_id)
    signature = sign_text(message.text(), key)
    assert _post(node, message, signature).status_code == 200
    _refused(_post(node, message, signature), 401, "unknown_nonce")  # a nonce signs in once
    message = _message(node, key, chain_id)
    _refused(_post(node, replace(message, statement="Altered."), sign_text(message.text(), key)), 401, "wrong_signer")
    past = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    expired = replace(message, expiration_time=past)
    _refused(_post(node, expired, sign_text(expired.text(), key)), 401, "message_expired")
    elsewhere = replace(message, domain="127.0.0.1:1")
    _refused(_post(node, elsewhere, sign_text(elsewhere.text(), key)), 401, "wrong_domain")
    other_chain = replace(message, chain_id=chain_id + 1)
    _refused(_post(node, other_chain, sign_text(other_chain.text(), key)), 401, "wrong_chain")
    made_up = replace(message, nonce="abcdefgh1234")
    _refused(_post(node, made_up, sign_text(made_up.text(), key)), 401, "unknown_nonce")
    broken = httpx.post(f"{node.url}/auth/siwe", json={"message": "hello", "signature": signature}, timeout=30)
    _refused(broken, 422, "invalid_siwe_message")
    assert "first line" in broken.json()["message"]
    # Its nonce still unused; the credential ends with the message's expiration when that comes first.
    soon = (datetime.now(UTC) + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    bounded = replace(message, expiration_time=soon)
    assert _post(node, bounded, sign_text(bounded.text(), key)).json()["expires_at"] == soon


def test_sign_in_requests_are_rate_limited_per_client(nodes: NodeFactory) -> None:
    node = nodes.new("siwe-limited", CONSORTIUM_AUTH_BURST="3", CONSORTIUM_AUTH_PER_SECOND="0.001")
    answers = [httpx.get(f"{node.url}/auth/nonce", timeout=30) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    _refused(answers[-1], 429, "rate_limited")


def test_two_workers_share_nonces_and_credentials(
    nodes: NodeFactory, anvil: LocalChain, deployment: Deployment
) -> None:
    node = nodes.new("siwe-workers", CONSORTIUM_WORKERS="2", CONSORTIUM_AUTH_BURST="50")
    signs_in_once_across_workers(node, anvil, deployment)
