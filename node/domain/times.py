"""Record time: one text form for every moment a node writes or compares, so text order is time order."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now_iso() -> str:
    """Record time: ISO-8601 UTC with microseconds and a Z, so text order is time order."""
    return utc_iso(datetime.now(UTC))


def utc_iso(moment: datetime) -> str:
    """`moment` written as record times are (utc_now_iso), to compare with them as text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def normalize_time(text: str) -> str:
    """Any ISO-8601 time (a date, 'Z' or an offset, with or without fractions) in record time's form.

    Record times compare as text only when they share one form; "...00Z" would sort after "...00.5Z".
    """
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
