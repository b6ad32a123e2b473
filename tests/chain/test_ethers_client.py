"""A partner written in JavaScript with ethers v6 reads what a node signs and writes what a node admits.

The JavaScript side (tests/helpers/ethers_client.mjs) parses envelopes with plain `JSON.parse`, as any web
client does, and verifies or signs with ethers' EIP-712 implementation: nothing of ours runs there.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from chain.deploy import Deployment
from chain.tools import find_node
from negotiation.messages import MESSAGE_TYPES, Domain, from_wire, new_id, sign
from negotiation.rules.book import load_book
from tests.helpers.nodes import HANGZHOU, TEST_RULEBOOK, XIAOSHAN, NodeFactory

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "tests" / "helpers" / "ethers_client.mjs"
VECTORS = json.loads((ROOT / "testdata" / "eip712" / "messages.json").read_text(encoding="utf-8"))
KEYS = {k["address"]: k["private_key"] for k in VECTORS["keys"]}


def ask_ethers(domain: dict[str, Any], verify: list[str], to_sign: list[dict[str, Any]]) -> dict[str, Any]:
    request = {"domain": domain, "types": MESSAGE_TYPES, "verify": verify, "sign": to_sign}
    done = subprocess.run(
        [str(find_node()), str(CLIENT)], input=json.dumps(request), capture_output=True, text=True, check=True
    )
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def _domain_of(d: dict[str, Any]) -> Domain:
    return Domain(name=d["name"], chain_id=d["chainId"], registry=d["verifyingContract"], version=d["version"])


def test_ethers_recovers_the_signer_of_every_message_type_a_node_sends() -> None:
    domain = _domain_of(VECTORS["domain"])
    envelopes, signers = [], []
    for vector in VECTORS["messages"]:  # nonces up to 2^63 - 1 and amounts up to 2^53 - 1
        ints = from_wire(vector["type"], vector["message"])
        signed = sign(domain, vector["type"], ints, KEYS[vector["signer"]])
        envelopes.append(json.dumps(signed.as_json()))  # exactly what the outbox POSTs
        signers.append(vector["signer"])
    assert ask_ethers(VECTORS["domain"], envelopes, [])["recovered"] == signers


def test_as_json_numbers_a_63_bit_nonce_would_reach_ethers_altered() -> None:
    """Why uint64 travels as a string: the same signed message with its integers as JSON numbers."""
    vector = VECTORS["messages"][0]  # the Invitation, nonce 2^53 + 1
    ints = from_wire(vector["type"], vector["message"])
    signed = sign(_domain_of(VECTORS["domain"]), vector["type"], ints, KEYS[vector["signer"]])
    as_numbers = json.dumps({"type": signed.type, "message": signed.message, "signature": signed.signature})
    (recovered,) = ask_ethers(VECTORS["domain"], [as_numbers], [])["recovered"]
    assert recovered != vector["signer"]


def test_a_node_admits_an_invitation_an_ethers_client_signed(nodes: NodeFactory, deployment: Deployment) -> None:
    hz = nodes.new("hz-js-inbox", lat_e6=HANGZHOU[0], lon_e6=HANGZHOU[1])
    js_partner = nodes.new("xs-js-partner", lat_e6=XIAOSHAN[0], lon_e6=XIAOSHAN[1])
    domain = Domain("consortium-inventory", 31337, deployment.registry).as_dict()
    now = int(time.time())
    message = {
        "id": new_id(),
        "requester": js_partner.address,
        "sku": "FORMULA-900G",
        "quantity": "12",
        "neededBy": str(now + 86_400),
        "minShelfLifeDays": 0,
        "radiusKm": 50,
        "scenario": "routine_replenishment",
        "customerTier": "standard",
        "urgent": False,
        "ruleVersion": load_book(TEST_RULEBOOK).version,
        "nonce": str(2**63 - 1),  # beyond what a JavaScript number holds
        "deadline": str(now + 600),
    }
    (text,) = ask_ethers(domain, [], [{"type": "Invitation", "message": message, "key": js_partner.key}])["signed"]
    r = httpx.post(f"{hz.url}/negotiation/messages", content=text, headers={"content-type": "application/json"})
    assert r.status_code == 202, r.text
    with hz.client() as c:
        (stored,) = c.get("/negotiation/invitations").json()
    assert stored["id"] == message["id"] and stored["quantity"] == 12
    assert httpx.post(f"{hz.url}/negotiation/messages", content=text).json()["error"] == "replayed"
