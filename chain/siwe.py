"""Sign-In with Ethereum (EIP-4361): the message as text, parsed into a typed value and checked, with nothing
but the text, the signature and the values expected (no clock, no network: `now` is given).

The `siwe` package would pin web3 below 8, so the format is written here from the spec's ABNF:

    [scheme "://"] domain " wants you to sign in with your Ethereum account:" LF
    address LF LF [statement LF] LF
    "URI: " uri LF "Version: 1" LF "Chain ID: " chain-id LF "Nonce: " nonce LF "Issued At: " date-time
    [LF "Expiration Time: " date-time] [LF "Not Before: " date-time] [LF "Request ID: " request-id]
    [LF "Resources:" *(LF "- " uri)]

Times are kept as their text, so a parsed message renders back byte for byte (the signature covers the text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit

from eth_account import Account
from eth_account.messages import encode_defunct
from web3 import Web3

from chain.errors import SiweMalformed, SiweRejected

__all__ = [
    "SiweExpectation",
    "SiweMalformed",
    "SiweMessage",
    "SiweReason",
    "SiweRejected",
    "check_message",
    "moment",
    "recover_signer",
    "sign_in_message",
    "sign_text",
]

PREAMBLE = " wants you to sign in with your Ethereum account:"
_HEADER = re.compile(r"^(?:(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*)://)?(?P<domain>[^\s/?#]+)$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_NONCE = re.compile(r"^[A-Za-z0-9]{8,}$")
_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:\S+$")
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$")
_CHAIN_ID = re.compile(r"^[1-9][0-9]{0,18}$")
# The labelled lines after the statement, in the only order the spec allows: (label, required).
_FIELDS = (
    ("URI", True),
    ("Version", True),
    ("Chain ID", True),
    ("Nonce", True),
    ("Issued At", True),
    ("Expiration Time", False),
    ("Not Before", False),
    ("Request ID", False),
)


class SiweReason(StrEnum):
    """Why a well-formed message does not sign anyone in (each a 401 at the node)."""

    BAD_SIGNATURE = "bad_signature"
    WRONG_SIGNER = "wrong_signer"
    WRONG_DOMAIN = "wrong_domain"
    WRONG_URI = "wrong_uri"
    WRONG_CHAIN = "wrong_chain"
    ISSUED_IN_FUTURE = "issued_in_future"
    NOT_YET_VALID = "not_yet_valid"
    MESSAGE_EXPIRED = "message_expired"
    UNKNOWN_NONCE = "unknown_nonce"
    NOT_A_MEMBER = "not_a_member"


def moment(text: str) -> datetime:
    """An RFC 3339 date-time with its offset (the spec's `date-time`); SiweMalformed otherwise."""
    if not _DATE_TIME.match(text):
        raise SiweMalformed(f"{text!r} is not an RFC 3339 date-time with an offset")
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise SiweMalformed(f"{text!r} is not a date-time that exists") from None


@dataclass(frozen=True)
class SiweMessage:
    domain: str
    address: str
    uri: str
    chain_id: int
    nonce: str
    issued_at: str
    statement: str | None = None
    version: str = "1"
    expiration_time: str | None = None
    not_before: str | None = None
    request_id: str | None = None
    resources: tuple[str, ...] = field(default_factory=tuple)
    scheme: str | None = None

    def text(self) -> str:
        """The message as it is signed (EIP-191 `personal_sign` of these UTF-8 bytes)."""
        head = f"{self.scheme}://{self.domain}" if self.scheme else self.domain
        lines = [head + PREAMBLE, self.address, ""]
        lines += [self.statement, ""] if self.statement is not None else [""]
        values = (
            self.uri,
            self.version,
            str(self.chain_id),
            self.nonce,
            self.issued_at,
            self.expiration_time,
            self.not_before,
            self.request_id,
        )
        lines += [f"{label}: {value}" for (label, _), value in zip(_FIELDS, values, strict=True) if value is not None]
        if self.resources:
            lines += ["Resources:"] + [f"- {resource}" for resource in self.resources]
        return "\n".join(lines)

    @classmethod
    def parse(cls, text: str) -> SiweMessage:
        """The message `text` holds, every field checked for its form; SiweMalformed naming the first wrong one."""
        lines = text.split("\n")
        if not lines[0].endswith(PREAMBLE):
            raise SiweMalformed(f"the first line must end with {PREAMBLE.strip()!r}")
        if len(lines) < 9:
            raise SiweMalformed("too few lines: the fields URI to Issued At are required")
        header = _HEADER.match(lines[0].removesuffix(PREAMBLE))
        if header is None:
            raise SiweMalformed("the domain must be an authority (host[:port]), optionally after a scheme")
        address = lines[1]
        if not _ADDRESS.match(address) or not Web3.is_checksum_address(address):
            raise SiweMalformed("the address must be an EIP-55 checksummed Ethereum address")
        if lines[2] != "":
            raise SiweMalformed("the address must be followed by an empty line")
        statement, at = (None, 4) if lines[3] == "" else (lines[3], 5)
        if statement is not None and lines[4] != "":
            raise SiweMalformed("the statement must be one line, followed by an empty line")
        values, at = _labelled(lines, at)
        if not _CHAIN_ID.match(values["Chain ID"]):
            raise SiweMalformed("the chain id must be a positive decimal integer")
        resources = _resources(lines[at:])
        message = cls(
            domain=header.group("domain"),
            scheme=header.group("scheme"),
            address=address,
            statement=statement,
            uri=values["URI"],
            version=values["Version"],
            chain_id=int(values["Chain ID"]),
            nonce=values["Nonce"],
            issued_at=values["Issued At"],
            expiration_time=values.get("Expiration Time"),
            not_before=values.get("Not Before"),
            request_id=values.get("Request ID"),
            resources=resources,
        )
        _check_forms(message)
        return message


def _labelled(lines: list[str], at: int) -> tuple[dict[str, str], int]:
    values: dict[str, str] = {}
    for label, required in _FIELDS:
        prefix = f"{label}: "
        if at < len(lines) and lines[at].startswith(prefix):
            values[label] = lines[at].removeprefix(prefix)
            at += 1
        elif required:
            raise SiweMalformed(f"line {at + 1} must be {prefix!r}<value> (fields in the spec's order)")
    return values, at


def _resources(lines: list[str]) -> tuple[str, ...]:
    if not lines:
        return ()
    if lines[0] != "Resources:":
        raise SiweMalformed(f"unexpected line {lines[0]!r} after the fields (only 'Resources:' may follow)")
    resources = []
    for line in lines[1:]:
        resource = line.removeprefix("- ")
        if resource == line or not _URI.match(resource):
            raise SiweMalformed(f"a resource must be '- <uri>', not {line!r}")
        resources.append(resource)
    return tuple(resources)


def _check_forms(message: SiweMessage) -> None:
    if message.statement is not None and (not message.statement or "\n" in message.statement):
        raise SiweMalformed("the statement must be one non-empty line")
    if not _URI.match(message.uri):
        raise SiweMalformed("the URI must be an RFC 3986 URI")
    if message.version != "1":
        raise SiweMalformed("the version must be 1")
    if not _NONCE.match(message.nonce):
        raise SiweMalformed("the nonce must be at least 8 letters or digits")
    for text in (message.issued_at, message.expiration_time, message.not_before):
        if text is not None:
            moment(text)
    if message.request_id is not None and any(c.isspace() and c != " " for c in message.request_id):
        raise SiweMalformed("the request id must be one line")


def recover_signer(text: str, signature: str) -> str:
    """The address that signed `text` with `personal_sign` (EIP-191); SiweRejected if no address did."""
    try:
        return str(Account.recover_message(encode_defunct(text=text), signature=signature))
    except Exception as exc:  # eth_account raises several types for bytes that are no signature
        raise SiweRejected(SiweReason.BAD_SIGNATURE, f"the signature does not recover: {exc}") from None


@dataclass(frozen=True)
class SiweExpectation:
    """What a node requires of a message: its own URL and chain, and how much clock skew it forgives."""

    domain: str
    uri: str
    chain_id: int
    skew: timedelta = timedelta(seconds=60)


def check_message(message: SiweMessage, signature: str, expected: SiweExpectation, now: datetime) -> None:
    """The checks that need no state: signer, domain, URI, chain and times; SiweRejected with its reason."""
    if recover_signer(message.text(), signature) != message.address:
        raise SiweRejected(SiweReason.WRONG_SIGNER, "the signature is not the message's address's")
    if message.domain != expected.domain:
        raise SiweRejected(SiweReason.WRONG_DOMAIN, f"the domain must be {expected.domain!r}")
    if message.uri.rstrip("/") != expected.uri.rstrip("/"):
        raise SiweRejected(SiweReason.WRONG_URI, f"the URI must be {expected.uri!r}")
    if message.chain_id != expected.chain_id:
        raise SiweRejected(SiweReason.WRONG_CHAIN, f"the chain id must be {expected.chain_id}")
    if moment(message.issued_at) > now + expected.skew:
        raise SiweRejected(SiweReason.ISSUED_IN_FUTURE, "issued in the future beyond the allowed clock skew")
    if message.not_before is not None and moment(message.not_before) > now + expected.skew:
        raise SiweRejected(SiweReason.NOT_YET_VALID, "the message is not valid yet (Not Before)")
    if message.expiration_time is not None and moment(message.expiration_time) <= now:
        raise SiweRejected(SiweReason.MESSAGE_EXPIRED, "the message has expired (Expiration Time)")


def sign_in_message(
    node_url: str, address: str, chain_id: int, nonce: str, statement: str | None = None, now: datetime | None = None
) -> SiweMessage:
    """The message a node at `node_url` (as the registry lists it) accepts: its authority as the domain, the URL
    as the URI, issued `now` (default: the clock) and without an expiration (the node bounds the credential)."""
    issued = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return SiweMessage(
        domain=urlsplit(node_url).netloc,
        address=Web3.to_checksum_address(address),
        uri=node_url,
        chain_id=chain_id,
        nonce=nonce,
        issued_at=issued,
        statement=statement,
    )


def sign_text(text: str, private_key: str) -> str:
    """`personal_sign` (EIP-191) of `text`: 65 bytes as 0x-hex."""
    return "0x" + bytes(Account.sign_message(encode_defunct(text=text), private_key).signature).hex()
