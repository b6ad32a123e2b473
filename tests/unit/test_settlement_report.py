"""A statement as a controller reads it (settlement/report.py): money as money, names, flows and payments."""

from __future__ import annotations

from settlement.realised import Cut, build_realised_statement
from settlement.report import money_text, statement_report
from settlement.statement import SettlementTerms
from tests.unit.test_settlement_realised import BOOKS, CUT, PERIOD, S1, S2, R, story


def test_money_is_shown_exactly_with_separators_never_as_minor_units() -> None:
    assert [money_text(x) for x in (200_000, 5, -5, 0, 123_456_789)] == [
        "2,000.00",
        "0.05",
        "-0.05",
        "0.00",
        "1,234,567.89",
    ]
    assert money_text(1_500, 0) == "1,500" and money_text(1_500, 3) == "1.500"


def test_a_report_names_members_and_shows_each_amount_as_money() -> None:
    books, _, _ = story()
    s = build_realised_statement(books.records, PERIOD, "0x01", SettlementTerms(), BOOKS, Cut(R, CUT))
    text = statement_report(s, {R: "hangzhou-store", S1: "xiaoshan-dealer", S2: "shaoxing-dealer"})
    assert "Gain made on delivered goods: CNY 258.00" in text
    assert "hangzhou-store -> xiaoshan-dealer: CNY 33.00" in text
    assert "shaoxing-dealer -> hangzhou-store: CNY 12.00" in text
    assert "hangzhou-store: gain from transfers received CNY 150.00" in text
    assert "share of the joint gain CNY 129.00" in text
    assert "25800" not in text
