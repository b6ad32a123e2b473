"""Screenshots of each console section on a running consortium (`make run`), for docs/ and the README.

    .venv/bin/python scripts/console_screenshots.py [--manifest .consortium/consortium.json] [--out docs/console]

Signs in on the first node (the Hangzhou store) with its operator token and saves one full-page PNG per
section, in Debian's Chromium (tests/helpers/browser.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere: the browser helper is in tests/
from tests.helpers.browser import chromium

# Each section as its people would open it; the audit page with a SKU's timeline replayed.
SECTIONS = {
    "stock": "stock",
    "transfers": "transfers",
    "rules": "rules",
    "audit": "audit?sku=DIAPER-L-60",
    "settlement": "settlement",
}


def main(
    manifest: Annotated[Path, typer.Option(help="the consortium's manifest")] = Path(".consortium/consortium.json"),
    out: Annotated[Path, typer.Option(help="where the PNGs go")] = Path("docs/console"),
) -> None:
    node = json.loads(manifest.read_text())["nodes"][0]
    out.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.goto(node["url"] + "/console/sign-in")
        page.get_by_label("Token").fill(node["api_token"])
        page.get_by_role("button", name="Sign in").click()
        for section, path in SECTIONS.items():
            page.goto(f"{node['url']}/console/{path}")
            page.screenshot(path=str(out / f"{section}.png"), full_page=True)
            typer.echo(out / f"{section}.png")


if __name__ == "__main__":
    typer.run(main)
