"""The cooperative games of settlement (settlement/games.py) beside the code of an earlier commit, in the same
run: the nucleolus of general plan games of 8 and 10 players and of a big boss game of 10 players, and the core
check of every coalition at 16 and 20 members.

    .venv/bin/python -m bench.bench_settlement_games [--baseline-commit 78ef9e5] [--cap 120]

Games (seeded): *general* = two requesters served by the same suppliers, each filling its need from the
best subset of its offers (capacity, gain a unit, a truck cost per lane): no big boss, many coalitions of
equal excess; *big boss* = one requester and its suppliers, the same way (a big boss game for the seed used;
truck costs can make suppliers complements, and then a one-requester plan is not one); the consortia =
plans of a requester and 1 to 3 suppliers among the members, valued so, and the Shapley shares rounded to
minor units.

The baseline is settlement/games.py of `--baseline-commit` (read from git; at 78ef9e5 the code before the
nucleolus and the core check were rewritten), each of its measures run in a child process stopped after
`--cap` seconds and reported as "> cap". The baseline enumerated coalitions up to 16 members: at 20 its limit
is raised for the measure. `run(scale="tiny")` is the few-second version a unit test runs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
import types
from collections.abc import Callable
from fractions import Fraction
from typing import Any, Literal

from bench.common import machine, module_at
from settlement import games
from settlement.money import largest_remainder

BASELINE = "78ef9e5"  # the commit before this rewrite of settlement/games.py

Offer = tuple[int, int, int]  # capacity, gain a unit, truck cost


def fill(need: int, offers: list[Offer]) -> int:
    """What a requester of `need` units gains from the best subset of its offers, each subset filled from the
    largest gain a unit down: the enumeration settlement/plans.py uses for one request."""
    best = 0
    for mask in range(1 << len(offers)):
        left, gain = need, 0
        for cap, per_unit, truck in sorted((o for i, o in enumerate(offers) if mask >> i & 1), key=lambda o: -o[1]):
            take = min(left, cap)
            gain, left = gain + take * per_unit - truck, left - take
        best = max(best, gain)
    return best


def _offers(rng: random.Random) -> Offer:
    return rng.randint(10, 60), rng.randint(50, 200), rng.randint(500, 3000)


def one_requester(n: int, seed: int, scale: int = 1) -> games.PlanGame:
    """One requester R and n - 1 suppliers, each with a truck cost on its lane: a big boss game."""
    rng = random.Random(seed)
    offers = {f"S{i}": _offers(rng) for i in range(1, n)}

    def value(s: frozenset[str]) -> int:
        return scale * fill(100, [o for p, o in offers.items() if p in s]) if "R" in s else 0

    return games.PlanGame.of("one", ["R", *offers], value)


def two_plans(n: int, seed: int = 3) -> games.PlanGame:
    """Two requesters R1 and R2 served by the same n - 2 suppliers (two plans of a period over the same
    members, summed): no big boss, many coalitions of equal excess."""
    rng = random.Random(seed)
    suppliers = [f"S{i}" for i in range(1, n - 1)]
    offers = {(r, p): _offers(rng) for r in ("R1", "R2") for p in suppliers}
    need = {"R1": 90, "R2": 70}

    def value(s: frozenset[str]) -> int:
        return sum(fill(need[r], [o for (q, p), o in offers.items() if q == r and p in s]) for r in need if r in s)

    return games.PlanGame.of("two", ["R1", "R2", *suppliers], value)


def consortium(members: int, plans: int, seed: int = 1) -> tuple[games.ConsortiumGame, dict[str, int]]:
    """`plans` plans of a requester and 1 to 3 suppliers among `members` members, and the Shapley shares in
    minor units."""
    rng = random.Random(seed)
    names = [f"0x{i:040x}" for i in range(1, members + 1)]
    out = []
    for k in range(plans):
        requester, *suppliers = rng.sample(names, rng.randint(2, 4))
        offers, need = {s: _offers(rng) for s in suppliers}, rng.randint(20, 150)

        def value(s: frozenset[str], r: str = requester, o: dict[str, Offer] = offers, q: int = need) -> int:
            return fill(q, [x for p, x in o.items() if p in s]) if r in s else 0

        out.append(games.PlanGame.of(f"p{k}", [requester, *suppliers], value, requester))
    game = games.ConsortiumGame(out, others=tuple(names))
    return game, largest_remainder(game.shapley(), game.surplus)


Measure = tuple[str, str, int, int]  # (what, game, size, seed)
SIZES: tuple[Measure, ...] = (
    ("nucleolus", "general", 8, 1),
    ("nucleolus", "general", 8, 2),
    ("nucleolus", "general", 8, 3),
    ("nucleolus", "general", 10, 3),
    ("nucleolus", "big boss", 10, 3),
    ("core check", "consortium", 16, 1),
    ("core check", "consortium", 20, 1),
)
TINY: tuple[Measure, ...] = (
    ("nucleolus", "general", 5, 3),
    ("nucleolus", "big boss", 6, 3),
    ("core check", "consortium", 8, 1),
)
PLANS = 3_000  # plans of a consortium (the core check's time grows with the distinct sets of players)


def _nucleolus(module: types.ModuleType, g: games.PlanGame, **options: Any) -> Callable[[], dict[str, str]]:
    def measure() -> dict[str, str]:
        return {p: str(x) for p, x in module.nucleolus(g.players, g.masks(), **options).items()}

    return measure


def _core_check(module: types.ModuleType, members: int, seed: int) -> Callable[[], list[Any]]:
    """The whole core check of the module's own ConsortiumGame (its coalition values included), from scratch."""
    game, shares = consortium(members, PLANS if members > 10 else 60, seed)
    plans = [module.PlanGame(g.plan, g.players, g.values, g.requester) for g in game.plans]
    setattr(module, "MAX_ENUMERATED", max(module.MAX_ENUMERATED, members))  # noqa: B010

    def measure() -> list[Any]:
        check = module.ConsortiumGame(plans, others=game.others).core_check(shares)
        return [check.in_core, list(check.worst_coalition), str(check.deficit)]

    return measure


