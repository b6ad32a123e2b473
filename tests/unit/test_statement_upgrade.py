"""A node's statements from before approvals existed (docs/settlement.md, section 6): its database gains the
life cycle's columns, and a statement it had `proposed` (computed and signed at once, then) reads as approved
where its own signature is held, awaiting its operator where it is not."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from sqlmodel import Session, select

from node.services.settlements import Settlements
from node.services.side import Side
from node.store.engine import make_engine, session_scope
from node.store.tables import SettlementStatement, StatementSignatureRow

ME, OTHER = "0x" + "a1" * 20, "0x" + "b2" * 20
HASH = "0x" + "33" * 32


def test_proposed_statements_become_approved_where_this_node_signed_them(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as old:  # the table as it was, with a statement signed here and one not
        old.execute(
            "CREATE TABLE settlementstatement (id VARCHAR(66) PRIMARY KEY, period_from VARCHAR(10) NOT NULL, "
            "period_to VARCHAR(10) NOT NULL, rule_version VARCHAR(66) NOT NULL, proposer VARCHAR(42) NOT NULL, "
            "statement_hash VARCHAR(66) NOT NULL, status VARCHAR(10) NOT NULL, created_at VARCHAR(32) NOT NULL, "
            "record_seq INTEGER, problem VARCHAR, document VARCHAR)"
        )
        for sid, status in (("0x01", "proposed"), ("0x02", "proposed"), ("0x03", "final")):
            old.execute(
                "INSERT INTO settlementstatement VALUES (?, '2026-11-01', '2026-11-30', '0x', ?, ?, ?, "
                "'2026-12-01T00:00:00.000000Z', NULL, NULL, '{}')",
                (sid, OTHER, HASH, status),
            )
    engine = make_engine(f"sqlite:///{db}")
    with session_scope(engine) as s:
        for sid, signer in (("0x01", ME), ("0x02", OTHER), ("0x03", ME)):
            s.add(StatementSignatureRow(statement=sid, signer=signer, statement_hash=HASH, envelope="{}"))
    side = SimpleNamespace(
        engine=engine, signer=SimpleNamespace(address=ME), me=ME, directory=None, outbox=None, rules=None
    )
    settlements = Settlements(cast(Side, side), cast(Any, None), cast(Any, None), None, cast(Any, None))

    assert settlements.upgrade_legacy_statuses() == 2
    with Session(engine) as s:
        rows = {r.id: r for r in s.exec(select(SettlementStatement)).all()}
    assert {sid: str(r.status) for sid, r in rows.items()} == {
        "0x01": "approved",
        "0x02": "awaiting_approval",
        "0x03": "final",
    }
    assert rows["0x01"].approved_by is None  # given before approvals were recorded: how, nobody knows
    assert settlements.upgrade_legacy_statuses() == 0  # once upgraded, nothing more
