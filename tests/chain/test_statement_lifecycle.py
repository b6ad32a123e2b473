"""A statement's life cycle across real nodes (docs/settlement.md, section 6), beyond the approvals that make it
final (tests/chain/test_settlement.py): an operator's dispute with its reason and lines, a proposer's
withdrawal, one approval per period, and the rule book approving for a member, at its deadline or at once.

Two members who moved stock today serve the first tests (each on a period of its own, none of them overlapping
a period another test makes final); the rule book's approvals run under a book of their own, on a registry of
their own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from chain.anvil import LocalChain
from chain.deploy import Deployment, deploy_contracts
from tests.helpers import (
    approve_statement,
    closing_period,
    consortium,
    final_on_all,
    moved,
    settlement_records,
    statement_on,
    statement_row,
    statement_status,
    wait_anchored,
)
from tests.helpers.nodes import ADMIN_KEY, TEST_RULEBOOK, NodeFactory, RunningNode, genesis_of, until


@pytest.fixture(scope="module")
def pair(
    anvil: LocalChain, deployment: Deployment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[RunningNode]]:
    """Hangzhou received 80 units from Xiaoshan today: [requester, supplier], for the module."""
    factory = NodeFactory(anvil, deployment, tmp_path_factory.mktemp("pair"))
    try:
        yield moved(factory, "life", suppliers=1)
    finally:
        factory.stop_all()


def close(node: RunningNode, start: str, end: str) -> str:
    with node.client() as c:
        r = c.post("/settlement/periods", json={"from": start, "to": end})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def act(node: RunningNode, statement: str, step: str, body: dict[str, Any] | None = None) -> httpx.Response:
    """The node's operator approves, disputes or withdraws the statement."""
    with node.client() as c:
        return c.post(f"/settlement/statements/{statement}/{step}", json=body)


@contextmanager
def console(node: RunningNode) -> Iterator[tuple[httpx.Client, str]]:
    """The node's console, signed in with its operator token: the client and its session's CSRF token."""
    with httpx.Client(base_url=node.url, timeout=120) as c:
        c.post("/console/sign-in", data={"token": node.token})
        found = re.search(r'name="csrf" value="([^"]+)"', c.get("/console/settlement").text)
        assert found is not None, "no form on the settlement page"
        yield c, found.group(1)


