"""DATABASE_URL selects PostgreSQL: the same node, the same rules, records anchored and verified; two writers of
one loan or one joint-purchase share at once act once (the writers' lock, node/store/writers.py)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlmodel import select

from chain.anvil import LocalChain
from chain.deploy import Deployment
from node.domain.states import StatementStatus
from node.store import writers
from node.store.engine import add_new_columns, make_engine, session_scope, widen_columns
from node.store.tables import Record, SettlementStatement, Sku
from node.store.writers import WritersMoment
from tests.helpers import (
    consortium,
    issue,
    race_for_stock,
    seed,
    snapshot,
    wait_anchored,
    workers_share_writes_and_anchor_once,
)
from tests.helpers.inprocess import InProcessNetwork, InProcessNode
from tests.helpers.nodes import HANGZHOU, XIAOSHAN, NodeFactory, soon, stock_up_through
from tests.helpers.postgres import PostgresServer
from tests.helpers.signin import signs_in_once_across_workers

# The longest a racer waits for the other: reached only when the code under test is broken.
WAIT_SECONDS = 60


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    server = PostgresServer()
    url = server.start()
    yield url
    server.stop()


def test_node_on_postgresql_refuses_overdrafts_and_anchors_verifiably(nodes: NodeFactory, postgres_url: str) -> None:
    node = nodes.new("on-postgres", DATABASE_URL=postgres_url, CONSORTIUM_DATABASE_URL=postgres_url)
    seed(node)
    issue(node, 3)
    before = snapshot(node)
    with node.client() as c:
        r = c.post(
            "/ledger/movements",
            json={"type": "issue", "sku": "FORMULA-900G", "lot": "F1", "location": "WH", "quantity": 1000},
        )
        assert r.status_code == 409 and r.json()["error"] == "insufficient_stock"
    assert snapshot(node) == before
    wait_anchored(node)
    result = consortium("audit", "verify", "--rpc", nodes.anvil.rpc_url, "--node", node.url)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["records_verified"] == 4


def database(postgres_url: str, name: str) -> str:
    """A database of its own on the module's server, so the other tests' rows do not mix in."""
    with create_engine(postgres_url, isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    return postgres_url.rsplit("/", 1)[0] + "/" + name


def test_an_old_sku_table_on_postgresql_gains_the_prices_and_keeps_its_rows(postgres_url: str) -> None:
    url = database(postgres_url, "old_skus")
    with create_engine(url).begin() as conn:  # the table as it was before purchase and sale prices
        conn.execute(text("CREATE TABLE sku (code VARCHAR(64) PRIMARY KEY, name VARCHAR(200), unit VARCHAR(16), "
                          "transfer_price BIGINT)"))  # fmt: skip
        conn.execute(text("INSERT INTO sku VALUES ('F', 'Formula', 'each', 5200)"))
    engine = make_engine(url)
    with session_scope(engine) as s:
        (sku,) = s.exec(select(Sku)).all()
        assert (sku.code, sku.transfer_price, sku.purchase_price, sku.sale_price) == ("F", 5200, 0, 0)
        s.add(Sku(code="W", name="Wipes", sale_price=1590))
    assert add_new_columns(engine) == []
    engine.dispose()


def test_concurrent_requests_never_overdraw_stock_on_postgresql(nodes: NodeFactory, postgres_url: str) -> None:
    url = database(postgres_url, "race")
    race_for_stock(nodes.new("pg-race", DATABASE_URL=url, CONSORTIUM_DATABASE_URL=url))


def test_two_workers_on_postgresql_share_the_writes_and_anchor_each_record_once(
    nodes: NodeFactory, postgres_url: str
) -> None:
    url = database(postgres_url, "workers")
    node = nodes.new("pg-workers", DATABASE_URL=url, CONSORTIUM_DATABASE_URL=url, CONSORTIUM_WORKERS="2")
    workers_share_writes_and_anchor_once(node, workers=2)


class HeldFirstWriter:
    """Two calls of one step at once, made to interleave the one way that breaks a lock taken late: the first
    is held between its reads and its first write (holding the writers' lock if it took it at the start) until
    the second has asked for the lock. Taken at the start, the second waits there and reads what the first
    committed; taken after the reads, it has read the state the first is about to change, every time."""

    def __init__(self) -> None:
        self.first: threading.Thread | None = None
        self.first_writing = threading.Event()
        self.second_asked = threading.Event()

    def watch(self, moment: WritersMoment) -> None:
        me = threading.current_thread()
        if moment == WritersMoment.WRITING and self.first in (None, me):
            self.first = me
            self.first_writing.set()
            assert self.second_asked.wait(WAIT_SECONDS), "the second writer never asked for the lock"
        elif moment == WritersMoment.LOCK_WANTED and self.first not in (None, me):
            self.second_asked.set()

    def race(self, step: Callable[[], Any]) -> list[str]:
        """Run `step` twice as described; what each call came to: "done" or the name of the error it raised."""
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(step)
            first.add_done_callback(lambda _f: self.first_writing.set())  # failed before writing: show its error
            assert self.first_writing.wait(WAIT_SECONDS), "the first writer never wrote"
            if first.done() and first.exception() is not None:
                raise AssertionError("the first writer failed before writing") from first.exception()
            second = pool.submit(step)
            second.add_done_callback(lambda _f: self.second_asked.set())  # ended without asking: let the first go
            return [_outcome(f) for f in (first, second)]


def _outcome(call: Future[Any]) -> str:
    error = call.exception(WAIT_SECONDS)
    return "done" if error is None else type(error).__name__


def race_twice(monkeypatch: pytest.MonkeyPatch, step: Callable[[], Any]) -> list[str]:
    held = HeldFirstWriter()
    monkeypatch.setattr(writers, "watch", held.watch)
    return held.race(step)


def asked_of_a_peer(node: InProcessNode, path: str, body: dict[str, Any]) -> str:
    """The operator's request (a loan asked, a purchase shared), its message delivered: the id it made."""
    r = node.client.post(path, json=body)
    assert r.status_code == 201, r.text
    assert node.deliver() == 1
    return str(r.json()["id"])


def record_types(node: InProcessNode) -> list[str]:
    with session_scope(node.services.engine) as s:
        return list(s.exec(select(Record.type).order_by(Record.seq)).all())


def test_a_sign_in_nonce_serves_once_across_two_workers_on_postgresql(
    nodes: NodeFactory, postgres_url: str, anvil: LocalChain, deployment: Deployment
) -> None:
    url = database(postgres_url, "signin")
    node = nodes.new("pg-signin", DATABASE_URL=url, CONSORTIUM_DATABASE_URL=url, CONSORTIUM_WORKERS="2")
    signs_in_once_across_workers(node, anvil, deployment)


def test_two_lends_of_one_loan_at_once_lend_once_on_postgresql(
    network: InProcessNetwork, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    borrower = network.node("hz-loan-race", HANGZHOU[0], HANGZHOU[1])
    lender = network.node("xs-loan-race", XIAOSHAN[0], XIAOSHAN[1], database_url=database(postgres_url, "loans"))
    stock_up_through(borrower.client, [])
    stock_up_through(lender.client, [("X1", soon(400), 50)])
    asked = {"lender": lender.address, "sku": "FORMULA-900G", "location": "WH", "quantity": 5,
             "max_fee_per_unit_day": 200, "max_unit_sale_price": 6000,
             "return_by": datetime.fromtimestamp(time.time() + 3600, UTC).isoformat()}  # fmt: skip
    loan = asked_of_a_peer(borrower, "/loans", asked)

    outcomes = race_twice(monkeypatch, lambda: lender.steps.loans.lend(loan, "X1", "WH", 150, 5000))

    assert outcomes == ["done", "AlreadyExists"]  # the second saw the loan lent
    assert record_types(lender).count("lend") == 1
    on_shelf = lender.client.get("/stock", params={"location": "WH"}).json()
    assert [(b["lot"], b["quantity"]) for b in on_shelf] == [("X1", 45)]  # 5 units left the shelf, once


def test_two_acceptances_of_one_joint_purchase_share_at_once_accept_once_on_postgresql(
    network: InProcessNetwork, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    buyer = network.node("xs-share-race", XIAOSHAN[0], XIAOSHAN[1])
    participant = network.node("hz-share-race", HANGZHOU[0], HANGZHOU[1], database_url=database(postgres_url, "shares"))
    units = [{"member": buyer.address, "units": 4}, {"member": participant.address, "units": 6}]
    body = {"sku": "FORMULA-900G", "lot": "J1", "reference": "PO-RACE", "total_cost": 100_000, "participants": units}
    purchase = asked_of_a_peer(buyer, "/joint-purchases", body)

    outcomes = race_twice(monkeypatch, lambda: participant.steps.joint_purchases.accept(purchase))

    assert outcomes == ["done", "AlreadyExists"]  # the second saw the share accepted
    assert record_types(participant).count("joint_purchase_share") == 1
    assert participant.deliver() == 1  # one acceptance goes to the buyer, not two


def test_a_status_column_made_narrower_than_its_states_is_widened_on_postgresql(postgres_url: str) -> None:
    """PostgreSQL enforces a VARCHAR's length (SQLite does not): a statement table made when its longest status
    had 10 letters takes `awaiting_approval` once the node starts on it, and keeps its rows."""
    url = database(postgres_url, "widen")
    with create_engine(url).begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE settlementstatement (id VARCHAR(66) PRIMARY KEY, period_from VARCHAR(10) NOT NULL, "
                "period_to VARCHAR(10) NOT NULL, rule_version VARCHAR(66) NOT NULL, proposer VARCHAR(42) NOT NULL, "
                "statement_hash VARCHAR(66) NOT NULL, status VARCHAR(10) NOT NULL, created_at VARCHAR(32) NOT NULL, "
                "record_seq INTEGER, problem VARCHAR, document VARCHAR)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO settlementstatement VALUES ('0x01', '2026-11-01', '2026-11-30', '0x', '0x', '0x', "
                "'proposed', '2026-12-01T00:00:00.000000Z', NULL, NULL, NULL)"
            )
        )
    engine = make_engine(url)
    assert widen_columns(engine) == []  # widened as the engine was made: nothing more to widen
    with session_scope(engine) as s:
        row = s.get(SettlementStatement, "0x01")
        assert row is not None and row.status == "proposed" and row.approval_due_at is None
        row.status = StatementStatus.AWAITING_APPROVAL
    with session_scope(engine) as s:
        assert s.exec(select(SettlementStatement.status)).all() == ["awaiting_approval"]
    engine.dispose()
