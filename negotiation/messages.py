"""Signed messages between nodes: EIP-712 typed data, checked for signer, membership, replay and deadline.

docs/protocol.md is the normative description. Everything here is plain data in, plain data out, except
`MessageGuard.admit`, which takes the membership check and the replay store as arguments so that the
HTTP and database edges stay outside.
"""

from __future__ import annotations

import builtins
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from web3 import Web3

from chain.records import SignedCopy
from negotiation import eip712
from negotiation.errors import NegotiationError
from negotiation.wire import KIND_OF, MESSAGES, Eip712Field, MessageType, Refusal, message_type_of

PROTOCOL_VERSION = "1"
MAX_DEADLINE_SECONDS = 7 * 24 * 3600
# Signed messages one request may carry to a peer's batch inbox (docs/protocol.md, "Batches").
MAX_MESSAGES_PER_BATCH = 100

# The tables every check reads, derived from the declarations in negotiation/wire.py.
MESSAGE_TYPES: dict[MessageType, list[Eip712Field]] = {k.type: list(k.eip712) for k in MESSAGES}
SIGNER_FIELD: dict[MessageType, str] = {k.type: k.signer for k in MESSAGES}
TEXT_CHARS_OF: dict[MessageType, dict[str, int]] = {k.type: k.text_chars for k in MESSAGES}

_UINT_BITS = {"uint32": 32, "uint64": 64}
# On the wire a uint64 travels as a decimal string and a uint32 as a JSON number: JavaScript's JSON.parse
# (ethers, viem) keeps only 53 bits of an integer, and a nonce uses 63.
WIRE_STRING = "uint64"
DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")
# Quantities and money in a message stay within what the node's API and its records promise (docs/proof-format.md):
# integers any JSON reader holds exactly.
MAX_AMOUNT = 2**53 - 1
# A nonce fits a signed 64-bit database column (the replay memory).
MAX_NONCE = 2**63 - 1

T = TypeVar("T")

SIGNATURE = re.compile(r"0x[0-9a-fA-F]{130}")
BYTES32 = re.compile(r"0x[0-9a-fA-F]{64}")  # not bytes.fromhex: it takes spaces
HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0  # secp256k1 n // 2
# Fields that are moments (unix seconds): a date any implementation can convert, up to the end of year 2999.
MOMENTS = ("neededBy", "deadline", "returnBy", "lentAt", "dueAt")
LAST_MOMENT = 32_503_679_999


class MessageRefused(NegotiationError):
    """A message the receiving node will not act on; `reason` is a stable code for the 4xx body."""

    def __init__(self, reason: Refusal, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Domain:
    """EIP-712 domain: the consortium's name, protocol version, chain id and the member registry."""

    name: str
    chain_id: int
    registry: str
    version: str = PROTOCOL_VERSION

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": Web3.to_checksum_address(self.registry),
        }


@dataclass(frozen=True)
class SignedMessage:
    type: MessageType
    message: dict[str, Any]
    signature: str

    @property
    def signer_claimed(self) -> str:
        return str(self.message[SIGNER_FIELD[self.type]])

    @property
    def replay_key(self) -> tuple[str, int, str]:
        """(signer, nonce, id): what a node's replay guard remembers of the message."""
        return self.signer_claimed, int(self.message["nonce"]), str(self.message["id"])

    def as_json(self) -> dict[str, Any]:
        """The envelope as it travels: uint64 fields as decimal strings (docs/protocol.md, section 1)."""
        return {"type": self.type, "message": to_wire(self.type, self.message), "signature": self.signature}

    def wire_message(self) -> dict[str, Any]:
        """The message as it travels and as records copy it: every integer is one any JSON reader holds."""
        return to_wire(self.type, self.message)

    def signed_copy(self) -> SignedCopy:
        """The message as a record copies it: its wire form and its signature (chain/records.py)."""
        return {**self.wire_message(), "signature": self.signature}

    def as_(self, shape: builtins.type[T]) -> T:  # builtins: the field `type` shadows it here
        """The message, statically typed as its wire shape (negotiation/wire.py), e.g.
        `msg.as_(OfferMessage)`. The same dict, not a copy; TypeError if `shape` is not this type's."""
        if KIND_OF[self.type].shape is not shape:
            raise TypeError(f"a {self.type} message is not a {getattr(shape, '__name__', shape)}")
        return cast(T, self.message)


def new_id() -> str:
    return "0x" + secrets.token_bytes(32).hex()


def new_nonce() -> int:
    # Random 63-bit nonces need no counter shared between a node's processes; replays are caught by
    # remembering (signer, nonce) pairs.
    return secrets.randbits(63)


