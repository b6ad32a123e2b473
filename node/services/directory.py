"""Who the members are, where they are and where their nodes answer: the member registry, read from the chain.

A look-up is a chain call unless the node follows the registry's events (chain_view.py); callers make them
before a database transaction opens, never inside one.
"""

from __future__ import annotations

from chain.registry_client import MemberInfo, MemberRegistryClient
from negotiation.geo import distance_m
from node.errors import NodeNotAMember
from node.services.chain_view import ChainView


class Directory:
    def __init__(self, registry: MemberRegistryClient, me: str, view: ChainView | None = None) -> None:
        """`view`: the registry followed from its events (chain_view.py); without one, every look-up asks."""
        self.registry = registry
        self.me = me
        self.view = view

    def member(self, address: str) -> MemberInfo:
        return self.view.member(address) if self.view is not None else self.registry.member(address)

    def members(self) -> list[MemberInfo]:
        return self.registry.members()

    def is_member(self, address: str) -> bool:
        return self.member(address).active

    def distance_m(self, other: str) -> int:
        """Metres between this node's member and another member."""
        me, them = self.member(self.me), self.member(other)
        return distance_m(me.lat_e6, me.lon_e6, them.lat_e6, them.lon_e6)

    def suppliers(self, addresses: set[str]) -> tuple[str, dict[str, tuple[str, int]]]:
        """This node's name, and each member's name and distance from it in km: one registry look-up each."""
        me = self.member(self.me)
        found = {}
        for address in addresses:
            them = self.member(address)
            found[address] = (them.name, round(distance_m(me.lat_e6, me.lon_e6, them.lat_e6, them.lon_e6) / 1000))
        return me.name, found

    def peers(self) -> list[tuple[MemberInfo, int]]:
        """Every other active member with its distance from this node in metres, nearest first."""
        members = self.members()
        me = next((m for m in members if m.address == self.me), None)
        if me is None or not me.active:
            raise NodeNotAMember("this node is not an active member of the registry")
        others = [m for m in members if m.active and m.address != self.me]
        return sorted(
            ((m, distance_m(me.lat_e6, me.lon_e6, m.lat_e6, m.lon_e6)) for m in others),
            key=lambda p: (p[1], p[0].address),
        )
