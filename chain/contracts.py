"""Compiling the Solidity contracts with py-solc-x, driving solc-js through scripts/solc.

Artefacts are cached in build/contracts.json keyed by the sources' hash and the compiler version:
compiling through solc-js takes seconds, and every test worker and node would otherwise repeat it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import solcx

from chain.errors import ContractCompileError

REPO_ROOT = Path(__file__).resolve().parent.parent
CONTRACTS_DIR = REPO_ROOT / "contracts"
SOLC_SHIM = REPO_ROOT / "scripts" / "solc"
CACHE = REPO_ROOT / "build" / "contracts.json"
CONTRACT_NAMES = ("MemberRegistry", "AnchorRegistry", "RuleRegistry")
# Anvil 1.7's default hardfork runs anything up to this; pinned so bytecode does not depend on solc's default.
EVM_VERSION = "cancun"


@dataclass(frozen=True)
class CompiledContract:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str


def _sources() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(CONTRACTS_DIR.glob("*.sol"))}


def _compile(sources: dict[str, str]) -> dict[str, Any]:
    if not SOLC_SHIM.exists() or not (REPO_ROOT / "node_modules" / "solc").exists():
        raise ContractCompileError("solc-js is missing: run `npm ci` (or `make setup`)")
    standard_input = {
        "language": "Solidity",
        "sources": {name: {"content": text} for name, text in sources.items()},
        "settings": {
            "optimizer": {"enabled": True, "runs": 200},
            "evmVersion": EVM_VERSION,
            "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}},
        },
    }
    try:
        output: dict[str, Any] = solcx.compile_standard(standard_input, solc_binary=SOLC_SHIM)
    except solcx.exceptions.SolcError as exc:
        raise ContractCompileError(str(exc)) from exc
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise ContractCompileError("\n".join(e.get("formattedMessage", e.get("message", "")) for e in errors))
    return output


def _compiler_version() -> str:
    # Read from the installed npm package rather than by running the compiler: it is on every cache hit.
    package = REPO_ROOT / "node_modules" / "solc" / "package.json"
    return str(json.loads(package.read_text())["version"]) if package.exists() else "missing"


def compile_contracts(force: bool = False) -> dict[str, CompiledContract]:
    sources = _sources()
    version = _compiler_version()
    key = hashlib.sha256(json.dumps([version, sources, CONTRACT_NAMES], sort_keys=True).encode()).hexdigest()
    if not force and CACHE.exists():
        cached = json.loads(CACHE.read_text())
        if cached.get("key") == key:
            return {n: CompiledContract(n, c["abi"], c["bytecode"]) for n, c in cached["contracts"].items()}
    output = _compile(sources)
    contracts: dict[str, dict[str, Any]] = {}
    for file_contracts in output["contracts"].values():
        for name, c in file_contracts.items():
            if name in CONTRACT_NAMES:
                contracts[name] = {"abi": c["abi"], "bytecode": c["evm"]["bytecode"]["object"]}
    missing = set(CONTRACT_NAMES) - set(contracts)
    if missing:
        raise ContractCompileError(f"compiler output lacks {sorted(missing)}")
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    # Two test workers may compile at once: write aside, then rename atomically.
    fd, tmp = tempfile.mkstemp(dir=CACHE.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump({"key": key, "solc": version, "contracts": contracts}, f)
    os.replace(tmp, CACHE)
    return {n: CompiledContract(n, c["abi"], c["bytecode"]) for n, c in contracts.items()}


def kind_to_bytes32(kind: str) -> bytes:
    """A record kind as the contract sees it: ASCII, right-padded with zero bytes."""
    raw = kind.encode("ascii")
    if not raw or len(raw) > 32 or b"\x00" in raw:
        raise ValueError(f"a kind is 1 to 32 ASCII characters: {kind!r}")
    return raw.ljust(32, b"\x00")


def bytes32_to_kind(value: bytes) -> str:
    if len(value) != 32:
        raise ValueError("a kind is 32 bytes on chain")
    return value.rstrip(b"\x00").decode("ascii")