def to_wire(type_: MessageType, message: Mapping[str, Any]) -> dict[str, Any]:
    """A checked message in its wire form: each uint64 as its decimal string, everything else as it is."""
    kinds = {f["name"]: f["type"] for f in MESSAGE_TYPES[type_]}
    return {k: str(v) if kinds[k] == WIRE_STRING else v for k, v in message.items()}


def _uint_of(value: Any, kind: str, where: str, wire: bool) -> int:
    """The integer a uint field holds: a decimal string on the wire for uint64, a JSON number otherwise."""
    if wire and kind == WIRE_STRING:
        if not isinstance(value, str) or not DECIMAL.fullmatch(value):
            raise MessageRefused(
                Refusal.MALFORMED, f"{where} must be a {kind} as a decimal string (no sign, no leading 0)"
            )
        return int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise MessageRefused(Refusal.MALFORMED, f"{where} must be a {kind} as a JSON integer")
    return value


def _uint_bound(name: str, kind: str) -> tuple[int, str]:
    if name == "nonce":
        return MAX_NONCE, "below 2^63"
    if name in MOMENTS:
        return LAST_MOMENT, "a moment before the year 3000 (unix seconds)"
    if kind == WIRE_STRING:
        return MAX_AMOUNT, "at most 2^53 - 1"
    return 2 ** _UINT_BITS[kind] - 1, f"at most 2^{_UINT_BITS[kind]} - 1"


def _validate_fields(type_: str, message: Mapping[str, Any], wire: bool = False) -> dict[str, Any]:
    """The message checked field by field and normalised; `wire` reads uint64 fields as decimal strings. `type_`
    may be the sender's text: one that names no declared type is refused."""
    known = message_type_of(type_)
    if known is None:
        raise MessageRefused(Refusal.UNKNOWN_TYPE, f"unknown message type {type_[:64]!r}")  # the sender's text, bounded
    fields = MESSAGE_TYPES[known]
    names = {f["name"] for f in fields}
    missing = names - set(message)
    extra = set(message) - names
    if missing or extra:
        raise MessageRefused(
            Refusal.MALFORMED,
            f"{type_}: missing {sorted(missing)}, unexpected {[k[:64] for k in sorted(extra)[:10]]}".replace(
                ", unexpected []", ""
            ),
        )
    clean: dict[str, Any] = {}
    for f in fields:
        value = message[f["name"]]
        kind = f["type"]
        where = f"{type_}.{f['name']}"
        if kind in _UINT_BITS:
            value = _uint_of(value, kind, where, wire)
            bound, said = _uint_bound(f["name"], kind)
            if not 0 <= value <= bound:
                raise MessageRefused(Refusal.MALFORMED, f"{where} must be {said}")
        elif kind == "bool":
            if not isinstance(value, bool):
                raise MessageRefused(Refusal.MALFORMED, f"{where} must be true or false")
        elif kind == "string":
            most = TEXT_CHARS_OF[known][f["name"]]
            if not isinstance(value, str) or len(value) > most:
                raise MessageRefused(Refusal.MALFORMED, f"{where} must be a string of at most {most} characters")
            try:
                value.encode("utf-8")  # what EIP-712 hashes: a lone surrogate has no UTF-8 form
            except UnicodeEncodeError as exc:
                raise MessageRefused(Refusal.MALFORMED, f"{where} holds a lone surrogate") from exc
        elif kind == "address":
            if not isinstance(value, str) or not Web3.is_address(value):
                raise MessageRefused(Refusal.MALFORMED, f"{where} must be an address")
            value = Web3.to_checksum_address(value)
        elif kind == "bytes32":
            if not isinstance(value, str) or not BYTES32.fullmatch(value):
                raise MessageRefused(Refusal.MALFORMED, f"{where} must be 0x and 64 hex digits")
            value = value.lower()
        clean[f["name"]] = value
    return clean


def typed_data(domain: Domain, type_: MessageType, message: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            type_: MESSAGE_TYPES[type_],
        },
        "primaryType": type_,
        "domain": domain.as_dict(),
        "message": dict(message),
    }


def signing_digest(domain: Domain, type_: MessageType, clean: Mapping[str, Any]) -> bytes:
    """The EIP-712 digest of a checked message (negotiation/eip712.py; equal to eth_account's, tested)."""
    separator = eip712.domain_separator(domain.name, domain.version, domain.chain_id, domain.registry)
    return eip712.digest(separator, type_, MESSAGE_TYPES[type_], clean)


def sign(domain: Domain, type_: MessageType, message: Mapping[str, Any], private_key: str) -> SignedMessage:
    clean = _validate_fields(type_, message)
    address = eip712.address_of(private_key)
    if clean[SIGNER_FIELD[type_]] != address:
        raise MessageRefused(Refusal.WRONG_SIGNER, f"{type_}.{SIGNER_FIELD[type_]} must be the signer's own address")
    signature = eip712.sign_digest(signing_digest(domain, type_, clean), private_key)
    return SignedMessage(type_, clean, "0x" + signature.hex())


