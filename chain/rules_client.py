"""The RuleRegistry from Python: propose and approve rule book versions, ask which one is in force, and
read the whole history (proposals, approvals, activations) from the chain."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_account import Account
from hexbytes import HexBytes
from web3 import Web3

from chain.deploy import contract, deploy_contract
from chain.tx import connect, send

NO_VERSION = "0x" + "00" * 32


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


@dataclass(frozen=True)
class OnChainVersion:
    version: str
    parent: str
    proposer: str
    proposed_at_block: int
    activates_at_block: int | None  # None while its quorum is not reached
    uri: str
    approvals: tuple[str, ...]
    governance: GovernanceTerms


def _hex32(value: bytes | str) -> str:
    return "0x" + HexBytes(value).hex().removeprefix("0x").rjust(64, "0")


def deploy_rule_registry(
    rpc_url: str, key: str, member_registry: str, genesis: str, terms: GovernanceTerms, uri: str
) -> str:
    """The consortium's rule registry, with `genesis` in force from the deployment block."""
    t = terms.normalised()
    w3 = connect(rpc_url, timeout=30)
    return deploy_contract(
        w3,
        key,
        "RuleRegistry",
        Web3.to_checksum_address(member_registry),
        HexBytes(genesis),
        list(t.approvers),
        t.quorum,
        list(t.required),
        t.activation_delay_blocks,
        uri,
    )


class RuleRegistryClient:
    def __init__(self, rpc_url: str, address: str, private_key: str | None = None) -> None:
        self.w3 = connect(rpc_url)
        self.address = Web3.to_checksum_address(address)
        self.contract = contract(self.w3, "RuleRegistry", address)
        self.account = Account.from_key(private_key) if private_key else None

    def _send(self, fn: object) -> int:
        if self.account is None:
            raise RuntimeError("this rule registry client has no key to send transactions")
        receipt = send(self.w3, self.account, fn)
        return int(receipt["blockNumber"])

    def propose(self, version: str, parent: str, terms: GovernanceTerms, uri: str) -> int:
        t = terms.normalised()
        return self._send(
            self.contract.functions.propose(
                HexBytes(version),
                HexBytes(parent),
                list(t.approvers),
                t.quorum,
                list(t.required),
                t.activation_delay_blocks,
                uri,
            )
        )

    def approve(self, version: str) -> int:
        return self._send(self.contract.functions.approve(HexBytes(version)))

    def latest(self) -> str:
        return _hex32(self.contract.functions.latest().call())

    def active(self, block: int | None = None) -> tuple[str, int]:
        """The version in force at `block` (default: the chain's head), and the block it was read at."""
        at = self.w3.eth.block_number if block is None else block
        return _hex32(self.contract.functions.activeAt(at).call()), at

    def version(self, version: str) -> OnChainVersion:
        parent, proposer, proposed, activates, uri, approvals, gov = self.contract.functions.getVersion(
            HexBytes(version)
        ).call()
        approvers, quorum, required, delay = gov
        return OnChainVersion(
            _hex32(version),
            _hex32(parent),
            proposer,
            proposed,
            activates or None,
            uri,
            tuple(approvals),
            GovernanceTerms(tuple(approvers), quorum, tuple(required), delay),
        )

    def versions(self) -> list[OnChainVersion]:
        """Every version ever proposed, oldest first."""
        return [self.version(_hex32(v)) for v in self.contract.functions.proposedVersions().call()]

    def activated(self) -> Sequence[str]:
        return [_hex32(v) for v in self.contract.functions.activatedVersions().call()]
