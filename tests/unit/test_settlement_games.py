"""The game theory of settlement/games.py against published worked examples, and its invariants."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.games import ConsortiumGame, GameError, PlanGame, nucleolus


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
    lambda n: st.tuples(st.just(n), st.lists(st.integers(0, 10_000), min_size=(1 << n) - 1, max_size=(1 << n) - 1))
)


@given(tables)
@settings(max_examples=60, deadline=None)
def test_shapley_is_efficient_symmetric_and_the_nucleolus_is_efficient(table: tuple[int, list[int]]) -> None:
    n, rest = table
    players = tuple(f"P{i}" for i in range(n))
    g = PlanGame("h", players, (0, *rest))
    phi = g.shapley()
    assert sum(phi.values()) == g.grand
    nu = nucleolus(players, masks(g))
    assert sum(nu.values()) == g.grand
    # No coalition is worse off under the nucleolus than the least core allows: its worst deficit is the
    # smallest any allocation reaches, so it is at most Shapley's.
    c = ConsortiumGame([g])
    assert c.core_check(nu).deficit <= c.core_check(phi).deficit
