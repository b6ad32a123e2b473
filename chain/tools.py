"""Where the native tools are: Anvil (the local chain), solc-js (the Solidity compiler) and Node.js (runs solc-js).

They are npm packages pinned in package.json, not Python ones, so an installed copy of this package (`pip install .`,
not editable) does not carry them. Each is looked up, first hit wins, in:

1. an explicit setting: the argument, else the environment variable (CONSORTIUM_ANVIL_BIN, CONSORTIUM_SOLCJS);
   when set it must be right, there is no silent fallback;
2. the project's `node_modules/` (what `npm ci` installs): in the working directory or one of its parents, as npm
   resolves, then beside the source checkout this module was imported from (a checkout or an editable install);
3. PATH: `anvil` (e.g. from foundryup), `solcjs` (e.g. `npm install -g solc`).

node_modules comes before PATH so that a project checkout runs the versions its lock file pins, whatever else is
installed on the machine. The errors name every place looked at.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from chain.errors import AnvilNotInstalled, ContractCompileError, GanacheNotInstalled

ANVIL_ENV = "CONSORTIUM_ANVIL_BIN"
SOLCJS_ENV = "CONSORTIUM_SOLCJS"
# Where this package was imported from: a source checkout (with node_modules after `npm ci`), or site-packages.
CHECKOUT = Path(__file__).resolve().parent.parent
INSTALL_HINT = "run `npm ci` in the project (or `make setup`)"


def in_source_checkout() -> bool:
    """Imported from a source checkout (or an editable install of one), not from an installed copy."""
    return (CHECKOUT / "pyproject.toml").exists()


def node_modules_dirs(cwd: Path | None = None) -> list[Path]:
    """Candidate node_modules folders, nearest first: the working directory and its parents, then the checkout."""
    start = (cwd or Path.cwd()).resolve()
    dirs = [d / "node_modules" for d in (start, *start.parents)]
    if in_source_checkout() and CHECKOUT / "node_modules" not in dirs:
        dirs.append(CHECKOUT / "node_modules")
    return dirs


def _looked_in(cwd: Path | None, inside: str) -> str:
    where = f"{(cwd or Path.cwd()).resolve() / 'node_modules' / inside} (and in the parents' node_modules)"
    if in_source_checkout():
        where += f", {CHECKOUT / 'node_modules' / inside}"
    return where


def _setting(explicit: str | os.PathLike[str] | None, env: str) -> tuple[Path, str] | None:
    if explicit is not None and str(explicit):
        return Path(explicit).expanduser(), "the setting"
    value = os.environ.get(env)
    return (Path(value).expanduser(), env) if value else None


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_anvil(explicit: str | os.PathLike[str] | None = None, cwd: Path | None = None) -> Path:
    """The Anvil binary; raises AnvilNotInstalled naming where it looked."""
    setting = _setting(explicit, ANVIL_ENV)
    if setting is not None:
        path, source = setting
        if _executable(path):
            return path
        raise AnvilNotInstalled(f"Anvil not found: {source} names {path}, which is not an executable file")
    for modules in node_modules_dirs(cwd):
        candidate = modules / ".bin" / "anvil"
        if _executable(candidate):
            return candidate
    on_path = shutil.which("anvil")
    if on_path is not None:
        return Path(on_path)
    raise AnvilNotInstalled(
        f"Anvil not found: {ANVIL_ENV} is unset, none at {_looked_in(cwd, '.bin/anvil')}, no `anvil` on PATH. "
        f"{INSTALL_HINT.capitalize()}, or set {ANVIL_ENV} to the anvil binary."
    )


def find_ganache(cwd: Path | None = None) -> Path:
    """Ganache's CLI script (npm `ganache`, the second chain the tests run on); run it with `find_node()`."""
    for modules in node_modules_dirs(cwd):
        candidate = modules / "ganache" / "dist" / "node" / "cli.js"
        if candidate.is_file():
            return candidate
    raise GanacheNotInstalled(f"Ganache not found at {_looked_in(cwd, 'ganache/dist/node/cli.js')}: {INSTALL_HINT}")


def _solc_package(path: Path) -> Path | None:
    """The npm `solc` package folder, given that folder or its solc.js (the `solcjs` command, maybe a symlink)."""
    folder = path if path.is_dir() else path.resolve().parent
    try:
        manifest = json.loads((folder / "package.json").read_text())
    except (OSError, ValueError):
        return None
    return folder if isinstance(manifest, dict) and manifest.get("name") == "solc" else None


def find_solcjs(explicit: str | os.PathLike[str] | None = None, cwd: Path | None = None) -> Path:
    """The folder of the npm package `solc` (solc-js); raises ContractCompileError naming where it looked."""
    setting = _setting(explicit, SOLCJS_ENV)
    if setting is not None:
        path, source = setting
        found = _solc_package(path) if path.exists() else None
        if found is None:
            raise ContractCompileError(
                f"solc-js not found: {source} names {path}, which is neither the npm package `solc` nor its solc.js"
            )
        return found
    for modules in node_modules_dirs(cwd):
        candidate = modules / "solc"
        found = _solc_package(candidate) if candidate.is_dir() else None
        if found is not None:
            return found
    on_path = shutil.which("solcjs")
    found = _solc_package(Path(on_path)) if on_path is not None else None
    if found is not None:
        return found
    raise ContractCompileError(
        f"solc-js not found: {SOLCJS_ENV} is unset, none at {_looked_in(cwd, 'solc')}, no `solcjs` of the npm "
        f"package `solc` on PATH. {INSTALL_HINT.capitalize()}, or set {SOLCJS_ENV} to node_modules/solc."
    )


def solc_version(package: Path) -> str:
    """solc-js's version from its package.json: cheaper than running the compiler, which takes a second."""
    return str(json.loads((package / "package.json").read_text())["version"])


def find_node() -> Path:
    """Node.js, which runs solc-js; raises ContractCompileError if it is not on PATH."""
    on_path = shutil.which("node")
    if on_path is None:
        raise ContractCompileError("Node.js not found: solc-js needs `node` on PATH (Node.js >= 18)")
    return Path(on_path)
