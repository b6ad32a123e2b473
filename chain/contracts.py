"""The Solidity contracts: their shipped build, and compiling them with py-solc-x through chain/solc_shim.js.

The sources are contracts/*.sol. That folder is also a (data-only) top-level package, so `pip install .` puts it
beside chain/ in site-packages: the same relative path finds it in a checkout and in an installed copy.

At run time nothing compiles: `shipped_contracts()` reads contracts/compiled/<Name>.json (ABI and bytecode), written
by scripts/build_contracts.py with the solc-js that package.json pins, committed, and installed as package data.
An auditor therefore needs Python alone, no Node.js. tests/unit/test_shipped_contracts.py compiles the sources
afresh and requires the shipped files to be exactly what the script would write, so a .sol changed without
regenerating fails the tests; at run time the sources' digest recorded in each file is checked too.

Compiling (the script and the tests) needs solc-js and Node.js, found by chain/tools.py. Its output is cached in
contracts.json keyed by the sources' hash and the compiler version: compiling through solc-js takes seconds, and
every test worker would otherwise repeat it. The cache is CONSORTIUM_CACHE_DIR if set, else build/ of a source
checkout, else $XDG_CACHE_HOME/consortium (~/.cache/consortium); never site-packages. Not writable: compiled again
next time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import solcx

from chain.errors import ContractCompileError
from chain.tools import find_node, find_solcjs, in_source_checkout, solc_version

PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # the checkout, or site-packages
CONTRACTS_DIR = PACKAGE_ROOT / "contracts"
BUILD_FOLDER = "compiled"  # under contracts/: the shipped build, one <Name>.json per contract
REGENERATE_HINT = "run `python scripts/build_contracts.py` in a checkout (needs `npm ci`)"
SOLC_SHIM = Path(__file__).resolve().parent / "solc_shim.js"
CACHE_ENV = "CONSORTIUM_CACHE_DIR"
CONTRACT_NAMES = ("MemberRegistry", "AnchorRegistry", "RuleRegistry")
# Paris (the Merge; no PUSH0, no MCOPY): the oldest target solc 0.8.37 offers that every chain a consortium
# might run accepts — Anvil, Ganache 7 (up to Shanghai), and permissioned Besu/geth networks whose genesis
# stops at London or Paris. Pinned so bytecode does not depend on solc's default (docs/chains.md).
EVM_VERSION = "paris"
COMPILER_SETTINGS: dict[str, Any] = {"optimizer": {"enabled": True, "runs": 200}, "evmVersion": EVM_VERSION}


def cache_path() -> Path:
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser() / "contracts.json"
    if in_source_checkout():
        return PACKAGE_ROOT / "build" / "contracts.json"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "consortium" / "contracts.json"


@dataclass(frozen=True)
class CompiledContract:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str


def _sources(contracts_dir: Path = CONTRACTS_DIR) -> dict[str, str]:
    sources = {p.name: p.read_text() for p in sorted(contracts_dir.glob("*.sol"))}
    if not sources:
        raise ContractCompileError(f"no Solidity sources in {contracts_dir}: the package was installed without them")
    return sources


def sources_digest(sources: dict[str, str]) -> str:
    """What a build was made from: the sources, the contracts taken from them and the compiler settings."""
    return hashlib.sha256(json.dumps([sources, CONTRACT_NAMES, COMPILER_SETTINGS], sort_keys=True).encode()).hexdigest()


def build_file_text(contract: CompiledContract, compiler_version: str, digest: str) -> str:
    """The shipped JSON of one contract, exactly as scripts/build_contracts.py writes it (the tests compare text)."""
    document = {
        "contractName": contract.name,
        "compiler": f"solc-js {compiler_version}",
        "settings": COMPILER_SETTINGS,
        "sourcesSha256": digest,
        "abi": contract.abi,
        "bytecode": contract.bytecode,
    }
    return json.dumps(document, indent=2) + "\n"


def build_files() -> dict[str, str]:
    """File name under contracts/compiled/ -> its text, compiled from the current sources with the pinned solc-js."""
    compiled = compile_contracts()
    version = solc_version(find_solcjs())
    digest = sources_digest(_sources())
    return {f"{name}.json": build_file_text(compiled[name], version, digest) for name in CONTRACT_NAMES}


def shipped_contracts(contracts_dir: Path = CONTRACTS_DIR) -> dict[str, CompiledContract]:
    """The contracts' ABI and bytecode as shipped in contracts/compiled/: no compiler, no Node.js.

    Refuses a build made from other sources than the .sol files beside it: deploying or reading a contract
    with an ABI that is not the source's would fail later, and less clearly."""
    digest = sources_digest(_sources(contracts_dir))
    contracts: dict[str, CompiledContract] = {}
    for name in CONTRACT_NAMES:
        path = contracts_dir / BUILD_FOLDER / f"{name}.json"
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ContractCompileError(
                f"the compiled {name} is missing or unreadable at {path}: {REGENERATE_HINT}"
            ) from exc
        if document.get("sourcesSha256") != digest:
            raise ContractCompileError(
                f"{path} was compiled from other sources than {contracts_dir}/*.sol: {REGENERATE_HINT}"
            )
        contracts[name] = CompiledContract(name, document["abi"], document["bytecode"])
    return contracts


