"""A throwaway chain for benchmarks: Anvil, deployed contracts and a funded member."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account
from web3 import Web3

from chain.anvil import DEFAULT_PRIVATE_KEYS, AnvilProcess
from chain.deploy import Deployment, RuleGenesis, deploy_contracts
from chain.registry_client import MemberRegistryClient, Role
from tests.helpers.nodes import TEST_RULEBOOK, NodeFactory, genesis_of


@dataclass
class BenchChain:
    anvil: AnvilProcess
    deployment: Deployment

    def new_member(self, name: str) -> str:
        account = Account.create()
        Web3(Web3.HTTPProvider(self.anvil.rpc_url)).provider.make_request(
            "anvil_setBalance",
            [account.address, hex(10**21)],  # type: ignore[arg-type]
        )
        MemberRegistryClient(self.anvil.rpc_url, self.deployment.registry, DEFAULT_PRIVATE_KEYS[0]).add_member(
            account.address, name, Role.PARTNER, "http://127.0.0.1:1", 30_259_000, 120_130_000
        )
        return "0x" + bytes(account.key).hex()


@contextmanager
def bench_chain(genesis: RuleGenesis | None = None) -> Iterator[BenchChain]:
    anvil = AnvilProcess()
    anvil.start()
    try:
        yield BenchChain(anvil, deploy_contracts(anvil.rpc_url, DEFAULT_PRIVATE_KEYS[0], genesis))
    finally:
        anvil.stop()


@contextmanager
def bench_nodes(prefix: str) -> Iterator[tuple[BenchChain, NodeFactory, Path]]:
    """A chain holding the test rule book in force, a factory of real node processes and a scratch directory;
    every node stopped at the end."""
    with bench_chain(genesis_of(TEST_RULEBOOK)) as chain, tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        factory = NodeFactory(chain.anvil, chain.deployment, Path(tmp))
        try:
            yield chain, factory, Path(tmp)
        finally:
            factory.stop_all()
