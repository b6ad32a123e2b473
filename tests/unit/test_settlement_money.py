"""Rounding shares to minor units and settling net positions (settlement/money.py): exact, deterministic."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settlement.money import Payment, largest_remainder, net_positions, settle


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
