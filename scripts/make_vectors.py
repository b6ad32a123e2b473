"""Write the language-neutral test vectors under testdata/ (docs/proof-format.md and docs/protocol.md, "Test vectors").

    .venv/bin/python scripts/make_vectors.py           # (re)write testdata/
    .venv/bin/python scripts/make_vectors.py --check   # exit 1 if testdata/ differs from what this script builds

Everything is deterministic: fixed records, ids, nonces, times and deadlines, and only publicly known keys
(Anvil's first two dev keys and keccak256("cow")); ECDSA signatures are RFC 6979, so re-running gives
byte-identical files. The values are computed with the project's own code (chain.canonical, chain.merkle,
negotiation.messages); tests/unit/test_vectors.py checks them again and checks that this script still
produces exactly the committed files. Contract addresses and transaction hashes are placeholders.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import sys
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak

from chain.audit import PROOF_FORMAT
from chain.canonical import canonical_json, leaf_hash
from chain.merkle import MerkleTree, fold_proof, merkle_root, path_sides, sides_of
from chain.records import AnyRecord, RecordKind, RecordType, record_body
from negotiation.messages import MESSAGE_TYPES, SIGNER_FIELD, Domain, from_wire, recover_signer, sign, typed_data

FORMAT = "consortium-vectors/1"
TESTDATA = Path(__file__).resolve().parent.parent / "testdata"

# Publicly known keys only: never use these for anything but tests.
ANVIL_KEY_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ANVIL_KEY_1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
COW_KEY = "0x" + keccak(text="cow").hex()
NODE = str(Account.from_key(ANVIL_KEY_0).address)  # the node whose ledger the vectors hold; the requester
SUPPLIER = str(Account.from_key(COW_KEY).address)
ARBITRATOR = str(Account.from_key(ANVIL_KEY_1).address)
KEYS = {NODE: ANVIL_KEY_0, SUPPLIER: COW_KEY, ARBITRATOR: ANVIL_KEY_1}

CHAIN_ID = 31337
REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"  # placeholder MemberRegistry (EIP-712 verifyingContract)
ANCHOR_CONTRACT = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"  # placeholder AnchorRegistry
CONSORTIUM_NAME = "consortium-inventory"
DOMAIN = Domain(name=CONSORTIUM_NAME, chain_id=CHAIN_ID, registry=REGISTRY)
NOW = 1_767_225_600  # 2026-01-01T00:00:00Z: "now" when the vectors' messages are admitted
DEADLINE = NOW + 3600
KIND = "ledger"
BATCH_SIZES = (1, 2, 3, 5, 8)
ZERO_ROOT = "00" * 32
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

Json = dict[str, Any]


def fixed_id(label: str) -> str:
    """A bytes32 id as the protocol writes it (0x + 64 lowercase hex), derived from a label."""
    return "0x" + keccak(text=f"{FORMAT}/{label}").hex()


RULE_VERSION = "0x" + hashlib.sha256(b"consortium-vectors rule book").hexdigest()
INVITATION_ID = fixed_id("invitation")
OFFER_ID = fixed_id("offer")
OTHER_OFFER_ID = fixed_id("offer-2")
ACCEPTANCE_ID = fixed_id("acceptance")
SHIPMENT_ID = fixed_id("shipment")
DISPUTE_ID = fixed_id("dispute")
STATEMENT_ID = fixed_id("statement")


# -- EIP-712 ------------------------------------------------------------------------------------------------


def encode_type(type_: str) -> str:
    return f"{type_}(" + ",".join(f"{f['type']} {f['name']}" for f in MESSAGE_TYPES[type_]) + ")"


def message_inputs() -> list[tuple[str, Json]]:
    """One message per EIP-712 type, with edge values: the uint32 maximum, the largest amount (2^53 - 1) and
    nonce (2^63 - 1), 2^53+1, unicode, 256-char strings. Integers as ints here; the files hold the wire form."""
    return [
        (
            "Invitation",
            {
                "id": INVITATION_ID,
                "requester": NODE,
                "sku": "FORMULA-900G",
                "quantity": 200,
                "neededBy": NOW + 2 * 86_400,
                "minShelfLifeDays": 90,
                "radiusKm": 2**32 - 1,
                "scenario": "routine_replenishment",
                "customerTier": "standard",
                "urgent": True,
                "ruleVersion": RULE_VERSION,
                "nonce": 2**53 + 1,
                "deadline": DEADLINE,
            },
        ),
        (
            "Offer",
            {
                "id": OFFER_ID,
                "invitation": INVITATION_ID,
                "supplier": SUPPLIER,
                "sku": "FORMULA-900G",
                "lot": "L2025-11-A",
                "quantity": 120,
                "shelfLifeDays": 3650,
                "minOrderQuantity": 10,
                "unitPrice": 2**53 - 1,
                "ruleVersion": RULE_VERSION,
                "nonce": 2**62,
                "deadline": DEADLINE,
            },
        ),
        (
            "NoOffer",
            {
                "id": "0x" + "6e" * 32,
                "invitation": INVITATION_ID,
                "supplier": SUPPLIER,
                "reason": "nothing to spare above the safety level",
                "ruleVersion": RULE_VERSION,
                "nonce": 7,
                "deadline": DEADLINE,
            },
        ),
        (
            "Acceptance",
            {
                "id": ACCEPTANCE_ID,
                "offer": OFFER_ID,
                "requester": NODE,
                "quantity": 120,
                "freightCompensation": 1250,
                "planHash": "0x" + hashlib.sha256(b"consortium-vectors plan").hexdigest(),
                "consignment": True,
                "nonce": 1,
                "deadline": DEADLINE,
            },
        ),
        (
            "Shipment",
            {
                "id": SHIPMENT_ID,
                "acceptance": ACCEPTANCE_ID,
                "supplier": SUPPLIER,
                "lot": "L2025-11-A",
                "quantity": 120,
                "nonce": 0,
                "deadline": DEADLINE,
            },
        ),
        (
            "Receipt",
            {
                "id": fixed_id("receipt"),
                "shipment": SHIPMENT_ID,
                "requester": NODE,
                "quantityReceived": 118,
                "nonce": 2**63 - 1,
                "deadline": DEADLINE,
            },
        ),
        (
            "Cancellation",
            {
                "id": fixed_id("cancellation"),
                "subject": OTHER_OFFER_ID,
                "sender": NODE,
                "reason": 'not in the plan — 不在计划内 🚚 "déclinée"\n',
                "nonce": 42,
                "deadline": DEADLINE,
            },
        ),
        (
            "Dispute",
            {
                "id": DISPUTE_ID,
                "subject": ACCEPTANCE_ID,
                "opener": NODE,
                "respondent": SUPPLIER,
                # 256 code points (the limit), 456 UTF-16 code units, 968 UTF-8 bytes.
                "reason": "短" * 56 + "🍼" * 200,
                "claimAmount": 2**53 - 1,
                "ruleVersion": RULE_VERSION,
                "nonce": 7,
                "deadline": DEADLINE,
            },
        ),
        (
            "ConsignmentSale",
            {
                "id": fixed_id("consignment-sale"),
                "holder": NODE,
                "owner": SUPPLIER,
                "sku": "FORMULA-900G",
                "lot": "L2025-11-A",
                "quantity": 25,
                "unitPrice": 5200,
                "nonce": 11,
                "deadline": DEADLINE,
            },
        ),
        (
            "JointPurchase",
            {
                "id": fixed_id("joint-purchase-message"),
                "purchase": fixed_id("joint-purchase"),
                "buyer": SUPPLIER,
                "participant": NODE,
                "sku": "FORMULA-900G",
                "lot": "L2026-01-J",
                "reference": "PO-2026-0117",
                "units": 300,
                "totalUnits": 1000,
                "participants": 3,
                "totalCost": 4_800_000,
                "share": 1_440_000,
                "ruleVersion": RULE_VERSION,
                "nonce": 12,
                "deadline": DEADLINE,
            },
        ),
        (
            "JointPurchaseAcceptance",
            {
                "id": fixed_id("joint-purchase-acceptance"),
                "purchase": fixed_id("joint-purchase"),
                "participant": NODE,
                "share": 1_440_000,
                "nonce": 13,
                "deadline": DEADLINE,
            },
        ),
        (
            "LoanRequest",
            {
                "id": fixed_id("loan"),
                "borrower": NODE,
                "lender": SUPPLIER,
                "sku": "PUMP-SEAL-K2",
                "quantity": 2,
                "maxFeePerUnitDay": 150,
                "maxUnitSalePrice": 8900,
                "returnBy": 1_798_761_600,
                "nonce": 14,
                "deadline": DEADLINE,
            },
        ),
        (
            "Loan",
            {
                "id": fixed_id("loan-message"),
                "loan": fixed_id("loan"),
                "lender": SUPPLIER,
                "borrower": NODE,
                "sku": "PUMP-SEAL-K2",
                "lot": "S-0042",
                "quantity": 2,
                "feePerUnitDay": 120,
                "unitSalePrice": 8500,
                "lentAt": 1_798_156_800,
                "dueAt": 1_798_761_600,
                "ruleVersion": RULE_VERSION,
                "nonce": 15,
                "deadline": DEADLINE,
            },
        ),
        (
            "LoanReturn",
            {
                "id": fixed_id("loan-return"),
                "loan": fixed_id("loan"),
                "borrower": NODE,
                "quantity": 1,
                "nonce": 16,
                "deadline": DEADLINE,
            },
        ),
        (
            "QuoteRequest",
            {
                "id": fixed_id("quote-request"),
                "requester": NODE,
                "supplier": SUPPLIER,
                "sku": "FORMULA-900G",
                "quantity": 120,
                "rule": "quote_when_dear_and_short",
                "ruleVersion": RULE_VERSION,
                "nonce": 17,
                "deadline": DEADLINE,
            },
        ),
        (
            "StatementProposal",
            {
                "id": fixed_id("statement-proposal"),
                "statement": STATEMENT_ID,
                "proposer": NODE,
                "periodFrom": "2026-11-01",
                "periodTo": "2026-11-30",
                "ruleVersion": RULE_VERSION,
                "statementHash": "0x" + hashlib.sha256(b"consortium-vectors statement").hexdigest(),
                "nonce": 9,
                "deadline": DEADLINE,
            },
        ),
        (
            "StatementSignature",
            {
                "id": fixed_id("statement-signature"),
                "statement": STATEMENT_ID,
                "signer": SUPPLIER,
                "statementHash": "0x" + hashlib.sha256(b"consortium-vectors statement").hexdigest(),
                "nonce": 10,
                "deadline": DEADLINE,
            },
        ),
        (
            "StatementDispute",
            {
                "id": fixed_id("statement-dispute"),
                "statement": STATEMENT_ID,
                "member": SUPPLIER,
                "statementHash": "0x" + hashlib.sha256(b"consortium-vectors statement").hexdigest(),
                "reason": "the freight of this transfer was paid in cash",
                "lines": canonical_json(
                    [{"from": NODE, "kind": "freight_compensation", "reference": ACCEPTANCE_ID, "to": SUPPLIER}]
                ).decode(),
                "nonce": 18,
                "deadline": DEADLINE,
            },
        ),
        (
            "StatementWithdrawal",
            {
                "id": fixed_id("statement-withdrawal"),
                "statement": STATEMENT_ID,
                "proposer": NODE,
                "statementHash": "0x" + hashlib.sha256(b"consortium-vectors statement").hexdigest(),
                "reason": "",
                "nonce": 19,
                "deadline": DEADLINE,
            },
        ),
        (
            "Ruling",
            {
                "id": fixed_id("ruling"),
                "dispute": DISPUTE_ID,
                "arbitrator": ARBITRATOR,
                "decision": "",
                "award": 200,
                "payer": SUPPLIER,
                "payee": NODE,
                "ruleVersion": RULE_VERSION,
                "nonce": 8,
                "deadline": DEADLINE,
            },
        ),
    ]


def _hashes(domain: Domain, type_: str, message: Json) -> tuple[str, str, str]:
    signable = encode_typed_data(full_message=typed_data(domain, type_, message))
    digest = keccak(b"\x19" + signable.version + signable.header + signable.body)
    return "0x" + signable.header.hex(), "0x" + signable.body.hex(), "0x" + digest.hex()


def _sign_raw(domain: Domain, type_: str, message: Json, key: str) -> str:
    """Sign without negotiation.messages.sign's own checks (to build messages it would refuse to sign)."""
    signed = Account.from_key(key).sign_message(encode_typed_data(full_message=typed_data(domain, type_, message)))
    return "0x" + bytes(signed.signature).hex()


