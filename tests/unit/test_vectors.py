"""The language-neutral vectors in testdata/ checked against the project's own code, and against the script.

Every vector is recomputed with chain.canonical, chain.merkle, chain.audit and negotiation.messages; the
EIP-712 hashes also with a small independent encoder written from docs/protocol.md. The last test rebuilds
the files in memory with scripts/make_vectors.py and requires them to be byte-identical to the committed ones.
Pure: no chain, no network.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import SignableMessage
from eth_utils import keccak

from chain.audit import group_documents, verify
from chain.canonical import canonical_json, leaf_hash, leaf_hash_fast, leaf_hash_of_canonical
from chain.merkle import MerkleTree, fold_proof, merkle_root
from negotiation.messages import (
    MESSAGE_TYPES,
    SIGNER_FIELD,
    Domain,
    MessageGuard,
    MessageRefused,
    from_wire,
    recover_signer,
    sign,
    typed_data,
)
from tests.helpers.events import Event

ROOT = Path(__file__).resolve().parents[2]
TESTDATA = ROOT / "testdata"
FILES = ("proof/records.json", "proof/batches.json", "proof/tampered.json", "eip712/messages.json")


def load(relative: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((TESTDATA / relative).read_text(encoding="utf-8"))
    return data


RECORDS = load("proof/records.json")
BATCHES = load("proof/batches.json")
TAMPERED = load("proof/tampered.json")
MESSAGES = load("eip712/messages.json")


def by_name(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"argvalues": items, "ids": [str(i.get("name", i.get("type"))) for i in items]}


# -- files ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("relative", FILES)
def test_every_file_names_its_format_and_describes_itself(relative: str) -> None:
    data = load(relative)
    assert list(data)[:2] == ["format", "description"]
    assert data["format"] == "consortium-vectors/1"
    assert data["description"]


def test_regenerating_gives_exactly_the_committed_files() -> None:
    spec = importlib.util.spec_from_file_location("make_vectors", ROOT / "scripts" / "make_vectors.py")
    assert spec is not None and spec.loader is not None
    script: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    built = script.build_all()
    assert sorted(built) == sorted(FILES)
    # The vectors' folders hold only what the script writes (testdata/ also holds the tests' rule book).
    on_disk = sorted(
        str(p.relative_to(TESTDATA))
        for folder in ("proof", "eip712")
        for p in (TESTDATA / folder).rglob("*")
        if p.is_file()
    )
    assert on_disk == sorted(FILES), "a file under testdata/proof or testdata/eip712 that the script does not write"
    for relative, text in built.items():
        assert (TESTDATA / relative).read_text(encoding="utf-8") == text, f"testdata/{relative} drifted"


# -- records and leaves ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", **by_name(RECORDS["records"]))
def test_record_canonical_bytes_and_leaf(vector: dict[str, Any]) -> None:
    record, body = vector["record"], bytes.fromhex(vector["canonical_hex"])
    assert canonical_json(record) == body == vector["canonical_utf8"].encode("utf-8")
    assert json.loads(body) == record
    leaf = bytes.fromhex(vector["leaf"])
    assert leaf == hashlib.sha256(bytes.fromhex(RECORDS["leaf_prefix"]) + body).digest()
    assert leaf_hash(record) == leaf_hash_fast(record) == leaf_hash_of_canonical(body) == leaf


@pytest.mark.parametrize("vector", **by_name(RECORDS["refused"]))
def test_refused_record_cannot_be_hashed(vector: dict[str, Any]) -> None:
    # NotCanonicalizable for floats; UnicodeEncodeError for a lone surrogate. Both are ValueErrors.
    with pytest.raises(ValueError):
        canonical_json(json.loads(vector["json_text"]))


# -- batches --------------------------------------------------------------------------------------------------------


def test_merkletools_reference_vector() -> None:
    ref = BATCHES["merkletools_reference"]
    assert ref["leaves"] == [hashlib.sha256(c.encode()).hexdigest() for c in "abcde"]
    assert merkle_root([bytes.fromhex(h) for h in ref["leaves"]]).hex() == ref["root"]


@pytest.mark.parametrize("batch", BATCHES["batches"], ids=lambda b: f"batch{b['seq']}")
def test_batch_root_and_every_proof(batch: dict[str, Any]) -> None:
    documents = batch["documents"]
    leaves = [leaf_hash(d["record"]) for d in documents]
    tree = MerkleTree(leaves)
    assert batch["leaf_count"] == len(documents) == tree.leaf_count
    assert merkle_root(leaves).hex() == tree.root.hex() == batch["root"]
    assert batch["levels"][0] == [leaf.hex() for leaf in leaves] and batch["levels"][-1] == [batch["root"]]
    assert [d["record"]["seq"] for d in documents] == list(
        range(batch["first_record_seq"], batch["last_record_seq"] + 1)
    )
    for i, (doc, leaf) in enumerate(zip(documents, leaves, strict=True)):
        assert doc["leaf"] == leaf.hex() and doc["status"] == "anchored" and doc["root"] == batch["root"]
        assert doc["proof"] == tree.proof(i)
        assert fold_proof(leaf, doc["proof"]).hex() == batch["root"]
        anchor = doc["anchor"]
        assert (anchor["seq"], anchor["leaf_index"], anchor["leaf_count"]) == (batch["seq"], i, batch["leaf_count"])
        assert (anchor["chain_id"], anchor["contract"], anchor["tx_hash"]) == (
            BATCHES["chain_id"],
            BATCHES["contract"],
            batch["tx_hash"],
        )


def test_batches_chain_their_roots_and_events_match() -> None:
    previous = "00" * 32
    for k, batch in enumerate(BATCHES["batches"], start=1):
        assert batch["seq"] == k and batch["prev_root"] == previous
        previous = batch["root"]
    assert BATCHES["events"] == [
        {key: b[key] for key in ("seq", "root", "prev_root", "leaf_count", "tx_hash")} for b in BATCHES["batches"]
    ]
    pending = BATCHES["pending"]
    assert [d["status"] for d in pending] == ["pending"] and pending[0]["leaf"] == leaf_hash(pending[0]["record"]).hex()


def events_of(raw: list[dict[str, Any]]) -> list[Event]:
    return [
        Event(e["seq"], bytes.fromhex(e["root"]), bytes.fromhex(e["prev_root"]), e["leaf_count"], e["tx_hash"])
        for e in raw
    ]


def audit(documents: list[dict[str, Any]], events: list[dict[str, Any]], check_paths: bool = True) -> bool:
    claims = group_documents(BATCHES["kind"], BATCHES["member"], documents)
    report = verify(claims, events_of(events), BATCHES["chain_id"], BATCHES["contract"], check_paths=check_paths)
    return report.ok


def test_whole_history_passes_the_auditor() -> None:
    documents = [d for b in BATCHES["batches"] for d in b["documents"]] + BATCHES["pending"]
    claims = group_documents(BATCHES["kind"], BATCHES["member"], documents)
    report = verify(claims, events_of(BATCHES["events"]), BATCHES["chain_id"], BATCHES["contract"], check_paths=True)
    assert report.ok, report.findings
    assert (report.records_verified, report.batches_verified, report.pending) == (19, 5, 1)


# -- tampered -------------------------------------------------------------------------------------------------------


def sides_for(index: int, leaf_count: int) -> list[str]:
    """docs/proof-format.md section 5 written out: the sides of leaf `index`'s siblings, leaf to root."""
    sides = []
    while leaf_count > 1:
        if index % 2 == 1:
            sides.append("left")
        elif index + 1 < leaf_count:
            sides.append("right")
        index, leaf_count = index // 2, (leaf_count + 1) // 2
    return sides


