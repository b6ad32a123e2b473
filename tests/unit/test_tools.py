"""chain/tools.py: where Anvil and solc-js are found (setting, node_modules near the working directory, PATH) and
what the error says when they are nowhere. Fake tools in tmp_path; the checkout's own node_modules is hidden."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chain import tools
from chain.errors import AnvilNotInstalled, ContractCompileError


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(tools.ANVIL_ENV, raising=False)
    monkeypatch.delenv(tools.SOLCJS_ENV, raising=False)
    monkeypatch.setattr(tools, "CHECKOUT", tmp_path / "checkout")  # an installed copy: no checkout beside it
    monkeypatch.setenv("PATH", str(tmp_path / "empty-path"))


def fake_anvil(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def fake_solc(modules: Path) -> Path:
    package = modules / "solc"
    package.mkdir(parents=True)
    (package / "package.json").write_text(json.dumps({"name": "solc", "version": "0.8.37"}))
    (package / "solc.js").write_text("#!/usr/bin/env node\n")
    (package / "solc.js").chmod(0o755)
    return package


def test_nothing_installed_names_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(AnvilNotInstalled, match="CONSORTIUM_ANVIL_BIN is unset") as anvil:
        tools.find_anvil(cwd=tmp_path)
    assert str(tmp_path / "node_modules" / ".bin" / "anvil") in str(anvil.value) and "PATH" in str(anvil.value)
    with pytest.raises(ContractCompileError, match="CONSORTIUM_SOLCJS is unset") as solc:
        tools.find_solcjs(cwd=tmp_path)
    assert str(tmp_path / "node_modules" / "solc") in str(solc.value) and "npm ci" in str(solc.value)


def test_node_modules_of_the_working_directory_or_a_parent(tmp_path: Path) -> None:
    anvil = fake_anvil(tmp_path / "project" / "node_modules" / ".bin" / "anvil")
    package = fake_solc(tmp_path / "project" / "node_modules")
    deeper = tmp_path / "project" / "sub" / "dir"
    deeper.mkdir(parents=True)
    assert tools.find_anvil(cwd=deeper) == anvil
    assert tools.find_solcjs(cwd=deeper) == package
    assert tools.solc_version(package) == "0.8.37"


def test_the_source_checkout_after_the_working_directory(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "pyproject.toml").write_text("")
    anvil = fake_anvil(checkout / "node_modules" / ".bin" / "anvil")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert tools.find_anvil(cwd=elsewhere) == anvil
    nearer = fake_anvil(elsewhere / "node_modules" / ".bin" / "anvil")
    assert tools.find_anvil(cwd=elsewhere) == nearer


def test_path_last(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bin_dir = tmp_path / "global" / "bin"
    anvil = fake_anvil(bin_dir / "anvil")
    package = fake_solc(tmp_path / "global" / "lib" / "node_modules")
    (bin_dir / "solcjs").symlink_to(package / "solc.js")  # what `npm install -g solc` makes
    monkeypatch.setenv("PATH", str(bin_dir))
    assert tools.find_anvil(cwd=tmp_path) == anvil
    assert tools.find_solcjs(cwd=tmp_path) == package
    project = fake_anvil(tmp_path / "node_modules" / ".bin" / "anvil")
    assert tools.find_anvil(cwd=tmp_path) == project  # the project's pinned version wins over PATH


def test_a_setting_wins_and_must_be_right(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_anvil(tmp_path / "node_modules" / ".bin" / "anvil")
    mine = fake_anvil(tmp_path / "opt" / "anvil")
    monkeypatch.setenv(tools.ANVIL_ENV, str(mine))
    assert tools.find_anvil(cwd=tmp_path) == mine
    monkeypatch.setenv(tools.ANVIL_ENV, str(tmp_path / "nope"))
    with pytest.raises(AnvilNotInstalled, match=r"CONSORTIUM_ANVIL_BIN names .*nope"):
        tools.find_anvil(cwd=tmp_path)
    assert tools.find_anvil(mine, cwd=tmp_path) == mine  # an explicit argument before the environment

    package = fake_solc(tmp_path / "opt" / "node_modules")
    for given in (package, package / "solc.js"):
        monkeypatch.setenv(tools.SOLCJS_ENV, str(given))
        assert tools.find_solcjs(cwd=tmp_path) == package
    other = tmp_path / "opt" / "node_modules" / "other"
    other.mkdir()
    (other / "package.json").write_text(json.dumps({"name": "other"}))
    monkeypatch.setenv(tools.SOLCJS_ENV, str(other))
    with pytest.raises(ContractCompileError, match=r"CONSORTIUM_SOLCJS names .*other"):
        tools.find_solcjs(cwd=tmp_path)
