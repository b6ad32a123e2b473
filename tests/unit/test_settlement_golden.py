"""Today's statements keep their bytes: the canonical JSON, the id and the hash members sign (settlement/), and
the JSON a node serves at GET /settlement/statements/{id} (node/services/settlements.py, node/api/), pinned
for a period with every kind of flow, under each method, and for a consortium too big to list coalitions.

The files in testdata/settlement/ were written by the code of format `consortium-settlement/1` before the
statement model was declared once; a difference here changes what members have signed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient

from chain.canonical import canonical_json
from node.api.app import create_app
from node.api.deps import get_settlements
from node.services.container import NodeServices
from node.services.settlements import Settlements, _document
from node.services.side import Side
from node.settings import NodeSettings
from node.store.engine import make_engine, session_scope
from node.store.tables import SettlementStatement, StatementSignatureRow
from settlement.games import MAX_ENUMERATED
from settlement.statement import Method, SettlementTerms, build_statement, statement_hash
from tests.unit.test_settlement_dealings import give_back, joint_purchase, loan, sell
from tests.unit.test_settlement_statement import PERIOD, S1, S2, Books, R, line, story

GOLDEN = Path(__file__).resolve().parents[2] / "testdata" / "settlement"
# id and statement_hash of each case, as today's code computes them.
PINNED = {
    "shapley": (
        "0xafc27661b0319699f4706cafa534aeb2960239a859fcfe9e73d5644b3270cd98",
        "0x999ca4812040acafa9b1a0cd19dee1be602026f5264b0df93241001d655fa232",
    ),
    "proportional": (
        "0xafc27661b0319699f4706cafa534aeb2960239a859fcfe9e73d5644b3270cd98",
        "0x19e03dc895d2984f149d34717fbd646baf9259b28639279390a4f114ee9f0c4a",
    ),
    "core": (
        "0xafc27661b0319699f4706cafa534aeb2960239a859fcfe9e73d5644b3270cd98",
        "0x1fd9e3052b03af98b53775ce46625d9fbf3f4f5ff421e0307f61dff125bdbfb2",
    ),
    # 21 members since every coalition is enumerated up to 20 (17 when it was up to 16): only the members
    # added, all in no plan, changed its bytes.
    "crowd": (
        "0x68fe4fd50ee8fb12fc150da1d1b7f28cb9b1e53b5e83589175733f8231d7a196",
        "0x7f73f0a9bf2a8f22701603d90895b58c63752149575067b73a8dbc4ef98ac544",
    ),
}


def consigned(books: Books) -> None:
    """S2 ships 10 units to R on consignment (S2 keeps ownership) and R sells 4 of them."""
    t = {"acceptance": "acc-cons", "supplier": S2, "requester": R, "messages": []}
    ev = [{"source": "acceptance", "reference": "acc-cons"}]
    books.add(S2, "transfer_out", "2026-11-10T08:00:00.000000Z", lines=[line("F", -10, S2, S2)], evidence=ev,
              transfer={**t, "freight_compensation": 0, "unit_price": 450})  # fmt: skip
    books.add(R, "transfer_in", "2026-11-10T12:00:00.000000Z", lines=[line("F", 10, S2, R)], evidence=ev,
              transfer={**t, "shipped": 10, "received": 10, "freight_compensation": 0})  # fmt: skip
    books.add(R, "issue", "2026-11-12T12:00:00.000000Z", lines=[line("F", -4, S2, R)])


def everything() -> Books:
    """A plan, two transfers, a consignment sale, an award, a joint purchase and a loan returned in part and
    sold for the rest: a flow of every kind, a profit split and payments."""
    books = story()
    consigned(books)
    joint_purchase(books, "2026-11-03T09:00:00.000000Z", {R: 200, S1: 300, S2: 500}, {R: 2, S1: 3, S2: 5}, [S1, S2])
    loan(books, S1, S2, 3)
    give_back(books, S1, S2, "0xback1", 1, "2026-11-04T08:30:00.000000Z", "2026-11-04T09:00:00.000000Z")
    sell(books, S1, S2, 2)
    return books


def inputs_of(books: Books) -> dict[str, dict[str, Any]]:
    return {
        m: {"last_seq": len(rs), "batch_roots": [hashlib.sha256(m.encode()).hexdigest()]}
        for m, rs in books.records.items()
    }


def case(name: str) -> dict[str, Any]:
    if name == "crowd":
        # More members than coalitions are listed or enumerated for: the core is checked plan by plan.
        books = story()
        for i in range(MAX_ENUMERATED + 1 - len(books.records)):
            books.records["0x" + f"{i + 16:02x}" * 20] = []
        return build_statement(books.records, PERIOD, "0x02", SettlementTerms(), inputs_of(books))
    books = everything()
    return build_statement(books.records, PERIOD, "0x01", SettlementTerms(method=cast(Method, name)), inputs_of(books))


CASES = ("shapley", "proportional", "core", "crowd")


@pytest.mark.parametrize("name", CASES)
def test_a_statement_of_today_keeps_its_canonical_bytes_id_and_hash(name: str) -> None:
    statement = case(name)
    assert canonical_json(statement) == (GOLDEN / f"{name}.json").read_bytes()
    assert (statement["id"], statement["statement_hash"]) == PINNED[name]
    assert statement_hash(statement) == PINNED[name][1]


def test_the_golden_cases_hold_every_kind_of_flow_and_both_scopes_of_the_core_check() -> None:
    kinds = {f["kind"] for f in case("shapley")["flows"]}
    assert kinds == {
        "transfer_price", "freight_compensation", "consignment_sale", "arbitration_award", "joint_purchase_share",
        "loan_fee", "loan_sale", "profit_split",
    }  # fmt: skip
    crowd = case("crowd")
    assert crowd["coalitions"] is None and crowd["core_check"]["scope"] == "each plan"
    assert case("shapley")["core_check"]["scope"] == "all coalitions"


def served(tmp_path: Path, statement: dict[str, Any], problem: str | None) -> bytes:
    """The body GET /settlement/statements/{id} answers for a statement stored as the service stores it, with
    one member's signature."""
    engine = make_engine(f"sqlite:///{tmp_path / 'node.db'}")
    message = {
        "id": "0x" + "11" * 32,
        "statement": statement["id"],
        "signer": S1,
        "statementHash": statement["statement_hash"],
        "nonce": "7",
        "deadline": "1800000000",
    }
    envelope = {"type": "StatementSignature", "message": message, "signature": "0x" + "22" * 65}
    with session_scope(engine) as s:
        s.add(
            SettlementStatement(
                id=statement["id"],
                period_from=statement["period"]["from"],
                period_to=statement["period"]["to"],
                rule_version=statement["rule_version"],
                proposer=R,
                statement_hash=statement["statement_hash"],
                status="proposed",
                created_at="2026-12-01T00:00:00.000000Z",
                problem=problem,
                document=_document(statement),
            )
        )
        s.add(
            StatementSignatureRow(
                statement=statement["id"],
                signer=S1,
                statement_hash=statement["statement_hash"],
                envelope=json.dumps(envelope),
            )
        )
    side = SimpleNamespace(
        engine=engine, signer=SimpleNamespace(address=R), me=R, directory=None, outbox=None, rules=None
    )
    settlements = Settlements(cast(Side, side), cast(Any, None), cast(Any, None), None, cast(Any, None))
    settings = NodeSettings()
    app = create_app(settings, services=cast(NodeServices, SimpleNamespace(settings=settings)))
    app.dependency_overrides[get_settlements] = lambda: settlements
    response = TestClient(app).get(f"/settlement/statements/{statement['id']}")  # no lifespan: nothing starts
    engine.dispose()
    assert response.status_code == 200, response.text
    return response.content


@pytest.mark.parametrize(("name", "problem"), [("shapley", None), ("crowd", "a member's node did not answer")])
def test_the_served_statement_keeps_its_json(tmp_path: Path, name: str, problem: str | None) -> None:
    assert served(tmp_path, case(name), problem) == (GOLDEN / f"served-{name}.json").read_bytes()
