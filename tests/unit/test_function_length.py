"""No production function of 60 lines or more in node/, negotiation/, settlement/ and chain/ (issue 20).

A function's length runs from its `def` line to its last line, docstring and comments included, decorators
not; a nested function counts inside the one that holds it and on its own.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("node", "negotiation", "settlement", "chain")
LIMIT = 60


def long_functions(root: Path, packages: tuple[str, ...], limit: int) -> list[str]:
    """`path:line name (n lines)` of every function of `limit` lines or more under `packages`."""
    found = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    assert node.end_lineno is not None
                    lines = node.end_lineno - node.lineno + 1
                    if lines >= limit:
                        found.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_no_production_function_is_60_lines_or_longer() -> None:
    too_long = long_functions(ROOT, PACKAGES, LIMIT)
    assert not too_long, f"{len(too_long)} functions of {LIMIT} lines or more:\n" + "\n".join(too_long)


def test_the_length_check_names_a_long_function_and_counts_from_def_to_last_line(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(LIMIT - 1))
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text(
        f"@staticmethod\ndef long_one() -> None:\n{body}\n\n\nasync def short_one() -> None:\n    return None\n"
    )
    assert long_functions(tmp_path, ("pkg",), LIMIT) == [f"{Path('pkg', 'mod.py')}:2 long_one ({LIMIT} lines)"]
    assert long_functions(tmp_path, ("pkg",), LIMIT + 1) == []
