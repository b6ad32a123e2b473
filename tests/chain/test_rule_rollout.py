"""A rule book change across real nodes: proposed through a node, approved below and at quorum, switched
at its activation block while invitations keep flowing; and a node refusing to act under any rule book
it cannot show is the active one."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from eth_account import Account
from web3 import Web3

from chain.anvil import DEFAULT_PRIVATE_KEYS, AnvilProcess
from chain.deploy import Deployment, GovernanceTerms, RuleGenesis, deploy_contracts, deploy_rule_registry
from chain.rules_client import RuleRegistryClient
from negotiation.rules.book import load_book
from node.services.rules_keeper import governance_terms
from tests.helpers.nodes import ADMIN_KEY, TEST_RULEBOOK, NodeFactory, RunningNode

HQ = ADMIN_KEY
KEYS = DEFAULT_PRIVATE_KEYS[5:8]  # the three partners' keys, known before the genesis book is written
HANGZHOU, XIAOSHAN, SHAOXING = (30_259_000, 120_130_000), (30_185_000, 120_264_000), (30_084_000, 120_493_000)
TOMORROW = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86_400))


def book_file(tmp: Path, name: str, **changes: Any) -> Path:
    data = yaml.safe_load(TEST_RULEBOOK.read_text())
    data["governance"] = {
        "approvers": [Account.from_key(k).address for k in (HQ, *KEYS)],
        "quorum": 3,
        "required": [Account.from_key(HQ).address],
        "activation_delay_blocks": 3,
    }
    # The live traffic below floods one supplier with invitations it never sees planned, on purpose: without
    # this, the per-member limit (50 open invitations by default) could answer every later one with a NoOffer, and
    # whether any offer comes under the new version would depend on how many came before it.
    data["limits"] = {"open_invitations_per_member": 1000}
    for path, value in changes.items():
        node = data
        *parents, last = path.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    out = tmp / f"{name}.yaml"
    out.write_text(yaml.safe_dump(data))
    return out


@pytest.fixture(scope="module")
def books(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("books")
    return {
        "v1": book_file(tmp, "v1", label="rollout-1"),
        # v2 prices freight higher: decisions under it are told apart by their numbers as well as their version.
        "v2": book_file(tmp, "v2", label="rollout-2", **{"pricing.freight_per_unit": "0.90 + 0.02 * lane.distance_km"}),
        "conflicting": book_file(
            tmp,
            "conflicting",
            label="rollout-bad",
            **{
                "matrix.routine_replenishment.min_order_quantity": [
                    {"set": {"min_order_quantity": 1}},
                    {"when": "request.urgent", "set": {"min_order_quantity": 5}},
                ]
            },
        ),
    }


@pytest.fixture(scope="module")
def deployment(anvil: AnvilProcess, books: dict[str, Path]) -> Deployment:
    v1 = load_book(books["v1"])
    return deploy_contracts(anvil.rpc_url, ADMIN_KEY, RuleGenesis(v1.version, governance_terms(v1), "v1.yaml"))


@pytest.fixture
def partners(nodes: NodeFactory, anvil: AnvilProcess, books: dict[str, Path]) -> Iterator[list[RunningNode]]:
    for key in KEYS:
        Web3(Web3.HTTPProvider(anvil.rpc_url)).provider.make_request(
            "anvil_setBalance",
            [Account.from_key(key).address, hex(10**20)],  # type: ignore[arg-type]
        )
    started = [
        nodes.new(name, lat_e6=lat, lon_e6=lon, key=key, CONSORTIUM_RULEBOOK_FILE=str(books["v1"]))
        for name, (lat, lon), key in zip(("hz", "xs", "sx"), (HANGZHOU, XIAOSHAN, SHAOXING), KEYS, strict=True)
    ]
    for node in started:
        with node.client() as c:
            c.post("/skus", json={"code": "F", "name": "Formula", "transfer_price": 5_200}).raise_for_status()
            c.post("/locations", json={"code": "WH", "name": "Warehouse", "lat": 30.2, "lon": 120.2})
            if node is not started[0]:
                c.post(
                    "/ledger/movements",
                    json={
                        "type": "receipt",
                        "sku": "F",
                        "lot": "L1",
                        "location": "WH",
                        "quantity": 100_000,
                        "expires_on": "2030-01-01",
                    },
                ).raise_for_status()
    yield started


def test_a_version_becomes_active_only_at_quorum_and_switches_at_its_block_under_live_traffic(
    partners: list[RunningNode], anvil: AnvilProcess, deployment: Deployment, books: dict[str, Path]
) -> None:
    hz, xs, sx = partners
    assert deployment.rules is not None
    chain = RuleRegistryClient(anvil.rpc_url, deployment.rules)
    v1, v2 = load_book(books["v1"]).version, load_book(books["v2"]).version
    with hz.client() as c:
        assert c.get("/rules/active").json()["version"] == v1
        # A book with conflicts is kept as a draft but cannot be proposed.
        bad = c.post("/rules/books", json=yaml.safe_load(books["conflicting"].read_text())).json()
        assert bad["conflicts"][0]["kind"] == "contradictory_settings"
        refused = c.post(f"/rules/books/{bad['version']}/propose")
        assert refused.status_code == 422 and refused.json()["error"] == "rule_book_rejected"
        assert c.post("/rules/books", json=yaml.safe_load(books["v2"].read_text())).json()["conflicts"] == []
        assert c.post(f"/rules/books/{v2}/propose").status_code == 200

    # Live traffic: Hangzhou keeps inviting while the approvals come in and the version switches.
    seen: list[dict[str, Any]] = []
    stop = threading.Event()

    def invite_forever() -> None:
        with hz.client() as c:
            while not stop.is_set():
                r = c.post("/negotiation/invitations", json={"sku": "F", "quantity": 10, "needed_by": TOMORROW})
                assert r.status_code == 201, r.text
                seen.append(r.json()["invitation"])
                time.sleep(0.05)

    traffic = threading.Thread(target=invite_forever)
    traffic.start()
    try:
        for node in (xs, sx):  # they fetch v2 from the proposer's node and check its hash before approving
            with node.client() as c:
                approved = c.post(f"/rules/books/{v2}/approve")
                assert approved.status_code == 200, approved.text  # the refusal says why
                assert approved.json()["activates_at_block"] is None
        with hz.client() as c:
            assert c.post(f"/rules/books/{v2}/approve").json()["activates_at_block"] is None  # 3 of 3, no HQ
        assert chain.active()[0] == v1
        RuleRegistryClient(anvil.rpc_url, deployment.rules, HQ).approve(v2)
        activation = chain.version(v2).activates_at_block
        assert activation is not None
        deadline = time.monotonic() + 30
        while chain.active()[0] != v2 and time.monotonic() < deadline:
            # Anchoring transactions mine blocks as traffic flows; an empty block now and then, as a real
            # chain makes over time, keeps the test from depending on them.
            chain.w3.provider.make_request("anvil_mine", ["0x1"])  # type: ignore[arg-type]
            time.sleep(0.2)
        assert chain.active()[0] == v2
        time.sleep(1.0)
    finally:
        stop.set()
        traffic.join()
    versions = [i["rule_version"] for i in seen]
    switch = versions.index(v2)
    assert switch > 0 and set(versions[:switch]) == {v1} and set(versions[switch:]) == {v2}

    # Each supplier offered only on invitations made under the version it had in force, at that version's price.
    def offers_of(node: RunningNode) -> list[dict[str, Any]]:
        with node.client() as c:
            return [o for o in c.get("/negotiation/offers").json() if o["supplier"] == node.address]

    def received_by_xs() -> int:
        with xs.client() as c:
            return sum(1 for i in c.get("/negotiation/invitations").json() if not i["mine"])

    # Hangzhou's outbox drains (every invitation delivered, or refused by a node that had switched versions)
    # and Xiaoshan has answered each it received with an offer (it holds far more than all of them ask), so
    # the history the sandbox replays below is closed.
    def settled() -> bool:
        with hz.client() as c:
            outbox = c.get("/health").json()["outbox"]
        return outbox["waiting_messages"] == 0 and received_by_xs() == len(offers_of(xs))

    deadline = time.monotonic() + 60
    while not settled() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert settled()
    by_id = {i["id"]: i for i in seen}
    offered = offers_of(xs)
    assert {o["rule_version"] for o in offered} == {v1, v2}
    for o in offered:
        assert o["rule_version"] == by_id[o["invitation"]]["rule_version"]

    # The sandbox on Xiaoshan's own history: a book keeping 99,995 units back would have offered 5 units on
    # the first invitation and nothing after (each offer reserved 10).
    strict = yaml.safe_load(books["v2"].read_text())
    strict["label"], strict["safety_stock"] = "strict", {"method": "fixed", "fixed_units": 99_995}
    # Yesterday to today: the invitations were made moments ago, perhaps just before midnight UTC.
    today = time.strftime("%Y-%m-%d", time.gmtime())
    since = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86_400))
    with xs.client() as c:
        received = [i for i in c.get("/negotiation/invitations").json() if not i["mine"]]
        report = c.post("/rules/try", json={"book": strict, "from": since, "to": today}).json()
    assert report["current"] == v2 and len(report["offer_changes"]) == len(received)
    assert report["totals"]["proposed"]["offered_units"] == 5
    assert report["totals"]["current"]["offered_units"] == 10 * len(received)
    # The same from the command line, on the node's own database, read-only: laid out as `consortium up`
    # does (a manifest and the keys beside each node's directory), named with --data-dir and --name...
    strict_file = books["v2"].parent / "strict.yaml"
    strict_file.write_text(yaml.safe_dump(strict))
    data_dir, name = xs.db_path.parent.parent, xs.db_path.parent.name
    manifest = {
        "rpc_url": anvil.rpc_url,
        "rule_registry": deployment.rules,
        "nodes": [{"name": name, "address": xs.address}],
    }
    (data_dir / "consortium.json").write_text(json.dumps(manifest))
    (data_dir / "keys.json").write_text(json.dumps({name: xs.key}))
    try_cli = [sys.executable, "-m", "node", "rules", "try", str(strict_file), "--from", since, "--to", today]
    cli = subprocess.run(
        [*try_cli, "--data-dir", str(data_dir), "--name", name], capture_output=True, text=True, check=True
    )
    from_cli = json.loads(cli.stdout)
    assert from_cli["current"] == v2  # the version of Xiaoshan's latest decision
    assert (from_cli["totals"], from_cli["offer_changes"]) == (report["totals"], report["offer_changes"])
    # ...or through the node itself, which computes for itself.
    via_node = subprocess.run(
        [*try_cli, "--node", xs.url, "--token", xs.token], capture_output=True, text=True, check=True
    )
    from_node = json.loads(via_node.stdout)
    assert (from_node["current"], from_node["totals"]) == (v2, report["totals"])

    # The history, read from the chain and matched against the files an auditor holds.
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "node",
            "rules",
            "history",
            "--rpc",
            anvil.rpc_url,
            "--contract",
            deployment.rules,
            "--book",
            str(books["v1"]),
            "--book",
            str(books["v2"]),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    history = [json.loads(line) for line in out.splitlines()]
    # The conflicting draft never reached the chain: only the two versions are there.
    assert [(h["version"], h.get("label")) for h in history] == [(v1, "rollout-1"), (v2, "rollout-2")]
    last = next(h for h in history if h["version"] == v2)
    assert last["governance_matches"] and last["activates_at_block"] == activation and last["active_at_block"]
    assert last["approvals"] == [xs.address, sx.address, hz.address, Account.from_key(HQ).address]
    assert last["proposer"] == hz.address


def test_a_node_refuses_to_act_under_a_rule_book_it_cannot_show_is_active(
    nodes: NodeFactory, anvil: AnvilProcess, deployment: Deployment, books: dict[str, Path]
) -> None:
    # A registry whose version in force no node holds.
    unheld = "0x" + Web3.keccak(text="a rule book nobody has").hex().removeprefix("0x")
    terms = GovernanceTerms((Account.from_key(HQ).address,), 1, (), 0)
    elsewhere = deploy_rule_registry(anvil.rpc_url, HQ, deployment.registry, RuleGenesis(unheld, terms))
    node = nodes.new("blind", CONSORTIUM_RULES_ADDRESS=elsewhere, CONSORTIUM_RULEBOOK_FILE=str(books["v1"]))
    with node.client() as c:
        c.post("/skus", json={"code": "F", "name": "Formula", "transfer_price": 5_200}).raise_for_status()
        r = c.post("/negotiation/invitations", json={"sku": "F", "quantity": 10, "needed_by": TOMORROW})
        assert (r.status_code, r.json()["error"]) == (409, "rule_book_not_active")
        assert "holds no copy" in r.json()["message"]
        assert c.post("/negotiation/plan").json()["error"] == "rule_book_not_active"
        assert c.get("/negotiation/invitations").json() == []
        assert c.get("/rules/active").status_code == 409
    # On the consortium's registry: a node holding only v1 fetches the version in force from a member that
    # holds it, checks that it hashes to that version, and acts under it.
    assert deployment.rules is not None
    active = RuleRegistryClient(anvil.rpc_url, deployment.rules).active()[0]
    holder_file = next(p for p in books.values() if load_book(p).version == active)
    nodes.new("holder", CONSORTIUM_RULEBOOK_FILE=str(holder_file))
    fetcher = nodes.new("fetcher", lat_e6=XIAOSHAN[0], lon_e6=XIAOSHAN[1], CONSORTIUM_RULEBOOK_FILE=str(books["v1"]))
    with fetcher.client() as c:
        c.post("/skus", json={"code": "F", "name": "Formula", "transfer_price": 5_200}).raise_for_status()
        r = c.post("/negotiation/invitations", json={"sku": "F", "quantity": 10, "needed_by": TOMORROW})
        assert r.status_code == 201 and r.json()["invitation"]["rule_version"] == active
        assert active in [b["version"] for b in c.get("/rules/books").json()]
        # The emergency SLA: partners must answer an urgent invitation within its response time (30 min).
        urgent = c.post(
            "/negotiation/invitations", json={"sku": "F", "quantity": 5, "needed_by": TOMORROW, "urgent": True}
        ).json()["invitation"]
        assert abs(urgent["deadline"] - time.time() - 30 * 60) < 60 and urgent["urgent"]
        assert abs(r.json()["invitation"]["deadline"] - time.time() - 3600) < 60
