"""Arbitration across real nodes: a partner disputes an offer, both sides record it, and only a ruling
signed by the rule book's arbitrator closes it, as a signed record anchored on both sides."""

from __future__ import annotations

import json

import httpx
from eth_account import Account

from chain.deploy import Deployment
from negotiation.messages import Domain
from negotiation.rules.book import load_book
from node.services.disputes import sign_ruling
from tests.helpers import consortium, pair_with_an_offer, wait_anchored
from tests.helpers.nodes import ADMIN_KEY, TEST_RULEBOOK, NodeFactory, RunningNode, until

VERSION = load_book(TEST_RULEBOOK).version


def disputes(node: RunningNode) -> list[dict[str, object]]:
    with node.client() as c:
        return list(c.get("/negotiation/disputes").json())


def test_only_the_arbitrators_ruling_closes_a_dispute_and_both_sides_anchor_it(
    nodes: NodeFactory, deployment: Deployment
) -> None:
    hz, xs = pair_with_an_offer(nodes, "dispute")
    with hz.client() as c:
        offer = c.get("/negotiation/offers").json()[0]
        opened = c.post(
            "/negotiation/disputes",
            json={"subject": offer["id"], "reason": "lot offered as fresh is short-dated", "claim_amount": 50_000},
        )
        assert opened.status_code == 201, opened.text
        bad = c.post("/negotiation/disputes", json={"subject": "0x" + "ab" * 32, "reason": "unknown subject"})
        assert (bad.status_code, bad.json()["error"]) == (422, "invalid_request")  # name the respondent
    dispute = opened.json()["dispute"]
    assert opened.json()["respondent"] == xs.address and opened.json()["rule_version"] == VERSION
    until(lambda: disputes(xs))
    assert disputes(xs)[0]["id"] == dispute and disputes(xs)[0]["opener"] == hz.address

    domain = Domain("consortium-inventory", 31337, deployment.registry)
    inbox = f"{hz.url}/negotiation/messages"
    # Signed by a member, even the respondent itself, a ruling is not a ruling.
    forged = sign_ruling(domain, xs.key, dispute, "the supplier is right", VERSION)
    r = httpx.post(inbox, json=forged.as_json())
    assert (r.status_code, r.json()["error"]) == (403, "not_authorised")
    # The arbitrator's key, under a rule book this node does not hold: no arbitrator to check against.
    elsewhere = sign_ruling(domain, ADMIN_KEY, dispute, "ruled under other rules", "0x" + "cd" * 32)
    assert httpx.post(inbox, json=elsewhere.as_json()).status_code == 403
    assert disputes(hz)[0]["status"] == "open"

    result = consortium(
        "arbitrate", "--dispute", dispute, "--decision", "the offer stands; the requester bears half the claim",
        "--rule-version", VERSION, "--rpc", nodes.anvil.rpc_url, "--registry", deployment.registry,
        "--node", hz.url, "--node", xs.url, "--key", ADMIN_KEY,
        "--award", "25000", "--payer", hz.address, "--payee", xs.address,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    ruling = json.loads(result.stdout)
    for node in (hz, xs):
        [d] = disputes(node)
        assert (d["status"], d["award"], d["payer"], d["payee"]) == ("ruled", 25_000, hz.address, xs.address)
        # Delivered again: a replay; a second ruling: the dispute is closed.
        again = httpx.post(f"{node.url}/negotiation/messages", json=ruling)
        assert again.json()["error"] == "replayed"
        other = sign_ruling(domain, ADMIN_KEY, dispute, "changed my mind", VERSION)
        assert httpx.post(f"{node.url}/negotiation/messages", json=other.as_json()).json()["error"] == "closed"
        with node.client() as c:
            c.post("/anchoring/flush")
        docs = wait_anchored(node)
        [record] = [d["record"] for d in docs if d["record"]["type"] == "ruling"]
        assert record["ruling"]["signature"] == ruling["signature"]
        assert record["ruling"]["arbitrator"] == Account.from_key(ADMIN_KEY).address
        assert [d["record"]["type"] for d in docs].count("dispute") == 1
        verified = consortium("audit", "verify", "--rpc", nodes.anvil.rpc_url, "--node", node.url)
        assert verified.returncode == 0, verified.stderr
