"""A rule book's version survives the format growing: a field added after format 1 (marked `Since`) is left
out of the hashed book while it holds its default, so every existing book keeps its version, including the
versions already recorded on chain, and a book that sets the field gets a version of its own."""

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import pytest
import yaml
from pydantic import Field

from negotiation.rules.book import (
    Branch,
    Constraint,
    Limits,
    RuleBook,
    Since,
    book_json,
    load_book,
    parse_book,
    rule_book_hash,
)
from negotiation.rules.names import Scenario

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "node" / "demo" / "rulebook.yaml"
TESTDATA = ROOT / "testdata" / "rulebook.yaml"
# Computed from the code before the format could grow: these versions may be recorded on chain, so they never change.
PINNED = {
    DEMO: "0x0a6b0d16b3fc097be2bf6bbfe94fa77a022d1a500d8b1257b9cbdb2ae2eb678a",
    TESTDATA: "0xc88f77a50035c6aa11821552433d3115f5b275660dafcb31f16a62be7d381e6c",
}


# A format 2 as the settlement or hostile-member work might write it: a field at the top, one inside a section
# and one inside every branch of the matrix (a list within dicts).
class GrownLimits(Limits):
    open_loans_per_member: Annotated[int, Since(2)] = 5


class GrownBranch(Branch):
    reason_code: Annotated[str, Since(2)] = ""


class GrownBook(RuleBook):
    limits: GrownLimits = GrownLimits()
    # The grown format narrows the matrix to its own branches (a dict is invariant, so mypy objects).
    matrix: dict[Scenario, dict[Constraint, list[GrownBranch]]] = Field(default_factory=dict)  # type: ignore[assignment]
    evidence_window_days: Annotated[int, Since(2)] = 30


class UnmarkedBook(RuleBook):
    evidence_window_days: int = 30


def document(path: Path) -> dict[str, Any]:
    """The book as it was when its version was pinned: the demo book has since set a field of format 2, which
    makes it another book with another version (below)."""
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    data.get("settlement", {}).pop("alternative_supply_cost", None)
    return data


@pytest.mark.parametrize("path", list(PINNED), ids=lambda p: p.parent.name)
def test_the_demo_and_testdata_books_keep_their_versions(path: Path) -> None:
    assert rule_book_hash(parse_book(document(path))) == PINNED[path]


def test_the_testdata_book_as_it_stands_is_the_pinned_one_and_the_demo_book_another() -> None:
    assert load_book(TESTDATA).version == PINNED[TESTDATA]
    demo = load_book(DEMO)
    assert demo.version != PINNED[DEMO]
    assert demo.book.alternative_supply_cost_minor() == {
        "FORMULA-900G": 22800,
        "DIAPER-L-60": 9200,
        "WIPES-80": 1350,
        "STROLLER-WHEEL": 4400,
    }


@pytest.mark.parametrize("path", list(PINNED), ids=lambda p: p.parent.name)
def test_a_field_added_later_leaves_every_existing_version_unchanged(path: Path) -> None:
    data = document(path)
    assert rule_book_hash(GrownBook.model_validate(data)) == PINNED[path]
    # Written out at its default, the new field is still the same book.
    data["evidence_window_days"] = 30
    data["limits"] = {**data.get("limits", {}), "open_loans_per_member": 5}
    assert rule_book_hash(GrownBook.model_validate(data)) == PINNED[path]


def set_at_top(data: dict[str, Any]) -> None:
    data["evidence_window_days"] = 7


def set_in_a_section(data: dict[str, Any]) -> None:
    data["limits"] = {**data.get("limits", {}), "open_loans_per_member": 1}


def set_in_a_branch(data: dict[str, Any]) -> None:
    data["matrix"]["consignment"]["ownership"]["reason_code"] = "c1"


@pytest.mark.parametrize("change", [set_at_top, set_in_a_section, set_in_a_branch], ids=lambda f: f.__name__)
def test_a_book_that_sets_a_later_field_gets_another_version(change: Callable[[dict[str, Any]], None]) -> None:
    data = document(DEMO)
    change(data)
    grown = GrownBook.model_validate(data)
    assert rule_book_hash(grown) != PINNED[DEMO]
    # What is hashed is the book as sent to peers: the field set is in it, the ones left at default are not.
    sent = book_json(grown)
    assert rule_book_hash(GrownBook.model_validate(sent)) == rule_book_hash(grown)
    assert ("evidence_window_days" in sent) == (change is set_at_top)
    assert ("open_loans_per_member" in sent["limits"]) == (change is set_in_a_section)
    assert ("reason_code" in sent["matrix"]["consignment"]["ownership"][0]) == (change is set_in_a_branch)


@pytest.mark.parametrize("path", list(PINNED), ids=lambda p: p.parent.name)
def test_the_alternative_supply_cost_left_empty_keeps_the_version_and_set_gives_another(path: Path) -> None:
    data = document(path)
    data["settlement"] = {**data.get("settlement", {}), "alternative_supply_cost": {}}
    assert rule_book_hash(parse_book(data)) == PINNED[path]
    data["settlement"]["alternative_supply_cost"] = {"FORMULA-900G": "228.00"}
    book = parse_book(data)
    sent = book_json(book)
    assert sent["settlement"]["alternative_supply_cost"] == {"FORMULA-900G": "228.00"}
    assert rule_book_hash(book) != PINNED[path]
    assert rule_book_hash(parse_book(sent)) == rule_book_hash(book)


def test_the_marker_is_what_keeps_the_versions() -> None:
    # The same field without `Since` is hashed with its default, and every book would change version.
    assert rule_book_hash(UnmarkedBook.model_validate(document(DEMO))) != PINNED[DEMO]


def test_a_node_that_predates_the_field_reads_a_book_that_leaves_it_at_default() -> None:
    sent = book_json(GrownBook.model_validate(document(DEMO)))
    assert rule_book_hash(RuleBook.model_validate(sent)) == PINNED[DEMO]


def test_the_schema_names_the_format_that_added_a_field() -> None:
    properties = GrownBook.model_json_schema()["properties"]
    assert properties["evidence_window_days"]["x-added-in-format"] == 2
    assert "x-added-in-format" not in properties["name"]


def test_a_later_field_must_have_a_default_and_a_format_after_the_first() -> None:
    with pytest.raises(TypeError, match="needs a default"):

        class NoDefault(Limits):
            open_loans_per_member: Annotated[int, Since(2)]

    with pytest.raises(TypeError, match="after format 1"):

        class FirstFormat(Limits):
            open_loans_per_member: Annotated[int, Since(1)] = 5
