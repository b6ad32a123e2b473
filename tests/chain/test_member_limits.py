"""Per-member limits of the rule book between real nodes: no member reserves all of another's spare stock,
holds it with more open invitations than the book allows, or writes disputes into its ledger without end.

The consortium here runs under the test rule book with a `limits` section (written per module), so both
nodes decide under the same limits the chain says are in force.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from chain.anvil import AnvilProcess
from chain.deploy import Deployment, deploy_contracts
from negotiation.messages import Domain, new_id, new_nonce, sign
from negotiation.rules.book import load_book
from tests.helpers import stock
from tests.helpers.nodes import (
    ADMIN_KEY,
    HANGZHOU,
    SHAOXING,
    TEST_RULEBOOK,
    XIAOSHAN,
    NodeFactory,
    RunningNode,
    genesis_of,
    soon,
    stock_up,
    until,
)

LIMITS = {
    "open_disputes_per_member": 2,
    "disputes_per_member_per_day": 3,
    "open_invitations_per_member": 1,
    "reserved_share_per_member": "0.5",
}


@pytest.fixture(scope="module")
def limited_book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    book = yaml.safe_load(TEST_RULEBOOK.read_text(encoding="utf-8"))
    book["limits"] = LIMITS
    path = tmp_path_factory.mktemp("book") / "limited.yaml"
    path.write_text(yaml.safe_dump(book), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def deployment(anvil: AnvilProcess, limited_book: Path) -> Deployment:
    return deploy_contracts(anvil.rpc_url, ADMIN_KEY, genesis_of(limited_book))


@pytest.fixture
def nodes(anvil: AnvilProcess, deployment: Deployment, limited_book: Path, tmp_path: Path) -> Iterator[NodeFactory]:
    factory = NodeFactory(anvil, deployment, tmp_path, rulebook=limited_book)
    yield factory
    factory.stop_all()


def invite(node: RunningNode, quantity: int) -> str:
    with node.client() as c:
        r = c.post("/negotiation/invitations", json={"sku": "FORMULA-900G", "quantity": quantity, "needed_by": soon(2)})
        assert r.status_code == 201, r.text
        return str(r.json()["invitation"]["id"])


def invitation(node: RunningNode, inv_id: str) -> dict[str, Any]:
    with node.client() as c:
        return next(i for i in c.get("/negotiation/invitations").json() if i["id"] == inv_id)


def answered(node: RunningNode, inv_id: str) -> dict[str, Any] | None:
    inv = invitation(node, inv_id)
    return inv if not inv["pending"] else None


def test_one_member_reserves_at_most_its_share_and_holds_one_invitation_open(nodes: NodeFactory) -> None:
    hz = nodes.new("hz-greedy", lat_e6=HANGZHOU[0], lon_e6=HANGZHOU[1])
    sx = nodes.new("sx-other", lat_e6=SHAOXING[0], lon_e6=SHAOXING[1])
    xs = nodes.new("xs-supplier", lat_e6=XIAOSHAN[0], lon_e6=XIAOSHAN[1])
    stock_up(hz, [])
    stock_up(sx, [])
    stock_up(xs, [("X1", soon(400), 100)])

    # Asked for all 100, Xiaoshan offers Hangzhou half of what it could spare.
    first_id = invite(hz, 100)
    first = until(lambda: answered(hz, first_id))
    assert [o["quantity"] for o in first["offers"]] == [50]
    assert stock(xs) == {("X1", "available"): 50, ("X1", "reserved"): 50}

    # A second invitation while the first still holds a reservation: an answer, no offer, and why.
    second_id = invite(hz, 40)
    second = until(lambda: answered(hz, second_id))
    assert second["offers"] == []
    reasons = {a["supplier"]: a["reason"] for a in second["no_offers"]}
    assert "limit" in reasons[xs.address] and "limit" not in reasons[sx.address]  # sx simply has no stock
    assert stock(xs) == {("X1", "available"): 50, ("X1", "reserved"): 50}

    # Another member is still served, within its own share of what is left.
    third_id = invite(sx, 100)
    third = until(lambda: answered(sx, third_id))
    assert [o["quantity"] for o in third["offers"]] == [25]
    assert stock(xs) == {("X1", "available"): 25, ("X1", "reserved"): 75}


def test_disputes_past_the_limit_are_refused_by_both_sides_and_recorded_by_neither(
    nodes: NodeFactory, deployment: Deployment, limited_book: Path
) -> None:
    hz = nodes.new("hz-disputes", lat_e6=HANGZHOU[0], lon_e6=HANGZHOU[1])
    xs = nodes.new("xs-disputed", lat_e6=XIAOSHAN[0], lon_e6=XIAOSHAN[1])
    stock_up(hz, [])
    stock_up(xs, [("X1", soon(400), 50)])
    inv = invite(hz, 30)
    offer = until(lambda: invitation(hz, inv)["offers"])[0]

    def open_dispute(n: int) -> httpx.Response:
        with hz.client() as c:
            return c.post("/negotiation/disputes", json={"subject": offer["id"], "reason": f"complaint {n}"})

    assert [open_dispute(n).status_code for n in (1, 2)] == [201, 201]
    until(lambda: len(disputes(xs)) == 2)
    # The opener's own node says no before it signs anything.
    third = open_dispute(3)
    assert (third.status_code, third.json()["error"]) == (429, "limit_reached"), third.text
    assert len(disputes(hz)) == 2

    # Signed by the member itself, bypassing its node: the respondent refuses it and records nothing.
    domain = Domain("consortium-inventory", 31337, deployment.registry)
    message = {
        "id": new_id(),
        "subject": offer["id"],
        "opener": hz.address,
        "respondent": xs.address,
        "reason": "complaint 3, sent by hand",
        "claimAmount": 0,
        "ruleVersion": load_book(limited_book).version,
        "nonce": new_nonce(),
        "deadline": int(time.time()) + 600,
    }
    r = httpx.post(f"{xs.url}/negotiation/messages", json=sign(domain, "Dispute", message, hz.key).as_json())
    assert (r.status_code, r.json()["error"]) == (429, "limit_reached"), r.text
    assert len(disputes(xs)) == 2
    with xs.client() as c:
        records = c.get("/ledger/records", params={"type": "dispute"}).json()
    assert len(records) == 2


def disputes(node: RunningNode) -> list[dict[str, Any]]:
    with node.client() as c:
        return list(c.get("/negotiation/disputes").json())
