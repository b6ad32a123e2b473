"""The matching example the docs show and the README runs: shipped, the same in both, and planned as described."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from node.cli import app

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "problem.json"


def test_the_docs_show_the_shipped_example() -> None:
    text = (ROOT / "docs" / "matching.md").read_text()
    section = text[text.index("## Problem (input)") : text.index("## Model")]
    block = re.search(r"```json\n(.*?)```", section, re.S)
    assert block is not None
    assert json.loads(block.group(1)) == json.loads(EXAMPLE.read_text())


def test_the_readme_runs_the_shipped_example_from_the_root() -> None:
    assert "consortium match --problem docs/examples/problem.json" in (ROOT / "README.md").read_text()


def test_the_example_plans_120_of_200_tins_at_the_cost_the_docs_compute() -> None:
    result = CliRunner().invoke(app, ["match", "--problem", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["allocations"] == [{"request": "r1", "offer": "o1", "quantity": 120}]
    assert plan["shortages"] == [{"request": "r1", "quantity": 80}]
    # 120 x (5,200 + 45) + one truck 12,000 + 80 short x 8,000: the sum docs/matching.md writes out.
    assert plan["total_cost"] == plan["lower_bound"] == 120 * 5245 + 12000 + 80 * 8000 == 1_281_400
    assert plan["status"] == "optimal"