@pytest.mark.parametrize("case", **by_name(TAMPERED["documents"]))
def test_tampered_document_fails(case: dict[str, Any]) -> None:
    doc, anchored_root, expected = case["document"], case["anchored_root"], case["expected"]
    leaf = leaf_hash(doc["record"])
    try:
        folded = fold_proof(leaf, doc["proof"]).hex()
    except ValueError:
        folded = "malformed"
    seen = {
        "leaf_matches": leaf.hex() == doc["leaf"],
        "path_reaches_root": folded == anchored_root,
        "root_matches_anchor": doc["root"] == anchored_root,
        "path_matches_index": [next(iter(step)) for step in doc["proof"]]
        == sides_for(doc["anchor"]["leaf_index"], doc["anchor"]["leaf_count"]),
    }
    assert seen == {k: expected[k] for k in seen} and set(seen) | {"valid"} <= set(expected)
    assert expected["valid"] is False and not all(seen.values())
    if "path_from_claimed_leaf_reaches_root" in expected:
        claimed = fold_proof(bytes.fromhex(doc["leaf"]), doc["proof"]).hex() == anchored_root
        assert claimed is expected["path_from_claimed_leaf_reaches_root"]


@pytest.mark.parametrize("case", **by_name(TAMPERED["second_preimage"]))
def test_second_preimage_is_defeated_by_the_leaf_prefix(case: dict[str, Any]) -> None:
    preimage, expected = bytes.fromhex(case["leaf_preimage_hex"]), case["expected"]
    leaf = leaf_hash_of_canonical(preimage)
    assert leaf.hex() == expected["leaf"]
    assert (fold_proof(leaf, case["proof"]).hex() == case["anchored_root"]) is expected["path_reaches_root"] is False
    unprefixed = hashlib.sha256(preimage).digest()
    assert (fold_proof(unprefixed, case["proof"]).hex() == case["anchored_root"]) is expected[
        "unprefixed_hash_reaches_root"
    ]


