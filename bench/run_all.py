"""Run every benchmark and print its figures (JSON lines) with the machine; docs/benchmarks.md records them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import (
    bench_anchoring,
    bench_audit,
    bench_matching,
    bench_merkle,
    bench_offers,
    bench_proofs,
    bench_rules,
    bench_safety_stock,
    bench_settlement,
    bench_settlement_games,
    bench_story,
    bench_write_path,
)
from bench.common import machine

# Every bench, in the order `make bench` runs them; each also runs at a tiny size in `make test`
# (tests/chain/test_benchmarks_tiny.py checks that none is missing there).
BENCHES = {
    "merkle": bench_merkle,
    "anchoring": bench_anchoring,
    "proofs": bench_proofs,
    "audit": bench_audit,
    "rules": bench_rules,
    "safety_stock": bench_safety_stock,
    "settlement": bench_settlement,
    "settlement_games": bench_settlement_games,
    "matching": bench_matching,
    "story": bench_story,
    "offers": bench_offers,
    "write_path": bench_write_path,
}


def main() -> None:
    print(json.dumps({"machine": machine()}))
    for name, module in BENCHES.items():
        result = module.run()
        for row in result if isinstance(result, list) else [result]:
            print(json.dumps({"bench": name, **row}), flush=True)


if __name__ == "__main__":
    main()
