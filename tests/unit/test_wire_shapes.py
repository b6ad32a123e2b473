"""Each signed message is declared once in negotiation/wire.py: its shapes, its EIP-712 fields with their Solidity
types in order, its signer field and its refusals; the tables the node reads derive from that declaration."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TypedDict, get_type_hints, is_typeddict

import pytest

from negotiation import wire
from negotiation.messages import MESSAGE_TYPES, SIGNER_FIELD, MessageRefused, SignedMessage
from negotiation.wire import (
    KIND_OF,
    MESSAGES,
    Address,
    Bytes32,
    InvitationMessage,
    MessageKind,
    MessageType,
    OfferMessage,
    Refusal,
    SignerAddress,
    Uint64,
    message_type_of,
)


def python_type(solidity: str) -> type:
    if re.fullmatch(r"u?int\d*", solidity):
        return int
    if solidity in ("address", "string") or re.fullmatch(r"bytes\d+", solidity):
        return str
    if solidity == "bool":
        return bool
    raise AssertionError(f"no Python type for Solidity type {solidity!r}: extend python_type and wire.py")


def test_every_message_type_is_declared_once_in_order() -> None:
    assert [k.type for k in MESSAGES] == list(MessageType)
    assert list(MESSAGE_TYPES) == list(MessageType) == list(SIGNER_FIELD)
    declared = {v for v in vars(wire).values() if is_typeddict(v) and v.__module__ == wire.__name__}
    shapes = {k.shape for k in MESSAGES} | {k.fields_shape for k in MESSAGES}
    assert declared - shapes == {wire.Eip712Field, wire._Head, wire._Tail}, "a TypedDict in wire.py of no message"


@pytest.mark.parametrize("kind", MESSAGES, ids=lambda k: str(k.type))
def test_python_types_agree_with_the_solidity_types(kind: MessageKind[object, object]) -> None:
    assert kind.shape.__name__ == f"{kind.type}Message" and kind.fields_shape.__name__ == f"{kind.type}Fields"
    expected = [(f["name"], python_type(f["type"])) for f in kind.eip712]
    assert list(get_type_hints(kind.shape).items()) == expected
    assert kind.shape.__required_keys__ == {name for name, _ in expected}  # type: ignore[attr-defined]
    # What a sender fills in is the message less the id, nonce and deadline the signer adds.
    assert list(get_type_hints(kind.fields_shape)) == [name for name, _ in expected][1:-2]
    assert [expected[0][0], *[n for n, _ in expected][-2:]] == ["id", "nonce", "deadline"]


@pytest.mark.parametrize("kind", MESSAGES, ids=lambda k: str(k.type))
def test_the_signer_is_an_address_field_and_refusals_start_with_the_guards(kind: MessageKind[object, object]) -> None:
    assert {"name": kind.signer, "type": "address"} in kind.eip712
    assert kind.refusals[: len(wire.EVERY_MESSAGE_REFUSALS)] == wire.EVERY_MESSAGE_REFUSALS
    assert len(set(kind.refusals)) == len(kind.refusals)
    assert (Refusal.RULE_VERSION in kind.refusals) >= kind.under_a_book


def test_a_field_without_its_solidity_type_is_refused_at_declaration() -> None:
    class LooseFields(TypedDict):
        sender: SignerAddress

    class LooseMessage(wire._Head, LooseFields, wire._Tail):
        amount: int  # no Solidity type: which EIP-712 type would it be signed as?

    with pytest.raises(TypeError, match="without its Solidity type"):
        MessageKind(MessageType.OFFER, LooseFields, LooseMessage, ())


def test_exactly_one_signer_field() -> None:
    class TwoFields(TypedDict):
        a: SignerAddress
        b: SignerAddress

    class TwoMessage(wire._Head, TwoFields, wire._Tail):
        pass

    class NoneFields(TypedDict):
        a: Address
        b: Bytes32
        c: Uint64

    class NoneMessage(wire._Head, NoneFields, wire._Tail):
        pass

    for fields, shape in ((TwoFields, TwoMessage), (NoneFields, NoneMessage)):
        with pytest.raises(TypeError, match="exactly one must sign"):
            MessageKind(MessageType.OFFER, fields, shape, ())


def test_a_senders_type_name_is_read_only_if_declared() -> None:
    assert message_type_of("Offer") is MessageType.OFFER
    assert message_type_of("offer") is None and message_type_of(3) is None and message_type_of(None) is None
    assert KIND_OF[MessageType.OFFER].signer == "supplier"


def _signed(type_: MessageType, message: dict[str, object]) -> SignedMessage:
    return SignedMessage(type_, dict(message), "0x")


def test_as_returns_the_same_dict_typed() -> None:
    msg = _signed(MessageType.OFFER, {"unitPrice": 12})
    offer = msg.as_(OfferMessage)
    assert offer is msg.message
    assert offer["unitPrice"] == 12


def test_as_refuses_another_types_shape() -> None:
    with pytest.raises(TypeError, match="Offer message is not a InvitationMessage"):
        _signed(MessageType.OFFER, {}).as_(InvitationMessage)
    with pytest.raises(TypeError):
        _signed(MessageType.OFFER, {}).as_(dict)


def test_message_refused_carries_its_reason() -> None:
    e = MessageRefused(Refusal.EXPIRED, "too late")
    assert (e.reason, e.message, str(e)) == ("expired", "too late", "too late")


def test_the_protocol_lists_every_type_as_declared() -> None:
    rows = [
        "| type | fields | signed by (must equal) | its step may also refuse with |",
        "|---|---|---|---|",
        *(
            f"| `{k.type}` | `{', '.join(f['type'] + ' ' + f['name'] for f in k.eip712)}` | `{k.signer}` | "
            + (", ".join(f"`{r}`" for r in k.refusals if r not in wire.EVERY_MESSAGE_REFUSALS) or "nothing")
            + " |"
            for k in MESSAGES
        ),
    ]
    doc = (Path(__file__).resolve().parents[2] / "docs/protocol.md").read_text()
    shown = doc.split("<!-- message-types:begin -->\n")[1].split("\n<!-- message-types:end -->")[0]
    assert shown.splitlines() == rows
