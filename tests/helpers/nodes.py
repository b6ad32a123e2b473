"""Nodes as real processes on a real chain, for the integration tests and the benchmarks alike: a factory
that registers a member, starts its node over HTTP and stops it again, and the demo story's places.

Tests (tests/chain/conftest.py) and benchmarks (bench/chainkit.py) both use it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from eth_account import Account

from chain.anvil import DEFAULT_PRIVATE_KEYS, LocalChain
from chain.deploy import Deployment, RuleGenesis
from chain.registry_client import MemberRegistryClient, Role
from negotiation.rules.book import load_book
from node.launch.nodes import fund_new_key, until
from node.launch.process import NodeProcess, free_port
from node.services.rules_keeper import governance_terms

__all__ = [
    "ADMIN_KEY",
    "HANGZHOU",
    "JIAXING",
    "SHAOXING",
    "TEST_RULEBOOK",
    "XIAOSHAN",
    "NodeFactory",
    "RunningNode",
    "fund_new_key",
    "genesis_of",
    "soon",
    "stock_up",
    "stock_up_through",
    "until",
]

ADMIN_KEY = DEFAULT_PRIVATE_KEYS[0]
TESTDATA = Path(__file__).resolve().parents[2] / "testdata"
TEST_RULEBOOK = TESTDATA / "rulebook.yaml"

# Story 1's places (microdegrees) and their distance from the Hangzhou store.
HANGZHOU = (30_259_000, 120_130_000)
XIAOSHAN = (30_185_000, 120_264_000)  # 15 km
SHAOXING = (30_084_000, 120_493_000)  # 40 km
JIAXING = (30_746_000, 120_755_000)  # 81 km


def genesis_of(path: Path) -> RuleGenesis:
    """The rule book at `path` as the RuleRegistry's first version (in force from deployment)."""
    checked = load_book(path)
    return RuleGenesis(checked.version, governance_terms(checked), path.name)


def soon(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).date().isoformat()


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
    def __init__(self, anvil: LocalChain, deployment: Deployment, base: Path, rulebook: Path = TEST_RULEBOOK) -> None:
        self.anvil = anvil
        self.deployment = deployment
        self.base = base
        self.rulebook = rulebook
        self.started: list[RunningNode] = []

    def new(
        self,
        name: str,
        register: bool = True,
        lat_e6: int = HANGZHOU[0],
        lon_e6: int = HANGZHOU[1],
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
            "CONSORTIUM_RULEBOOK_FILE": str(self.rulebook),
            "CONSORTIUM_ANCHOR_INTERVAL_SECONDS": "0.2",
            "CONSORTIUM_CHAIN_RETRY_MAX_SECONDS": "0.5",
            **env,
        }
        node = RunningNode(NodeProcess(name, port, full_env, self.base / name / "node.log"), token, key, db)
        # Counted before it starts: a run stopped (SIGTERM, Ctrl-C) while the node comes up still stops it in the
        # teardown; counted after, a fixture interrupted in its setup left the node running on its own.
        self.started.append(node)
        node.process.start()
        return node

    def stop_all(self) -> None:
        registry = MemberRegistryClient(self.anvil.rpc_url, self.deployment.registry, ADMIN_KEY)
        for node in self.started:
            node.process.stop()
            # Later runs on the same chain share the registry: a stopped node must not be invited again.
            if self.anvil.proc is not None and registry.member(node.address).active:
                registry.remove_member(node.address)


def stock_up(node: RunningNode, lots: list[tuple[str, str, int]], prices: dict[str, int] | None = None) -> None:
    """The story's supplier set-up: infant formula in a warehouse, one receipt per (lot, expiry, quantity);
    `prices`: the SKU's other prices (purchase_price, sale_price) beside its transfer price."""
    with node.client() as c:
        stock_up_through(c, lots, prices)


def stock_up_through(c: httpx.Client, lots: list[tuple[str, str, int]], prices: dict[str, int] | None = None) -> None:
    """`stock_up` through any operator client of a node (a real process's, or an in-process one's)."""
    sku = {"code": "FORMULA-900G", "name": "Infant formula", "transfer_price": 5200, **(prices or {})}
    c.post("/skus", json=sku).raise_for_status()
    c.post("/locations", json={"code": "WH", "name": "Warehouse", "lat": 30.2, "lon": 120.2}).raise_for_status()
    for lot, expires, qty in lots:
        movement = {
            "type": "receipt",
            "sku": "FORMULA-900G",
            "lot": lot,
            "location": "WH",
            "quantity": qty,
            "expires_on": expires,
        }
        c.post("/ledger/movements", json=movement).raise_for_status()