def signed_messages() -> list[Json]:
    out = []
    for type_, message in message_inputs():
        signer = message[SIGNER_FIELD[type_]]
        signed = sign(DOMAIN, type_, message, KEYS[signer])
        domain_separator, struct_hash, digest = _hashes(DOMAIN, type_, signed.message)
        out.append(
            {
                "type": type_,
                "encode_type": encode_type(type_),
                "type_hash": "0x" + keccak(text=encode_type(type_)).hex(),
                "typed_data": typed_data(DOMAIN, type_, signed.wire_message()),
                "message": signed.wire_message(),
                "domain_separator": domain_separator,
                "struct_hash": struct_hash,
                "digest": digest,
                "signer_field": SIGNER_FIELD[type_],
                "signer": signer,
                "signature": signed.signature,
            }
        )
    return out


def _refused(name: str, why: str, type_: str, message: Json, signature: str, signed_under: Domain | None) -> Json:
    """`message` in its wire form."""
    claimed = str(message[SIGNER_FIELD[type_]])
    recovered = recover_signer(DOMAIN, type_, from_wire(type_, message), signature)
    assert recovered != claimed, name
    return {
        "name": name,
        "why": why,
        "type": type_,
        "signed_under": signed_under.as_dict() if signed_under else None,
        "message": message,
        "signature": signature,
        "claimed_signer": claimed,
        "recovered": recovered,
        "expected": "bad_signature",
    }


