"""Regenerate contracts/compiled/<Name>.json (ABI and bytecode) from contracts/*.sol with the pinned solc-js.

Run after changing a contract: `.venv/bin/python scripts/build_contracts.py`. The files are committed and shipped in
the package, so nodes and auditors never compile; tests/unit/test_shipped_contracts.py fails until they match.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chain.contracts import BUILD_FOLDER, CONTRACTS_DIR, build_files


def main() -> None:
    folder = CONTRACTS_DIR / BUILD_FOLDER
    folder.mkdir(exist_ok=True)
    for name, text in build_files().items():
        path = folder / name
        changed = not path.exists() or path.read_text() != text
        path.write_text(text)
        print(f"{'wrote' if changed else 'unchanged'} {path.relative_to(CONTRACTS_DIR.parent)}")


if __name__ == "__main__":
    main()
