"""What a format-2 statement builds on (node/services/settlement_basis.py): periods that may be closed, and the
references final statements of either format settled."""

from __future__ import annotations

from datetime import date

import pytest

from node.errors import InvalidRequest
from node.services.settlement_basis import period_closable, settled_keys
from settlement.realised import Cut, build_realised_statement
from settlement.statement import SettlementTerms, build_statement
from tests.unit.test_settlement_realised import BOOKS, CUT, PERIOD, R
from tests.unit.test_settlement_realised import story as delivered_story
from tests.unit.test_settlement_statement import story


def test_a_period_that_ends_after_today_is_refused_and_one_that_ends_today_is_not() -> None:
    today = date(2026, 12, 7)
    assert period_closable(date(2026, 12, 1), today, today).days == 7
    with pytest.raises(InvalidRequest, match="after today"):
        period_closable(today, date(2026, 12, 8), today)
    with pytest.raises(InvalidRequest, match="ends on or after it starts"):
        period_closable(today, date(2026, 12, 6), today)


def test_a_format_2_statement_names_what_it_settled() -> None:
    books, a1, a2 = delivered_story()
    s = build_realised_statement(books.records, PERIOD, "0x01", SettlementTerms(), BOOKS, Cut(R, CUT))
    assert settled_keys(s) == s["settles"] and {f"transfer:{a1}", f"transfer:{a2}"} <= set(s["settles"])


def test_the_references_of_a_format_1_statement_are_read_from_its_flows() -> None:
    s = build_statement(story().records, PERIOD, "0x01", SettlementTerms())
    keys = settled_keys(s)
    transfers = {f["reference"] for f in s["flows"] if f["kind"] == "transfer_price"}
    assert {f"transfer:{t}" for t in transfers} <= set(keys)
    assert "arbitration_award:0xr1" in keys
    assert not any("surplus" in k for k in keys)
