"""bench/bench_matching.py at its tiny size, so the benchmark keeps running as the matcher changes."""

from __future__ import annotations

from bench import bench_matching


def test_the_matching_benchmark_runs_at_tiny_size_and_the_plan_is_never_dearer_than_the_heuristic() -> None:
    for family in ("hard", "tuned"):
        rows = bench_matching.run(scale="tiny", family=family)
        assert {row["solver"].split("_")[1] for row in rows} == {"highs", "cbc"}
        for row in rows:
            assert {
                "requests", "offers", "lanes", "arcs", "arcs_seconds", "solver", "status", "seconds", "peak_rss_mb",
                "cost", "heuristic_cost", "cost_over_heuristic", "gap_pct", "greedy_cost", "budget_seconds",
            } <= row.keys()  # fmt: skip
            assert row["arcs"] > 0 and row["peak_rss_mb"] > 0
            assert row["cost"] <= row["heuristic_cost"] and row["cost_over_heuristic"] <= 1
            assert 0 <= row["gap_pct"] <= 100
