"""Run every benchmark and print its figures (JSON lines) with the machine; docs/benchmarks.md records them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import bench_anchoring, bench_audit, bench_merkle, bench_proofs, bench_rules, bench_safety_stock
from bench.common import machine


def main() -> None:
    print(json.dumps({"machine": machine()}))
    for name, module in (
        ("merkle", bench_merkle),
        ("anchoring", bench_anchoring),
        ("proofs", bench_proofs),
        ("audit", bench_audit),
        ("rules", bench_rules),
        ("safety_stock", bench_safety_stock),
    ):
        result = module.run()
        for row in result if isinstance(result, list) else [result]:
            print(json.dumps({"bench": name, **row}), flush=True)


if __name__ == "__main__":
    main()
