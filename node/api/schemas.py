"""What the HTTP API accepts: strict types so that bad input is refused before it touches the pool."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, field_validator
from web3 import Web3

from negotiation.rules.names import Scenario
from node.domain.ledger import StockStatus

Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")]
Status = Literal["available", "reserved", "quarantine", "damaged", "expired"]


def _real_date(value: str) -> str:
    """A pattern lets 9999-99-99 through; only a date that exists is stored (a worker reads every row back)."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise ValueError(f"{value!r} lies outside the years {MIN_YEAR}-{MAX_YEAR}")
    return value


# Every integer the API takes goes into records that auditors parse in any language: it stays within the
# integers a JSON reader using IEEE doubles (JavaScript's JSON.parse) reads exactly (docs/proof-format.md).
MAX_SAFE = 2**53 - 1
# Shelf life and day counts travel as uint32 in signed messages; a century is more than any stock needs.
MAX_DAYS = 36_500

# Dates a business record can carry: wide enough for expiries of long-lived stock, narrow enough that every
# date converts to unix seconds and back in any language.
MIN_YEAR, MAX_YEAR = 1970, 2999
IsoDate = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$"), AfterValidator(_real_date)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _checksum(value: str | None) -> str | None:
    if value is None:
        return None
    if not Web3.is_address(value):
        raise ValueError(f"{value!r} is not an Ethereum address")
    return str(Web3.to_checksum_address(value))


class SkuIn(Strict):
    code: Code
    name: str = Field(min_length=1, max_length=200)
    unit: str = Field(default="each", min_length=1, max_length=16)
    transfer_price: StrictInt = Field(default=0, ge=0, le=MAX_SAFE, description="per unit to partners, minor units")
    purchase_price: StrictInt = Field(
        default=0, ge=0, le=MAX_SAFE, description="last paid to the vendor per unit, minor units"
    )
    sale_price: StrictInt = Field(default=0, ge=0, le=MAX_SAFE, description="to its customers per unit, minor units")


class LocationIn(Strict):
    code: Code
    name: str = Field(min_length=1, max_length=200)
    # Degrees as decimals (JSON numbers or strings), at most 6 places: stored exactly as microdegrees.
    lat: Decimal = Field(ge=-90, le=90, decimal_places=6, allow_inf_nan=False)
    lon: Decimal = Field(ge=-180, le=180, decimal_places=6, allow_inf_nan=False)
    kind: Literal["warehouse", "store", "hub"] = "warehouse"


class LotIn(Strict):
    sku: Code
    code: Code
    expires_on: IsoDate | None = None


class EvidenceIn(Strict):
    source: str = Field(min_length=1, max_length=200)
    reference: str = Field(min_length=1, max_length=200)


class _MovementBase(Strict):
    sku: Code
    lot: Code
    location: Code
    owner: str | None = None
    holder: str | None = None
    evidence: list[EvidenceIn] = Field(default_factory=list, max_length=20)
    memo: str = Field(default="", max_length=500)
    corrects: StrictInt | None = Field(default=None, ge=1, le=MAX_SAFE)

    _owner = field_validator("owner", "holder")(_checksum)


class ReceiptIn(_MovementBase):
    type: Literal["receipt"]
    quantity: StrictInt = Field(gt=0, le=MAX_SAFE)
    status: Status = StockStatus.AVAILABLE.value
    expires_on: IsoDate | None = None


class IssueIn(_MovementBase):
    type: Literal["issue"]
    quantity: StrictInt = Field(gt=0, le=MAX_SAFE)
    status: Status = StockStatus.AVAILABLE.value
    unit_price: StrictInt | None = Field(
        default=None,
        ge=0,
        le=MAX_SAFE,
        description="what one unit sold at, minor units (absent from the record if not)",
    )


class MoveIn(_MovementBase):
    type: Literal["move"]
    quantity: StrictInt = Field(gt=0, le=MAX_SAFE)
    to_location: Code
    status: Status = StockStatus.AVAILABLE.value


class StatusChangeIn(_MovementBase):
    type: Literal["status_change"]
    quantity: StrictInt = Field(gt=0, le=MAX_SAFE)
    status: Status
    to_status: Status


class AdjustmentIn(_MovementBase):
    type: Literal["adjustment"]
    # Signed: a count found 3 short is -3. Zero is refused by the ledger rules.
    quantity: StrictInt = Field(ge=-MAX_SAFE, le=MAX_SAFE)
    status: Status = StockStatus.AVAILABLE.value


class BuyOutIn(_MovementBase):
    """Consigned stock this node holds and buys from its owner (named in `owner`): it becomes this node's."""

    type: Literal["buy_out"]
    quantity: StrictInt = Field(gt=0, le=MAX_SAFE)
    status: Status = StockStatus.AVAILABLE.value


MovementIn = Annotated[
    ReceiptIn | IssueIn | MoveIn | StatusChangeIn | AdjustmentIn | BuyOutIn, Field(discriminator="type")
]


# A WMS or POS syncs a shift's movements at once; 1,000 of the largest movements stay well inside MAX_BODY_BYTES.
MAX_BATCH_MOVEMENTS = 1000


class MovementBatchIn(Strict):
    """Movements written in order, all or none."""

    movements: list[MovementIn] = Field(min_length=1, max_length=MAX_BATCH_MOVEMENTS)


