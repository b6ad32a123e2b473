"""Record bodies are declared once (chain/records.py): every record type's body, as nodes wrote it before the
declaration existed (testdata/records/golden.json), reads against it and rebuilds to the same bytes and leaf."""

from __future__ import annotations

import copy
import json
import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints, is_typeddict

import pytest

from chain.canonical import canonical_json, leaf_hash_of_canonical
from chain.records import (
    KIND_OF_TYPE,
    RECORD_FIELDS,
    LedgerRecord,
    RecordHead,
    RecordKind,
    RecordMalformed,
    RecordType,
    optional_keys,
    read_body,
    record_body,
)

GOLDEN = json.loads((Path(__file__).resolve().parents[2] / "testdata/records/golden.json").read_text())["records"]


def _split(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    head = {k: body[k] for k in RecordHead.__annotations__}
    return head, {k: v for k, v in body.items() if k not in head}


def test_the_golden_bodies_cover_every_record_type() -> None:
    assert {r["type"] for r in GOLDEN} == set(RecordType) == set(RECORD_FIELDS)


@pytest.mark.parametrize("golden", GOLDEN, ids=lambda r: r["type"])
def test_a_golden_body_reads_and_rebuilds_byte_for_byte(golden: dict[str, str]) -> None:
    body = json.loads(golden["body"])
    assert read_body(body) == body
    head, fields = _split(body)
    rebuilt = record_body(
        RecordKind(head["kind"]),
        head["node"],
        head["seq"],
        RecordType(head["type"]),
        head["at"],
        fields,  # type: ignore[arg-type]
    )
    canonical = canonical_json(rebuilt)
    assert canonical.decode("utf-8") == golden["body"]
    assert leaf_hash_of_canonical(canonical).hex() == golden["leaf"]


def _golden(type_: str) -> dict[str, Any]:
    return copy.deepcopy(json.loads(next(r["body"] for r in GOLDEN if r["type"] == type_)))


def test_a_missing_key_is_named() -> None:
    body = _golden("transfer_out")
    del body["transfer"]["unit_price"]
    with pytest.raises(RecordMalformed, match=r"transfer_out\.transfer: misses \['unit_price'\]"):
        read_body(body)


def test_an_absent_key_stays_absent_never_null() -> None:
    body = _golden("transfer_out")
    body["transfer"]["received"] = None  # a key transfer_out never had
    with pytest.raises(RecordMalformed, match="holds \\['received'\\]"):
        read_body(body)


def test_a_present_key_stays_present_even_null() -> None:
    body = _golden("receipt")
    assert body["corrects"] is None
    read_body(body)
    del body["corrects"]
    with pytest.raises(RecordMalformed, match="misses \\['corrects'\\]"):
        read_body(body)


def _noted(type_: str) -> dict[str, Any]:
    """The golden body of `type_` with the keys added since its capture (the entry with a `note`)."""
    return copy.deepcopy(json.loads(next(r["body"] for r in GOLDEN if r["type"] == type_ and "note" in r)))


@pytest.mark.parametrize(
    ("type_", "path"),
    [
        ("transfer_out", ("transfer", "cost_basis")),
        ("transfer_in", ("transfer", "sale_price")),
        ("issue", ("unit_price",)),
    ],
)
def test_a_key_added_later_may_be_absent_but_never_null_nor_of_another_type(type_: str, path: tuple[str, ...]) -> None:
    captured, noted = _golden(type_), _noted(type_)
    for body in (captured, noted):
        assert read_body(body) == body
    target = noted
    for step in path[:-1]:
        target = target[step]
    assert isinstance(target[path[-1]], int)
    for wrong in (None, "4650", True):
        target[path[-1]] = wrong
        with pytest.raises(RecordMalformed, match=f"{type_}.{'.'.join(path)}: must be an integer"):
            read_body(noted)


def test_the_transfer_settled_record_holds_no_sale_price() -> None:
    body = _golden("transfer_settled")
    body["transfer"]["sale_price"] = 5980  # the requester's price: only its own transfer_in carries it
    with pytest.raises(RecordMalformed, match="holds \\['sale_price'\\]"):
        read_body(body)


@pytest.mark.parametrize(
    ("path", "value", "said"),
    [
        (("lines", 0, "quantity"), "3", "must be an integer"),
        (("lines", 0, "quantity"), True, "must be an integer"),
        (("memo",), None, "must be a string"),
        (("evidence",), {}, "must be a list"),
        (("seq",), 1.5, "must be an integer"),
    ],
)
def test_a_value_of_the_wrong_type_is_named(path: tuple[Any, ...], value: object, said: str) -> None:
    body = _golden("issue")
    if not body["lines"]:
        pytest.fail("the golden issue has lines")
    target: Any = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    with pytest.raises(RecordMalformed, match=said):
        read_body(body)


def test_an_unknown_type_or_a_kind_of_another_type_is_refused() -> None:
    body = _golden("issue")
    with pytest.raises(RecordMalformed, match="no record type"):
        read_body({**body, "type": "gift"})
    with pytest.raises(RecordMalformed, match="ledger kind"):
        read_body({**body, "kind": "settlement"})


def test_the_builder_refuses_fields_that_drift_from_the_declaration() -> None:
    _head, fields = _split(_golden("lend"))
    fields["loan_id"] = fields.pop("loan")
    with pytest.raises(RecordMalformed, match="lend: misses \\['loan'\\]"):
        record_body(RecordKind.LEDGER, "0x00", 1, RecordType.LEND, "2026-12-07T00:00:00.000000Z", fields)  # type: ignore[arg-type]
    with pytest.raises(RecordMalformed, match="settlement kind"):
        record_body(RecordKind.LEDGER, "0x00", 1, RecordType.SETTLEMENT, "2026-12-07T00:00:00.000000Z", fields)  # type: ignore[arg-type]


def _key(name: str, hint: Any) -> str:
    """A key as docs/proof-format.md writes it: `?` after a key that may be absent."""
    return name + ("?" if name in optional_keys(hint) else "")


def _shown(hint: Any) -> str:
    """A declared type as docs/proof-format.md writes it."""
    if is_typeddict(hint):
        return "{" + ", ".join(f"{_key(k, hint)}: {_shown(v)}" for k, v in get_type_hints(hint).items()) + "}"
    origin, args = get_origin(hint), get_args(hint)
    if origin is list:
        return f"[{_shown(args[0])}]"
    if origin is dict:
        return "signed copy" if get_origin(args[1]) in (Union, types.UnionType) else "{string: " + _shown(args[1]) + "}"
    return {int: "integer", str: "string", bool: "boolean", type(None): "null"}.get(hint, "any JSON")


def test_the_proof_format_lists_every_types_keys_as_declared() -> None:
    common = set(get_type_hints(LedgerRecord))
    rows = [
        "| type | kind | keys beside `lines`, `evidence`, `memo`, `corrects` |",
        "|---|---|---|",
        *(
            f"| `{t}` | `{KIND_OF_TYPE[t]}` | "
            + (
                "; ".join(
                    f"`{_key(k, RECORD_FIELDS[t])}`: {_shown(v)}"
                    for k, v in get_type_hints(RECORD_FIELDS[t]).items()
                    if k not in common
                )
                or "none"
            )
            + " |"
            for t in RecordType
        ),
    ]
    doc = (Path(__file__).resolve().parents[2] / "docs/proof-format.md").read_text()
    shown = doc.split("<!-- record-bodies:begin -->\n")[1].split("<!-- record-bodies:end -->")[0]
    assert shown.splitlines() == rows
