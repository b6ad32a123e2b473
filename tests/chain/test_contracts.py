"""The contracts on a real Anvil: membership, anchoring rules, on-chain proof checks, persistence."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3
from web3.contract import Contract

from chain.anvil import DEFAULT_PRIVATE_KEYS, AnvilProcess, LocalChain
from chain.contracts import compile_contracts, kind_to_bytes32
from chain.deploy import contract, deploy_contracts
from chain.merkle import MerkleTree
from chain.registry_client import MemberRegistryClient, Role
from chain.tx import TransactionRejected, send
from tests.helpers import consortium
from tests.helpers.chains import new_chain

ADMIN, MEMBER, OUTSIDER = DEFAULT_PRIVATE_KEYS[0], DEFAULT_PRIVATE_KEYS[1], DEFAULT_PRIVATE_KEYS[2]
LEDGER = kind_to_bytes32("ledger")
ZERO = b"\x00" * 32
Chain = tuple[LocalChain, Web3, Contract, Contract]


@pytest.fixture(scope="module")
def chain(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LocalChain, Web3, Contract, Contract]]:
    anvil = new_chain(request, tmp_path_factory, "contracts")
    anvil.start()
    d = deploy_contracts(anvil.rpc_url, ADMIN)
    w3 = Web3(Web3.HTTPProvider(anvil.rpc_url))
    MemberRegistryClient(anvil.rpc_url, d.registry, ADMIN).add_member(
        Account.from_key(MEMBER).address, "Xiaoshan dealer", Role.PARTNER, "http://127.0.0.1:9", 30_185_000, 120_264_000
    )
    yield anvil, w3, contract(w3, "MemberRegistry", d.registry), contract(w3, "AnchorRegistry", d.anchors)
    anvil.stop()


def call_as(w3: Web3, key: str, fn: object) -> dict[str, object]:
    return dict(send(w3, Account.from_key(key), fn))


def root_of(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def test_compiles_through_the_solc_js_shim() -> None:
    compiled = compile_contracts()
    assert set(compiled) == {"MemberRegistry", "AnchorRegistry", "RuleRegistry"}
    assert all(c.bytecode and c.abi for c in compiled.values())


def test_only_the_admin_adds_and_removes_members(chain: Chain) -> None:
    _, w3, registry, _ = chain
    outsider = Account.from_key(OUTSIDER).address
    with pytest.raises(TransactionRejected, match="only admin"):
        call_as(w3, OUTSIDER, registry.functions.addMember(outsider, "me", 2, "http://x", 0, 0))
    with pytest.raises(TransactionRejected, match="latitude out of range"):
        call_as(w3, ADMIN, registry.functions.addMember(outsider, "me", 2, "http://x", 91_000_000, 0))
    call_as(w3, ADMIN, registry.functions.addMember(outsider, "Temp", 3, "http://x", 0, 0))
    assert registry.functions.isMember(outsider).call()
    with pytest.raises(TransactionRejected, match="only admin"):
        call_as(w3, MEMBER, registry.functions.removeMember(outsider))
    call_as(w3, ADMIN, registry.functions.removeMember(outsider))
    assert not registry.functions.isMember(outsider).call()
    assert outsider in registry.functions.memberAddresses().call()


def test_the_members_command_adds_lists_and_removes_a_member(chain: Chain) -> None:
    anvil, _, registry, _ = chain
    newcomer = Account.create().address
    where = ("--rpc", anvil.rpc_url, "--registry", registry.address)
    added = consortium(
        "members", "add", *where, "--key", ADMIN, "--address", newcomer, "--name", "Jiaxing distributor",
        "--url", "http://127.0.0.1:9", "--lat-e6", "30746000", "--lon-e6", "120755000",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr

    def listed() -> dict[str, dict[str, object]]:
        out = consortium("members", "list", *where)
        assert out.returncode == 0, out.stderr
        return {m["address"]: m for m in map(json.loads, out.stdout.splitlines())}

    assert listed()[newcomer] == {
        "address": newcomer, "name": "Jiaxing distributor", "role": "partner", "node_url": "http://127.0.0.1:9",
        "lat_e6": 30746000, "lon_e6": 120755000, "active": True,
    }  # fmt: skip
    # Only the administrator: another key is refused with a one-line error, and nothing changes.
    refused = consortium("members", "remove", *where, "--key", MEMBER, "--address", newcomer)
    assert refused.returncode == 2 and refused.stderr.startswith("error:") and listed()[newcomer]["active"] is True
    assert consortium("members", "remove", *where, "--key", ADMIN, "--address", newcomer).returncode == 0
    assert listed()[newcomer]["active"] is False


def test_non_member_cannot_anchor(chain: Chain) -> None:
    _, w3, _, anchors = chain
    with pytest.raises(TransactionRejected, match="not a member"):
        call_as(w3, DEFAULT_PRIVATE_KEYS[5], anchors.functions.anchor(LEDGER, 1, root_of("x"), ZERO, 1))


def test_sequence_numbers_strictly_increase_and_chain_previous_roots(
    chain: Chain,
) -> None:
    _, w3, _, anchors = chain
    kind = kind_to_bytes32("sequence-test")
    member = Account.from_key(MEMBER).address
    receipt = call_as(w3, MEMBER, anchors.functions.anchor(kind, 1, root_of("r1"), ZERO, 3))
    with pytest.raises(TransactionRejected, match="bad sequence"):
        call_as(w3, MEMBER, anchors.functions.anchor(kind, 1, root_of("again"), ZERO, 3))
    with pytest.raises(TransactionRejected, match="bad sequence"):
        call_as(w3, MEMBER, anchors.functions.anchor(kind, 3, root_of("r3"), root_of("r1"), 3))
    with pytest.raises(TransactionRejected, match="wrong previous root"):
        call_as(w3, MEMBER, anchors.functions.anchor(kind, 2, root_of("r2"), root_of("forged"), 3))
    call_as(w3, MEMBER, anchors.functions.anchor(kind, 2, root_of("r2"), root_of("r1"), 4))
    assert anchors.functions.lastSeq(member, kind).call() == 2
    # The first root is still there: slots are written once.
    stored = anchors.functions.getAnchor(member, kind, 1).call()
    assert (stored[0], stored[1], stored[2]) == (root_of("r1"), ZERO, 3)
    (event,) = anchors.events.Anchored().process_receipt(receipt)
    assert (event["args"]["seq"], event["args"]["root"], event["args"]["leafCount"]) == (1, root_of("r1"), 3)
    assert len(receipt["logs"][0]["topics"]) == 4  # signature + member, kind, seq


def test_removed_member_can_no_longer_anchor(chain: Chain) -> None:
    _, w3, registry, anchors = chain
    key = DEFAULT_PRIVATE_KEYS[6]
    addr = Account.from_key(key).address
    call_as(w3, ADMIN, registry.functions.addMember(addr, "Leaving", 2, "http://x", 0, 0))
    call_as(w3, key, anchors.functions.anchor(LEDGER, 1, root_of("a"), ZERO, 1))
    call_as(w3, ADMIN, registry.functions.removeMember(addr))
    with pytest.raises(TransactionRejected, match="not a member"):
        call_as(w3, key, anchors.functions.anchor(LEDGER, 2, root_of("b"), root_of("a"), 1))


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13])
def test_on_chain_proof_check_accepts_real_proofs_and_refuses_tampered_ones(chain: Chain, n: int) -> None:
    _, _, _, anchors = chain
    leaves = [hashlib.sha256(f"leaf-{n}-{i}".encode()).digest() for i in range(n)]
    tree = MerkleTree(leaves)
    verify = anchors.functions.verifyInclusion
    for i, leaf in enumerate(leaves):
        proof = tree.proof(i)
        siblings = [bytes.fromhex(next(iter(s.values()))) for s in proof]
        left = ["left" in s for s in proof]
        assert verify(leaf, siblings, left, tree.root).call()
        assert not verify(hashlib.sha256(b"other").digest(), siblings, left, tree.root).call()
        if siblings:
            bent = [bytes([siblings[0][0] ^ 1]) + siblings[0][1:], *siblings[1:]]
            assert not verify(leaf, bent, left, tree.root).call()
            assert not verify(leaf, siblings, [not left[0], *left[1:]], tree.root).call()


def test_verify_anchored_checks_against_the_stored_root(chain: Chain) -> None:
    _, w3, _, anchors = chain
    kind = kind_to_bytes32("proof-test")
    member = Account.from_key(MEMBER).address
    leaves = [hashlib.sha256(bytes([i])).digest() for i in range(5)]
    tree = MerkleTree(leaves)
    call_as(w3, MEMBER, anchors.functions.anchor(kind, 1, tree.root, ZERO, 5))
    proof = tree.proof(3)
    siblings = [bytes.fromhex(next(iter(s.values()))) for s in proof]
    left = ["left" in s for s in proof]
    assert anchors.functions.verifyAnchored(member, kind, 1, leaves[3], siblings, left).call()
    assert not anchors.functions.verifyAnchored(member, kind, 1, leaves[2], siblings, left).call()
    assert not anchors.functions.verifyAnchored(member, kind, 2, leaves[3], siblings, left).call()


def test_anchors_survive_an_anvil_restart_on_its_state_file(
    chain: Chain,
) -> None:
    anvil, w3, _, anchors = chain
    member = Account.from_key(MEMBER).address
    before = anchors.functions.lastSeq(member, LEDGER).call()
    call_as(
        w3,
        MEMBER,
        anchors.functions.anchor(
            LEDGER,
            before + 1,
            root_of(f"persist-{before}"),
            anchors.functions.getAnchor(member, LEDGER, before).call()[0] if before else ZERO,
            1,
        ),
    )
    anvil.stop()
    assert isinstance(anvil, AnvilProcess) and Path(str(anvil.state_path)).exists()
    anvil.start()
    assert anchors.functions.lastSeq(member, LEDGER).call() == before + 1
    assert anchors.functions.getAnchor(member, LEDGER, before + 1).call()[0] == root_of(f"persist-{before}")