class InvitationIn(Strict):
    sku: Code
    quantity: StrictInt = Field(gt=0, le=MAX_SAFE)
    needed_by: str = Field(description="ISO-8601 date or time by which the stock is needed")
    min_shelf_life_days: StrictInt = Field(default=0, ge=0, le=MAX_DAYS)
    radius_km: StrictInt | None = Field(default=None, gt=0, le=20_000)
    consignment: bool = Field(default=False, description="ownership stays with the supplier after receipt")
    scenario: Scenario = Field(default="routine_replenishment", description="the strategy matrix column")
    customer_tier: str | None = Field(default=None, description="one of the rule book's customer tiers")
    urgent: bool = False

    @field_validator("needed_by")
    @classmethod
    def _iso(cls, value: str) -> str:
        year = datetime.fromisoformat(value).year
        if not MIN_YEAR <= year <= MAX_YEAR:
            raise ValueError(f"{value!r} lies outside the years {MIN_YEAR}-{MAX_YEAR}")
        return value

    def needed_by_unix(self) -> int:
        moment = datetime.fromisoformat(self.needed_by)
        return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


class ReceiveIn(Strict):
    quantity: StrictInt = Field(ge=0, le=MAX_SAFE, description="what actually arrived")
    location: Code


class ReplenishmentIn(Strict):
    sku: Code
    location: Code
    quantity: StrictInt = Field(gt=0, le=MAX_SAFE)
    requested_on: IsoDate | None = Field(default=None, description="default: today")
    min_shelf_life_days: StrictInt = Field(default=0, ge=0, le=MAX_DAYS)


class DisputeIn(Strict):
    subject: str = Field(
        pattern=r"^0x[0-9a-fA-F]{64}$", description="a transfer (acceptance) id, offer id or record leaf"
    )
    reason: str = Field(min_length=1, max_length=256)
    claim_amount: StrictInt = Field(default=0, ge=0, le=MAX_SAFE, description="minor units")
    respondent: str | None = Field(default=None, pattern=r"^0x[0-9a-fA-F]{40}$", description="if not a transfer/offer")


class CheckIn(Strict):
    today: IsoDate | None = None


class TryIn(Strict):
    book: dict[str, Any]
    start: date = Field(alias="from")
    end: date = Field(alias="to")
    against: str | None = None


class PeriodIn(BaseModel):
    """A settlement period: two dates, UTC, both included (docs/settlement.md, section 0)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: IsoDate = Field(alias="from")
    end: IsoDate = Field(alias="to")
    corrects: str | None = Field(
        default=None,
        pattern=r"^0x[0-9a-f]{64}$",
        description="a final statement this one corrects: its flows are given back and its references restated",
    )


class FlowKeyIn(BaseModel):
    """A flow of a statement, by its key in the statement's `flows` (docs/settlement.md, section 5)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    kind: str = Field(min_length=1, max_length=64)
    reference: str = Field(min_length=1, max_length=256)
    payer: str = Field(alias="from", pattern=r"^0x[0-9a-fA-F]{40}$")
    payee: str = Field(alias="to", pattern=r"^0x[0-9a-fA-F]{40}$")


class StatementDisputeIn(Strict):
    """Why this member's operator disputes a statement, and the flows it contests (none: the whole of it)."""

    reason: str = Field(min_length=1, max_length=256)
    lines: list[FlowKeyIn] = Field(default=[], max_length=40)


class StatementWithdrawalIn(Strict):
    reason: str = Field(default="", max_length=256)


Member = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{40}$", description="a member's address")]
Money = Annotated[int, Field(ge=0, le=MAX_SAFE, strict=True, description="minor units")]


def _moment(value: str) -> str:
    year = datetime.fromisoformat(value).year
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ValueError(f"{value!r} lies outside the years {MIN_YEAR}-{MAX_YEAR}")
    return value


def _unix(value: str) -> int:
    moment = datetime.fromisoformat(value)
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


class ParticipantIn(Strict):
    member: Member
    units: StrictInt = Field(gt=0, le=MAX_SAFE)


class JointPurchaseIn(Strict):
    sku: Code
    lot: Code
    reference: str = Field(min_length=1, max_length=200, description="the purchase order with the vendor")
    total_cost: Money = Field(description="what the vendor is paid for every unit, minor units")
    participants: list[ParticipantIn] = Field(
        min_length=1, max_length=100, description="the buyer too, if it takes units"
    )

    @field_validator("participants")
    @classmethod
    def _distinct(cls, value: list[ParticipantIn]) -> list[ParticipantIn]:
        members = [p.member.lower() for p in value]
        if len(set(members)) != len(members):
            raise ValueError("each participant is named once")
        return value

    def units(self) -> dict[str, int]:
        return {str(_checksum(p.member)): p.units for p in self.participants}


class LoanRequestIn(Strict):
    lender: Member
    sku: Code
    quantity: StrictInt = Field(gt=0, le=MAX_SAFE)
    location: Code = Field(description="where the borrower keeps the parts")
    max_fee_per_unit_day: Money
    max_unit_sale_price: Money = Field(description="the most paid for a unit kept past the due time")
    return_by: str = Field(description="ISO-8601 time by which the parts go back (their due time)")

    _check_return_by = field_validator("return_by")(_moment)

    def return_by_unix(self) -> int:
        return _unix(self.return_by)


class LendIn(Strict):
    lot: Code
    from_location: Code
    fee_per_unit_day: Money
    unit_sale_price: Money


class GiveBackIn(Strict):
    quantity: StrictInt = Field(gt=0, le=MAX_SAFE)
    location: Code | None = Field(default=None, description="where the parts are taken from (default: the loan's)")


class SiweIn(Strict):
    """A Sign-In with Ethereum: the EIP-4361 message and its `personal_sign` signature (docs/protocol.md)."""

    message: str = Field(min_length=1, max_length=4096)
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$", description="65 bytes, hex")
