"""The contribution dashboard's steps (node/services/settlements.py steps_of): days up to two weeks, weeks
beyond, ending with the period, the latest kept when there are too many."""

from __future__ import annotations

import itertools
from datetime import date

from node.services.settlements import MAX_STEPS, steps_of
from settlement.contribution import Period


def test_a_short_period_is_cut_into_days() -> None:
    steps = steps_of(Period(date(2026, 11, 1), date(2026, 11, 10)))
    assert [(s.start.day, s.end.day) for s in steps] == [(d, d) for d in range(1, 11)]


def test_a_month_is_cut_into_weeks_ending_with_it_the_first_one_short() -> None:
    steps = steps_of(Period(date(2026, 11, 1), date(2026, 11, 30)))
    assert [(s.start.day, s.end.day) for s in steps] == [(1, 2), (3, 9), (10, 16), (17, 23), (24, 30)]


def test_a_long_period_keeps_the_latest_weeks() -> None:
    steps = steps_of(Period(date(2025, 1, 1), date(2026, 11, 30)))
    assert len(steps) == MAX_STEPS and steps[-1].end == date(2026, 11, 30)
    assert all((b.start - a.end).days == 1 and b.days == 7 for a, b in itertools.pairwise(steps))