def failing_steps(documents: list[dict[str, Any]], events: list[dict[str, Any]]) -> set[str]:
    """docs/proof-format.md section 6 written out independently of chain.audit (steps named as in the vectors)."""
    kind, member = TAMPERED["kind"], TAMPERED["member"].lower()
    batches: dict[int, list[dict[str, Any]]] = {}
    for doc in documents:
        batches.setdefault(doc["anchor"]["seq"], []).append(doc)
    on_chain = {e["seq"]: e for e in events}
    failing: set[str] = set()
    next_record, previous_root = 1, "00" * 32
    for k, seq in enumerate(sorted(batches), start=1):
        docs = batches[seq]
        if seq != k:
            failing.add("sequence")
        leaves = []
        for i, doc in enumerate(docs):
            record, anchor = doc["record"], doc["anchor"]
            if record["seq"] != next_record or record["kind"] != kind or record["node"].lower() != member:
                failing.add("sequence")
            if anchor["leaf_index"] != i:
                failing.add("sequence")
            next_record = record["seq"] + 1
            leaf = leaf_hash(record)
            leaves.append(leaf)
            if leaf.hex() != doc["leaf"]:
                failing.add("leaf")
            sides = [next(iter(step)) for step in doc["proof"]]
            if fold_proof(leaf, doc["proof"]).hex() != doc["root"] or sides != sides_for(i, len(docs)):
                failing.add("path")
        root, event = merkle_root(leaves).hex(), on_chain.get(seq)
        anchor = docs[0]["anchor"]
        if any(d["root"] != root for d in docs) or event is None:
            failing.add("root")
        if event is not None:
            if (event["root"], event["leaf_count"], event["tx_hash"]) != (root, len(docs), anchor["tx_hash"]):
                failing.add("root")
            if anchor["leaf_count"] != event["leaf_count"]:
                failing.add("root")
            if event["prev_root"] != previous_root:
                failing.add("chain")
            previous_root = event["root"]
    if set(on_chain) - set(batches):
        failing.add("nothing_hidden")
    return failing


@pytest.mark.parametrize("case", **by_name(TAMPERED["histories"]))
def test_tampered_history_fails_the_auditor(case: dict[str, Any]) -> None:
    expected = case["expected"]
    assert audit(case["documents"], case["events"]) is expected["valid"]
    assert audit(case["documents"], case["events"], check_paths=False) is expected["valid_without_path_check"]
    assert failing_steps(case["documents"], case["events"]) == set(expected["failing_steps"])


