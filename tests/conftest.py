"""Fixtures with the real parts: an Anvil process, deployed contracts, node processes over HTTP."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from web3 import Web3

from chain.anvil import DEFAULT_PRIVATE_KEYS, AnvilProcess
from chain.deploy import Deployment, RuleGenesis, deploy_contracts
from chain.registry_client import MemberRegistryClient, Role
from negotiation.rules.book import load_book
from node.launch.process import NodeProcess, free_port
from node.services.rules_keeper import governance_terms

ADMIN_KEY = DEFAULT_PRIVATE_KEYS[0]


def fund_new_key(rpc_url: str) -> str:
    """A fresh member key with gas money (Anvil's own RPC), so tests never collide on accounts."""
    account = Account.create()
    Web3(Web3.HTTPProvider(rpc_url)).provider.make_request(
        "anvil_setBalance",
        [account.address, hex(10**20)],  # type: ignore[arg-type]
    )
    return "0x" + bytes(account.key).hex()


@pytest.fixture(scope="module")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnvilProcess]:
    chain = AnvilProcess(state_path=tmp_path_factory.mktemp("anvil") / "state.json")
    chain.start()
    yield chain
    chain.stop()


TEST_RULEBOOK = Path(__file__).resolve().parent / "rulebook.yaml"


def genesis_of(path: Path) -> RuleGenesis:
    checked = load_book(path)
    return RuleGenesis(checked.version, governance_terms(checked), path.name)


@pytest.fixture(scope="module")
def deployment(anvil: AnvilProcess) -> Deployment:
    return deploy_contracts(anvil.rpc_url, ADMIN_KEY, genesis_of(TEST_RULEBOOK))


@dataclass
class RunningNode:
    process: NodeProcess
    token: str
    key: str
    db_path: Path

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def address(self) -> str:
        return str(Account.from_key(self.key).address)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30)


class NodeFactory:
    def __init__(self, anvil: AnvilProcess, deployment: Deployment, base: Path) -> None:
        self.anvil = anvil
        self.deployment = deployment
        self.base = base
        self.started: list[RunningNode] = []

    def new(
        self,
        name: str,
        register: bool = True,
        lat_e6: int = 30_259_000,
        lon_e6: int = 120_130_000,
        key: str | None = None,
        **env: str,
    ) -> RunningNode:
        key = key or fund_new_key(self.anvil.rpc_url)
        port = free_port()
        if register:
            MemberRegistryClient(self.anvil.rpc_url, self.deployment.registry, ADMIN_KEY).add_member(
                Account.from_key(key).address, name, Role.PARTNER, f"http://127.0.0.1:{port}", lat_e6, lon_e6
            )
        db = self.base / name / "node.db"
        token = secrets.token_hex(8)
        full_env = {
            "CONSORTIUM_NODE_NAME": name,
            "CONSORTIUM_DATABASE_URL": f"sqlite:///{db}",
            "CONSORTIUM_API_TOKEN": token,
            "CONSORTIUM_PRIVATE_KEY": key,
            "CONSORTIUM_RPC_URL": self.anvil.rpc_url,
            "CONSORTIUM_REGISTRY_ADDRESS": self.deployment.registry,
            "CONSORTIUM_ANCHOR_ADDRESS": self.deployment.anchors,
            "CONSORTIUM_RULES_ADDRESS": self.deployment.rules or "",
            "CONSORTIUM_RULEBOOK_FILE": str(TEST_RULEBOOK),
            "CONSORTIUM_ANCHOR_INTERVAL_SECONDS": "0.2",
            "CONSORTIUM_CHAIN_RETRY_MAX_SECONDS": "0.5",
            **env,
        }
        node = RunningNode(NodeProcess(name, port, full_env, self.base / name / "node.log"), token, key, db)
        node.process.start()
        self.started.append(node)
        return node

    def stop_all(self) -> None:
        registry = MemberRegistryClient(self.anvil.rpc_url, self.deployment.registry, ADMIN_KEY)
        for node in self.started:
            node.process.stop()
            # Later tests of the module share the registry: a stopped node must not be invited again.
            if self.anvil.proc is not None and registry.member(node.address).active:
                registry.remove_member(node.address)


@pytest.fixture
def nodes(anvil: AnvilProcess, deployment: Deployment, tmp_path: Path) -> Iterator[NodeFactory]:
    factory = NodeFactory(anvil, deployment, tmp_path)
    yield factory
    factory.stop_all()
