"""Engine and sessions. SQLite by default (WAL, immediate write transactions), any SQLAlchemy URL otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, String, event, inspect, literal, text
from sqlmodel import Session, SQLModel, create_engine


def make_engine(url: str, sqlite_synchronous: str = "FULL") -> Engine:
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        _tune_sqlite(engine, sqlite_synchronous)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    # Several worker processes of one node start at once: one creates the tables while the others wait
    # (SQLite's BEGIN IMMEDIATE, PostgreSQL's transaction-scoped advisory lock), then find them made.
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('consortium-node-schema'))"))
        SQLModel.metadata.create_all(conn)
    add_new_columns(engine)
    widen_columns(engine)
    return engine


def add_new_columns(engine: Engine, metadata: MetaData | None = None) -> list[str]:
    """Columns added to a table since a node's database was made (create_all makes missing tables only):
    each is added with its default, so a node resumes on its old database. Only additions with a default or
    nullable are allowed in the tables (never a rename or a drop: those need a migration of their own).
    Returns "table.column" for each column added."""
    existing = inspect(engine)
    added = []
    for table in (metadata or SQLModel.metadata).sorted_tables:
        if not existing.has_table(table.name):
            continue
        have = {c["name"] for c in existing.get_columns(table.name)}
        for column in table.columns:
            if column.name in have:
                continue
            default = (
                getattr(column.default, "arg", None)
                if column.default is not None and column.default.is_scalar
                else None
            )
            if default is None and not column.nullable:
                raise RuntimeError(f"{table.name}.{column.name} is new, required and has no default: migrate by hand")
            quote = engine.dialect.identifier_preparer.quote
            ddl = (
                f"ALTER TABLE {quote(table.name)} ADD COLUMN {quote(column.name)} {column.type.compile(engine.dialect)}"
            )
            if default is not None:
                value = literal(default, column.type).compile(
                    dialect=engine.dialect, compile_kwargs={"literal_binds": True}
                )
                ddl += f" DEFAULT {value}" + ("" if column.nullable else " NOT NULL")
            with engine.begin() as conn:
                conn.execute(text(ddl))
            added.append(f"{table.name}.{column.name}")
    return added


def widen_columns(engine: Engine, metadata: MetaData | None = None) -> list[str]:
    """Text columns whose declared length grew since a node's database was made (a state named longer than its
    column allowed): widened on PostgreSQL, which enforces VARCHAR lengths; SQLite does not, so nothing there.
    Only widening: a column declared shorter than the database's is left as it is. Returns "table.column"."""
    if engine.dialect.name != "postgresql":
        return []
    existing = inspect(engine)
    widened = []
    for table in (metadata or SQLModel.metadata).sorted_tables:
        if not existing.has_table(table.name):
            continue
        have = {c["name"]: c["type"] for c in existing.get_columns(table.name)}
        for column in table.columns:
            wanted, old = getattr(column.type, "length", None), have.get(column.name)
            if not isinstance(column.type, String) or wanted is None or not isinstance(old, String):
                continue
            if old.length is None or old.length >= wanted:
                continue
            quote = engine.dialect.identifier_preparer.quote
            with engine.begin() as conn:
                conn.execute(
                    text(f"ALTER TABLE {quote(table.name)} ALTER COLUMN {quote(column.name)} TYPE VARCHAR({wanted})")
                )
            widened.append(f"{table.name}.{column.name}")
    return widened


def _tune_sqlite(engine: Engine, synchronous: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin (see _on_begin).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front: two writers can never both read a balance and then
        # both subtract from it, and nobody hits a deadlock upgrading a read lock.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: committed if the block succeeds, rolled back (nothing changed) if it raises."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
