"""Deploying the consortium's contracts, and web3 contract objects from their ABIs.

Both use the build shipped in contracts/compiled/ (chain/contracts.py): no compiler at run time, and the bytecode
deployed is the one the tests prove equal to a fresh compile of the sources."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from eth_account import Account
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract

from chain.contracts import CompiledContract, shipped_contracts
from chain.errors import TransactionRejected
from chain.tx import send, web3_of


@dataclass(frozen=True)
class Deployment:
    chain_id: int
    rpc_url: str
    registry: str
    anchors: str
    rules: str | None = None


@lru_cache(maxsize=1)
def _compiled() -> dict[str, CompiledContract]:
    return shipped_contracts()


def contract(w3: Web3, name: str, address: str) -> Contract:
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=_compiled()[name].abi)


def deploy_contract(w3: Web3, key: str, name: str, *args: object) -> str:
    compiled = _compiled()[name]
    factory = w3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)
    receipt = send(w3, Account.from_key(key), factory.constructor(*args))
    address = receipt["contractAddress"]
    if address is None:
        raise TransactionRejected(f"deploying {name} created no contract (transaction {receipt['transactionHash']!r})")
    return str(Web3.to_checksum_address(address))


def deploy_contracts(rpc_url: str | Web3, admin_key: str, genesis: RuleGenesis | None = None) -> Deployment:
    """MemberRegistry (administered by `admin_key`'s account), then AnchorRegistry bound to it, and, given
    the first rule book's version and governance, the RuleRegistry with that version in force.

    `rpc_url` is a URL or an already-built Web3; given a Web3, the deployment records its provider's URL."""
    w3 = web3_of(rpc_url, timeout=30)
    registry = deploy_contract(w3, admin_key, "MemberRegistry")
    anchors = deploy_contract(w3, admin_key, "AnchorRegistry", registry)
    rules = None if genesis is None else deploy_rule_registry(w3, admin_key, registry, genesis)
    url = rpc_url if isinstance(rpc_url, str) else str(getattr(w3.provider, "endpoint_uri", "") or "")
    return Deployment(int(w3.eth.chain_id), url, registry, anchors, rules)


def deploy_rule_registry(rpc_url: str | Web3, key: str, member_registry: str, genesis: RuleGenesis) -> str:
    """A RuleRegistry bound to `member_registry`, with `genesis` in force from its deployment block."""
    return deploy_contract(
        web3_of(rpc_url, timeout=30),
        key,
        "RuleRegistry",
        Web3.to_checksum_address(member_registry),
        HexBytes(genesis.version),
        *genesis.terms.as_args(),
        genesis.uri,
    )


@dataclass(frozen=True)
class GovernanceTerms:
    """Who approves the next version, as the contract holds it for a version (and its rule book states it)."""

    approvers: tuple[str, ...]
    quorum: int
    required: tuple[str, ...]
    activation_delay_blocks: int

    def normalised(self) -> GovernanceTerms:
        return GovernanceTerms(
            tuple(Web3.to_checksum_address(a) for a in self.approvers),
            self.quorum,
            tuple(Web3.to_checksum_address(a) for a in self.required),
            self.activation_delay_blocks,
        )

    def as_args(self) -> tuple[list[str], int, list[str], int]:
        """The governance as the contract's functions take it (approvers, quorum, required, delay)."""
        t = self.normalised()
        return list(t.approvers), t.quorum, list(t.required), t.activation_delay_blocks


@dataclass(frozen=True)
class RuleGenesis:
    version: str
    terms: GovernanceTerms
    uri: str = ""