def refused_messages(signed: list[Json]) -> list[Json]:
    by_type = {s["type"]: s for s in signed}

    def resigned(type_: str, domain: Domain) -> tuple[Json, str]:
        message = by_type[type_]["message"]
        return message, _sign_raw(domain, type_, from_wire(type_, message), KEYS[message[SIGNER_FIELD[type_]]])

    def altered(type_: str, change: Callable[[Json], None]) -> tuple[Json, str]:
        message = copy.deepcopy(by_type[type_]["message"])
        change(message)
        return message, by_type[type_]["signature"]

    cases = []
    for name, why, type_, domain in [
        (
            "wrong_chain_id",
            "signed for chainId 1, verified under chainId 31337",
            "Invitation",
            Domain(CONSORTIUM_NAME, 1, REGISTRY),
        ),
        (
            "wrong_verifying_contract",
            "signed with the AnchorRegistry as verifyingContract instead of the MemberRegistry",
            "Offer",
            Domain(CONSORTIUM_NAME, CHAIN_ID, ANCHOR_CONTRACT),
        ),
        (
            "wrong_domain_name",
            "signed for another consortium's name",
            "Acceptance",
            Domain("other-consortium", CHAIN_ID, REGISTRY),
        ),
        (
            "wrong_domain_version",
            'signed under protocol version "2"',
            "Shipment",
            Domain(CONSORTIUM_NAME, CHAIN_ID, REGISTRY, version="2"),
        ),
    ]:
        message, signature = resigned(type_, domain)
        cases.append(_refused(name, why, type_, message, signature, domain))

    def nfd_reason(m: Json) -> None:
        m["reason"] = unicodedata.normalize("NFD", m["reason"])

    def more_quantity(m: Json) -> None:
        m["quantity"] = "1200"

    def no_consignment(m: Json) -> None:
        m["consignment"] = False

    def bigger_nonce(m: Json) -> None:
        m["nonce"] = str(int(m["nonce"]) + 1)

    for name, why, type_, change in [
        ("altered_quantity", "quantity changed from 120 to 1200 after signing", "Acceptance", more_quantity),
        ("altered_bool", "consignment changed from true to false after signing", "Acceptance", no_consignment),
        (
            "altered_string_unicode",
            "reason re-encoded NFC -> NFD after signing (same text on screen, other bytes)",
            "Cancellation",
            nfd_reason,
        ),
        (
            "altered_nonce",
            "nonce 2^53+1 read back as 2^53+2 (a parser using doubles would even make it 2^53)",
            "Invitation",
            bigger_nonce,
        ),
    ]:
        message, signature = altered(type_, change)
        cases.append(_refused(name, why, type_, message, signature, None))

    receipt = copy.deepcopy(by_type["Receipt"]["message"])
    receipt["requester"] = SUPPLIER
    cases.append(
        _refused(
            "signer_field_names_someone_else",
            "Receipt whose requester is the supplier, signed with the requester's key",
            "Receipt",
            receipt,
            _sign_raw(DOMAIN, "Receipt", from_wire("Receipt", receipt), ANVIL_KEY_0),
            None,
        )
    )
    ruling = by_type["Ruling"]["message"]
    cases.append(
        _refused(
            "ruling_not_by_arbitrator",
            "Ruling naming the arbitrator but signed by a party of the dispute",
            "Ruling",
            ruling,
            _sign_raw(DOMAIN, "Ruling", from_wire("Ruling", ruling), ANVIL_KEY_0),
            None,
        )
    )
    return cases