def _game(game: str, size: int, seed: int) -> games.PlanGame:
    return two_plans(size, seed) if game == "general" else one_requester(size, seed)


def _task(module: types.ModuleType, measure: Measure, **options: Any) -> Callable[[], Any]:
    what, game, size, seed = measure
    if what == "core check":
        return _core_check(module, size, seed)
    return _nucleolus(module, _game(game, size, seed), **options)


def _timed(task: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = task()
    return result, time.perf_counter() - started


def _baseline(commit: str, measure: Measure, cap: float) -> dict[str, Any]:
    """The measure on the baseline's code, in a child process stopped after `cap` seconds."""
    child = [sys.executable, "-m", "bench.bench_settlement_games", "--child", json.dumps(measure)]
    try:
        done = subprocess.run(
            [*child, "--baseline-commit", commit], capture_output=True, text=True, timeout=cap, check=True
        )
    except subprocess.TimeoutExpired:
        return {"seconds": f"> {cap:g}", "result": None}
    except subprocess.CalledProcessError as exc:  # the old code's own refusal, e.g. "no optimum"
        return {"seconds": None, "result": None, "error": exc.stderr.strip().splitlines()[-1]}
    answer: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return answer


def run(
    measures: tuple[Measure, ...] | None = None,
    scale: Literal["tiny", "normal"] = "normal",
    baseline_commit: str | None = BASELINE,
    cap: float = 120.0,
) -> list[dict[str, Any]]:
    """One row per measure: the current code's seconds (best of 3) and answer, and the baseline's (one run,
    capped) with whether they agree; for a nucleolus, whether the game is a big boss game (closed form) and
    the seconds of the LP route on it."""
    if measures is None:
        measures = TINY if scale == "tiny" else SIZES
    _timed(_task(games, ("nucleolus", "general", 4, 1)))  # HiGHS loaded before anything is timed
    rows: list[dict[str, Any]] = []
    for measure in measures:
        what, game, size, seed = measure
        row: dict[str, Any] = {"what": what, "game": game, "size": size, "seed": seed}
        row["load_1min"] = round(os.getloadavg()[0], 2)
        results = [_timed(_task(games, measure)) for _ in range(3)]
        row["result"], row["seconds"] = results[0][0], round(min(s for _, s in results), 4)
        if what == "nucleolus":
            g = _game(game, size, seed)
            row["big_boss"] = games.big_boss(size, [Fraction(v) for v in g.values]) is not None
            _, lp_seconds = _timed(_task(games, measure, closed_form=False))
            row["lp_route_seconds"] = round(lp_seconds, 4)
        if baseline_commit is not None:
            old = _baseline(baseline_commit, measure, cap)
            row["baseline"] = baseline_commit
            row["baseline_seconds"] = old["seconds"]
            row["baseline_error"] = old.get("error")
            row["same_answer"] = old["result"] == row["result"] if old["result"] is not None else None
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--baseline-commit", default=BASELINE, help="the commit whose settlement/games.py is the baseline"
    )
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--cap", type=float, default=120.0, help="seconds after which a baseline measure is stopped")
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # one baseline measure, in the child process
    args = parser.parse_args()
    if args.child:
        measure = tuple(json.loads(args.child))
        result, seconds = _timed(_task(module_at(args.baseline_commit, "settlement/games.py", "old_games"), measure))
        print(json.dumps({"seconds": round(seconds, 4), "result": result}))
        return
    print(json.dumps({"machine": machine(), "load_average": os.getloadavg()}), flush=True)
    baseline = None if args.no_baseline else args.baseline_commit
    for row in run(scale="tiny" if args.tiny else "normal", baseline_commit=baseline, cap=args.cap):
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