# -- EIP-712 --------------------------------------------------------------------------------------------------------

DOMAIN_JSON = MESSAGES["domain"]
DOMAIN = Domain(
    name=DOMAIN_JSON["name"],
    chain_id=DOMAIN_JSON["chainId"],
    registry=DOMAIN_JSON["verifyingContract"],
    version=DOMAIN_JSON["version"],
)
KEYS = {k["address"]: k["private_key"] for k in MESSAGES["keys"]}


def encode_value(type_: str, value: Any) -> bytes:
    """EIP-712 encodeData for the atomic types the protocol uses, from the EIP, not from eth_account."""
    if type_ == "string":
        return keccak(value.encode("utf-8"))
    if type_ == "bytes32":
        raw = bytes.fromhex(value[2:])
        assert len(raw) == 32
        return raw
    if type_ == "address":
        return bytes(12) + bytes.fromhex(value[2:])
    if type_ == "bool":
        return int(value).to_bytes(32, "big")
    # On the wire (docs/protocol.md): uint64 as a decimal string, uint32 and the domain's chainId as numbers.
    assert type_.startswith("uint") and isinstance(value, str if type_ == "uint64" else int)
    return int(value).to_bytes(32, "big")


def struct_hash(name: str, fields: list[dict[str, str]], values: dict[str, Any]) -> bytes:
    encoded_type = f"{name}(" + ",".join(f"{f['type']} {f['name']}" for f in fields) + ")"
    return keccak(keccak(text=encoded_type) + b"".join(encode_value(f["type"], values[f["name"]]) for f in fields))


DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


def digest_of(domain: dict[str, Any], type_: str, message: dict[str, Any]) -> bytes:
    return keccak(
        b"\x19\x01"
        + struct_hash("EIP712Domain", DOMAIN_FIELDS, domain)
        + struct_hash(type_, MESSAGE_TYPES[type_], message)
    )


def guard(now: int) -> MessageGuard:
    return MessageGuard(DOMAIN, is_member=lambda _address: True, now=lambda: now)


def test_domain_separator() -> None:
    assert (
        MESSAGES["domain_type"] == "EIP712Domain(" + ",".join(f"{f['type']} {f['name']}" for f in DOMAIN_FIELDS) + ")"
    )
    assert DOMAIN.as_dict() == DOMAIN_JSON
    assert "0x" + struct_hash("EIP712Domain", DOMAIN_FIELDS, DOMAIN_JSON).hex() == MESSAGES["domain_separator"]


def test_every_message_type_has_a_vector() -> None:
    assert [m["type"] for m in MESSAGES["messages"]] == list(MESSAGE_TYPES)
    for key in MESSAGES["keys"]:
        assert Account.from_key(key["private_key"]).address == key["address"]


@pytest.mark.parametrize("vector", **by_name(MESSAGES["messages"]))
def test_message_hashes_signature_and_signer(vector: dict[str, Any]) -> None:
    type_, message = vector["type"], vector["message"]
    fields = MESSAGE_TYPES[type_]
    assert vector["encode_type"] == f"{type_}(" + ",".join(f"{f['type']} {f['name']}" for f in fields) + ")"
    assert vector["type_hash"] == "0x" + keccak(text=vector["encode_type"]).hex()
    assert vector["typed_data"] == typed_data(DOMAIN, type_, message)
    assert vector["domain_separator"] == MESSAGES["domain_separator"]
    assert vector["struct_hash"] == "0x" + struct_hash(type_, fields, message).hex()
    assert vector["digest"] == "0x" + digest_of(DOMAIN_JSON, type_, message).hex()
    assert vector["signer_field"] == SIGNER_FIELD[type_] and message[SIGNER_FIELD[type_]] == vector["signer"]
    signed = sign(DOMAIN, type_, from_wire(type_, message), KEYS[vector["signer"]])
    assert signed.signature == vector["signature"] and signed.as_json()["message"] == message
    assert recover_signer(DOMAIN, type_, from_wire(type_, message), vector["signature"]) == vector["signer"]
    envelope = {"type": type_, "message": message, "signature": vector["signature"]}
    admitted = guard(MESSAGES["now"]).admit(envelope, remember=lambda *_: True)
    assert admitted.wire_message() == message


