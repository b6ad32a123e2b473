"""negotiation/eip712.py computes the protocol's EIP-712 digests, signatures and recoveries by itself, for speed;
eth_account is the reference. Every message type, with random values over each field's whole range (strings
with any Unicode, the largest integers, both booleans), digests, signs and recovers exactly as eth_account does.
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak, to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from negotiation import eip712
from negotiation.messages import (
    MESSAGE_TYPES,
    SIGNER_FIELD,
    Domain,
    MessageRefused,
    SignedMessage,
    recover_signer,
    sign,
    signing_digest,
    typed_data,
)

KEYS = [f"0x{k:064x}" for k in (1, 2, 0xC0FFEE, 2**255 + 12345)]
ADDRESSES = st.binary(min_size=20, max_size=20).map(to_checksum_address)
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)  # no lone surrogate, as the protocol says
WORDS: dict[str, st.SearchStrategy[Any]] = {
    "address": ADDRESSES,
    "bytes32": st.binary(min_size=32, max_size=32).map(lambda b: "0x" + b.hex()),
    "bool": st.booleans(),
    "string": TEXT,
    "uint32": st.integers(0, 2**32 - 1),
    "uint64": st.integers(0, 2**64 - 1),
}


def plain(type_: str, address: str) -> dict[str, Any]:
    """A message of `type_` with the same simple value in every field of a kind, every address `address`."""
    value = {"bytes32": "0x" + "ab" * 32, "string": "x", "address": address, "bool": False}
    return {f["name"]: value.get(f["type"], 0) for f in MESSAGE_TYPES[type_]}


def reference_digest(domain: Domain, type_: str, message: dict[str, Any]) -> bytes:
    """EIP-191 version 0x01 over eth_account's encoding: keccak(0x19 || 0x01 || domain separator || struct hash)."""
    signable = encode_typed_data(full_message=typed_data(domain, type_, message))
    return bytes(keccak(b"\x19" + signable.version + signable.header + signable.body))


@st.composite
def messages(draw: st.DrawFn) -> tuple[Domain, str, dict[str, Any]]:
    type_ = draw(st.sampled_from(sorted(MESSAGE_TYPES)))
    message = {f["name"]: draw(WORDS[f["type"]]) for f in MESSAGE_TYPES[type_]}
    domain = Domain(
        draw(TEXT), draw(st.integers(1, 2**64)), eip712.to_checksum_address(draw(st.binary(min_size=20, max_size=20)))
    )
    return domain, type_, message


@settings(max_examples=300, deadline=None)
@given(messages())
def test_every_digest_is_eth_accounts(case: tuple[Domain, str, dict[str, Any]]) -> None:
    domain, type_, message = case
    separator = eip712.domain_separator(domain.name, domain.version, domain.chain_id, domain.registry)
    assert eip712.digest(separator, type_, MESSAGE_TYPES[type_], message) == reference_digest(domain, type_, message)


@settings(max_examples=60, deadline=None)
@given(messages(), st.sampled_from(KEYS))
def test_every_signature_and_recovery_is_eth_accounts(case: tuple[Domain, str, dict[str, Any]], key: str) -> None:
    domain, type_, message = case
    account = Account.from_key(key)
    message = {**message, SIGNER_FIELD[type_]: account.address}
    reference = account.sign_message(encode_typed_data(full_message=typed_data(domain, type_, message)))
    digest = reference_digest(domain, type_, message)
    assert eip712.sign_digest(digest, key) == bytes(reference.signature)
    assert eip712.recover(digest, bytes(reference.signature)) == account.address
    assert eip712.address_of(key) == account.address


def signed_plain(type_: str, key: str) -> tuple[Domain, str, SignedMessage]:
    """The consortium's domain, the key's address, and a `plain` message of `type_` it signed."""
    domain = Domain("consortium-inventory", 31337, "0x" + "12" * 20)
    address = Account.from_key(key).address
    return domain, address, sign(domain, type_, plain(type_, address), key)


def test_the_protocol_functions_use_it_and_still_refuse_what_no_key_signed() -> None:
    domain, address, signed = signed_plain("Offer", KEYS[2])
    assert signing_digest(domain, "Offer", signed.message) == reference_digest(domain, "Offer", signed.message)
    assert recover_signer(domain, "Offer", signed.message, signed.signature) == address
    with pytest.raises(MessageRefused) as refused:
        recover_signer(domain, "Offer", signed.message, "0x" + "00" * 64 + "1b")
    assert refused.value.reason == "bad_signature"


def test_what_the_direct_encoder_cannot_hash_is_refused_as_malformed_before_it() -> None:
    domain, _address, signed = signed_plain("Invitation", KEYS[1])
    for field, value in (("id", "0x" + "ab " * 21 + "a"), ("sku", "a\ud800b")):  # spaces in hex; a lone surrogate
        with pytest.raises(MessageRefused) as refused:
            recover_signer(domain, "Invitation", {**signed.message, field: value}, signed.signature)
        assert refused.value.reason == "malformed", field
    # The registry in any case, or without 0x, is the same domain (eth_account checksummed it).
    for registry in ("0x" + "12" * 20, "12" * 20, ("0x" + "ab" * 20).upper().replace("0X", "0x")):
        same = Domain("consortium-inventory", 31337, registry)
        reference = Domain("consortium-inventory", 31337, to_checksum_address("0x" + registry.removeprefix("0x")))
        assert signing_digest(same, "Invitation", signed.message) == reference_digest(
            reference, "Invitation", signed.message
        )
