"""DATABASE_URL selects PostgreSQL: the same node, the same rules, records anchored and verified."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.helpers import (
    consortium,
    issue,
    race_for_stock,
    seed,
    snapshot,
    wait_anchored,
    workers_share_writes_and_anchor_once,
)
from tests.helpers.nodes import NodeFactory
from tests.helpers.postgres import PostgresServer


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


def test_concurrent_requests_never_overdraw_stock_on_postgresql(nodes: NodeFactory, postgres_url: str) -> None:
    from sqlalchemy import create_engine, text

    # A database of its own, so the other test's rows do not mix in.
    with create_engine(postgres_url, isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(text("CREATE DATABASE race"))
    url = postgres_url.rsplit("/", 1)[0] + "/race"
    race_for_stock(nodes.new("pg-race", DATABASE_URL=url, CONSORTIUM_DATABASE_URL=url))


def test_two_workers_on_postgresql_share_the_writes_and_anchor_each_record_once(
    nodes: NodeFactory, postgres_url: str
) -> None:
    from sqlalchemy import create_engine, text

    with create_engine(postgres_url, isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(text("CREATE DATABASE workers"))
    url = postgres_url.rsplit("/", 1)[0] + "/workers"
    node = nodes.new("pg-workers", DATABASE_URL=url, CONSORTIUM_DATABASE_URL=url, CONSORTIUM_WORKERS="2")
    workers_share_writes_and_anchor_once(node, workers=2)
