"""bench/bench_audit.py at a tiny size (2,000 records in 4 batches, on its own Anvil), so it does not rot between
two measuring sessions. It asserts what the bench measured ran and passed the audit; never a speed
(docs/benchmarks.md holds those, with the machine)."""

from __future__ import annotations

from bench import bench_audit

FIELDS = {"read_s", "verify_s", "total_s", "cpu_s", "rss_before_mb", "peak_rss_mb", "tree_peak_rss_mb", "load_1min"}


def test_audit_bench_runs_every_way_of_auditing_and_each_passes() -> None:
    rows = bench_audit.run(total=2_000, batch=500, workers=(1, 2))
    assert [r["mode"] for r in rows] == ["floor", "whole", "stream x1", "stream x2"]
    for row in rows:
        assert row.keys() >= FIELDS, row
        assert (row["records"], row["batches"], row["records_verified"]) == (2_000, 4, 2_000), row
        assert row["ok"] is True, row
        assert row["total_s"] >= row["read_s"] >= 0 and row["peak_rss_mb"] > 0, row