@pytest.mark.parametrize("vector", **by_name(MESSAGES["refused"]))
def test_refused_message_recovers_to_someone_else(vector: dict[str, Any]) -> None:
    type_, message, signature = vector["type"], vector["message"], vector["signature"]
    ints = from_wire(type_, message)
    assert recover_signer(DOMAIN, type_, ints, signature) == vector["recovered"] != vector["claimed_signer"]
    domain_separator = struct_hash("EIP712Domain", DOMAIN_FIELDS, DOMAIN_JSON)
    independent = SignableMessage(b"\x01", domain_separator, struct_hash(type_, MESSAGE_TYPES[type_], message))
    assert Account.recover_message(independent, signature=signature) == vector["recovered"]
    if vector["signed_under"] is not None:  # a genuine signature, only for another domain
        assert (
            recover_signer(
                Domain(
                    name=vector["signed_under"]["name"],
                    chain_id=vector["signed_under"]["chainId"],
                    registry=vector["signed_under"]["verifyingContract"],
                    version=vector["signed_under"]["version"],
                ),
                type_,
                ints,
                signature,
            )
            == vector["claimed_signer"]
        )
    with pytest.raises(MessageRefused) as refused:
        guard(MESSAGES["now"]).admit({"type": type_, "message": message, "signature": signature}, lambda *_: True)
    assert refused.value.reason == vector["expected"]


def _independent_digest(type_: str, message: dict[str, Any]) -> bytes:
    domain_separator = struct_hash("EIP712Domain", DOMAIN_FIELDS, DOMAIN_JSON)
    return keccak(b"\x19\x01" + domain_separator + struct_hash(type_, MESSAGE_TYPES[type_], message))


def _recover(digest: bytes, signature: str) -> str:
    """Plain ECDSA recovery, v as 27/28 or 0/1, any s."""
    raw = bytes.fromhex(signature[2:])
    vrs = (raw[64] % 27 + 27, int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"))
    return str(Account._recover_hash(digest, vrs=vrs))


@pytest.mark.parametrize("vector", **by_name(MESSAGES["non_canonical_signatures"]))
def test_a_non_canonical_encoding_of_a_valid_signature_is_refused(vector: dict[str, Any]) -> None:
    type_, message, signature = vector["type"], vector["message"], vector["signature"]
    # Plain ECDSA finds the signer in it: the refusal is the protocol's encoding rule, not the curve.
    assert _recover(_independent_digest(type_, message), signature) == vector["recovered"]
    assert vector["recovered"] == message[SIGNER_FIELD[type_]]
    with pytest.raises(MessageRefused) as refused:
        guard(MESSAGES["now"]).admit({"type": type_, "message": message, "signature": signature}, lambda *_: True)
    assert refused.value.reason == vector["expected"] == "bad_signature"


def _claimed_values(type_: str, message: dict[str, Any]) -> dict[str, Any]:
    """The values a message claims, written in the right wire form (uint64 as a string, uint32 as a number)."""
    kinds = {f["name"]: f["type"] for f in MESSAGE_TYPES[type_]}
    return {
        k: (str(int(v)) if kinds[k] == "uint64" else int(v)) if kinds[k].startswith("uint") else v
        for k, v in message.items()
    }


@pytest.mark.parametrize("vector", **by_name(MESSAGES["malformed"]))
def test_a_message_in_the_wrong_wire_form_is_refused_as_malformed(vector: dict[str, Any]) -> None:
    type_, message, signature = vector["type"], vector["message"], vector["signature"]
    # The signature is genuine over the values the message claims: only their form or range is wrong.
    claimed = _independent_digest(type_, _claimed_values(type_, message))
    assert _recover(claimed, signature) == message[SIGNER_FIELD[type_]]
    with pytest.raises(MessageRefused) as refused:
        guard(MESSAGES["now"]).admit({"type": type_, "message": message, "signature": signature}, lambda *_: True)
    assert refused.value.reason == vector["expected"] == "malformed"
