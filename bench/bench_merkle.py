"""Merkle tree build and proof verification rates for 10k, 100k and 1M leaves."""

from __future__ import annotations

import hashlib
import random

from bench.common import best_of, machine, timed
from chain.merkle import MerkleTree, fold_proof, merkle_root


def run(sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000)) -> list[dict[str, object]]:
    rows = []
    for n in sizes:
        leaves = [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(n)]
        tree, build = best_of(3, lambda leaves=leaves: MerkleTree(leaves))  # type: ignore[misc]
        _, root_only = best_of(3, lambda leaves=leaves: merkle_root(leaves))  # type: ignore[misc]
        sample = random.Random(7).sample(range(n), min(n, 20_000))
        proofs, prove = timed(lambda tree=tree, sample=sample: [tree.proof(i) for i in sample])  # type: ignore[misc]
        pairs = [(leaves[i], p) for i, p in zip(sample, proofs, strict=True)]
        ok, check = timed(lambda pairs=pairs, root=tree.root: all(fold_proof(lf, p) == root for lf, p in pairs))  # type: ignore[misc]
        assert ok
        rows.append(
            {
                "leaves": n,
                "build_s": round(build, 3),
                "root_only_s": round(root_only, 3),
                "proofs_per_s": round(len(sample) / prove),
                "verifications_per_s": round(len(sample) / check),
            }
        )
    return rows


if __name__ == "__main__":
    print(machine())
    for row in run():
        print(row)
