"""A node resumes on a database made before a column was added to a table (node/store/engine.py): the
column is added with its default and old rows read it; a new required column without a default is refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, Table
from sqlmodel import Session, select

from node.store.engine import add_new_columns, make_engine
from node.store.tables import Sku


def test_an_old_sku_table_gains_the_purchase_and_sale_prices_and_keeps_its_rows(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as old:  # the table as it was before purchase prices
        old.execute("CREATE TABLE sku (code VARCHAR(64) PRIMARY KEY, name VARCHAR(200), unit VARCHAR(16), "
                    "transfer_price BIGINT)")  # fmt: skip
        old.execute("INSERT INTO sku VALUES ('F', 'Formula', 'each', 5200)")
    engine = make_engine(f"sqlite:///{db}")
    with Session(engine) as s:
        (sku,) = s.exec(select(Sku)).all()
    assert (sku.code, sku.transfer_price, sku.purchase_price, sku.sale_price) == ("F", 5200, 0, 0)
    assert add_new_columns(engine) == []  # once added, nothing more to add


def test_a_new_required_column_without_a_default_is_refused(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'n.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE gadget (code INTEGER PRIMARY KEY)")
    later = MetaData()
    Table("gadget", later, Column("code", Integer, primary_key=True), Column("size", Integer, nullable=False))
    with pytest.raises(RuntimeError, match=r"gadget\.size is new, required and has no default"):
        add_new_columns(engine, later)
    Table("gadget", later, Column("colour", Integer, nullable=True, default=7), extend_existing=True)
    later.tables["gadget"].c.size.nullable = True  # the same change, made optional: it is added
    assert add_new_columns(engine, later) == ["gadget.size", "gadget.colour"]
