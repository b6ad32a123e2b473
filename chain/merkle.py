"""Merkle trees over record leaves, in merkletools' shape (sha256, odd node carried up, no inner prefix).

Trees are built with blockcerts-merkletools' MerkleTools so that our proofs are exactly the
`get_proof` output auditors already know. Leaves are fed as bytes: going through `add_leaf(hex)`
would spend most of the build time parsing hex.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Literal

from blockcerts_merkletools import MerkleTools

from chain.errors import EmptyTree

ProofStep = dict[Literal["left", "right"], str]


class MerkleTree:
    """An immutable tree over 32-byte leaves."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        if not leaves:
            raise EmptyTree("a Merkle tree needs at least one leaf")
        self._tools = MerkleTools(hash_type="sha256")
        self._tools.leaves = list(leaves)
        self._tools.make_tree()

    @property
    def root(self) -> bytes:
        return bytes(self._tools.levels[0][0])

    @property
    def leaf_count(self) -> int:
        return int(self._tools.get_leaf_count())

    def proof(self, index: int) -> list[ProofStep]:
        """Siblings from the leaf up to the root, merkletools' format: [{"left"|"right": hex}, ...]."""
        if not 0 <= index < self.leaf_count:
            raise IndexError(f"leaf {index} is outside a tree of {self.leaf_count}")
        proof: list[ProofStep] | None = self._tools.get_proof(index)  # merkletools is untyped
        assert proof is not None  # the tree is built and the index checked above
        return proof


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """The root of `leaves`, same result as MerkleTree(leaves).root, without keeping the levels.

    The auditor recomputes every batch's root this way, which is cheaper than folding one path per record.
    """
    if not leaves:
        raise EmptyTree("a Merkle tree needs at least one leaf")
    sha = hashlib.sha256
    level = list(leaves)
    while len(level) > 1:
        paired = len(level) - (len(level) & 1)
        nxt = [sha(level[i] + level[i + 1]).digest() for i in range(0, paired, 2)]
        if len(level) & 1:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def fold_proof(leaf: bytes, proof: Sequence[ProofStep]) -> bytes:
    """The root that `proof` leads to from `leaf`; raises ValueError on a malformed step."""
    node = leaf
    for step in proof:
        if len(step) != 1:
            raise ValueError(f"a proof step names exactly one side: {step!r}")
        if "left" in step:
            node = hashlib.sha256(bytes.fromhex(step["left"]) + node).digest()
        elif "right" in step:
            node = hashlib.sha256(node + bytes.fromhex(step["right"])).digest()
        else:
            raise ValueError(f"a proof step is left or right: {step!r}")
    return node


def path_sides(index: int, leaf_count: int) -> list[Literal["left", "right"]]:
    """The sides, leaf to root, of the siblings in the proof of leaf `index` in a tree of `leaf_count` leaves.

    A proof records sides, not the index; comparing its sides with these binds a document's `leaf_index` to
    its path (docs/proof-format.md, section 5). A level's last node without a partner is carried up and
    adds no step.
    """
    if not 0 <= index < leaf_count:
        raise IndexError(f"leaf {index} is outside a tree of {leaf_count}")
    sides: list[Literal["left", "right"]] = []
    width = leaf_count
    while width > 1:
        if index & 1:
            sides.append("left")
        elif index + 1 < width:
            sides.append("right")
        index, width = index // 2, (width + 1) // 2
    return sides


def sides_of(proof: Sequence[ProofStep]) -> list[str]:
    """The side each step of `proof` names (a malformed step gives '?')."""
    return [next(iter(step)) if len(step) == 1 else "?" for step in proof]
