"""Signed messages (pure): EIP-712 signing, and refusal of forged, tampered, replayed, expired, non-member ones."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak

from negotiation.messages import (
    HALF_ORDER,
    MAX_AMOUNT,
    MAX_NONCE,
    Domain,
    MessageGuard,
    MessageRefused,
    new_id,
    new_nonce,
    parse,
    recover_signer,
    sign,
    to_wire,
)

DOMAIN = Domain(name="Hangzhou consortium", chain_id=31337, registry="0x5FbDB2315678afecb367f032d93F642f64180aa3")
REQUESTER = Account.create()
SUPPLIER = Account.create()
OUTSIDER = Account.create()
NOW = 1_800_000_000


def invitation(**over: Any) -> dict[str, Any]:
    msg = {
        "id": new_id(),
        "requester": REQUESTER.address,
        "sku": "FORMULA-900G",
        "quantity": 200,
        "neededBy": NOW + 86_400,
        "minShelfLifeDays": 90,
        "radiusKm": 50,
        "scenario": "routine_replenishment",
        "customerTier": "standard",
        "urgent": False,
        "ruleVersion": "1",
        "nonce": new_nonce(),
        "deadline": NOW + 3600,
    }
    msg.update(over)
    return msg


def key(account: Any) -> str:
    return "0x" + bytes(account.key).hex()


def guard(members: set[str] | None = None) -> MessageGuard:
    allowed = members if members is not None else {REQUESTER.address, SUPPLIER.address}
    return MessageGuard(DOMAIN, lambda a: a in allowed, lambda: NOW)


class Seen:
    def __init__(self) -> None:
        self.pairs: set[tuple[str, int]] = set()

    def __call__(self, signer: str, nonce: int, _id: str) -> bool:
        if (signer, nonce) in self.pairs:
            return False
        self.pairs.add((signer, nonce))
        return True


def test_eth_account_reproduces_the_eip712_mail_vector() -> None:
    mail = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
            "Mail": [
                {"name": "from", "type": "Person"},
                {"name": "to", "type": "Person"},
                {"name": "contents", "type": "string"},
            ],
        },
        "primaryType": "Mail",
        "domain": {
            "name": "Ether Mail",
            "version": "1",
            "chainId": 1,
            "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC",
        },
        "message": {
            "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
            "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
            "contents": "Hello, Bob!",
        },
    }
    signed = Account.from_key(keccak(text="cow")).sign_message(encode_typed_data(full_message=mail))
    assert signed.v == 28
    assert signed.r == 0x4355C47D63924E8A72E509B65029052EB6C299D53A04E167C5775FD466751C9D
    assert signed.s == 0x07299936D304C153F6443DFA05F40FF007D72911B6F72307F996231605B91562


def test_a_signed_member_message_is_admitted_once() -> None:
    env = sign(DOMAIN, "Invitation", invitation(), key(REQUESTER)).as_json()
    seen = Seen()
    assert guard().admit(env, seen).message["requester"] == REQUESTER.address
    with pytest.raises(MessageRefused) as err:
        guard().admit(env, seen)
    assert err.value.reason == "replayed"


def test_forged_signature_is_refused() -> None:
    # The supplier signs a message that claims to come from the requester.
    msg = invitation()
    forged = sign(DOMAIN, "Invitation", {**msg, "requester": SUPPLIER.address}, key(SUPPLIER)).as_json()
    forged["message"]["requester"] = REQUESTER.address
    with pytest.raises(MessageRefused) as err:
        guard().admit(forged, Seen())
    assert err.value.reason == "bad_signature"


def test_tampered_content_is_refused() -> None:
    env = sign(DOMAIN, "Invitation", invitation(), key(REQUESTER)).as_json()
    env["message"]["quantity"] = "2000"
    with pytest.raises(MessageRefused) as err:
        guard().admit(env, Seen())
    assert err.value.reason == "bad_signature"


def test_other_domain_does_not_verify() -> None:
    env = sign(DOMAIN, "Invitation", invitation(), key(REQUESTER))
    other = Domain(DOMAIN.name, 1, DOMAIN.registry)
    assert recover_signer(other, env.type, env.message, env.signature) != REQUESTER.address


def test_expired_message_is_refused() -> None:
    env = sign(DOMAIN, "Invitation", invitation(deadline=NOW - 1), key(REQUESTER)).as_json()
    with pytest.raises(MessageRefused) as err:
        guard().admit(env, Seen())
    assert err.value.reason == "expired"


def test_non_member_is_refused_and_nothing_is_remembered() -> None:
    env = sign(DOMAIN, "Invitation", invitation(requester=OUTSIDER.address), key(OUTSIDER)).as_json()
    seen = Seen()
    with pytest.raises(MessageRefused) as err:
        guard().admit(env, seen)
    assert err.value.reason == "not_a_member"
    assert seen.pairs == set()


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"quantity": "-1"}, "quantity"),
        ({"quantity": "1.5"}, "quantity"),
        ({"quantity": "0200"}, "quantity"),
        ({"quantity": 200}, "quantity"),  # a uint64 travels as a decimal string, never as a JSON number
        ({"quantity": str(2**53)}, "quantity"),  # beyond the amounts any JSON reader holds
        ({"nonce": str(2**63)}, "nonce"),  # beyond a signed 64-bit column
        ({"radiusKm": "50"}, "radiusKm"),  # a uint32 travels as a JSON number
        ({"radiusKm": 2**32}, "radiusKm"),
        ({"id": "0x12"}, "id"),
        ({"requester": "not-an-address"}, "requester"),
        ({"radiusKm": True}, "radiusKm"),
    ],
)
def test_malformed_messages_are_refused_with_the_field_named(change: dict[str, Any], where: str) -> None:
    env = sign(DOMAIN, "Invitation", invitation(), key(REQUESTER)).as_json()
    env["message"].update(change)
    with pytest.raises(MessageRefused) as err:
        guard().admit(env, Seen())
    assert err.value.reason == "malformed" and where in err.value.message


def test_unknown_type_and_missing_fields_are_refused() -> None:
    with pytest.raises(MessageRefused, match="unknown message type"):
        guard().admit({"type": "Bribe", "message": {}, "signature": "0x"}, Seen())
    env = sign(DOMAIN, "Invitation", invitation(), key(REQUESTER)).as_json()
    del env["message"]["deadline"]
    with pytest.raises(MessageRefused, match="missing"):
        guard().admit(env, Seen())


@pytest.mark.parametrize(
    "signature",
    ["0x", "0x" + "00" * 65, "0x" + "ff" * 65, "0x" + "00" * 64 + "1b", "0x" + "ab" * 64, "not hex at all"],
    ids=["empty", "zeros", "beyond-the-curve", "zero-r-s", "64-bytes", "text"],
)
def test_signatures_no_key_made_are_refused_as_bad_signature(signature: str) -> None:
    with pytest.raises(MessageRefused) as refused:
        recover_signer(DOMAIN, "Invitation", invitation(), signature)
    assert refused.value.reason == "bad_signature"


def test_a_moment_beyond_the_year_2999_is_malformed_not_an_overflow() -> None:
    with pytest.raises(MessageRefused) as refused:
        wire = {**to_wire("Invitation", invitation()), "neededBy": str(2**64 - 1)}
        parse({"type": "Invitation", "message": wire, "signature": "0x" + "00" * 65})
    assert refused.value.reason == "malformed" and "neededBy" in refused.value.message


def test_uint64_fields_travel_as_decimal_strings_and_come_back_as_the_same_integers() -> None:
    signed = sign(DOMAIN, "Invitation", invitation(quantity=MAX_AMOUNT, nonce=MAX_NONCE), key(REQUESTER))
    wire = signed.as_json()["message"]
    assert wire["quantity"] == str(MAX_AMOUNT) and wire["nonce"] == str(MAX_NONCE)
    assert wire["radiusKm"] == 50 and wire["urgent"] is False
    assert parse(signed.as_json()).message == signed.message
    assert guard().admit(signed.as_json(), Seen()).message["nonce"] == MAX_NONCE


def test_nodes_sign_with_low_s_and_v_27_or_28() -> None:
    for _ in range(64):
        signature = sign(DOMAIN, "Invitation", invitation(), key(REQUESTER)).signature
        assert int(signature[66:130], 16) <= HALF_ORDER and int(signature[130:], 16) in (27, 28)


def _twins(signature: str) -> dict[str, str]:
    """Other encodings of the same ECDSA signature: v as 0/1, and (r, n - s) with v flipped."""
    n = 2 * HALF_ORDER + 1
    r, s, v = signature[2:66], int(signature[66:130], 16), int(signature[130:], 16)
    return {
        "v_as_0_or_1": f"0x{r}{s:064x}{v - 27:02x}",
        "high_s": f"0x{r}{n - s:064x}{55 - v:02x}",
    }


@pytest.mark.parametrize("variant", ["v_as_0_or_1", "high_s"])
def test_a_malleated_twin_of_a_valid_signature_is_refused(variant: str) -> None:
    signed = sign(DOMAIN, "Invitation", invitation(), key(REQUESTER))
    twin = _twins(signed.signature)[variant]
    with pytest.raises(MessageRefused) as refused:
        guard().admit({**signed.as_json(), "signature": twin}, Seen())
    assert refused.value.reason == "bad_signature"
    assert guard().admit(signed.as_json(), Seen()).signature == signed.signature
