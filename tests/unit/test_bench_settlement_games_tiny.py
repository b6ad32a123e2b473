"""bench/bench_settlement_games.py at its tiny size, so the benchmark keeps running as the games change."""

from __future__ import annotations

from fractions import Fraction

from bench import bench_settlement_games
from bench.bench_settlement_games import one_requester, two_plans


def test_the_settlement_games_benchmark_runs_at_tiny_size_and_gives_the_games_answers() -> None:
    rows = bench_settlement_games.run(scale="tiny", baseline_commit=None)
    assert [(r["what"], r["game"], r["size"]) for r in rows] == [
        ("nucleolus", "general", 5),
        ("nucleolus", "big boss", 6),
        ("core check", "consortium", 8),
    ]
    general, boss, core = rows
    assert sum(map(Fraction, general["result"].values())) == two_plans(5).grand
    assert sum(map(Fraction, boss["result"].values())) == one_requester(6, seed=3).grand and boss["big_boss"]
    assert boss["lp_route_seconds"] >= 0 and core["result"][0] is True
    assert all(r["seconds"] >= 0 and r["load_1min"] >= 0 and "baseline" not in r for r in rows)
