"""Rule book versions on a real Anvil: proposed by a member, active only once the quorum of the version in
force (with headquarters) has approved, from the block its activation delay names."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from chain.anvil import DEFAULT_PRIVATE_KEYS, LocalChain
from chain.deploy import GovernanceTerms, RuleGenesis, deploy_contracts, deploy_rule_registry
from chain.registry_client import MemberRegistryClient, Role
from chain.rules_client import NO_VERSION, RuleRegistryClient, rule_events
from chain.tx import TransactionRejected
from negotiation.rules.book import load_book
from tests.helpers.chains import new_chain

HQ, A, B, C, OUTSIDER = DEFAULT_PRIVATE_KEYS[:5]
TERMS = GovernanceTerms(
    tuple(Account.from_key(k).address for k in (HQ, A, B, C)), 3, (Account.from_key(HQ).address,), 2
)
GENESIS = "0x" + Web3.keccak(text="genesis rule book").hex().removeprefix("0x")


def version_id(label: str) -> str:
    return "0x" + Web3.keccak(text=label).hex().removeprefix("0x")


@dataclass
class Rules:
    anvil: LocalChain
    address: str

    def as_(self, key: str) -> RuleRegistryClient:
        return RuleRegistryClient(self.anvil.rpc_url, self.address, key)

    def mine(self, blocks: int) -> None:
        self.anvil.mine(blocks)


@pytest.fixture(scope="module")
def rules(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rules]:
    anvil = new_chain(request, tmp_path_factory, "rules")
    anvil.start()
    d = deploy_contracts(anvil.rpc_url, HQ)
    members = MemberRegistryClient(anvil.rpc_url, d.registry, HQ)
    for i, key in enumerate((A, B, C)):
        members.add_member(Account.from_key(key).address, f"partner {i}", Role.PARTNER, "http://127.0.0.1:9", 0, 0)
    address = deploy_rule_registry(anvil.rpc_url, HQ, d.registry, RuleGenesis(GENESIS, TERMS, "genesis.yaml"))
    yield Rules(anvil, address)
    anvil.stop()


def test_genesis_is_in_force_from_deployment(rules: Rules) -> None:
    client = rules.as_(A)
    assert client.active()[0] == GENESIS == client.latest()
    genesis = client.version(GENESIS)
    assert genesis.parent == NO_VERSION and genesis.governance == TERMS.normalised()
    assert client.active(genesis.proposed_at_block - 1)[0] == NO_VERSION


def test_only_members_propose_and_only_on_the_latest_version(rules: Rules) -> None:
    latest = rules.as_(A).latest()  # the genesis, or what another test of the module activated since
    with pytest.raises(TransactionRejected, match="not a member"):
        rules.as_(OUTSIDER).propose(version_id("outsider"), latest, TERMS, "")
    with pytest.raises(TransactionRejected, match="parent is not the latest version"):
        rules.as_(A).propose(version_id("orphan"), version_id("nothing"), TERMS, "")
    bad = GovernanceTerms(TERMS.approvers, 5, TERMS.required, 2)
    with pytest.raises(TransactionRejected, match="quorum out of range"):
        rules.as_(A).propose(version_id("bad quorum"), latest, bad, "")


def test_below_quorum_or_without_headquarters_nothing_changes_at_quorum_it_activates_after_the_delay(
    rules: Rules,
) -> None:
    v1, rival = version_id("v1"), version_id("rival")
    rules.as_(A).propose(v1, GENESIS, TERMS, "v1.yaml")
    rules.as_(B).propose(rival, GENESIS, TERMS, "rival.yaml")
    with pytest.raises(TransactionRejected, match="version already proposed"):
        rules.as_(C).propose(v1, GENESIS, TERMS, "")
    rules.as_(A).approve(v1)
    rules.as_(B).approve(v1)
    with pytest.raises(TransactionRejected, match="already approved"):
        rules.as_(B).approve(v1)
    with pytest.raises(TransactionRejected, match="not an approver"):
        rules.as_(OUTSIDER).approve(v1)
    assert rules.as_(A).version(v1).activates_at_block is None  # 2 of 3: below quorum
    rules.as_(C).approve(v1)
    assert rules.as_(A).version(v1).activates_at_block is None  # 3 of 3 partners, but not headquarters
    assert rules.as_(A).active()[0] == GENESIS
    approved_at = rules.as_(HQ).approve(v1)
    scheduled = rules.as_(A).version(v1)
    assert scheduled.activates_at_block == approved_at + 2
    assert scheduled.approvals == tuple(Account.from_key(k).address for k in (A, B, C, HQ))
    assert rules.as_(A).active()[0] == GENESIS  # not yet: the delay lets every node get ready
    rules.mine(2)
    active, at = rules.as_(A).active()
    assert active == v1 and at >= approved_at + 2
    assert rules.as_(A).active(approved_at + 1)[0] == GENESIS  # history stays answerable by block
    # The rival was proposed on the genesis version, which is no longer the latest: it can never activate.
    with pytest.raises(TransactionRejected, match="stale"):
        rules.as_(A).approve(rival)
    with pytest.raises(TransactionRejected, match="already scheduled"):
        rules.as_(B).approve(v1)
    assert [v.version for v in rules.as_(A).versions()] == [GENESIS, v1, rival]
    assert rules.as_(A).activated() == [GENESIS, v1]
    # What `consortium rules history --follow` prints: every event, in chain order.
    client = rules.as_(A)
    events = [(e["event"], e["version"]) for e in rule_events(client, 0, client.w3.eth.block_number)]
    assert events == [
        ("Proposed", GENESIS), ("Scheduled", GENESIS), ("Proposed", v1), ("Proposed", rival),
        ("Approved", v1), ("Approved", v1), ("Approved", v1), ("Approved", v1), ("Scheduled", v1),
    ]  # fmt: skip


def test_deploy_puts_the_first_rule_book_in_force(rules: Rules) -> None:
    demo = Path(__file__).resolve().parents[2] / "node" / "demo" / "rulebook.yaml"
    out = subprocess.run(
        [sys.executable, "-m", "node", "deploy", "--rpc", rules.anvil.rpc_url, "--key", HQ, "--rulebook", str(demo)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    deployed = json.loads(out)
    assert deployed["rule_book"] == load_book(demo).version
    assert RuleRegistryClient(rules.anvil.rpc_url, deployed["rule_registry"]).active()[0] == deployed["rule_book"]
