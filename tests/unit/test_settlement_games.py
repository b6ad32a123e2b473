"""The game theory of settlement/games.py against published worked examples, and its invariants."""

from __future__ import annotations

import math
import random
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.bench_settlement_games import consortium, one_requester, two_plans
from settlement import games
from settlement.games import ConsortiumGame, GameError, PlanGame, big_boss, core_check_by_plan, nucleolus
from settlement.money import largest_remainder


def game(players: str, v: dict[str, int]) -> PlanGame:
    """A game over one-letter players; `v` maps a coalition written as letters ("AB") to its value."""
    return PlanGame.of("g", players, lambda s: v.get("".join(sorted(s)), 0))


def bankruptcy(estate: int, claims: dict[str, int]) -> PlanGame:
    """O'Neill's bankruptcy game: v(S) = what is left for S after everyone outside S is paid in full."""
    total = sum(claims.values())
    return PlanGame.of("b", claims, lambda s: max(0, estate - (total - sum(claims[p] for p in s))))


def masks(g: PlanGame) -> dict[int, int]:
    return {m: g.values[m] for m in range(1, len(g.values))}


def test_shapley_of_the_glove_game() -> None:
    # One left glove (A), two right gloves (B, C); a pair is worth 1. Shapley: (2/3, 1/6, 1/6)
    # (e.g. Maschler, Solan & Zamir, Game Theory, 2013, section 18.2).
    glove = game("ABC", {"AB": 1, "AC": 1, "ABC": 1})
    assert glove.shapley() == {"A": Fraction(2, 3), "B": Fraction(1, 6), "C": Fraction(1, 6)}


def test_shapley_of_the_airport_game_is_the_sequential_equal_split() -> None:
    # Littlechild & Owen (1973): a runway long enough for the largest plane; costs 12, 30, 60 (a cost game,
    # played here as savings v(S) = sum of own costs - max cost). Shapley of costs: 12/3; 4 + 18/2; 13 + 30.
    cost = {"A": 12, "B": 30, "C": 60}
    savings = PlanGame.of("a", cost, lambda s: sum(cost[p] for p in s) - max(cost[p] for p in s))
    phi = savings.shapley()
    assert {p: cost[p] - phi[p] for p in cost} == {"A": 4, "B": 13, "C": 43}


@pytest.mark.parametrize(
    ("estate", "talmud"),
    [(100, (Fraction(100, 3),) * 3), (200, (50, 75, 75)), (300, (50, 100, 150))],
)
def test_nucleolus_of_the_talmud_bankruptcy_problems(estate: int, talmud: tuple[int, ...]) -> None:
    # Aumann & Maschler (1985): the Talmud's division of an estate of 100, 200, 300 among claims of 100, 200,
    # 300 is the nucleolus of the bankruptcy game.
    b = bankruptcy(estate, {"A": 100, "B": 200, "C": 300})
    assert nucleolus(b.players, masks(b)) == dict(zip("ABC", map(Fraction, talmud), strict=True))


def test_nucleolus_of_the_glove_game_gives_everything_to_the_scarce_glove() -> None:
    glove = game("ABC", {"AB": 1, "AC": 1, "ABC": 1})
    assert nucleolus(glove.players, masks(glove)) == {"A": 1, "B": 0, "C": 0}


def test_the_core_check_finds_the_worst_coalition() -> None:
    glove = ConsortiumGame([game("ABC", {"AB": 1, "AC": 1, "ABC": 1})])
    shapley = glove.shapley()
    check = glove.core_check(shapley)
    # {A, B} is worth 1 and gets 2/3 + 1/6: the Shapley value is outside the (single-point) core.
    assert not check.in_core and check.deficit == Fraction(1, 6) and check.worst_coalition in (("A", "B"), ("A", "C"))
    assert glove.core_check({"A": 1, "B": 0, "C": 0}).in_core


def test_an_empty_core_has_a_least_core_nucleolus() -> None:
    # Three players, any two make 1, all three make 1: the core is empty; the nucleolus splits equally and
    # every pair falls short by 1/3 (the least core's epsilon).
    majority = ConsortiumGame([game("ABC", {"AB": 1, "AC": 1, "BC": 1, "ABC": 1})])
    nu = nucleolus(majority.members, majority.coalition_values())
    assert nu == {"A": Fraction(1, 3), "B": Fraction(1, 3), "C": Fraction(1, 3)}
    check = majority.core_check(nu)
    assert not check.in_core and check.deficit == Fraction(1, 3)