def non_canonical_signatures(signed: list[Json]) -> list[Json]:
    """Other encodings of a valid signature: ECDSA recovers the signer from each, the protocol refuses them."""
    base = signed[0]
    raw = bytes.fromhex(base["signature"][2:])
    r, s, v = raw[:32], int.from_bytes(raw[32:64], "big"), raw[64]
    high_s = "0x" + (r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])).hex()
    variants = [
        (
            "v_as_0_or_1",
            "the same signature with v - 27 (0/1) instead of 27/28",
            "0x" + raw[:64].hex() + f"{v - 27:02x}",
        ),
        ("high_s", "the malleated twin (r, n - s, v flipped): s above n/2", high_s),
    ]
    out = []
    for name, why, signature in variants:
        sig = bytes.fromhex(signature[2:])
        recovered = Account._recover_hash(
            bytes.fromhex(base["digest"][2:]),
            vrs=(sig[64] % 27 + 27, int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big")),
        )
        assert recovered == base["signer"], name
        out.append(
            {
                "name": name,
                "why": why,
                "type": base["type"],
                "message": base["message"],
                "signature": signature,
                "recovered": recovered,
                "expected": "bad_signature",
            }
        )
    return out


def malformed_messages(signed: list[Json]) -> list[Json]:
    """Messages refused for their wire form alone: signed correctly over the values they claim."""
    by_type = {s["type"]: s for s in signed}
    cases: list[tuple[str, str, str, str, Any]] = [
        ("uint64_as_number", 'quantity as the JSON number 200, not the string "200"', "Invitation", "quantity", 200),
        ("uint64_leading_zero", 'quantity as "0200"', "Invitation", "quantity", "0200"),
        ("uint64_signed", 'quantity as "+200"', "Invitation", "quantity", "+200"),
        (
            "amount_beyond_2^53-1",
            "unitPrice 2^53: beyond the amounts a record may hold",
            "Offer",
            "unitPrice",
            str(2**53),
        ),
        ("nonce_beyond_2^63-1", "nonce 2^63: beyond a signed 64-bit column", "Offer", "nonce", str(2**63)),
        ("uint32_as_string", 'radiusKm as the string "50", not the number 50', "Invitation", "radiusKm", "50"),
        ("moment_after_2999", "deadline in the year 3000", "Receipt", "deadline", str(32_503_680_000)),
    ]
    out = []
    for name, why, type_, field, value in cases:
        message = {**by_type[type_]["message"], field: value}
        ints = {**from_wire(type_, by_type[type_]["message"]), field: int(value)}
        signature = _sign_raw(DOMAIN, type_, ints, KEYS[message[SIGNER_FIELD[type_]]])
        out.append(
            {
                "name": name,
                "why": why,
                "type": type_,
                "message": message,
                "signature": signature,
                "expected": "malformed",
            }
        )
    return out


def build_messages() -> Json:
    signed = signed_messages()
    return {
        "format": FORMAT,
        "description": "EIP-712 messages of docs/protocol.md: per type the typed data, type hash, domain separator, "
        "struct hash, digest, signature (65 bytes r||s||v, v in {27, 28}, s <= n/2) and signer; uint64 fields are "
        "decimal strings, uint32 fields JSON numbers. 'refused' must not verify (the signature recovers to another "
        "address than the signer field names); 'non_canonical_signatures' recover to the signer but are refused "
        "(bad_signature); 'malformed' are refused for their wire form (malformed). Deadlines are in the past for "
        "a real clock: admit with now = 'now'.",
        "now": NOW,
        "domain_type": "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)",
        "domain": DOMAIN.as_dict(),
        "domain_separator": _hashes(DOMAIN, signed[0]["type"], signed[0]["message"])[0],
        "keys": [
            {"label": "anvil dev key 0 (requester, this node)", "private_key": ANVIL_KEY_0, "address": NODE},
            {"label": 'keccak256("cow") (supplier)', "private_key": COW_KEY, "address": SUPPLIER},
            {"label": "anvil dev key 1 (arbitrator)", "private_key": ANVIL_KEY_1, "address": ARBITRATOR},
        ],
        "messages": signed,
        "refused": refused_messages(signed),
        "non_canonical_signatures": non_canonical_signatures(signed),
        "malformed": malformed_messages(signed),
    }


# -- records --------------------------------------------------------------------------------------------------


def _at(seq: int) -> str:
    return f"2025-11-03T08:{seq:02d}:00.{seq * 10_101:06d}Z"


def _line(
    lot: str,
    location: str,
    quantity: int,
    status: str = "available",
    owner: str = NODE,
    holder: str = NODE,
    sku: str = "FORMULA-900G",
) -> Json:
    return {
        "sku": sku,
        "lot": lot,
        "location": location,
        "owner": owner,
        "holder": holder,
        "status": status,
        "quantity": quantity,
    }


def _ev(*pairs: tuple[str, str]) -> list[Json]:
    return [{"source": s, "reference": r} for s, r in pairs]


def _record(
    seq: int,
    type_: str,
    lines: list[Json],
    evidence: list[Json],
    memo: str = "",
    corrects: int | None = None,
    **extra: Any,
) -> Json:
    """A record body built as a node builds it (chain/records.py record_body: refused unless it fits the type's
    declared fields)."""
    fields = {"lines": lines, "evidence": evidence, "memo": memo, "corrects": corrects, **extra}
    return record_body(RecordKind(KIND), NODE, seq, RecordType(type_), _at(seq), cast(AnyRecord, fields))


def _message_ref(m: Json) -> Json:
    return {"type": m["type"], "id": m["message"]["id"], "signer": m["signer"], "signature": m["signature"]}


def curated_records() -> list[tuple[str, str, Json]]:
    """(name, why, record) for seq 1..12."""
    msgs = {m["type"]: m for m in signed_messages()}
    dispute = msgs["Dispute"]
    memo_escapes = 'tab\there, newline\n, quote ", backslash \\, slash /, NUL \x00, US \x1f, DEL \x7f, LS \u2028'
    plan = {
        "problem": {
            "radius_km": 50,
            "requests": [
                {
                    "id": INVITATION_ID,
                    "node": NODE,
                    "sku": "FORMULA-900G",
                    "quantity": 200,
                    "min_shelf_life_days": 90,
                    "max_transit_hours": 4,
                    "shortage_penalty": 3000,
                }
            ],
            "offers": [
                {
                    "id": OFFER_ID,
                    "node": SUPPLIER,
                    "sku": "FORMULA-900G",
                    "quantity": 120,
                    "shelf_life_days": 3650,
                    "min_order_quantity": 10,
                    "unit_price": 5200,
                }
            ],
            "lanes": [
                {
                    "from": SUPPLIER,
                    "to": NODE,
                    "distance_km": 15,
                    "transit_hours": 1,
                    "cost_per_unit": 45,
                    "fixed_cost": 12000,
                }
            ],
            # Keys whose order differs between code points (this format) and UTF-16 code units (RFC 8785).
            "labels": {
                "\U0001f600": "U+1F600",
                "\uff5a": "U+FF5A",
                "\u00e9": "U+00E9",
                "a": "lower",
                "B": "upper",
                "": "empty",
            },
        },
        "parameters": {"relative_gap_ppm": 4000, "time_limit_ms": 10000},
        "answer": {
            "status": "optimal",
            "allocations": [{"offer": OFFER_ID, "request": INVITATION_ID, "quantity": 120}],
            "shortages": {INVITATION_ID: 80},
            "optional": None,
            "flags": [True, False],
            "empty_object": {},
            "empty_array": [],
        },
        "rule_version": RULE_VERSION,
        "rule_block": 12,
        "cells": {INVITATION_ID: ["routine_replenishment/standard"]},
    }
    transfer = {
        "acceptance": ACCEPTANCE_ID,
        "supplier": SUPPLIER,
        "requester": NODE,
        "messages": [_message_ref(msgs[t]) for t in ("Acceptance", "Shipment", "Receipt")],
        "shipped": 120,
        "received": 118,
        "freight_compensation": 1250,
    }
    return [
        (
            "receipt_ascii",
            "plain receipt, ASCII only",
            _record(1, "receipt", [_line("L2025-11-A", "WH-HZ-01", 240)], _ev(("delivery_note", "DN-2025-0001"))),
        ),
        (
            "issue_unicode",
            "non-ASCII text is written as raw UTF-8, not \\u-escaped; 2-, 3- and 4-byte characters",
            _record(
                2,
                "issue",
                [_line("L2025-11-A", "WH-HZ-01", -12)],
                _ev(("sales_order", "SO-杭州-0001")),
                "出库给西湖店 — café crème 🍼",
            ),
        ),
        (
            "move_nfd_text",
            "text is hashed as given, never Unicode-normalized: 'café' in NFD (e + U+0301)",
            _record(
                3,
                "move",
                [_line("L2025-11-A", "WH-HZ-01", -30), _line("L2025-11-A", "STORE-XH-02", 30)],
                _ev(("transfer_order", "TO-0003")),
                unicodedata.normalize("NFD", "café"),
            ),
        ),
        (
            "status_change",
            "two lines, statuses available -> quarantine",
            _record(
                4,
                "status_change",
                [_line("L2025-11-A", "STORE-XH-02", -5), _line("L2025-11-A", "STORE-XH-02", 5, "quarantine")],
                _ev(("inspection", "QC-17")),
                "suspected damage",
            ),
        ),
        (
            "adjustment_escapes",
            'JSON string escapes: \\t \\n \\" \\\\ and \\u00XX (lowercase hex) for other '
            "controls; '/', DEL and U+2028 are not escaped",
            _record(
                5,
                "adjustment",
                [_line("L2025-11-A", "WH-HZ-01", -3)],
                _ev(("cycle_count", "CC-2025-11-03"), ("supervisor", "Wang Fang")),
                memo_escapes,
            ),
        ),
        (
            "adjustment_correction",
            "corrects names the seq of the corrected record (integer, not null)",
            _record(
                6,
                "adjustment",
                [_line("L2025-11-A", "WH-HZ-01", 1)],
                _ev(("cycle_count", "CC-2025-11-03b"), ("supervisor", "Wang Fang")),
                "recount: only 2 short",
                5,
            ),
        ),
        (
            "quantity_2p53_plus_1",
            "9007199254740993 = 2^53+1: not representable as an IEEE-754 double; a parser "
            "that reads JSON numbers as doubles turns it into 2^53 and gets another leaf",
            _record(7, "receipt", [_line("L-BIG", "WH-HZ-01", 2**53 + 1)], _ev(("delivery_note", "DN-BIG-1"))),
        ),
        (
            "quantity_int64_min",
            "-9223372036854775808 = -2^63, the smallest signed 64-bit integer",
            _record(
                8,
                "adjustment",
                [_line("L-BIG", "WH-HZ-01", -(2**63))],
                _ev(("cycle_count", "CC-BIG"), ("supervisor", "Wang Fang")),
            ),
        ),
        (
            "quantity_2p64",
            "18446744073709551616 = 2^64: beyond every 64-bit integer type; integers are unbounded in "
            "the format (the reference implementation's fast path falls back to its exact one)",
            _record(9, "receipt", [_line("L-BIG", "WH-HZ-01", 2**64)], _ev(("delivery_note", "DN-BIG-2"))),
        ),
        (
            "plan_nested",
            "nested objects and arrays, true/false/null, empty {} and [], keys sorted by code point "
            "at every depth (see plan.problem.labels)",
            _record(10, "plan", [], _ev(("invitation", INVITATION_ID), ("offer", OFFER_ID)), "", None, plan=plan),
        ),
        (
            "transfer_in_consignment",
            "transfer record: owner differs from holder, nested signed-message references",
            _record(
                11,
                "transfer_in",
                [_line("L2025-11-A", "WH-HZ-01", 118, owner=SUPPLIER)],
                _ev(("acceptance", ACCEPTANCE_ID), ("offer", OFFER_ID)),
                "received 118 of 120 shipped",
                transfer=transfer,
            ),
        ),
        (
            "dispute_largest_amount",
            "dispute record (type 'dispute', written by node/services/disputes.py) holding the signed "
            "Dispute in its wire form (uint64 fields as decimal strings), claimAmount 2^53-1, a 256-code-point reason",
            _record(
                12,
                "dispute",
                [],
                _ev(("subject", ACCEPTANCE_ID)),
                dispute["message"]["reason"],
                dispute={**dispute["message"], "signature": dispute["signature"]},
            ),
        ),
    ]


def ledger_records() -> list[Json]:
    """Records seq 1..20 of one node: the curated ones, then plain movements (20 stays pending)."""
    records = [r for _, _, r in curated_records()]
    for seq in range(len(records) + 1, 21):
        if seq % 2:
            records.append(
                _record(
                    seq,
                    "receipt",
                    [_line(f"L2025-12-{seq:02d}", "WH-HZ-01", 10 * seq)],
                    _ev(("delivery_note", f"DN-2025-{seq:04d}")),
                )
            )
        else:
            records.append(
                _record(
                    seq,
                    "issue",
                    [_line(f"L2025-12-{seq - 1:02d}", "WH-HZ-01", -seq)],
                    _ev(("sales_order", f"SO-{seq:04d}")),
                )
            )
    return records


def build_records() -> Json:
    entries = []
    for name, why, record in curated_records():
        body = canonical_json(record)
        entries.append(
            {
                "name": name,
                "why": why,
                "record": record,
                "canonical_utf8": body.decode("utf-8"),
                "canonical_hex": body.hex(),
                "leaf": leaf_hash(record).hex(),
            }
        )
    refused = [
        ("float_fraction", "a float anywhere is refused", '{"kind":"ledger","lines":[{"quantity":1.5}]}'),
        ("float_integral", "1.0 is a float, not the integer 1", '{"kind":"ledger","lines":[{"quantity":1.0}]}'),
        ("float_exponent", "1e3 is a float", '{"kind":"ledger","lines":[{"quantity":1e3}]}'),
        (
            "lone_surrogate",
            "a string that is not valid Unicode (lone surrogate U+D800) has no UTF-8 form",
            '{"kind":"ledger","memo":"\\ud800"}',
        ),
    ]
    return {
        "format": FORMAT,
        "description": "Ledger record bodies -> canonical JSON (docs/proof-format.md section 2) as UTF-8 text and "
        "hex -> leaf = sha256(0x00 || canonical bytes), lowercase hex. 'refused' are JSON texts a verifier must "
        "refuse to hash.",
        "leaf_prefix": "00",
        "hash": "sha256",
        "records": entries,
        "refused": [{"name": n, "why": w, "json_text": t, "expected": "refuse"} for n, w, t in refused],
    }


# -- batches ----------------------------------------------------------------------------------------------------


def _levels(leaves: list[bytes]) -> list[list[str]]:
    levels = [leaves]
    while len(levels[-1]) > 1:
        level = levels[-1]
        nxt = [hashlib.sha256(level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        levels.append(nxt)
    return [[h.hex() for h in level] for level in levels]


def _tx_hash(seq: int) -> str:
    return "0x" + keccak(text=f"{FORMAT}/anchor-tx/{seq}").hex()


def _document(record: Json, proof: list[Any] | None, root: str | None, anchor: Json | None) -> Json:
    """A proof document exactly as GET /audit/records serves it (docs/proof-format.md section 5)."""
    return {
        "format": PROOF_FORMAT,
        "record": record,
        "leaf": leaf_hash(record).hex(),
        "status": "anchored" if anchor else "pending",
        "proof": proof,
        "root": root,
        "anchor": anchor,
    }


def anchored_batches(records: list[Json]) -> list[Json]:
    batches = []
    prev_root = ZERO_ROOT
    start = 0
    for seq, size in enumerate(BATCH_SIZES, start=1):
        members = records[start : start + size]
        start += size
        leaves = [leaf_hash(r) for r in members]
        tree = MerkleTree(leaves)
        root = tree.root.hex()
        assert root == merkle_root(leaves).hex()
        documents = []
        for i, record in enumerate(members):
            anchor = {
                "chain_id": CHAIN_ID,
                "contract": ANCHOR_CONTRACT,
                "tx_hash": _tx_hash(seq),
                "block_number": 10 + seq,
                "kind": KIND,
                "seq": seq,
                "leaf_index": i,
                "leaf_count": size,
            }
            documents.append(_document(record, tree.proof(i), root, anchor))
        batches.append(
            {
                "seq": seq,
                "root": root,
                "prev_root": prev_root,
                "leaf_count": size,
                "first_record_seq": members[0]["seq"],
                "last_record_seq": members[-1]["seq"],
                "tx_hash": _tx_hash(seq),
                "block_number": 10 + seq,
                "levels": _levels(leaves),
                "documents": documents,
            }
        )
        prev_root = root
    return batches


def _event(batch: Json) -> Json:
    return {
        "seq": batch["seq"],
        "root": batch["root"],
        "prev_root": batch["prev_root"],
        "leaf_count": batch["leaf_count"],
        "tx_hash": batch["tx_hash"],
    }


def build_batches() -> Json:
    records = ledger_records()
    batches = anchored_batches(records)
    upstream = [hashlib.sha256(c.encode()).digest() for c in "abcde"]
    return {
        "format": FORMAT,
        "description": "Consecutive batches of one node's ledger records (sizes 1, 2, 3, 5, 8) -> Merkle root in "
        "merkletools' shape (docs/proof-format.md section 3), each record's proof document exactly as the node "
        "serves it (section 5), prev_root chaining (section 4), and the Anchored events a verifier would read. "
        "Hashes are lowercase hex without 0x; tx_hash and contract are placeholders.",
        "kind": KIND,
        "member": NODE,
        "chain_id": CHAIN_ID,
        "contract": ANCHOR_CONTRACT,
        "merkletools_reference": {"leaves": [h.hex() for h in upstream], "root": merkle_root(upstream).hex()},
        "batches": batches,
        "events": [_event(b) for b in batches],
        "pending": [_document(records[-1], None, None, None)],
    }


# -- tampered -----------------------------------------------------------------------------------------------------


def _flip(step: Json) -> Json:
    ((side, value),) = step.items()
    return {"right" if side == "left" else "left": value}


def _doc_case(name: str, why: str, doc: Json, anchored_root: str, **extra: Any) -> Json:
    leaf = leaf_hash(doc["record"])
    expected = {
        "leaf_matches": leaf.hex() == doc["leaf"],
        "path_reaches_root": fold_proof(leaf, doc["proof"]).hex() == anchored_root,
        "root_matches_anchor": doc["root"] == anchored_root,
        "path_matches_index": sides_of(doc["proof"])
        == path_sides(doc["anchor"]["leaf_index"], doc["anchor"]["leaf_count"]),
    }
    expected["valid"] = all(expected.values())
    expected.update(extra)
    assert not expected["valid"], name
    return {"name": name, "why": why, "document": doc, "anchored_root": anchored_root, "expected": expected}


def document_cases(batches: list[Json]) -> list[Json]:
    b2, b4, b5 = batches[1], batches[3], batches[4]
    cases = []

    def tampered(batch: Json, index: int, change: Callable[[Json], None]) -> Json:
        doc = copy.deepcopy(batch["documents"][index])
        change(doc)
        return doc

    def set_quantity(value: int) -> Callable[[Json], None]:
        def change(doc: Json) -> None:
            doc["record"]["lines"][0]["quantity"] = value

        return change

    def relabel(doc: Json) -> None:
        doc["record"]["lines"][0]["lot"] = "L-FORGED"
        doc["leaf"] = leaf_hash(doc["record"]).hex()

    def relabel_and_reroot(doc: Json) -> None:
        relabel(doc)
        doc["root"] = fold_proof(bytes.fromhex(doc["leaf"]), doc["proof"]).hex()

    def nfd(doc: Json) -> None:
        doc["record"]["memo"] = unicodedata.normalize("NFD", doc["record"]["memo"])

    def flip_first(doc: Json) -> None:
        doc["proof"][0] = _flip(doc["proof"][0])

    def flip_all(doc: Json) -> None:
        doc["proof"] = [_flip(s) for s in doc["proof"]]

    def other_proof(doc: Json) -> None:
        doc["proof"] = copy.deepcopy(b5["documents"][4]["proof"])

    def truncate(doc: Json) -> None:
        doc["proof"] = doc["proof"][:-1]

    def extend(doc: Json) -> None:
        doc["proof"].append({"right": doc["leaf"]})

    def duplicate_odd(doc: Json) -> None:
        doc["proof"].insert(0, {"right": doc["leaf"]})

    root4, root5 = b4["root"], b5["root"]
    cases += [
        _doc_case(
            "changed_quantity",
            "record field changed after anchoring (lines[0].quantity +1)",
            tampered(b5, 2, set_quantity(b5["documents"][2]["record"]["lines"][0]["quantity"] + 1)),
            root5,
        ),
        _doc_case(
            "changed_memo_nfc_to_nfd",
            "memo re-normalized NFC -> NFD: same text on screen, other bytes",
            tampered(b2, 0, nfd),
            b2["root"],
        ),
        _doc_case(
            "big_integer_read_as_double",
            "quantity 2^53+1 read back as 2^53 by a double-based JSON parser",
            tampered(b4, 0, set_quantity(2**53)),
            root4,
        ),
        _doc_case(
            "forged_record_and_leaf",
            "record changed and its leaf recomputed: the path no longer folds to the anchored root",
            tampered(b5, 1, relabel),
            root5,
        ),
        _doc_case(
            "wrong_root",
            "record changed, leaf recomputed and the document's root replaced by what the "
            "forged path folds to: only the anchored (on-chain) root exposes it",
            tampered(b5, 1, relabel_and_reroot),
            root5,
        ),
        _doc_case(
            "swapped_side", "first proof step's side flipped (left <-> right)", tampered(b5, 5, flip_first), root5
        ),
        _doc_case("swapped_all_sides", "every proof step's side flipped", tampered(b5, 6, flip_all), root5),
        _doc_case("proof_of_other_leaf", "leaf 3 of 8 with the proof of leaf 4", tampered(b5, 3, other_proof), root5),
        _doc_case("truncated_proof", "last proof step removed", tampered(b5, 0, truncate), root5),
        _doc_case("extra_step", "a proof step appended", tampered(b5, 7, extend), root5),
        _doc_case(
            "odd_leaf_duplicated",
            "odd last leaf (index 4 of 5) given a step pairing it with itself, as in "
            "trees that duplicate odd nodes; this format carries it up unchanged",
            tampered(b4, 4, duplicate_odd),
            root4,
        ),
        _doc_case(
            "wrong_leaf_index",
            "leaf 3 of 8 claims leaf_index 2: leaf, path and root are genuine, only the path's sides "
            "(right, left, right for leaf 2; left, left, right for leaf 3) expose the claim",
            tampered(b5, 3, lambda doc: doc["anchor"].update(leaf_index=2)),
            root5,
        ),
        _doc_case(
            "wrong_anchored_root",
            "untouched document checked against another batch's anchored root",
            copy.deepcopy(b5["documents"][0]),
            root4,
        ),
    ]

    # Second preimage: an inner node presented as a leaf. Folding from the claimed leaf reaches the root, which is
    # why a verifier must recompute the leaf from the record and never take the document's word for it.
    doc = copy.deepcopy(b5["documents"][0])
    inner = _levels([bytes.fromhex(d["leaf"]) for d in b5["documents"]])[1][0]
    doc["leaf"] = inner
    doc["proof"] = doc["proof"][1:]
    assert fold_proof(bytes.fromhex(inner), doc["proof"]).hex() == root5
    cases.append(
        _doc_case(
            "leaf_used_as_inner_node",
            "document claims inner node H(leaf0 || leaf1) as its leaf, "
            "with the path from there: it folds to the root only if the leaf is not recomputed",
            doc,
            root5,
            path_from_claimed_leaf_reaches_root=True,
        )
    )
    return cases


def second_preimage_cases(batches: list[Json]) -> list[Json]:
    b5 = batches[4]
    leaves = [d["leaf"] for d in b5["documents"]]
    preimage = bytes.fromhex(leaves[0] + leaves[1])
    proof = b5["documents"][0]["proof"][1:]
    prefixed = hashlib.sha256(b"\x00" + preimage).digest()
    unprefixed = hashlib.sha256(preimage).digest()
    assert fold_proof(unprefixed, proof).hex() == b5["root"]
    return [
        {
            "name": "inner_node_bytes_as_leaf_preimage",
            "why": "the 64 bytes leaf0 || leaf1 offered as a leaf's preimage: without the 0x00 leaf prefix they would "
            "hash to the inner node and the path would fold to the root",
            "leaf_preimage_hex": preimage.hex(),
            "proof": proof,
            "anchored_root": b5["root"],
            "expected": {
                "leaf": prefixed.hex(),
                "path_reaches_root": fold_proof(prefixed, proof).hex() == b5["root"],
                "unprefixed_hash_reaches_root": True,
                "valid": False,
            },
        }
    ]


def history_cases(batches: list[Json]) -> list[Json]:
    """Whole-history cases over batches 1..3 (records 1..6), as `consortium audit verify --check-paths` sees them."""
    base = copy.deepcopy(batches[:3])
    cases: list[Json] = []

    def case(
        name: str,
        why: str,
        steps: list[str],
        change: Callable[[list[Json], list[Json]], None],
        valid_without_path_check: bool = False,
    ) -> None:
        history = copy.deepcopy(base)
        documents = [d for b in history for d in b["documents"]]
        events = [_event(b) for b in history]
        change(documents, events)
        cases.append(
            {
                "name": name,
                "why": why,
                "documents": documents,
                "events": events,
                "expected": {
                    "valid": not steps,
                    "failing_steps": steps,
                    "valid_without_path_check": valid_without_path_check or not steps,
                },
            }
        )

    def nothing(documents: list[Json], events: list[Json]) -> None:
        pass

    def swap_indexes(documents: list[Json], events: list[Json]) -> None:
        documents[4]["anchor"]["leaf_index"], documents[5]["anchor"]["leaf_index"] = 2, 1

    def reorder(documents: list[Json], events: list[Json]) -> None:
        documents[4], documents[5] = documents[5], documents[4]

    def remove(documents: list[Json], events: list[Json]) -> None:
        del documents[4]

    def alter(documents: list[Json], events: list[Json]) -> None:
        documents[2]["record"]["lines"][0]["quantity"] += 1

    def rewrite_batch_2(documents: list[Json], events: list[Json]) -> None:
        records = [documents[1]["record"], documents[2]["record"]]
        records[0]["memo"] = "rewritten after anchoring"
        leaves = [leaf_hash(r) for r in records]
        tree = MerkleTree(leaves)
        for i, doc in enumerate(documents[1:3]):
            doc["leaf"], doc["proof"], doc["root"] = leaves[i].hex(), tree.proof(i), tree.root.hex()

    def break_chain(documents: list[Json], events: list[Json]) -> None:
        events[2]["prev_root"] = ZERO_ROOT

    def hide_batch(documents: list[Json], events: list[Json]) -> None:
        events.append(
            {
                "seq": 4,
                "root": hashlib.sha256(b"hidden").hexdigest(),
                "prev_root": events[2]["root"],
                "leaf_count": 1,
                "tx_hash": _tx_hash(4),
            }
        )

    def drop_batch_2(documents: list[Json], events: list[Json]) -> None:
        del documents[1:3]

    def flip_path(documents: list[Json], events: list[Json]) -> None:
        documents[4]["proof"][0] = _flip(documents[4]["proof"][0])

    def wrong_tx(documents: list[Json], events: list[Json]) -> None:
        for doc in documents[1:3]:
            doc["anchor"]["tx_hash"] = _tx_hash(99)

    def wrong_count(documents: list[Json], events: list[Json]) -> None:
        events[2]["leaf_count"] = 4

    def foreign(documents: list[Json], events: list[Json]) -> None:
        documents[0]["record"]["node"] = SUPPLIER
        documents[0]["leaf"] = leaf_hash(documents[0]["record"]).hex()

    case("untampered", "control: the history as anchored verifies", [], nothing)
    case(
        "wrong_leaf_index",
        "batch 3's documents claim leaf_index 0, 2, 1: paths still fold (sides, not the index, "
        "drive folding), only the position check catches it",
        ["sequence"],
        swap_indexes,
    )
    case(
        "records_reordered",
        "records 5 and 6 served in swapped order, each with its own path: the paths fold, but not as the paths "
        "of the positions they are served at",
        ["sequence", "path", "root"],
        reorder,
    )
    case("record_removed", "record 5 left out of batch 3", ["sequence", "path", "root"], remove)
    case("record_altered", "record 3's quantity changed, claimed leaf unchanged", ["leaf", "path", "root"], alter)
    case(
        "history_rewritten",
        "batch 2 rewritten with self-consistent leaves, paths and root; the chain holds the original root",
        ["root"],
        rewrite_batch_2,
    )
    case("prev_root_broken", "batch 3's event names a prevRoot other than batch 2's root", ["chain"], break_chain)
    case("hidden_batch", "an anchored batch 4 on chain that the documents leave out", ["nothing_hidden"], hide_batch)
    case(
        "batch_left_out",
        "batch 2 missing from the documents (batch 3's prevRoot then differs from the root of the batch "
        "before it in the documents)",
        ["sequence", "chain", "nothing_hidden"],
        drop_batch_2,
    )
    case(
        "path_side_flipped",
        "record 5's path has a flipped side; its record, leaf and the batch root are intact",
        ["path"],
        flip_path,
        valid_without_path_check=True,
    )
    case("wrong_tx_hash", "batch 2's documents name another transaction than the chain's event", ["root"], wrong_tx)
    case("leaf_count_mismatch", "batch 3's event says 4 leaves, the documents hold 3", ["root"], wrong_count)
    case(
        "foreign_record",
        "record 1 names another node (leaf recomputed to match)",
        ["sequence", "path", "root"],
        foreign,
    )
    return cases


def build_tampered() -> Json:
    batches = anchored_batches(ledger_records())
    return {
        "format": FORMAT,
        "description": "Proofs that must fail. 'documents': one proof document against a trusted anchored root; "
        "expected.leaf_matches = leaf(record) equals document.leaf, path_reaches_root = folding document.proof "
        "from the recomputed leaf gives anchored_root, root_matches_anchor = document.root equals anchored_root, "
        "path_matches_index = the proof's sides are those of leaf anchor.leaf_index in a tree of anchor.leaf_count "
        "leaves; valid = all four. 'second_preimage': raw bytes. 'histories': whole histories (batches 1-3 of "
        "batches.json, possibly altered) with the Anchored events, checked as in docs/proof-format.md section 6 "
        "with path checks; failing_steps name the section 6 steps that fail (informative).",
        "kind": KIND,
        "member": NODE,
        "chain_id": CHAIN_ID,
        "contract": ANCHOR_CONTRACT,
        "documents": document_cases(batches),
        "second_preimage": second_preimage_cases(batches),
        "histories": history_cases(batches),
    }


# -- files ----------------------------------------------------------------------------------------------------------

BUILDERS: dict[str, Callable[[], Json]] = {
    "proof/records.json": build_records,
    "proof/batches.json": build_batches,
    "proof/tampered.json": build_tampered,
    "eip712/messages.json": build_messages,
}


def render(document: Json) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def build_all() -> dict[str, str]:
    """Relative path under testdata/ -> file text."""
    return {path: render(builder()) for path, builder in BUILDERS.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="compare with testdata/ instead of writing")
    args = parser.parse_args(argv)
    drift = []
    for path, text in build_all().items():
        target = TESTDATA / path
        if args.check:
            if not target.exists() or target.read_text(encoding="utf-8") != text:
                drift.append(path)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        print(f"wrote {target.relative_to(TESTDATA.parent)}")
    for path in drift:
        print(f"testdata/{path} differs from what scripts/make_vectors.py builds", file=sys.stderr)
    return 1 if drift else 0


if __name__ == "__main__":
    sys.exit(main())
