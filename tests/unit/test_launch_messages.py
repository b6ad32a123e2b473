"""What `consortium up` prints: the rule book in force (not the genesis book once another came into force), a
command that runs as printed, and a last line that says what the next start does."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from node.launch.consortium import RuleBookInForce, farewell, own_command, summary

GENESIS = "0x" + "ab" * 32
SECOND = "0x" + "cd" * 32
MANIFEST = {
    "rpc_url": "http://127.0.0.1:8545",
    "chain_id": 31337,
    "registry": "0xregistry",
    "anchor_contract": "0xanchors",
    "rule_registry": "0xrules",
    "rule_book": GENESIS,
    "rulebook_file": "/somewhere/rulebook.yaml",
    "audit_token": "audit-token",
    "nodes": [{"name": "hangzhou-store", "url": "http://127.0.0.1:9001", "api_token": "t1"}],
}


def rules_line(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("  rules"))


def test_a_resumed_consortium_names_the_book_in_force_and_the_block_it_came_into_force_at() -> None:
    shown = rules_line(
        summary(MANIFEST, Path("m.json"), {"version": SECOND, "label": "second", "in_force_since_block": 133})
    )
    assert "in force: second 0xcdcdcdcdcdcdcdcd..., since block 133" in shown
    assert "genesis" not in shown and "rulebook.yaml" not in shown


def test_a_new_consortium_says_its_book_is_the_genesis_book() -> None:
    book = RuleBookInForce(version=GENESIS, label="2026.11-1", in_force_since_block=4)
    assert "in force: 2026.11-1 (the genesis book, rulebook.yaml)" in rules_line(summary(MANIFEST, Path("m"), book))


def test_a_node_that_does_not_say_what_is_in_force_is_reported_as_such() -> None:
    assert "in force: unknown, the node answered 409" in rules_line(
        summary(MANIFEST, Path("m"), "the node answered 409")
    )


def test_the_audit_hint_runs_as_printed() -> None:
    book = RuleBookInForce(version=GENESIS, label="g", in_force_since_block=4)
    text = summary(MANIFEST, Path("m"), book, ".venv/bin/consortium")
    assert "  .venv/bin/consortium audit verify --rpc http://127.0.0.1:8545 --node http://127.0.0.1:9001" in text


def test_the_command_is_the_path_it_was_started_by_unless_path_finds_the_same_program(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    program = tmp_path / "venv" / "bin" / "consortium"
    program.parent.mkdir(parents=True)
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["venv/bin/consortium", "up"])
    monkeypatch.setenv("PATH", "/nonexistent")
    assert own_command() == "venv/bin/consortium"  # as `make run` starts it, without an activated .venv
    monkeypatch.setenv("PATH", f"{program.parent}{os.pathsep}/nonexistent")
    assert own_command() == "consortium"  # activated: the plain name finds this very program


def test_the_last_line_says_a_start_resumes_only_what_was_kept(tmp_path: Path) -> None:
    assert "resumes this consortium" in farewell(tmp_path, True, "consortium")
    made_nothing = farewell(tmp_path, False, ".venv/bin/consortium")
    assert "resumes" not in made_nothing
    assert f"the next `.venv/bin/consortium up --data-dir {tmp_path}` makes a new one" in made_nothing