def refused(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.json()["error"]


def test_an_operators_dispute_with_its_reason_and_lines_stops_the_statement_and_shows_on_the_proposer(
    pair: list[RunningNode],
) -> None:
    hz, xs = pair
    sid = close(hz, *closing_period().values())
    until(lambda: statement_status(xs, sid) == "awaiting_approval", timeout=60)
    doc = statement_on(xs, sid)
    assert doc is not None
    price = next(f for f in doc["flows"] if f["kind"] == "transfer_price")
    line = {k: price[k] for k in ("kind", "reference", "from", "to")}
    # Only flows of the statement are disputed, and a proposer withdraws its own statement instead.
    assert refused(act(xs, sid, "dispute", {"reason": "r", "lines": [{**line, "reference": "0x01"}]})) == (
        422,
        "invalid_request",
    )
    assert refused(act(hz, sid, "dispute", {"reason": "mine is wrong", "lines": []})) == (422, "invalid_request")

    # Xiaoshan's operator disputes it on the console's Settlement page: a reason, and the flow ticked.
    why = "the transfer price was agreed at 50.00 a unit"
    with console(xs) as (c, csrf):
        r = c.post(f"/console/settlement/{sid}/dispute", data={"csrf": csrf, "reason": why, "line": json.dumps(line)})
    assert r.status_code == 303 and "disputed" in r.headers["location"], r.headers.get("location")
    assert statement_status(xs, sid) == "disputed"
    until(lambda: statement_status(hz, sid) == "disputed")
    shown = statement_on(hz, sid)
    assert shown is not None
    assert [(d["member"], d["reason"], d["lines"]) for d in shown["disputes"]] == [(xs.address, why, [line])]
    with console(hz) as (c, _csrf):
        assert why in c.get("/console/settlement").text  # the proposer's operator reads it on its page
    # It cannot go final: neither operator can approve it any more.
    assert refused(act(hz, sid, "approve")) == (422, "wrong_status")
    assert refused(act(xs, sid, "approve")) == (422, "wrong_status")


def test_a_proposer_withdraws_its_statement_everywhere_and_only_then_proposes_it_anew(pair: list[RunningNode]) -> None:
    hz, xs = pair
    january = ("2020-01-01", "2020-01-31")
    sid = close(hz, *january)
    until(lambda: statement_status(xs, sid) == "awaiting_approval", timeout=60)
    # Hangzhou's books move on: the period closed again is another statement (another cut, another hash, so
    # another id): the first one stays as it was, and a member approves at most one of the two.
    with hz.client() as c:
        body = {"type": "receipt", "sku": "FORMULA-900G", "lot": "W1", "location": "WH", "quantity": 1,
                "expires_on": "2030-01-01"}  # fmt: skip
        assert c.post("/ledger/movements", json=body).status_code == 201
        c.post("/anchoring/flush")
    wait_anchored(hz)
    anew = close(hz, *january)
    assert anew != sid and statement_row(hz, sid)["status"] == "awaiting_approval"  # type: ignore[index]
    assert refused(act(xs, sid, "withdraw", {"reason": "not mine"})) == (422, "invalid_request")
    said = consortium(
        "settle", "withdraw", "--node", hz.url, "--token", hz.token, "--id", sid, "--reason", "closed the wrong month"
    )
    assert said.returncode == 0 and json.loads(said.stdout)["status"] == "withdrawn", said.stderr
    until(lambda: statement_status(xs, sid) == "withdrawn")
    shown = statement_on(xs, sid)
    assert shown is not None and shown["withdrawal"]["reason"] == "closed the wrong month"
    assert refused(act(xs, sid, "approve")) == (422, "wrong_status")
    # Withdrawn, the period's other proposal stands: it awaits Xiaoshan's approval.
    until(lambda: (row := statement_row(xs, anew)) is not None and row["status"] == "awaiting_approval", timeout=60)
    assert statement_row(xs, anew)["statement_hash"] != shown["statement_hash"]  # type: ignore[index]


def test_a_member_approves_one_statement_of_a_period_and_the_first_approved_by_all_supersedes_the_others(
    pair: list[RunningNode],
) -> None:
    hz, xs = pair
    first = close(hz, "2020-03-01", "2020-03-31")
    second = close(xs, "2020-03-15", "2020-04-15")  # another proposer, an overlapping period
    assert first != second
    assert approve_statement(hz, first)["status"] == "approved"
    until(lambda: statement_status(hz, second) == "awaiting_approval", timeout=60)
    r = act(hz, second, "approve")
    assert refused(r) == (409, "period_approved") and r.json()["detail"]["approved"] == first
    # Once Xiaoshan disputes the first, it cannot go final: Hangzhou's approval of it binds no more.
    until(lambda: statement_status(xs, first) == "awaiting_approval", timeout=60)
    assert act(xs, first, "dispute", {"reason": "the second one covers March", "lines": []}).status_code == 200
    until(lambda: statement_status(hz, first) == "disputed")
    approve_statement(hz, second)
    approve_statement(xs, second)
    until(lambda: final_on_all(pair, second))
    assert [statement_status(n, first) for n in pair] == ["superseded", "superseded"]
    # An overlapping period closed later builds on the final statement: it settles nothing that one settled.
    later = close(hz, "2020-04-01", "2020-04-30")
    doc = until(lambda: statement_on(hz, later))
    assert doc["after"] == [second] and not set(doc["settles"]) & set(
        until(lambda: statement_on(hz, second))["settles"]
    )


# -- the rule book approves for a member ---------------------------------------------------------------------
DEADLINE_SECONDS = 3
AUTO_BELOW = "100.00"  # the supplier pays nothing on its statement; the requester pays thousands


@pytest.fixture(scope="module")
def hurried_book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    book = yaml.safe_load(TEST_RULEBOOK.read_text(encoding="utf-8"))
    book["settlement"].update(approval_deadline_seconds=DEADLINE_SECONDS, auto_approve_below=AUTO_BELOW)
    path = tmp_path_factory.mktemp("book") / "hurried.yaml"
    path.write_text(yaml.safe_dump(book), encoding="utf-8")
    return path


@pytest.fixture
def hurried(anvil: LocalChain, hurried_book: Path, tmp_path: Path) -> Iterator[NodeFactory]:
    """Nodes of a consortium (its own registry) whose rule book deems approvals after a few seconds."""
    factory = NodeFactory(
        anvil, deploy_contracts(anvil.rpc_url, ADMIN_KEY, genesis_of(hurried_book)), tmp_path, hurried_book
    )
    yield factory
    factory.stop_all()


def test_the_book_approves_at_once_below_its_amount_and_deems_approval_at_its_deadline(hurried: NodeFactory) -> None:
    hz, xs = moved(hurried, "hurried", suppliers=1)
    sid = close(hz, *closing_period().values())
    # No operator acts: Xiaoshan's node approves as soon as it has recomputed the statement (it pays nothing),
    # Hangzhou's when its deadline comes (it pays more than the book's amount).
    docs = until(lambda: final_on_all([hz, xs], sid), timeout=60)
    net = {m["member"]: m["net"] for m in docs[0]["members"]}
    assert net[hz.address] <= -10_000 and net[xs.address] >= 0
    assert [d["approval"]["by"] for d in docs] == ["deadline", "automatic"]
    hz_row, xs_row = statement_row(hz, sid), statement_row(xs, sid)
    assert hz_row is not None and xs_row is not None
    assert hz_row["approved_at"] >= hz_row["approval_due_at"] > xs_row["approved_at"]
    assert xs_row["approved_at"] < xs_row["approval_due_at"]
    # Each member's own settlement record says how its approval was given.
    for node, said in ((hz, "deemed approved here"), (xs, "approved here automatically")):
        (record,) = until(lambda node=node: settlement_records(node))
        assert said in record["record"]["memo"]


# -- a book that splits in proportion to weights that are all 0 ------------------------------------------------
@pytest.fixture
def unweighted(anvil: LocalChain, tmp_path: Path) -> Iterator[NodeFactory]:
    """Nodes of a consortium whose book splits `proportional` with every weight 0, approving at once."""
    book = yaml.safe_load(TEST_RULEBOOK.read_text(encoding="utf-8"))
    book["settlement"].update(method="proportional", weights={"value_supplied": "0"}, auto_approve_below="1000000.00")
    path = tmp_path / "unweighted.yaml"
    path.write_text(yaml.safe_dump(book), encoding="utf-8")
    factory = NodeFactory(anvil, deploy_contracts(anvil.rpc_url, ADMIN_KEY, genesis_of(path)), tmp_path, path)
    yield factory
    factory.stop_all()


def test_a_member_with_no_dealings_gets_nothing_of_a_proportional_split_with_no_weights(
    unweighted: NodeFactory,
) -> None:
    """Format 1 gave every member an equal share when all weights were 0, dealings or not."""
    hz, xs = moved(unweighted, "unweighted", suppliers=1)
    idle = unweighted.new("idle-unweighted")
    sid = close(hz, *closing_period().values())
    doc = until(lambda: final_on_all([hz, xs, idle], sid), timeout=60)[0]
    shares = {m["member"]: m["share"] for m in doc["members"]}
    assert shares[idle.address] == 0 and shares[hz.address] + shares[xs.address] == doc["surplus"] > 0
    assert shares[hz.address] == doc["surplus"] - doc["surplus"] // 2  # equal between the pair, not the three
