"""The rooms import in one direction only (docs/architecture.md): a module may import the rooms below its own,
never those above. Read from the source with `ast`, so an import inside a function counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# room -> the first-party prefixes it must never import.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "chain": ("node", "negotiation", "settlement"),
    "negotiation": (
        "node",
        "settlement",
        "chain.tx",
        "chain.anchor_client",
        "chain.registry_client",
        "chain.rules_client",
        "chain.deploy",
        "chain.anvil",
        "chain.auditor",
        "fastapi",
        "sqlmodel",
        "sqlalchemy",
        "httpx",
        "web3.providers",
    ),
    "settlement": ("node", "fastapi", "sqlmodel", "sqlalchemy", "httpx"),
    "node/domain": (
        "node.store",
        "node.services",
        "node.api",
        "node.launch",
        "node.cli",
        "fastapi",
        "sqlmodel",
        "sqlalchemy",
        "httpx",
    ),
    "node/store": ("node.services", "node.api", "node.launch", "node.cli", "fastapi", "httpx"),
    "node/services": ("node.api", "node.launch", "node.cli", "fastapi"),
    "node/api": ("node.launch", "node.cli"),
}


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(n, ast.Import):
            names.update(a.name for a in n.names)
        elif isinstance(n, ast.ImportFrom) and n.module and n.level == 0:
            names.add(n.module)
            names.update(f"{n.module}.{a.name}" for a in n.names)
    return names


def _hits(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_a_room_never_imports_the_rooms_above_it(room: str) -> None:
    files = sorted((ROOT / room).rglob("*.py"))
    assert files, f"no module in {room}"
    wrong = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in files
        for name in imports_of(path)
        if any(_hits(name, p) for p in FORBIDDEN[room])
    }
    assert not wrong, sorted(wrong)


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from node.api.deps import get_services\n", encoding="utf-8")
    assert any(_hits(n, "node.api") for n in imports_of(module))