def test_the_consortium_game_is_the_sum_of_its_plans() -> None:
    p1 = PlanGame.of("p1", ["R", "S1", "S2"], lambda s: 100 if "R" in s and ({"S1", "S2"} & s) else 0)
    p2 = PlanGame.of("p2", ["S1", "T"], lambda s: 40 if s == {"S1", "T"} else 0)
    total = ConsortiumGame([p1, p2])
    assert total.members == ("R", "S1", "S2", "T") and total.surplus == 140
    assert total.value({"R", "S1", "T"}) == 140 and total.value({"R", "S2", "T"}) == 100
    values = total.coalition_values()
    assert len(values) == 15
    for mask, v in values.items():
        assert v == total.value(m for i, m in enumerate(total.members) if mask >> i & 1)
    phi = total.shapley()
    # p1 is the glove game scaled by 100 (R the scarce glove), p2 an equal split of 40: Shapley adds them.
    assert phi == {"R": Fraction(200, 3), "S1": Fraction(50, 3) + 20, "S2": Fraction(50, 3), "T": 20}
    assert sum(phi.values()) == total.surplus


def test_a_plan_game_needs_a_value_per_subset_and_sorted_players() -> None:
    with pytest.raises(GameError):
        PlanGame("x", ("A", "B"), (0, 1, 2))
    with pytest.raises(GameError):
        PlanGame("x", ("B", "A"), (0, 1, 2, 3))


tables = st.integers(1, 5).flatmap(
    lambda n: st.lists(st.integers(0, 10_000), min_size=(1 << n) - 1, max_size=(1 << n) - 1).map(
        lambda rest: PlanGame("h", tuple(f"P{i}" for i in range(n)), (0, *rest))
    )
)


@given(tables)
@settings(max_examples=60, deadline=None)
def test_shapley_is_efficient_symmetric_and_the_nucleolus_is_efficient(g: PlanGame) -> None:
    players = g.players
    phi = g.shapley()
    assert sum(phi.values()) == g.grand
    nu = nucleolus(players, masks(g))
    assert sum(nu.values()) == g.grand
    # No coalition is worse off under the nucleolus than the least core allows: its worst deficit is the
    # smallest any allocation reaches, so it is at most Shapley's.
    c = ConsortiumGame([g])
    assert c.core_check(nu).deficit <= c.core_check(phi).deficit


# -- plan-shaped games (bench/bench_settlement_games.py: `one_requester`, a big boss game; `two_plans`, not) ---


def exact_table(g: PlanGame) -> list[Fraction]:
    return [Fraction(v) for v in g.values]


@pytest.mark.parametrize("closed_form", [True, False])
def test_the_nucleolus_of_a_plan_worth_seven_billion_minor_units(closed_form: bool) -> None:
    # This plan's LP had "no optimum" in GLOP at these magnitudes: the LPs now see values divided by the largest.
    small = one_requester(6, seed=3)
    large = one_requester(6, seed=3, scale=702_317)
    assert 6.9e9 < max(large.values) < 7e9
    nu = nucleolus(large.players, masks(large), closed_form=closed_form)
    assert nu == {p: x * 702_317 for p, x in nucleolus(small.players, masks(small), closed_form=closed_form).items()}
    # A general game (its core empty) of the same magnitude.
    values = [4872057333, 3280387012, 1095513148, 6422844795, 1930549411, 2798570523, 3387541014, 403123852,
              4416718760, 3589583794, 6153687686, 4304012710, 1912923437, 5277493553, 4059906722]  # fmt: skip
    table = dict(enumerate(values, start=1))
    assert nucleolus("ABCD", table) == {
        "A": Fraction(6355696691, 4),
        "B": Fraction(1518086117, 4),
        "C": Fraction(4329063831, 2),
        "D": Fraction(-146141791, 2),
    }


def test_a_one_requester_plan_of_independent_gains_splits_each_gain_in_half() -> None:
    gains = {"S1": 1_001, "S2": 20_000, "S3": 7, "S4": 0, "S5": 333_333}
    plan = PlanGame.of("p", ["R", *gains], lambda s: sum(gains[p] for p in s if p != "R") if "R" in s else 0)
    assert big_boss(len(plan.players), exact_table(plan)) == 0
    halves = {"R": Fraction(sum(gains.values()), 2)} | {p: Fraction(g, 2) for p, g in gains.items()}
    assert nucleolus(plan.players, masks(plan)) == halves == plan.shapley()
    assert nucleolus(plan.players, masks(plan), closed_form=False) == halves


