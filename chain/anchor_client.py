"""The node's and the auditor's view of the AnchorRegistry contract, over web3 with a local key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account import Account
from web3 import Web3

from chain.contracts import bytes32_to_kind, kind_to_bytes32
from chain.deploy import contract
from chain.errors import ChainUnavailable, TransactionRejected
from chain.tx import CONNECTION_ERRORS, send, web3_of

__all__ = ["AnchorReader", "AnchorRejected", "AnchorWriter", "ChainUnavailable", "OnChainAnchor"]

ZERO_ROOT = b"\x00" * 32


AnchorRejected = TransactionRejected  # the contract reverted (not a member, bad sequence, wrong previous root)


@dataclass(frozen=True)
class OnChainAnchor:
    member: str
    kind: str
    seq: int
    root: bytes
    prev_root: bytes
    leaf_count: int
    timestamp: int
    block_number: int
    tx_hash: str = ""


@dataclass(frozen=True)
class AnchorReceipt:
    tx_hash: str
    block_number: int


def _hex(value: bytes | str) -> str:
    raw = bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else bytes(value)
    return "0x" + raw.hex()


def _address_topic(address: str) -> str:
    return "0x" + bytes(12).hex() + Web3.to_checksum_address(address)[2:].lower()


class AnchorReader:
    """Read-only access; what an auditor uses. Trusts only the RPC endpoint and the contract address."""

    def __init__(self, rpc_url: str | Web3, anchor_address: str, timeout: float = 10.0) -> None:
        """`rpc_url` is a URL to connect to, or the node's Web3 to share (then `timeout` is its own)."""
        self.w3 = web3_of(rpc_url, timeout)
        self.address = Web3.to_checksum_address(anchor_address)
        self.contract = contract(self.w3, "AnchorRegistry", self.address)
        self._event = self.contract.events.Anchored()

    def _call(self, fn: Any) -> Any:
        try:
            return fn.call()
        except CONNECTION_ERRORS as exc:
            raise ChainUnavailable(str(exc)) from exc

    @property
    def chain_id(self) -> int:
        try:
            return int(self.w3.eth.chain_id)
        except CONNECTION_ERRORS as exc:
            raise ChainUnavailable(str(exc)) from exc

    def registry_address(self) -> str:
        return str(self._call(self.contract.functions.registry()))

    def last_seq(self, member: str, kind: str) -> int:
        fn = self.contract.functions.lastSeq(Web3.to_checksum_address(member), kind_to_bytes32(kind))
        return int(self._call(fn))

    def get_anchor(self, member: str, kind: str, seq: int) -> OnChainAnchor | None:
        fn = self.contract.functions.getAnchor(Web3.to_checksum_address(member), kind_to_bytes32(kind), seq)
        root, prev_root, leaf_count, timestamp, block_number = self._call(fn)
        if bytes(root) == ZERO_ROOT:
            return None
        return OnChainAnchor(
            Web3.to_checksum_address(member),
            kind,
            seq,
            bytes(root),
            bytes(prev_root),
            int(leaf_count),
            int(timestamp),
            int(block_number),
        )

    def _logs(self, *topics: str) -> list[OnChainAnchor]:
        try:
            logs = self.w3.eth.get_logs(
                {"address": self.address, "fromBlock": 0, "toBlock": "latest", "topics": [self._event.topic, *topics]}
            )
        except CONNECTION_ERRORS as exc:
            raise ChainUnavailable(str(exc)) from exc
        out = []
        for log in logs:
            a = self._event.process_log(log)["args"]
            out.append(
                OnChainAnchor(
                    Web3.to_checksum_address(a["member"]),
                    bytes32_to_kind(bytes(a["kind"])),
                    int(a["seq"]),
                    bytes(a["root"]),
                    bytes(a["prevRoot"]),
                    int(a["leafCount"]),
                    int(a["timestamp"]),
                    int(log["blockNumber"]),
                    _hex(log["transactionHash"]),
                )
            )
        return out

    def anchored_events(self, member: str, kind: str) -> list[OnChainAnchor]:
        """Every Anchored event of (member, kind), in chain order: one RPC call for a whole audit."""
        return self._logs(_address_topic(member), "0x" + kind_to_bytes32(kind).hex())

    def find_anchor_receipt(self, member: str, kind: str, seq: int) -> AnchorReceipt | None:
        """Where (member, kind, seq) was anchored, from the contract's event log."""
        found = self._logs(
            _address_topic(member), "0x" + kind_to_bytes32(kind).hex(), "0x" + seq.to_bytes(32, "big").hex()
        )
        return AnchorReceipt(found[0].tx_hash, found[0].block_number) if found else None


class AnchorWriter(AnchorReader):
    """A member's node anchoring its own batches, signing locally."""

    def __init__(self, rpc_url: str | Web3, anchor_address: str, private_key: str, timeout: float = 10.0) -> None:
        super().__init__(rpc_url, anchor_address, timeout)
        self.account = Account.from_key(private_key)

    @property
    def member(self) -> str:
        return str(self.account.address)

    def anchor(self, kind: str, seq: int, root: bytes, prev_root: bytes, leaf_count: int) -> AnchorReceipt:
        fn = self.contract.functions.anchor(kind_to_bytes32(kind), seq, root, prev_root, leaf_count)
        receipt = send(self.w3, self.account, fn)
        return AnchorReceipt(_hex(receipt["transactionHash"]), int(receipt["blockNumber"]))