def recover_signer(domain: Domain, type_: MessageType, message: Mapping[str, Any], signature: str) -> str:
    """The address that signed `message` (checked fields, integers as ints)."""
    clean = _validate_fields(type_, message)
    if not isinstance(signature, str) or not SIGNATURE.fullmatch(signature):
        raise MessageRefused(Refusal.BAD_SIGNATURE, "a signature is 0x and 65 bytes in hex (r, s, v)")
    s_value, v_value = int(signature[66:130], 16), int(signature[130:], 16)
    if v_value not in (27, 28) or s_value > HALF_ORDER:
        # One signature per message and signer (EIP-2's low s, v as 27/28): a malleated twin of a valid
        # signature is no second valid signature.
        raise MessageRefused(Refusal.BAD_SIGNATURE, "a signature has v 27 or 28 and s at most half the curve order")
    try:
        return eip712.recover(signing_digest(domain, type_, clean), bytes.fromhex(signature[2:]))
    except ValueError as exc:
        # All zeros, r or s beyond the curve order: no key signed it.
        raise MessageRefused(Refusal.BAD_SIGNATURE, f"signature cannot be recovered: {exc}") from exc


def from_wire(type_: str, message: Mapping[str, Any]) -> dict[str, Any]:
    """A message as it travels (uint64 fields as decimal strings), checked and with its integers as ints."""
    return _validate_fields(type_, message, wire=True)


def parse(envelope: Mapping[str, Any]) -> SignedMessage:
    try:
        type_, message, signature = envelope["type"], envelope["message"], envelope["signature"]
    except (KeyError, TypeError) as exc:
        raise MessageRefused(Refusal.MALFORMED, "an envelope is {type, message, signature}") from exc
    if not isinstance(type_, str) or not isinstance(message, dict) or not isinstance(signature, str):
        raise MessageRefused(Refusal.MALFORMED, "an envelope is {type: str, message: object, signature: hex}")
    clean = from_wire(type_, message)  # refuses a type no declaration names
    return SignedMessage(MessageType(type_), clean, signature)


class MessageGuard:
    """Admits a message only if it is well-formed, signed by the address it names, from a current
    member, before its deadline, and never seen before."""

    def __init__(
        self,
        domain: Domain,
        is_member: Callable[[str], bool],
        now: Callable[[], int],
        authority: Callable[[SignedMessage, str], bool | None] | None = None,
    ) -> None:
        self.domain = domain
        self.is_member = is_member
        self.now = now
        # For message types signed by a role rather than a member (a Ruling, by the rule book's
        # arbitrator): True or False decides; None falls back to membership.
        self.authority = authority

    def admit(self, envelope: Mapping[str, Any], remember: Callable[[str, int, str], bool]) -> SignedMessage:
        """`remember(signer, nonce, message_id)` stores the pair and returns False if it was already there."""
        return self.remember(self.verify(envelope), remember)

    @staticmethod
    def remember(msg: SignedMessage, remember: Callable[[str, int, str], bool]) -> SignedMessage:
        """The replay check alone: a node runs it inside the transaction that acts on the message, after
        `verify` ran outside it (membership is a chain call, never made while holding the write lock)."""
        if not remember(*msg.replay_key):
            m = msg.message
            raise MessageRefused(Refusal.REPLAYED, f"message {m['id']} (nonce {m['nonce']}) seen before")
        return msg

    def verify(self, envelope: Mapping[str, Any]) -> SignedMessage:
        """Everything but the replay check: well-formed, signed by whom it names, in time, by a member."""
        msg = parse(envelope)
        signer = recover_signer(self.domain, msg.type, msg.message, msg.signature)
        if signer != msg.signer_claimed:
            raise MessageRefused(Refusal.BAD_SIGNATURE, f"signed by {signer}, not by {msg.signer_claimed}")
        now = self.now()
        deadline = int(msg.message["deadline"])
        if deadline <= now:
            raise MessageRefused(Refusal.EXPIRED, f"deadline {deadline} has passed (now {now})")
        if deadline > now + MAX_DEADLINE_SECONDS:
            raise MessageRefused(Refusal.MALFORMED, f"deadline more than {MAX_DEADLINE_SECONDS} s ahead")
        decided = self.authority(msg, signer) if self.authority is not None else None
        if decided is False:
            raise MessageRefused(Refusal.NOT_AUTHORISED, f"{signer} may not sign a {msg.type}")
        if decided is None and not self.is_member(signer):
            raise MessageRefused(Refusal.NOT_A_MEMBER, f"{signer} is not a current member of the consortium")
        return msg
