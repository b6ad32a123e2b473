"""The RuleRegistry from Python: propose and approve rule book versions, ask which one is in force, and
read the whole history (proposals, approvals, activations) from the chain."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from hexbytes import HexBytes
from web3 import Web3

from chain.deploy import GovernanceTerms, contract
from chain.tx import send, web3_of

NO_VERSION = "0x" + "00" * 32


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


class RuleRegistryClient:
    def __init__(self, rpc_url: str | Web3, address: str, private_key: str | None = None) -> None:
        """`rpc_url` is a URL to connect to, or the node's Web3 to share."""
        self.w3 = web3_of(rpc_url)
        self.address = Web3.to_checksum_address(address)
        self.contract = contract(self.w3, "RuleRegistry", address)
        self.account = Account.from_key(private_key) if private_key else None

    def _send(self, fn: object) -> int:
        if self.account is None:
            raise RuntimeError("this rule registry client has no key to send transactions")
        receipt = send(self.w3, self.account, fn)
        return int(receipt["blockNumber"])

    def propose(self, version: str, parent: str, terms: GovernanceTerms, uri: str) -> int:
        return self._send(self.contract.functions.propose(HexBytes(version), HexBytes(parent), *terms.as_args(), uri))

    def approve(self, version: str) -> int:
        return self._send(self.contract.functions.approve(HexBytes(version)))

    def latest(self) -> str:
        return _hex32(self.contract.functions.latest().call())

    def active(self, block: int | None = None) -> tuple[str, int]:
        """The version in force at `block` (default: the chain's head, in one call), and that block."""
        if block is None:
            version, at = self.contract.functions.current().call()
            return _hex32(version), int(at)
        return _hex32(self.contract.functions.activeAt(block).call()), block

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


def rule_events(client: RuleRegistryClient, from_block: int, to_block: int) -> list[dict[str, Any]]:
    """Proposed, Approved and Scheduled events between two blocks, in chain order, as plain data."""
    out = []
    for name in ("Proposed", "Approved", "Scheduled"):
        event = getattr(client.contract.events, name)
        for log in event.get_logs(from_block=from_block, to_block=to_block):
            args = dict(log["args"])
            plain = {k: (_hex32(v) if isinstance(v, bytes) else v) for k, v in args.items()}
            out.append({"event": name, "block": log["blockNumber"], "log_index": log["logIndex"], **plain})
    return sorted(out, key=lambda e: (e["block"], e["log_index"]))
