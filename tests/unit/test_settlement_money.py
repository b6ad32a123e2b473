"""Rounding shares to minor units and settling net positions (settlement/money.py): exact, deterministic."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.games import ConsortiumGame, PlanGame
from settlement.money import Payment, largest_remainder, net_positions, rounded_in_core, settle


def test_largest_remainder_gives_the_units_left_to_the_largest_fractions() -> None:
    # 100 split in thirds: 33 each and one unit left, to the first of three equal remainders by address.
    assert largest_remainder({"0xb": Fraction(100, 3), "0xa": Fraction(100, 3), "0xc": Fraction(100, 3)}, 100) == {
        "0xa": 34,
        "0xb": 33,
        "0xc": 33,
    }
    # 10 as 2.6 / 3.3 / 4.1: floors 2, 3, 4, one unit left, to 0.6.
    assert largest_remainder({"a": Fraction(26, 10), "b": Fraction(33, 10), "c": Fraction(41, 10)}, 10) == {
        "a": 3,
        "b": 3,
        "c": 4,
    }
    with pytest.raises(ValueError):
        largest_remainder({"a": Fraction(1, 2)}, 1)


def test_settling_needs_fewer_payments_than_the_flows() -> None:
    flows = [Payment("A", "B", 100), Payment("B", "C", 100), Payment("C", "A", 30), Payment("A", "C", 5)]
    net = net_positions(flows)
    assert net == {"A": -75, "B": 0, "C": 75}
    assert settle(net) == [Payment("A", "C", 75)]


@given(st.dictionaries(st.sampled_from([f"0x{i:02x}" for i in range(12)]), st.fractions(0, 10**9), min_size=1))
def test_rounded_shares_add_up_and_each_is_within_one_unit(exact: dict[str, Fraction]) -> None:
    total = sum(exact.values())
    # make the total whole by adding the missing fraction to one share
    first = sorted(exact)[0]
    exact[first] += Fraction(-total % 1)
    total = int(sum(exact.values()))
    rounded = largest_remainder(exact, total)
    assert sum(rounded.values()) == total
    assert all(abs(rounded[k] - exact[k]) < 1 for k in exact)


@given(st.lists(st.tuples(st.sampled_from("ABCDEFGH"), st.sampled_from("ABCDEFGH"), st.integers(0, 10**12))))
def test_payments_bring_every_position_to_zero_in_at_most_parties_minus_one(
    raw: list[tuple[str, str, int]],
) -> None:
    net = net_positions(Payment(a, b, x) for a, b, x in raw if a != b)
    assert sum(net.values()) == 0
    payments = settle(net)
    assert net_positions(payments) == {k: v for k, v in net.items() if v != 0} | {
        k: 0 for p in payments for k in (p.payer, p.payee) if net.get(k, 0) == 0
    }
    assert all(p.amount > 0 for p in payments)
    assert len(payments) <= max(0, sum(1 for v in net.values() if v != 0) - 1)


def halves_and_thirds(a: int = 5_000, b: int = 7_000) -> ConsortiumGame:
    """A plan of A and B worth 2a + 1 and one of C, D and E worth 3b + 2, each only to all its players:
    shares a + 1/2 (twice) and b + 2/3 (three times), the core x(AB) = v(AB), x(CDE) = v(CDE)."""
    ab = PlanGame.of("ab", "AB", lambda s: 2 * a + 1 if len(s) == 2 else 0)
    cde = PlanGame.of("cde", "CDE", lambda s: 3 * b + 2 if len(s) == 3 else 0)
    return ConsortiumGame([ab, cde])


def test_the_largest_remainder_can_leave_the_core_and_the_repair_brings_it_back() -> None:
    game = halves_and_thirds()
    exact = game.shapley()
    assert game.core_check(exact).in_core
    # The 3 units left go to the thirds (2/3 > 1/2): A and B get 5,000 each, 1 less than their plan.
    rounded = largest_remainder(exact, game.surplus)
    check = game.core_check(rounded)
    assert not check.in_core and check.worst_coalition == ("A", "B") and check.deficit == 1
    # One unit moves (the fewest); in the largest remainder's order C, D, E, A, B: C and D keep theirs, E
    # gives one, A takes it.
    repaired = rounded_in_core(game, exact, game.surplus)
    assert repaired == {"A": 5_001, "B": 5_000, "C": 7_001, "D": 7_001, "E": 7_000}
    assert game.core_check(repaired).in_core and sum(repaired.values()) == game.surplus


def test_rounding_in_the_core_leaves_alone_what_it_need_not_repair() -> None:
    game = halves_and_thirds()
    # Already in the core after rounding: unchanged.
    exact = {"A": Fraction(10_001, 2), "B": Fraction(10_001, 2), "C": 7_000, "D": 7_000, "E": 7_002}
    assert rounded_in_core(game, exact, game.surplus) == largest_remainder(exact, game.surplus)
    # Exact shares outside the core: the method's choice, rounded as it is, not moved into the core.
    outside = {"A": Fraction(1, 2), "B": 10_000, "C": 7_000, "D": 7_000, "E": Fraction(14_005, 2)}
    assert not game.core_check(outside).in_core
    assert rounded_in_core(game, outside, game.surplus) == largest_remainder(outside, game.surplus)
    # A member of the game missing from the shares has a share of 0.
    assert rounded_in_core(game, {"A": 0, "B": 0, "C": 0, "D": 0, "E": game.surplus}, game.surplus)["E"] == game.surplus


def test_rounding_in_the_core_at_20_members() -> None:
    # Ten plans of two members, each worth an odd amount: 20 halves, 10 units to give by address, so five
    # pairs get one unit less than their plan. Each gets it back from a pair that got one more.
    rng = random.Random(1)
    names = [f"0x{i:040x}" for i in range(1, 21)]
    plans = []
    for k in range(0, 20, 2):
        gain = 2 * rng.randint(100, 99_999) + 1
        plans.append(PlanGame.of(f"p{k}", names[k : k + 2], lambda s, g=gain: g if len(s) == 2 else 0))
    game = ConsortiumGame(plans)
    exact = game.shapley()
    rounded = largest_remainder(exact, game.surplus)
    assert game.core_check(rounded).deficit == 5
    repaired = rounded_in_core(game, exact, game.surplus)
    assert game.core_check(repaired).in_core and sum(repaired.values()) == game.surplus
    # Five units moved, each between members of different pairs, each pair now one unit over and under.
    assert sum(abs(repaired[m] - rounded[m]) for m in names) == 10
    assert all(abs(repaired[m] - exact[m]) < 1 for m in names)
    # Every member computes the same split.
    assert (
        rounded_in_core(ConsortiumGame(list(reversed(plans))), dict(reversed(exact.items())), game.surplus) == repaired
    )


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(1, 10**6)), min_size=1, max_size=6))
@settings(max_examples=60, deadline=None)
def test_rounding_in_the_core_stays_in_the_core_when_the_exact_split_is(plans: list[tuple[int, int, int]]) -> None:
    # Plans of a requester and a supplier (six members), each worth its gain to the pair: the sum of the pairs'
    # halves is in the core, and so is an integer allocation (each pair's gain split in whole units).
    names = [f"0x{i:02x}" for i in range(6)]
    games = [
        PlanGame.of(f"p{k}", {names[r], names[s]}, lambda c, g=gain: g if len(c) == 2 else 0)
        for k, (r, s, gain) in enumerate(plans)
        if r != s
    ]
    if not games:
        return
    game = ConsortiumGame(games, others=tuple(names))
    exact = game.shapley()
    repaired = rounded_in_core(game, exact, game.surplus)
    assert sum(repaired.values()) == game.surplus and game.core_check(repaired).in_core
    rounded = largest_remainder(exact, game.surplus)
    if game.core_check(rounded).in_core:
        assert repaired == rounded


def test_without_an_integer_core_allocation_the_largest_remainder_stays() -> None:
    # Two triangles, ABC and DEF: any two of a triangle are worth 1, everyone 3. Every pair must get 1, so
    # each triangle at least 3/2, and the core is the one point of halves; in whole units a triangle needs 2,
    # 4 in all, more than 3: no integer allocation is in the core, and the rounding is left as it is.
    triangles = ("ABC", "DEF")
    game = ConsortiumGame(
        [PlanGame.of("t", "ABCDEF", lambda s: 3 if len(s) == 6 else sum(len(s & set(t)) >= 2 for t in triangles))]
    )
    halves = dict.fromkeys("ABCDEF", Fraction(1, 2))
    assert game.core_check(halves).in_core
    assert (
        rounded_in_core(game, halves, 3)
        == largest_remainder(halves, 3)
        == {"A": 1, "B": 1, "C": 1, "D": 0, "E": 0, "F": 0}
    )
