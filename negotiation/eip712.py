"""EIP-712 digests, signatures and recovery for the protocol's messages, computed directly.

Why not `eth_account.messages.encode_typed_data` on every message: it derives the domain separator and the
type's hash again for each message and walks a generic encoder, 61 % of a signature recovery's time (measured
in docs/benchmarks.md, "Signed offers in"), on the path every signed message takes into a node. The protocol's
types hold atomic fields only (address, bool, bytes32, string, uint32, uint64: docs/protocol.md section 2),
whose encoding EIP-712 fixes in a few lines: a string is the keccak of its UTF-8 bytes, every other value one
32-byte word. The domain separator and each type hash are computed once. tests/unit/test_eip712.py proves
every digest, signature and recovered address equal to eth_account's on random messages of every type;
eth_account stays the reference, this module the fast path.

Plain data in, plain data out: fields as `[{"name", "type"}]`, values already checked and normalised
(negotiation/messages.py `_validate_fields`: integers as ints, bytes32 as 0x-hex of 32 bytes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import coincurve
from eth_hash.auto import keccak
from eth_utils.address import to_canonical_address, to_checksum_address

from negotiation.wire import Eip712Field

Fields = Sequence[Eip712Field]
DOMAIN_FIELDS: tuple[Eip712Field, ...] = (
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
)


def encode_type(type_: str, fields: Fields) -> bytes:
    return f"{type_}({','.join(f['type'] + ' ' + f['name'] for f in fields)})".encode()


_TYPE_HASHES: dict[str, bytes] = {}


def _type_hash(type_: str, fields: Fields) -> bytes:
    """keccak256 of the type's encoding, once per type: a type name stands for one field list (the protocol's)."""
    found = _TYPE_HASHES.get(type_)
    if found is None:
        found = _TYPE_HASHES[type_] = bytes(keccak(encode_type(type_, fields)))
    return found


def _word(kind: str, value: Any) -> bytes:
    if kind == "string":
        return bytes(keccak(value.encode("utf-8")))
    if kind == "bytes32":
        raw = bytes.fromhex(value[2:]) if isinstance(value, str) else bytes(value)
        if len(raw) != 32:
            raise ValueError("a bytes32 value holds 32 bytes")
        return raw
    if kind == "address":
        return bytes(12) + bytes(to_canonical_address(value))  # ValueError unless 20 bytes of 0x-hex
    if kind == "bool":
        return int(bool(value)).to_bytes(32, "big")
    if kind.startswith("uint"):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2 ** int(kind[4:]):
            raise ValueError(f"{value!r} is no {kind}")
        return value.to_bytes(32, "big")
    raise ValueError(f"type {kind} is not one the protocol's messages use")


def struct_hash(type_: str, fields: Fields, values: Mapping[str, Any]) -> bytes:
    words = b"".join(_word(f["type"], values[f["name"]]) for f in fields)
    return bytes(keccak(_type_hash(type_, fields) + words))


@lru_cache(maxsize=64)
def domain_separator(name: str, version: str, chain_id: int, verifying_contract: str) -> bytes:
    values = {"name": name, "version": version, "chainId": chain_id, "verifyingContract": verifying_contract}
    return struct_hash("EIP712Domain", DOMAIN_FIELDS, values)


def digest(separator: bytes, type_: str, fields: Fields, values: Mapping[str, Any]) -> bytes:
    """What is signed: keccak256(0x19 0x01 || domainSeparator || hashStruct(message))."""
    return bytes(keccak(b"\x19\x01" + separator + struct_hash(type_, fields, values)))


def recover(message_digest: bytes, signature: bytes) -> str:
    """The checksummed address whose key made `signature` (r || s || v, v 27 or 28) over `message_digest`.
    ValueError when no key did (r or s out of range, no point)."""
    if len(signature) != 65 or signature[64] not in (27, 28):
        raise ValueError("a signature is r || s || v with v 27 or 28")
    public = coincurve.PublicKey.from_signature_and_message(
        signature[:64] + bytes([signature[64] - 27]), message_digest, hasher=None
    )
    return address_of_public(public)


def address_of_public(public: coincurve.PublicKey) -> str:
    return str(to_checksum_address(bytes(keccak(public.format(compressed=False)[1:]))[-20:]))


@lru_cache(maxsize=8)  # a node signs with its own key: the key and its address, derived once
def _private(private_key: str) -> tuple[coincurve.PrivateKey, str]:
    key = coincurve.PrivateKey(bytes.fromhex(private_key.removeprefix("0x")))
    return key, address_of_public(key.public_key)


def address_of(private_key: str) -> str:
    return _private(private_key)[1]


def sign_digest(message_digest: bytes, private_key: str) -> bytes:
    """r || s || v (v 27 or 28), deterministic (RFC 6979) and with a low s, as eth_account signs."""
    signed = _private(private_key)[0].sign_recoverable(message_digest, hasher=None)
    return signed[:64] + bytes([signed[64] + 27])
