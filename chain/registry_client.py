"""The MemberRegistry from Python: the administrator adds members, nodes look peers up."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from eth_account import Account
from web3 import Web3

from chain.deploy import contract
from chain.tx import send, web3_of


class Role(IntEnum):
    NONE = 0
    HEADQUARTERS = 1
    PARTNER = 2
    AUDITOR = 3


@dataclass(frozen=True)
class MemberInfo:
    address: str
    name: str
    role: Role
    node_url: str
    lat_e6: int
    lon_e6: int
    active: bool


class MemberRegistryClient:
    def __init__(self, rpc_url: str | Web3, registry_address: str, private_key: str | None = None) -> None:
        """`rpc_url` is a URL to connect to, or the node's Web3 to share."""
        self.w3 = web3_of(rpc_url)
        self.contract = contract(self.w3, "MemberRegistry", registry_address)
        self.account = Account.from_key(private_key) if private_key else None

    def _send(self, fn: object) -> None:
        if self.account is None:
            raise RuntimeError("this registry client has no key to send transactions")
        send(self.w3, self.account, fn)

    def add_member(self, address: str, name: str, role: Role, node_url: str, lat_e6: int, lon_e6: int) -> None:
        self._send(
            self.contract.functions.addMember(
                Web3.to_checksum_address(address), name, int(role), node_url, lat_e6, lon_e6
            )
        )

    def remove_member(self, address: str) -> None:
        self._send(self.contract.functions.removeMember(Web3.to_checksum_address(address)))

    def update_node_url(self, node_url: str) -> None:
        """Sent by the member itself (the client's key is the member's)."""
        self._send(self.contract.functions.updateNodeUrl(node_url))

    def member(self, address: str) -> MemberInfo:
        name, role, url, lat, lon, active, _joined = self.contract.functions.getMember(
            Web3.to_checksum_address(address)
        ).call()
        return MemberInfo(Web3.to_checksum_address(address), name, Role(role), url, lat, lon, active)

    def members(self) -> list[MemberInfo]:
        return [self.member(a) for a in self.contract.functions.memberAddresses().call()]