@contextmanager
def _solc_binary(solc_package: Path) -> Iterator[Path]:
    """py-solc-x runs one executable: a throwaway wrapper that runs the shim with node and solc-js's folder."""
    node = find_node()
    with tempfile.TemporaryDirectory(prefix="consortium-solc-") as tmp:
        wrapper = Path(tmp) / "solc"
        command = " ".join(shlex.quote(str(part)) for part in (node, SOLC_SHIM, solc_package))
        wrapper.write_text(f'#!/bin/sh\nexec {command} "$@"\n')
        wrapper.chmod(0o700)
        yield wrapper


def _compile(sources: dict[str, str], solc_package: Path) -> dict[str, Any]:
    standard_input = {
        "language": "Solidity",
        "sources": {name: {"content": text} for name, text in sources.items()},
        "settings": {
            **COMPILER_SETTINGS,
            "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}},
        },
    }
    try:
        with _solc_binary(solc_package) as solc_binary:
            output: dict[str, Any] = solcx.compile_standard(standard_input, solc_binary=solc_binary)
    except solcx.exceptions.SolcError as exc:
        raise ContractCompileError(str(exc)) from exc
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise ContractCompileError("\n".join(e.get("formattedMessage", e.get("message", "")) for e in errors))
    return output


def compile_contracts(force: bool = False) -> dict[str, CompiledContract]:
    sources = _sources()
    solc_package = find_solcjs()
    version = solc_version(solc_package)
    # The settings are part of the key: a changed target must never reuse bytecode compiled for another.
    key = hashlib.sha256(f"{version}:{sources_digest(sources)}".encode()).hexdigest()
    cache = cache_path()
    if not force and cache.exists():
        cached = json.loads(cache.read_text())
        if cached.get("key") == key:
            return {n: CompiledContract(n, c["abi"], c["bytecode"]) for n, c in cached["contracts"].items()}
    output = _compile(sources, solc_package)
    contracts: dict[str, dict[str, Any]] = {}
    for file_contracts in output["contracts"].values():
        for name, c in file_contracts.items():
            if name in CONTRACT_NAMES:
                contracts[name] = {"abi": c["abi"], "bytecode": c["evm"]["bytecode"]["object"]}
    missing = set(CONTRACT_NAMES) - set(contracts)
    if missing:
        raise ContractCompileError(f"compiler output lacks {sorted(missing)}")
    _write_cache(cache, {"key": key, "solc": version, "contracts": contracts})
    return {n: CompiledContract(n, c["abi"], c["bytecode"]) for n, c in contracts.items()}


def _write_cache(cache: Path, content: dict[str, Any]) -> None:
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        # Two test workers may compile at once: write aside, then rename atomically.
        fd, tmp = tempfile.mkstemp(dir=cache.parent, suffix=".tmp")
    except OSError:
        return  # a read-only home or image: compile again next time rather than fail
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(content, f)
        os.replace(tmp, cache)
    except OSError:
        Path(tmp).unlink(missing_ok=True)


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
