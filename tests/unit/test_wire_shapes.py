"""The TypedDicts in negotiation/wire.py are the wire shapes of MESSAGE_TYPES, field by field and in order."""

from __future__ import annotations

import re
from typing import get_type_hints, is_typeddict

import pytest

from negotiation import wire
from negotiation.messages import MESSAGE_TYPES, MessageRefused, SignedMessage
from negotiation.wire import MESSAGE_SHAPES, InvitationMessage, OfferMessage

SIGNED_TYPES = sorted(t for t in MESSAGE_TYPES if t != "EIP712Domain")


def python_type(solidity: str) -> type:
    if re.fullmatch(r"u?int\d*", solidity):
        return int
    if solidity in ("address", "string") or re.fullmatch(r"bytes\d+", solidity):
        return str
    if solidity == "bool":
        return bool
    raise AssertionError(f"no Python type for Solidity type {solidity!r}: extend python_type and wire.py")


def test_one_shape_per_message_type_and_no_other() -> None:
    assert sorted(MESSAGE_SHAPES) == SIGNED_TYPES
    declared = {v for v in vars(wire).values() if is_typeddict(v) and v.__module__ == wire.__name__}
    assert declared == set(MESSAGE_SHAPES.values()), "a TypedDict in wire.py without an EIP-712 type"


@pytest.mark.parametrize("type_", SIGNED_TYPES)
def test_shape_matches_eip712_fields(type_: str) -> None:
    shape = MESSAGE_SHAPES[type_]
    assert is_typeddict(shape)
    assert shape.__name__ == f"{type_}Message"
    expected = [(f["name"], python_type(f["type"])) for f in MESSAGE_TYPES[type_]]
    assert list(get_type_hints(shape).items()) == expected
    assert shape.__required_keys__ == {name for name, _ in expected}  # type: ignore[attr-defined]


def _signed(type_: str, message: dict[str, object]) -> SignedMessage:
    return SignedMessage(type_, dict(message), "0x")


def test_as_returns_the_same_dict_typed() -> None:
    msg = _signed("Offer", {"unitPrice": 12})
    offer = msg.as_(OfferMessage)
    assert offer is msg.message
    assert offer["unitPrice"] == 12


def test_as_refuses_another_types_shape() -> None:
    with pytest.raises(TypeError, match="Offer message is not a InvitationMessage"):
        _signed("Offer", {}).as_(InvitationMessage)
    with pytest.raises(TypeError):
        _signed("Offer", {}).as_(dict)


def test_message_refused_still_carries_reason() -> None:
    e = MessageRefused("expired", "too late")
    assert (e.reason, e.message, str(e)) == ("expired", "too late", "too late")
