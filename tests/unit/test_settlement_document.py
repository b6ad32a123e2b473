"""The statement model, declared once (settlement/document.py): the statement built holds exactly its parts,
the hash covers every signed part and no other, the comparison of two members' statements names every part
that differs, and a document from elsewhere is read against it (node/services/settlements.py)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from node.errors import SettlementInputsInvalid
from node.services.settlements import read_statement
from settlement.document import (
    REALISED_FORMAT,
    SIGNED_PARTS,
    MemberShare,
    ServedStatement,
    Statement,
    differing_lines,
)
from settlement.realised import Cut, build_realised_statement
from settlement.statement import SettlementTerms, build_statement, statement_hash
from tests.unit.test_settlement_realised import BOOKS, CUT
from tests.unit.test_settlement_realised import story as delivered_story
from tests.unit.test_settlement_statement import PERIOD, S1, story


def statement() -> Statement:
    return build_statement(
        story().records, PERIOD, "0x01", SettlementTerms(), {S1: {"last_seq": 3, "batch_roots": ["ab"]}}
    )


def realised() -> Statement:
    books, _, _ = delivered_story()
    return build_realised_statement(books.records, PERIOD, "0x01", SettlementTerms(), BOOKS, Cut(S1, CUT))


def test_a_built_statement_holds_every_part_of_its_format_and_no_other() -> None:
    s = statement()
    assert list(s) and set(s) == set(Statement.__required_keys__)
    assert all(set(m) == set(MemberShare.__required_keys__) for m in s["members"])
    s = realised()
    assert set(s) == set(Statement.__annotations__)
    assert all(set(m) == set(MemberShare.__annotations__) for m in s["members"])


@pytest.mark.parametrize("build", [statement, realised])
def test_the_hash_covers_the_signed_parts_only(build: Callable[[], Statement]) -> None:
    s = build()
    served: dict[str, Any] = {**s, "status": "final", "problem": "late", "signatures": [{"signer": S1}]}
    assert statement_hash(served) == s["statement_hash"]
    for part in SIGNED_PARTS:
        changed: dict[str, Any] = {**s, part: "other"}
        # From format 2 the id derives from the hash: it cannot be part of it.
        unsigned = part == "id" and s["format"] == REALISED_FORMAT
        assert (statement_hash(changed) == s["statement_hash"]) == unsigned, part


@pytest.mark.parametrize("part", [p for p in SIGNED_PARTS if p != "members"])
def test_every_signed_part_that_differs_is_named(part: str) -> None:
    mine = statement() if part in Statement.__required_keys__ else realised()
    theirs: dict[str, Any] = {**copy.deepcopy(mine), part: "something else"}
    assert differing_lines(theirs, mine) == [f'{part}: theirs "something else", ours {_json(mine, part)}']


def _json(s: Statement, part: str) -> str:
    text = json.dumps(dict(s)[part], sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


def test_a_member_line_names_the_parts_that_differ_and_a_member_on_one_side_only() -> None:
    mine = statement()
    theirs: dict[str, Any] = copy.deepcopy(dict(mine))
    theirs["members"][0]["share"] += 1
    theirs["members"][0]["metrics"]["units_issued"] = 99
    extra = theirs["members"].pop()
    assert differing_lines(theirs, mine) == [
        f"member {mine['members'][0]['member']}: metrics, share",
        f"member {extra['member']}: only in ours",
    ]
    assert differing_lines(copy.deepcopy(dict(mine)), mine) == ["the same content under another hash"]


def test_a_document_from_elsewhere_is_read_against_the_model() -> None:
    s = statement()
    served: ServedStatement = {**s, "problem": "a member did not answer"}
    assert read_statement(copy.deepcopy(dict(served)), "the proposer's document") == served
    wrong: dict[str, Any] = {**copy.deepcopy(dict(s)), "surplus": "45000"}
    del wrong["core_check"]
    with pytest.raises(SettlementInputsInvalid, match=r"^the proposer's document is not a consortium-settlement/1"):
        read_statement(wrong, "the proposer's document")
    with pytest.raises(SettlementInputsInvalid, match="surplus: Input should be a valid integer"):
        read_statement(wrong, "the proposer's document")
    with pytest.raises(SettlementInputsInvalid, match="core_check: Field required"):
        read_statement(wrong, "the proposer's document")