@st.composite
def big_boss_games(draw: st.DrawFn) -> tuple[PlanGame, int]:
    """A boss (anywhere among the players) and suppliers whose worth to it is a sum of budget-additive
    functions min(cap, sum of gains): monotonic and submodular in the suppliers, hence a big boss game."""
    k = draw(st.integers(1, 5))
    boss = draw(st.integers(0, k))
    layers = draw(
        st.lists(
            st.tuples(st.integers(0, 10**9), st.lists(st.integers(0, 10**6), min_size=k, max_size=k)),
            min_size=1,
            max_size=3,
        )
    )
    players = [f"P{i}" for i in range(k + 1)]
    suppliers = [p for i, p in enumerate(players) if i != boss]

    def value(s: frozenset[str]) -> int:
        if players[boss] not in s:
            return 0
        return sum(min(cap, sum(g for p, g in zip(suppliers, gains, strict=True) if p in s)) for cap, gains in layers)

    return PlanGame.of("b", players, value), boss


@given(big_boss_games())
@settings(max_examples=80, deadline=None)
def test_the_closed_form_on_big_boss_games_is_the_lps_nucleolus(case: tuple[PlanGame, int]) -> None:
    g, _ = case
    found = big_boss(len(g.players), exact_table(g))
    # The boss drawn, or a player every valuable coalition also needs (with two suppliers of one layer, both).
    assert found is not None and all(v == 0 for m, v in enumerate(g.values) if not m >> found & 1)
    closed = nucleolus(g.players, masks(g))
    assert closed == nucleolus(g.players, masks(g), closed_form=False)
    grand = len(g.values) - 1
    for i, p in enumerate(g.players):
        if i != found:
            assert closed[p] == Fraction(g.values[grand] - g.values[grand ^ (1 << i)], 2)


def test_games_that_are_not_big_boss_games_are_told_apart() -> None:
    glove = game("ABC", {"AB": 1, "AC": 1, "ABC": 1})  # A is needed, but B and C are complements of nothing
    assert big_boss(3, exact_table(glove)) == 0  # a big boss game: A the boss, M_B = M_C = 0
    assert big_boss(8, exact_table(two_plans(8))) is None  # two requesters: no one is needed by every value
    spoiled = game("ABC", {"AB": 1, "AC": 1, "ABC": 3})  # B and C complements: union concavity fails
    assert big_boss(3, exact_table(spoiled)) is None
    not_monotonic = game("AB", {"A": 2, "AB": 1})
    assert big_boss(2, exact_table(not_monotonic)) is None


