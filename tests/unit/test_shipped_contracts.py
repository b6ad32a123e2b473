"""contracts/compiled/*.json, the ABI and bytecode the package ships, are exactly a fresh compile of contracts/*.sol
with the pinned solc-js, and nodes and auditors read them without a compiler or Node.js."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from web3 import Web3

from chain.contracts import (
    BUILD_FOLDER,
    CONTRACT_NAMES,
    CONTRACTS_DIR,
    ContractCompileError,
    build_files,
    compile_contracts,
    shipped_contracts,
)
from chain.deploy import _compiled, contract

SHIPPED = CONTRACTS_DIR / BUILD_FOLDER
REGENERATE = "contracts/*.sol changed: run `.venv/bin/python scripts/build_contracts.py` and commit contracts/compiled/"


def test_the_shipped_build_is_byte_for_byte_a_fresh_compile_of_the_sources() -> None:
    fresh = build_files()
    assert sorted(fresh) == sorted(p.name for p in SHIPPED.glob("*.json")), REGENERATE
    for name, text in fresh.items():
        assert (SHIPPED / name).read_text() == text, f"{name}: {REGENERATE}"


def test_the_shipped_abi_and_bytecode_equal_the_compiler_s() -> None:
    compiled, shipped = compile_contracts(), shipped_contracts()
    for name in CONTRACT_NAMES:
        assert shipped[name].abi == compiled[name].abi, name
        assert shipped[name].bytecode == compiled[name].bytecode, name


def test_nodes_and_auditors_read_the_shipped_build_without_node_or_solc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    monkeypatch.setenv("CONSORTIUM_SOLCJS", "/nonexistent/solc")
    _compiled.cache_clear()  # another test may have loaded it already, with the tools on PATH
    try:
        anchors = contract(Web3(), "AnchorRegistry", "0x" + "ab" * 20)
    finally:
        _compiled.cache_clear()
    assert anchors.functions.anchor.abi["name"] == "anchor"


def test_a_build_of_other_sources_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "contracts"
    shutil.copytree(CONTRACTS_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert set(shipped_contracts(copy)) == set(CONTRACT_NAMES)
    source = copy / "AnchorRegistry.sol"
    source.write_text(source.read_text() + "\n// changed without regenerating\n")
    with pytest.raises(ContractCompileError, match=r"compiled from other sources.*build_contracts\.py"):
        shipped_contracts(copy)


def test_a_missing_build_file_names_the_script_that_makes_it(tmp_path: Path) -> None:
    copy = tmp_path / "contracts"
    shutil.copytree(CONTRACTS_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / BUILD_FOLDER / "RuleRegistry.json").unlink()
    with pytest.raises(ContractCompileError, match=r"RuleRegistry is missing.*build_contracts\.py"):
        shipped_contracts(copy)


def test_each_file_names_its_contract_and_compiler() -> None:
    for name in CONTRACT_NAMES:
        document = json.loads((SHIPPED / f"{name}.json").read_text())
        assert document["contractName"] == name
        assert document["compiler"].startswith("solc-js 0.8.")
