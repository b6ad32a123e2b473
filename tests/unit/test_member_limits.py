"""Per-member limits of the rule book (negotiation/limits.py): pure decisions over counts."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from negotiation.limits import dispute_refusal, within_share
from negotiation.rules.book import Limits, RuleBookInvalid, parse_book
from negotiation.rules.engine import OfferLine


def line(quantity: int, moq: int = 1, lot: str = "L") -> OfferLine:
    return OfferLine(
        lot=lot, location="WH", quantity=quantity, shelf_life_days=100, unit_price=500, min_order_quantity=moq
    )


def test_a_member_holds_at_most_its_share_of_what_it_could_hold() -> None:
    # 100 available, nothing held yet, half for one member: 50, taken from the lines in their order.
    got = within_share([line(30, lot="A"), line(40, lot="B")], held=0, available=100, share=Fraction(1, 2))
    assert [(x.lot, x.quantity) for x in got] == [("A", 30), ("B", 20)]
    # 40 already held for it in earlier offers, 60 available: half of 100 is 50, so 10 more.
    assert [x.quantity for x in within_share([line(60)], held=40, available=60, share=Fraction(1, 2))] == [10]
    # Already at its share: nothing.
    assert within_share([line(60)], held=50, available=50, share=Fraction(1, 2)) == []
    # A share of 1 changes nothing.
    assert within_share([line(30), line(40)], held=0, available=70, share=Fraction(1)) == [line(30), line(40)]


def test_a_line_trimmed_below_its_minimum_order_is_left_out() -> None:
    got = within_share(
        [line(30, moq=25, lot="A"), line(10, moq=5, lot="B")], held=0, available=40, share=Fraction(1, 2)
    )
    # 20 of room: A (minimum 25) cannot be offered at 20, so B takes 10 of it.
    assert [(x.lot, x.quantity) for x in got] == [("B", 10)]


@given(
    st.lists(st.tuples(st.integers(1, 500), st.integers(1, 50)), max_size=6),
    st.integers(0, 1000),
    st.integers(0, 1000),
    st.fractions(min_value=0, max_value=1),
)
def test_never_beyond_the_share_never_beyond_a_line_never_below_a_minimum(
    raw: list[tuple[int, int]], held: int, available: int, share: Fraction
) -> None:
    lines = [line(q, moq, lot=str(i)) for i, (q, moq) in enumerate(raw)]
    got = within_share(lines, held, available, share)
    assert held + sum(x.quantity for x in got) <= max(held, share * (held + available))
    original = {x.lot: x for x in lines}
    for x in got:
        assert original[x.lot].min_order_quantity <= x.quantity <= original[x.lot].quantity


def test_disputes_are_refused_past_either_limit() -> None:
    assert dispute_refusal(open_now=2, opened_today=5, max_open=3, max_per_day=10) is None
    assert "3 disputes of this member are open" in str(dispute_refusal(3, 3, 3, 10))
    assert "in 24 hours" in str(dispute_refusal(0, 10, 3, 10))


def test_the_book_holds_the_limits_with_defaults_and_checks_them() -> None:
    base = {"name": "c", "label": "1", "governance": {"approvers": ["0x" + "11" * 20], "quorum": 1}}
    assert parse_book(base).limits == Limits()
    assert Limits().reserved_share_per_member == "1"
    set_ = parse_book({**base, "limits": {"reserved_share_per_member": "0.5", "open_disputes_per_member": 1}})
    assert set_.limits.reserved_share_per_member == "0.5" and set_.limits.open_disputes_per_member == 1
    for bad in ({"reserved_share_per_member": "1.5"}, {"open_disputes_per_member": 0}, {"per_day": 3}):
        with pytest.raises(RuleBookInvalid) as err:
            parse_book({**base, "limits": bad})
        assert err.value.problems[0].path.startswith("limits")
