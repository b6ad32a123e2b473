"""`consortium rules history` reads the chain and the RuleRegistry of a `consortium up` directory when --rpc and
--contract are not given, as the README pastes it; without either it says what to give, in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from node.cli import run
from node.services import rules_history


def test_history_takes_the_chain_and_registry_of_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = {"rpc_url": "http://127.0.0.1:8545", "rule_registry": "0x" + "12" * 20, "nodes": []}
    (tmp_path / "consortium.json").write_text(json.dumps(manifest))
    asked: list[tuple[str, str, list[Path]]] = []

    def history(rpc: str, contract: str, books: list[Path]) -> list[rules_history.HistoryLine]:
        asked.append((rpc, contract, list(books)))
        return []

    monkeypatch.setattr(rules_history, "history_from_chain", history)
    assert run(["rules", "history", "--data-dir", str(tmp_path), "--book", "proposed.yaml"]) == 0
    assert asked == [("http://127.0.0.1:8545", "0x" + "12" * 20, [Path("proposed.yaml")])]
    assert run(["rules", "history", "--data-dir", str(tmp_path), "--contract", "0xother"]) == 0
    assert asked[-1][:2] == ("http://127.0.0.1:8545", "0xother")  # what is given wins over the directory's


def test_history_without_a_data_dir_or_options_says_what_to_give(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["rules", "history", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert "--rpc" in err and "--contract" in err and "consortium.json" in err
