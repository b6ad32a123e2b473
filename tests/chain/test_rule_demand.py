"""Safety stock from demand on a live node: the issues it records are its demand; the level the rule book
computes from them is what `GET /rules/decisions` shows and what the node keeps back when it offers."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from chain.anvil import AnvilProcess
from chain.deploy import Deployment, RuleGenesis, deploy_contracts
from negotiation.rules.book import check_book, load_book, parse_book
from negotiation.rules.engine import Policy
from negotiation.rules.safety_stock import decide_safety_level
from node.services.rules_keeper import governance_terms
from tests.helpers.nodes import ADMIN_KEY, HANGZHOU, TEST_RULEBOOK, XIAOSHAN, NodeFactory, soon, stock_up, until


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = yaml.safe_load(TEST_RULEBOOK.read_text())
    data["label"] = "demand"
    data["safety_stock"] = {"method": "smoothed_demand", "service_level": "0.95", "lead_time_days": 2}
    path = tmp_path_factory.mktemp("book") / "demand.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def deployment(anvil: AnvilProcess, book: Path) -> Deployment:
    checked = load_book(book)
    return deploy_contracts(anvil.rpc_url, ADMIN_KEY, RuleGenesis(checked.version, governance_terms(checked)))


def test_issued_units_are_the_demand_behind_the_level_the_node_keeps_back(nodes: NodeFactory, book: Path) -> None:
    hz = nodes.new("hz-demand", lat_e6=HANGZHOU[0], lon_e6=HANGZHOU[1], CONSORTIUM_RULEBOOK_FILE=str(book))
    xs = nodes.new("xs-demand", lat_e6=XIAOSHAN[0], lon_e6=XIAOSHAN[1], CONSORTIUM_RULEBOOK_FILE=str(book))
    stock_up(hz, [])
    stock_up(xs, [("X1", soon(400), 500)])
    with xs.client() as c:
        for qty in (30, 12, 48):  # 90 issued today
            c.post(
                "/ledger/movements",
                json={"type": "issue", "sku": "FORMULA-900G", "lot": "X1", "location": "WH", "quantity": qty},
            ).raise_for_status()
        [decision] = c.get("/rules/decisions").json()["skus"]
    policy = Policy(check_book(parse_book(yaml.safe_load(book.read_text()))))
    expected = decide_safety_level(policy.checked, [0] * 55 + [90], policy.env(calendar=None))
    assert expected.level > 0
    assert decision["safety_level"] == expected.level and decision["available"] == 410
    assert decision["safety"] == expected.as_evidence()
    # Invited for everything it has, it offers all but the level it keeps back.
    with hz.client() as c:
        c.post(
            "/negotiation/invitations", json={"sku": "FORMULA-900G", "quantity": 1000, "needed_by": soon(2)}
        ).raise_for_status()
    offers = until(lambda: hz.client().get("/negotiation/offers").json())
    assert sum(o["quantity"] for o in offers) == 410 - expected.level


def test_each_location_has_its_own_level_from_the_issues_made_there(nodes: NodeFactory, book: Path) -> None:
    node = nodes.new("sx-demand", CONSORTIUM_RULEBOOK_FILE=str(book))
    stock_up(node, [("S1", soon(400), 300)])
    with node.client() as c:
        c.post("/locations", json={"code": "SHOP", "name": "Shop floor", "lat": 30.2, "lon": 120.2}).raise_for_status()
        move = {
            "type": "move",
            "sku": "FORMULA-900G",
            "lot": "S1",
            "location": "WH",
            "to_location": "SHOP",
            "quantity": 40,
        }
        c.post("/ledger/movements", json=move).raise_for_status()
        for location, qty in (("WH", 90), ("SHOP", 12)):
            issue = {"type": "issue", "sku": "FORMULA-900G", "lot": "S1", "location": location, "quantity": qty}
            c.post("/ledger/movements", json=issue).raise_for_status()
        [decision] = c.get("/rules/decisions").json()["skus"]
    policy = Policy(check_book(parse_book(yaml.safe_load(book.read_text()))))

    def level(issued_today: int) -> int:
        return decide_safety_level(policy.checked, [0] * 55 + [issued_today], policy.env(calendar=None)).level

    assert level(90) > level(12) > 0
    assert decision["locations"] == [
        {"location": "SHOP", "available": 28, "safety_level": level(12)},
        {"location": "WH", "available": 170, "safety_level": level(90)},
    ]
    assert decision["safety_level"] == level(102)  # the node's own, from all its issues