@pytest.mark.parametrize("n", [8, 10])
def test_a_general_plan_game_takes_at_most_n_minus_1_lps(n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each level fixes at least one coalition outside the span of those fixed before and drops the ones inside
    # it, so at most n - 1 levels. Fixing only the positive-price coalitions, one level at a time, took
    # hundreds of LPs here (12 s at 8 players, more than 600 s at 10).
    g = two_plans(n)
    calls: list[int] = []
    real = games._level_lp

    def counted(*args: Any) -> Any:
        calls.append(1)
        if len(calls) >= n:
            raise AssertionError(f"more than {n - 1} LPs")
        return real(*args)

    monkeypatch.setattr(games, "_level_lp", counted)
    nu = nucleolus(g.players, masks(g))
    assert sum(nu.values()) == g.grand and len(calls) <= n - 1
    # In the core (the sum of two plans' games has a non-empty core): no coalition gets less than its value.
    assert ConsortiumGame([g]).core_check(nu).in_core


def test_the_lp_route_agrees_with_the_published_nucleoli() -> None:
    b = bankruptcy(200, {"A": 100, "B": 200, "C": 300})
    assert nucleolus(b.players, masks(b), closed_form=False) == {"A": 50, "B": 75, "C": 75}
    glove = game("ABC", {"AB": 1, "AC": 1, "ABC": 1})
    assert nucleolus(glove.players, masks(glove), closed_form=False) == {"A": 1, "B": 0, "C": 0}


# -- the core check ---------------------------------------------------------------------------------------


def brute_force_check(c: ConsortiumGame, allocation: dict[str, Fraction]) -> tuple[tuple[str, ...], Fraction]:
    """The worst proper coalition and its deficit, one coalition at a time (the rule of `core_check`)."""
    members = c.members
    best: tuple[Fraction, int, int] | None = None
    for mask in range(1, (1 << len(members)) - 1):
        s = [m for i, m in enumerate(members) if mask >> i & 1]
        d = c.value(s) - sum((allocation.get(m, Fraction(0)) for m in s), Fraction(0))
        if best is None or (-d, mask.bit_count(), mask) < (-best[0], best[1], best[2]):
            best = (d, mask.bit_count(), mask)
    assert best is not None
    return tuple(m for i, m in enumerate(members) if best[2] >> i & 1), best[0]


@st.composite
def consortia(draw: st.DrawFn) -> tuple[ConsortiumGame, dict[str, Fraction]]:
    """Up to 7 members, plans over 1 to 4 of them with values up to 10^6 or, half the time, up to 10^18 (the
    core check then runs on Python integers), and an allocation in whole units or thirds or 10^-12."""
    n = draw(st.integers(2, 7))
    members = [f"0x{i:02x}" for i in range(n)]
    huge = draw(st.booleans())
    plans = []
    for p in range(draw(st.integers(0, 6))):
        players = sorted(draw(st.sets(st.sampled_from(members), min_size=1, max_size=min(4, n))))
        top = 10**18 if huge else 10**6
        rest = draw(
            st.lists(st.integers(-top, top), min_size=(1 << len(players)) - 1, max_size=(1 << len(players)) - 1)
        )
        plans.append(PlanGame(f"p{p}", tuple(players), (0, *rest)))
    denominator = draw(st.sampled_from([1, 3, 10**12]))
    allocation = {m: Fraction(draw(st.integers(-(10**19), 10**19)), denominator) for m in members}
    return ConsortiumGame(plans, others=tuple(members)), allocation


@given(consortia())
@settings(max_examples=120, deadline=None)
def test_the_vectorised_core_check_is_the_brute_force_one(case: tuple[ConsortiumGame, dict[str, Fraction]]) -> None:
    c, allocation = case
    check = c.core_check(allocation)
    assert (check.worst_coalition, check.deficit) == brute_force_check(c, allocation)
    assert check.in_core == (check.deficit <= 0) and check.coalitions_checked == (1 << len(c.members)) - 2
    for mask, v in c.coalition_values().items():
        assert v == c.value(m for i, m in enumerate(c.members) if mask >> i & 1)


def pairs_of_halves(members: int, seed: int = 1) -> ConsortiumGame:
    """Plans between two members each, worth an odd amount: every share is a half, so the largest remainder
    has half the members' units to give, by address, and some pair gets one unit less than its plan."""
    rng = random.Random(seed)
    names = [f"0x{i:040x}" for i in range(1, members + 1)]
    plans = []
    for k in range(0, members - 1, 2):
        gain = 2 * rng.randint(100, 99_999) + 1
        plans.append(PlanGame.of(f"p{k}", names[k : k + 2], lambda s, g=gain: g if len(s) == 2 else 0))
    return ConsortiumGame(plans, others=tuple(names))


def test_every_coalition_of_20_members_is_checked() -> None:
    assert games.MAX_ENUMERATED == 20
    c = pairs_of_halves(20)
    exact = c.shapley()
    rounded = {m: math.floor(x) + (i % 4 == 0) for i, (m, x) in enumerate(sorted(exact.items()))}
    rounded[c.members[-1]] += c.surplus - sum(rounded.values())
    check = c.core_check(rounded)
    assert check.coalitions_checked == 2**20 - 2
    assert check.deficit == c.value(check.worst_coalition) - sum(rounded[m] for m in check.worst_coalition)
    # No sampled coalition does worse than the worst one reported.
    rng = random.Random(2)
    for _ in range(2_000):
        s = [m for m in c.members if rng.random() < 0.5]
        if 0 < len(s) < 20:
            assert c.value(s) - sum(rounded[m] for m in s) <= check.deficit
    assert c.core_check(exact).in_core
    with pytest.raises(GameError):
        pairs_of_halves(22).core_check(exact)


def glove_and_unanimity(g: int, h: int) -> list[PlanGame]:
    """A plan where A can be served by B or C (worth g: the glove game, whose Shapley value is outside its
    core) and a plan of A, B and C together worth h (Shapley: thirds)."""
    glove = PlanGame.of("glove", "ABC", lambda s: g if "A" in s and s & {"B", "C"} else 0)
    unanimity = PlanGame.of("all", "ABC", lambda s: h if len(s) == 3 else 0)
    return [glove, unanimity]


def test_the_check_by_plan_never_raises_a_false_alarm() -> None:
    # Per plan, {A, B} gets g/6 less than its glove value; but the unanimity plan gives it 2h/3 more than its
    # 0, so the whole allocation is in the core. Checked plan by plan, that is not known: None, not False.
    plans = glove_and_unanimity(6_000, 9_000)
    whole = ConsortiumGame(plans)
    shapley = [g.shapley() for g in plans]
    assert whole.core_check(whole.shapley()).in_core
    by_plan = core_check_by_plan(plans, shapley)
    assert by_plan.in_core is None and by_plan.scope == "each plan" and by_plan.deficit == 1_000
    # The same plans, allocated in each plan's core (nucleolus per plan), are proven in the core.
    nucleoli = [nucleolus(g.players, g.masks()) for g in plans]
    proven = core_check_by_plan(plans, nucleoli)
    assert proven.in_core is True and proven.deficit == 0 and proven.worst_coalition == ()


def test_the_check_by_plan_places_the_rounding_units() -> None:
    c = pairs_of_halves(24)  # beyond MAX_ENUMERATED: only the check by plan answers
    halves = [{p: Fraction(g.grand, 2) for p in g.players} for g in c.plans]
    exact = {m: Fraction(0) for m in c.members} | {p: x for h in halves for p, x in h.items()}
    # Each pair's odd unit to its first member: the pair still gets its whole plan.
    paired = {m: math.floor(x) + (i % 2 == 0) for i, (m, x) in enumerate(sorted(exact.items()))}
    assert core_check_by_plan(c.plans, halves, paired).in_core is True
    # The largest remainder gives the 12 units to the first 12 addresses: the last 6 pairs get one unit less
    # each, and together 6 less than their plans (the true largest deficit here: the bound is tight).
    rounded = largest_remainder(exact, c.surplus)
    check = core_check_by_plan(c.plans, halves, rounded)
    assert check.in_core is None and check.deficit == 6
    # A member in no plan with a negative share: not proven either.
    assert core_check_by_plan(c.plans, halves, paired | {"0xfff": -1}).in_core is None


@pytest.mark.parametrize("members", [14, 24])
def test_the_rounded_nucleoli_of_many_plans_are_proven_in_the_core(members: int) -> None:
    # Plans of a requester and 1 to 3 suppliers: the largest remainder's units move between members of the
    # same plans, within each plan's core. At 14 members the full check confirms it.
    game, _ = consortium(members, 300, seed=2)
    nucleoli = [nucleolus(g.players, g.masks()) for g in game.plans]
    exact = dict.fromkeys(game.members, Fraction(0))
    for shares in nucleoli:
        for p, x in shares.items():
            exact[p] += x
    rounded = largest_remainder(exact, game.surplus)
    assert rounded != exact  # there were units to place
    assert core_check_by_plan(game.plans, nucleoli, rounded).in_core is True
    if members <= games.MAX_ENUMERATED:
        assert game.core_check(rounded).in_core


@given(consortia())
@settings(max_examples=80, deadline=None)
def test_the_check_by_plan_is_sound(case: tuple[ConsortiumGame, dict[str, Fraction]]) -> None:
    c, _ = case
    plans = [g for g in c.plans if g.values == tuple(max(0, v) for v in g.values)]
    if not plans:
        return
    whole = ConsortiumGame(plans, others=c.others)
    nucleoli = [nucleolus(g.players, g.masks()) for g in plans]
    exact = {m: Fraction(0) for m in whole.members}
    for x in nucleoli:
        for p, share in x.items():
            exact[p] += share
    for allocation in (exact, largest_remainder(exact, whole.surplus)):
        if core_check_by_plan(plans, nucleoli, allocation).in_core:
            assert whole.core_check(allocation).in_core


def test_structure_below_the_lps_tolerance_is_solved_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    # B and C together are worth V = 10^10 + 1949, everyone together 1, the rest 0. By symmetry A = D = a,
    # B = C = b, 2a + 2b = 1; the least excesses are those of {B, C} (2b - V) and {A, D} (1 - 2b): equal at
    # b = (V + 1) / 4. What separates the coalitions is a few units in 10^10, below HiGHS' tolerance (1e-7 of
    # the largest value): its basis is not exactly optimal, and the level is solved again in Fractions.
    exact_levels: list[int] = []
    real = games._exact_level
    monkeypatch.setattr(games, "_exact_level", lambda *args: exact_levels.append(1) or real(*args))
    table = dict.fromkeys(range(1, 16), 0) | {6: 10_000_001_949, 15: 1}
    b = Fraction(10_000_001_950, 4)
    assert nucleolus("ABCD", table) == {"A": Fraction(1, 2) - b, "B": b, "C": b, "D": Fraction(1, 2) - b}
    assert exact_levels


@given(tables)
@settings(max_examples=40, deadline=None)
def test_the_exact_levels_agree_with_the_certified_ones(g: PlanGame) -> None:
    expected = nucleolus(g.players, masks(g), closed_form=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(games, "_certified", lambda *args: None)  # every level by the exact simplex
        assert nucleolus(g.players, masks(g), closed_form=False) == expected
