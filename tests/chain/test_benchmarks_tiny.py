"""Every benchmark in bench/ runs here at a tiny size, so none rots between two measuring sessions (one did: the
story bench failed for weeks with 409 rule_book_not_active). These tests assert what each bench measured ran
and gave the answer it reports; never a speed (docs/benchmarks.md holds those, with the machine)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import (
    bench_anchoring,
    bench_merkle,
    bench_offers,
    bench_proofs,
    bench_rules,
    bench_safety_stock,
    bench_settlement,
    bench_story,
    bench_write_path,
)
from bench.run_all import BENCHES


def test_every_bench_make_bench_runs_also_runs_tiny_in_the_suite() -> None:
    tests = Path(__file__).resolve().parent.parent
    sources = "\n".join(p.read_text() for p in tests.rglob("test_*.py"))
    missing = [name for name, module in BENCHES.items() if f"{module.__name__.rsplit('.', 1)[1]}.run(" not in sources]
    assert not missing, f"benches with no tiny run in tests/: {missing}"


def test_merkle_bench_builds_proves_and_verifies() -> None:
    (row,) = bench_merkle.run(sizes=(1_000,))
    assert row["leaves"] == 1_000 and row["proofs_per_s"] > 0 and row["verifications_per_s"] > 0  # type: ignore[operator]


def test_anchoring_bench_anchors_one_transaction_per_batch() -> None:
    rows = bench_anchoring.run(sizes=((300, 100), (20, 1)))
    assert [(r["records"], r["transactions"]) for r in rows] == [(300, 3), (20, 20)]
    assert all(r["gas_per_anchor_tx"] > 50_000 for r in rows)  # type: ignore[operator]


def test_proofs_bench_serves_every_document() -> None:
    row = bench_proofs.run(n=600, page=200)
    assert row["documents"] == 600


def test_rules_bench_evaluates_checks_and_replays_a_small_year() -> None:
    evaluation, active, sandbox = bench_rules.run(sandbox_records=2_000)
    assert evaluation["what"] == "evaluation" and active["what"] == "active_check"
    assert sandbox["ledger_records"] >= 2_000 and sandbox["invitations_answered_twice"] == 20


def test_safety_stock_bench_compares_the_three_policies() -> None:
    rows = bench_safety_stock.run(seeds=(1,))
    assert {r["policy"] for r in rows} == {"from_demand", "fixed_first_8_weeks", "fixed_same_average"}


def test_settlement_bench_builds_a_statement_in_the_core() -> None:
    row: dict[str, Any] = bench_settlement.run(members=4, transfer_records=400)
    assert row["members"] == 4 and row["in_core"] is True and row["transfer_records"] > 0


def test_story_bench_receives_and_anchors_the_transfer() -> None:
    (row,) = bench_story.run(rounds=1)
    assert row["trigger_to_shipped_s"] <= row["trigger_to_received_and_anchored_s"]  # type: ignore[operator]


def test_write_path_bench_measures_the_node_beside_its_ceiling() -> None:
    single, batch = bench_write_path.run(clients=(2,), seconds=1.0, batch_sizes=(10,))
    assert single["codes"].keys() == {201} and batch["codes"].keys() == {201}
    assert single["ok"] > 0 and single["ceiling_per_s"] > 0 and batch["movements_per_s"] == batch["per_s"] * 10


def test_offers_bench_admits_each_signed_offer_once_alone_and_in_batches() -> None:
    single, *batches = bench_offers.run(clients=(2,), seconds=0.5, follow=(True,), batch=5, copies=3_000)
    assert single["codes"].keys() == {202} and single["ok"] > 0 and single["recoveries_per_s_one_core"] > 0
    assert [b["clients"] for b in batches] == [1, 2]
    for b in batches:
        assert b["codes"].keys() == {200} and b["all_admitted"] is True and b["messages_per_s"] == b["per_s"] * 5
