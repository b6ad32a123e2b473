"""Pure logic: canonical JSON, leaf hashing and Merkle trees in merkletools' shape."""

import hashlib

import pytest

from chain.canonical import NotCanonicalizable, canonical_json, leaf_hash
from chain.merkle import EmptyTree, MerkleTree, fold_proof, merkle_root, path_sides, sides_of

# merkletools' upstream vector: leaves sha256("a") .. sha256("e"), root of the 5-leaf tree.
UPSTREAM_LEAVES = [hashlib.sha256(c.encode()).digest() for c in "abcde"]
UPSTREAM_ROOT = "d71f8983ad4ee170f8129f1ebcdd7440be7798d8e1c80420bf11f1eced610dba"


def test_canonical_json_sorts_keys_without_whitespace_and_keeps_unicode() -> None:
    assert canonical_json({"b": 1, "a": [True, None, "杭州"]}) == '{"a":[true,null,"杭州"],"b":1}'.encode()


def test_canonical_json_refuses_floats_anywhere() -> None:
    with pytest.raises(NotCanonicalizable, match=r"\$\.lines\[0\]\.quantity"):
        canonical_json({"lines": [{"quantity": 1.5}]})


def test_leaf_is_sha256_of_zero_prefix_and_canonical_json() -> None:
    record = {"seq": 1, "kind": "ledger"}
    expected = hashlib.sha256(b"\x00" + b'{"kind":"ledger","seq":1}').digest()
    assert leaf_hash(record) == expected
    assert leaf_hash(record) != hashlib.sha256(b'{"kind":"ledger","seq":1}').digest()


def test_upstream_vector_root_and_odd_leaf_carried_up() -> None:
    tree = MerkleTree(UPSTREAM_LEAVES)
    assert tree.root.hex() == UPSTREAM_ROOT
    ab = hashlib.sha256(UPSTREAM_LEAVES[0] + UPSTREAM_LEAVES[1]).digest()
    cd = hashlib.sha256(UPSTREAM_LEAVES[2] + UPSTREAM_LEAVES[3]).digest()
    abcd = hashlib.sha256(ab + cd).digest()
    assert tree.root == hashlib.sha256(abcd + UPSTREAM_LEAVES[4]).digest()
    # The odd leaf "e" has a one-step path: its sibling is the whole left subtree.
    assert tree.proof(4) == [{"left": abcd.hex()}]


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 100])
def test_every_proof_folds_to_the_root_and_fast_root_agrees(n: int) -> None:
    leaves = [hashlib.sha256(str(i).encode()).digest() for i in range(n)]
    tree = MerkleTree(leaves)
    assert merkle_root(leaves) == tree.root
    for i, leaf in enumerate(leaves):
        assert fold_proof(leaf, tree.proof(i)) == tree.root


def test_tampered_proof_does_not_fold_to_the_root() -> None:
    tree = MerkleTree(UPSTREAM_LEAVES)
    proof = tree.proof(1)
    flipped = [{"right" if "left" in s else "left": next(iter(s.values()))} for s in proof]
    assert fold_proof(UPSTREAM_LEAVES[1], flipped) != tree.root
    assert fold_proof(UPSTREAM_LEAVES[2], proof) != tree.root


def test_empty_tree_and_bad_index_are_refused() -> None:
    with pytest.raises(EmptyTree):
        MerkleTree([])
    with pytest.raises(IndexError):
        MerkleTree(UPSTREAM_LEAVES).proof(5)
    with pytest.raises(ValueError):
        fold_proof(UPSTREAM_LEAVES[0], [{"up": "00"}])  # type: ignore[list-item]


def test_fast_leaf_equals_reference_leaf_on_random_records() -> None:
    import random

    from chain.canonical import leaf_hash_fast

    rng = random.Random(2026)
    alphabet = 'aZ09"\\\n\t\x00\x1f\x7f/é杭州\u2028\ue000\uffff😀𝄞 '

    def text() -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))

    def value(depth: int = 0) -> object:
        pick = rng.randint(0, 5 if depth < 3 else 2)
        if pick == 0:
            return rng.choice([rng.randint(-(2**63), 2**64 - 1), 2**70, -5, 0])
        if pick == 1:
            return text()
        if pick == 2:
            return rng.choice([True, False, None])
        if pick == 3:
            return [value(depth + 1) for _ in range(rng.randint(0, 4))]
        return {text(): value(depth + 1) for _ in range(rng.randint(0, 4))}

    for _ in range(5000):
        record = {text(): value() for _ in range(4)}
        assert leaf_hash_fast(record) == leaf_hash(record)


def test_a_proofs_sides_are_fixed_by_its_leaf_index_and_the_leaf_count() -> None:
    for n in range(1, 40):
        tree = MerkleTree([hashlib.sha256(str(i).encode()).digest() for i in range(n)])
        paths = [sides_of(tree.proof(i)) for i in range(n)]
        assert paths == [path_sides(i, n) for i in range(n)]
        assert len({tuple(p) for p in paths}) == n  # no two leaves share a path shape: the index is bound
    with pytest.raises(IndexError):
        path_sides(5, 5)
