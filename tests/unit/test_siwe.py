"""chain/siwe.py: EIP-4361 messages parsed and rendered byte for byte (the spec's example), each malformed field
named, and each check that needs no state refused with its reason."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from hypothesis import given
from hypothesis import strategies as st

from chain.siwe import (
    SiweExpectation,
    SiweMalformed,
    SiweMessage,
    SiweReason,
    SiweRejected,
    check_message,
)

# The example message of EIP-4361.
SPEC_EXAMPLE = (
    "service.org wants you to sign in with your Ethereum account:\n"
    "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2\n"
    "\n"
    "I accept the ServiceOrg Terms of Service: https://service.org/tos\n"
    "\n"
    "URI: https://service.org/login\n"
    "Version: 1\n"
    "Chain ID: 1\n"
    "Nonce: 32891756\n"
    "Issued At: 2021-09-30T16:25:24Z\n"
    "Resources:\n"
    "- ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/\n"
    "- https://example.com/my-web2-claim.json"
)
KEY = "0x" + "11" * 32
ADDRESS = Account.from_key(KEY).address
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
EXPECTED = SiweExpectation(domain="node.example:8000", uri="https://node.example:8000", chain_id=31337)


def _message(**changes: object) -> SiweMessage:
    base = SiweMessage(
        domain="node.example:8000",
        address=ADDRESS,
        uri="https://node.example:8000",
        chain_id=31337,
        nonce="abcdef123456",
        issued_at="2026-01-01T11:59:00Z",
        statement="Sign in to the consortium node.",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _sign(text: str, key: str = KEY) -> str:
    return "0x" + bytes(Account.sign_message(encode_defunct(text=text), key).signature).hex()


def test_the_spec_example_parses_and_renders_byte_for_byte() -> None:
    message = SiweMessage.parse(SPEC_EXAMPLE)
    assert message.domain == "service.org" and message.chain_id == 1 and message.nonce == "32891756"
    assert message.address == "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
    assert message.statement == "I accept the ServiceOrg Terms of Service: https://service.org/tos"
    assert message.resources == (
        "ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/",
        "https://example.com/my-web2-claim.json",
    )
    assert message.text() == SPEC_EXAMPLE


def test_optional_fields_and_no_statement_round_trip() -> None:
    message = _message(
        statement=None,
        scheme="https",
        expiration_time="2026-01-01T13:00:00.000Z",
        not_before="2026-01-01T11:00:00+00:00",
        request_id="req 1",
    )
    text = message.text()
    assert "account:\n" + ADDRESS + "\n\n\nURI: " in text  # no statement: two empty lines
    assert SiweMessage.parse(text) == message


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (SPEC_EXAMPLE.replace("wants you", "asks you"), "first line"),
        (
            SPEC_EXAMPLE.replace(
                "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
            ),
            "EIP-55",
        ),
        (SPEC_EXAMPLE.replace("Version: 1", "Version: 2"), "version"),
        (SPEC_EXAMPLE.replace("Nonce: 32891756", "Nonce: 1234"), "nonce"),
        (SPEC_EXAMPLE.replace("Chain ID: 1", "Chain ID: x"), "chain id"),
        (SPEC_EXAMPLE.replace("2021-09-30T16:25:24Z", "2021-09-30 16:25"), "RFC 3339"),
        (SPEC_EXAMPLE.replace("2021-09-30T16:25:24Z", "2021-02-30T16:25:24Z"), "exists"),
        (SPEC_EXAMPLE.replace("Version: 1\nChain ID: 1\n", "Chain ID: 1\nVersion: 1\n"), "order"),
        (SPEC_EXAMPLE.replace("URI: https://service.org/login", "URI: not a uri"), "URI"),
        (SPEC_EXAMPLE.replace("- https://example.com", "* https://example.com"), "resource"),
        (SPEC_EXAMPLE + "\nExtra: 1", "resource"),
        (SPEC_EXAMPLE.replace("Resources:", "Stuff:"), "unexpected line"),
        ("hello", "first line"),
    ],
)
def test_a_malformed_message_is_refused_naming_what_is_wrong(text: str, named: str) -> None:
    with pytest.raises(SiweMalformed, match=named):
        SiweMessage.parse(text)


def test_a_good_message_passes_the_checks() -> None:
    message = _message(expiration_time="2026-01-01T12:30:00Z")
    check_message(message, _sign(message.text()), EXPECTED, NOW)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"domain": "other.example:8000"}, SiweReason.WRONG_DOMAIN),
        ({"uri": "https://other.example:8000"}, SiweReason.WRONG_URI),
        ({"chain_id": 1}, SiweReason.WRONG_CHAIN),
        ({"issued_at": "2026-01-01T12:02:00Z"}, SiweReason.ISSUED_IN_FUTURE),
        ({"not_before": "2026-01-01T12:05:00Z"}, SiweReason.NOT_YET_VALID),
        ({"expiration_time": "2026-01-01T12:00:00Z"}, SiweReason.MESSAGE_EXPIRED),
    ],
)
def test_each_check_refuses_with_its_reason(changes: dict[str, object], reason: SiweReason) -> None:
    message = _message(**changes)
    with pytest.raises(SiweRejected) as refused:
        check_message(message, _sign(message.text()), EXPECTED, NOW)
    assert refused.value.reason == reason


def test_issued_within_the_skew_is_accepted() -> None:
    message = _message(issued_at="2026-01-01T12:00:59Z")
    check_message(message, _sign(message.text()), EXPECTED, NOW)


def test_an_altered_message_or_another_key_is_the_wrong_signer() -> None:
    message = _message()
    signature = _sign(message.text())
    with pytest.raises(SiweRejected) as altered:
        check_message(replace(message, nonce="zzzzzzzz9999"), signature, EXPECTED, NOW)
    assert altered.value.reason == SiweReason.WRONG_SIGNER
    with pytest.raises(SiweRejected) as other:
        check_message(message, _sign(message.text(), "0x" + "22" * 32), EXPECTED, NOW)
    assert other.value.reason == SiweReason.WRONG_SIGNER
    with pytest.raises(SiweRejected) as garbage:
        check_message(message, "0x1234", EXPECTED, NOW)
    assert garbage.value.reason == SiweReason.BAD_SIGNATURE


_LINE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=40).filter(
    lambda s: s == s.strip()
)
_TIMES = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)).map(
    lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")
)


@given(
    statement=st.none() | _LINE,
    nonce=st.from_regex(r"[A-Za-z0-9]{8,20}", fullmatch=True),
    chain_id=st.integers(1, 2**40),
    issued_at=_TIMES,
    expiration=st.none() | _TIMES,
    resources=st.lists(st.from_regex(r"https://[a-z]{1,10}\.org/[a-z0-9]{0,8}", fullmatch=True), max_size=3),
)
def test_any_message_round_trips(
    statement: str | None, nonce: str, chain_id: int, issued_at: str, expiration: str | None, resources: list[str]
) -> None:
    message = _message(
        statement=statement,
        nonce=nonce,
        chain_id=chain_id,
        issued_at=issued_at,
        expiration_time=expiration,
        resources=tuple(resources),
    )
    assert SiweMessage.parse(message.text()) == message
