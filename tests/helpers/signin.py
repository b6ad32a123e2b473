"""Signing in to a real node (EIP-4361) from the chain tests: a registered member's key, and one signed message
sent by many clients at once to a node of several workers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
from eth_account import Account

from chain.anvil import LocalChain
from chain.deploy import Deployment
from chain.registry_client import MemberRegistryClient, Role
from chain.siwe import sign_in_message, sign_text
from chain.tx import connect
from tests.helpers.nodes import ADMIN_KEY, HANGZHOU, RunningNode


def member_key(anvil: LocalChain, deployment: Deployment) -> str:
    """A fresh key, registered as an active member (without a node of its own)."""
    key = "0x" + str(Account.create().key.hex()).removeprefix("0x")
    MemberRegistryClient(anvil.rpc_url, deployment.registry, ADMIN_KEY).add_member(
        Account.from_key(key).address, "signs-in", Role.PARTNER, "http://127.0.0.1:1", *HANGZHOU
    )
    return key


def signs_in_once_across_workers(node: RunningNode, anvil: LocalChain, deployment: Deployment) -> None:
    """One message posted by 8 clients at once signs in once, whichever worker answers each; its credential is
    then known to every worker."""
    key, chain_id = member_key(anvil, deployment), int(connect(anvil.rpc_url).eth.chain_id)
    nonce = httpx.get(f"{node.url}/auth/nonce", timeout=30).raise_for_status().json()["nonce"]
    message = sign_in_message(node.url, Account.from_key(key).address, chain_id, nonce)
    body = {"message": message.text(), "signature": sign_text(message.text(), key)}
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: httpx.post(f"{node.url}/auth/siwe", json=body, timeout=30), range(8)))
    assert sorted(a.status_code for a in answers) == [200] + [401] * 7, [a.text for a in answers]
    token = next(a for a in answers if a.status_code == 200).json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    for _ in range(8):
        httpx.get(f"{node.url}/auth/whoami", headers=bearer, timeout=30).raise_for_status()
