"""The rule book as data: schema errors and expression errors with the path of their cell, one identity
whatever the notation, the published JSON Schema in step with the model, and every conflict kind found
with a situation that triggers it."""

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from negotiation.rules.book import RuleBookInvalid, check_book, json_schema, load_book, parse_book, rule_book_hash
from negotiation.rules.conflicts import find_conflicts
from node.cli import app

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "node" / "demo" / "rulebook.yaml"


@pytest.fixture
def demo() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(DEMO.read_text())
    return data


def problems_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(RuleBookInvalid) as e:
        check_book(parse_book(data))
    return [str(p) for p in e.value.problems]


def test_the_demo_rule_book_is_valid_covers_the_three_first_scenarios_and_has_no_conflict() -> None:
    book = load_book(DEMO)
    assert {"consignment", "joint_purchase", "after_sales_spare_parts"} <= set(book.cells)
    assert book.cells["consignment"]["ownership"][0].settings == {"ownership": "consignment"}
    assert find_conflicts(book) == []


def test_schema_errors_name_the_path(demo: dict[str, Any]) -> None:
    demo["governance"]["quorum"] = 9
    demo["trigger"]["radius_km"] = 0
    demo["matrix"]["routine_replenishment"]["shelf_lives"] = {"require": "true"}
    demo["unknown_key"] = 1
    found = problems_of(demo)
    assert any(p.startswith("governance: ") and "quorum 9 is more than the 4 approvers" in p for p in found)
    assert any(p.startswith("trigger.radius_km: ") for p in found)
    assert any(p.startswith("matrix.routine_replenishment.shelf_lives: ") for p in found)
    assert any(p.startswith("unknown_key: ") for p in found)


def test_expression_and_setting_errors_name_the_cell(demo: dict[str, Any]) -> None:
    demo["matrix"]["clinical_trial"]["shelf_life"][0]["require"] = "lot.shelf_lif >= 3"
    demo["matrix"]["consignment"]["ownership"]["set"] = {"ownership": "gift"}
    demo["matrix"]["consignment"]["pricing"] = {"set": {"min_order_quantity": 3}}
    demo["rules"][0]["when"] = "sku.purchase_price > 'x'"
    demo["pricing"]["freight_per_unit"] = "lot.age_days * 2"
    demo["objective"]["profiles"][0]["weights"]["fresh"] = "1"
    found = problems_of(demo)
    expected = [
        "matrix.clinical_trial.shelf_life[0].require: unknown name lot.shelf_lif; did you mean lot.shelf_life_days?",
        "matrix.consignment.ownership[0].set.ownership: ownership is one of transfer, consignment, not 'gift'",
        "matrix.consignment.pricing[0].set.min_order_quantity: row pricing cannot set min_order_quantity",
        "rules[0].when: > compares decimal with text",
        "pricing.freight_per_unit: unknown name lot.age_days",
        "objective.profiles[0].weights.fresh: no objective term 'fresh'",
    ]
    for line in expected:
        assert any(p.startswith(line) for p in found), (line, found)
    assert len(found) == len(expected)


def test_one_identity_whatever_the_notation(demo: dict[str, Any], tmp_path: Path) -> None:
    as_json = tmp_path / "book.json"
    reordered = dict(reversed(list(demo.items())))
    as_json.write_text(json.dumps(reordered, default=str))  # YAML reads the calendar as dates
    assert load_book(as_json).version == load_book(DEMO).version
    # A default written out is the same rule book; a changed value is another one.
    demo["trigger"]["days_unmet"] = 3
    demo["emergency_sla"] = {"respond_within_minutes": 30, "deliver_within_hours": 6}
    assert rule_book_hash(parse_book(demo)) == load_book(DEMO).version
    demo["trigger"]["days_unmet"] = 4
    assert rule_book_hash(parse_book(demo)) != load_book(DEMO).version


def test_the_published_json_schema_is_the_models_and_accepts_the_demo(demo: dict[str, Any]) -> None:
    published = json.loads((ROOT / "docs" / "rulebook.schema.json").read_text())
    assert published == json_schema()
    as_json = json.loads(json.dumps(demo, default=str))  # the JSON data model: YAML's dates are strings there
    jsonschema.Draft202012Validator(published).validate(as_json)
    bad = copy.deepcopy(as_json)
    bad["governance"]["quorum"] = "three"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(published).validate(bad)


def conflicts_of(data: dict[str, Any]) -> list[tuple[str, tuple[str, ...], dict[str, str]]]:
    return [(c.kind, c.paths, dict(c.situation)) for c in find_conflicts(check_book(parse_book(data)))]


def test_contradictory_settings_in_one_cell_come_with_a_situation(demo: dict[str, Any]) -> None:
    demo["matrix"]["routine_replenishment"]["min_order_quantity"] = [
        {"set": {"min_order_quantity": 10}},
        {"when": "request.customer_tier == 'hospital'", "set": {"min_order_quantity": 1}},
    ]
    assert conflicts_of(demo) == [
        (
            "contradictory_settings",
            (
                "matrix.routine_replenishment.min_order_quantity[0]",
                "matrix.routine_replenishment.min_order_quantity[1]",
            ),
            {"request.customer_tier": "'hospital'"},
        )
    ]


def test_branches_that_cannot_apply_together_do_not_conflict(demo: dict[str, Any]) -> None:
    demo["matrix"]["routine_replenishment"]["min_order_quantity"] = [
        {"when": "request.quantity >= 100", "set": {"min_order_quantity": 10}},
        {"when": "request.quantity < 100", "set": {"min_order_quantity": 1}},
    ]
    assert conflicts_of(demo) == []


def test_requirements_no_lot_can_meet_together(demo: dict[str, Any]) -> None:
    # The ERP's mistake: shelf life first and first in, first out as two hard requirements.
    demo["matrix"]["clinical_trial"]["transport_time"] = {"require": "lot.shelf_life_days <= 90"}
    demo["matrix"]["emergency_substitution"]["shelf_life"] = {
        "require": "lot.shelf_life_days >= 30 and lot.shelf_life_days < 20"
    }
    found = conflicts_of(demo)
    assert (
        "contradictory_requirements",
        ("matrix.clinical_trial.shelf_life[0].require", "matrix.clinical_trial.transport_time[0].require"),
        {"request.min_shelf_life_days": "0"},
    ) in found
    assert ("contradictory_requirements", ("matrix.emergency_substitution.shelf_life[0].require",), {}) in found
    assert len(found) == 2


def test_requirements_in_conflict_only_in_some_situations(demo: dict[str, Any]) -> None:
    demo["matrix"]["joint_purchase"]["shelf_life"] = {
        "when": "request.quantity > 100",
        "require": "lot.shelf_life_days >= request.min_shelf_life_days",
    }
    demo["matrix"]["joint_purchase"]["transport_time"] = {
        "when": "request.min_shelf_life_days > 3000",
        "require": "lot.shelf_life_days < 2000",
    }
    [(kind, _paths, situation)] = conflicts_of(demo)
    assert kind == "contradictory_requirements"
    assert int(situation["request.quantity"]) > 100 and int(situation["request.min_shelf_life_days"]) > 3000


def test_overlapping_weight_profiles(demo: dict[str, Any]) -> None:
    demo["objective"]["profiles"].append({"when": "request.urgent", "weights": {"freshness": "9"}})
    found = conflicts_of(demo)
    assert [(k, p) for k, p, _ in found] == [
        ("ambiguous_weights", ("objective.profiles[0]", "objective.profiles[2]")),
        ("ambiguous_weights", ("objective.profiles[1]", "objective.profiles[2]")),
    ]
    assert found[0][2] == {"request.customer_tier": "'hospital'", "request.urgent": "true"}


def test_contradictory_actions_and_safety_levels(demo: dict[str, Any]) -> None:
    demo["rules"] += [
        {"id": "stop", "when": "sku.purchase_price > 25.00", "action": {"kind": "stop_purchasing"}},
        {"id": "lvl1", "when": "stock.available < 10", "action": {"kind": "set_safety_level", "value": "20"}},
        {
            "id": "lvl2",
            "when": "stock.available < 5",
            "action": {"kind": "set_safety_level", "value": "10 + 2 * stock.available"},
        },
        {"id": "lvl3", "when": "stock.available > 50", "action": {"kind": "set_safety_level", "value": "30"}},
    ]
    demo["safety_stock"]["adjustments"].append({"when": "calendar.month == 12", "service_level": "0.99"})
    found = conflicts_of(demo)
    kinds = [(k, p) for k, p, _ in found]
    assert ("contradictory_actions", ("rules[0]", "rules[2]")) in kinds
    assert ("contradictory_actions", ("rules[3]", "rules[4]")) in kinds
    assert ("contradictory_settings", ("safety_stock.adjustments[0]", "safety_stock.adjustments[2]")) in kinds
    assert len(found) == 4  # lvl3 overlaps neither; the two slow-season/promotion adjustments exclude each other
    quote = next(s for k, p, s in found if p == ("rules[0]", "rules[2]"))
    assert float(quote["sku.purchase_price"]) > 25 and int(quote["stock.available"]) < int(quote["stock.safety_level"])
    level = next(s for k, p, s in found if p == ("rules[3]", "rules[4]"))
    assert int(level["stock.available"]) < 5 and 10 + 2 * int(level["stock.available"]) != 20


def test_a_period_that_ends_before_it_starts_is_refused(demo: dict[str, Any]) -> None:
    demo["calendar"]["promotions"].append({"from": "2026-12-31", "to": "2026-12-01"})
    assert any(p.startswith("calendar.promotions[2]: ") and "ends before it starts" in p for p in problems_of(demo))


def test_rules_check_exits_0_when_clean_1_on_conflicts_2_when_invalid(demo: dict[str, Any], tmp_path: Path) -> None:
    runner = CliRunner()
    clean = runner.invoke(app, ["rules", "check", str(DEMO)])
    assert clean.exit_code == 0 and json.loads(clean.stdout)["version"] == load_book(DEMO).version
    demo["rules"].append({"id": "stop", "when": "sku.purchase_price > 25.00", "action": {"kind": "stop_purchasing"}})
    conflicting = tmp_path / "conflicting.json"
    conflicting.write_text(json.dumps(demo, default=str))
    found = runner.invoke(app, ["rules", "check", str(conflicting)])
    assert found.exit_code == 1 and "CONFLICT contradictory_actions: rules[0] and rules[2]" in found.stderr
    demo["trigger"]["radius_km"] = -1
    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps(demo, default=str))
    refused = runner.invoke(app, ["rules", "check", str(invalid)])
    assert refused.exit_code == 2 and "INVALID trigger.radius_km" in refused.stderr


def test_the_alternative_supply_cost_is_exact_money_per_sku_in_minor_units(demo: dict[str, Any]) -> None:
    demo["settlement"] = {"alternative_supply_cost": {"FORMULA-900G": "228.00", "WIPES-80": "13.5", "X": "0"}}
    book = check_book(parse_book(demo)).book
    assert book.alternative_supply_cost_minor() == {"FORMULA-900G": 22800, "WIPES-80": 1350, "X": 0}
    # Money in the book is never rounded: one decimal too many is refused, in any currency.
    demo["settlement"]["alternative_supply_cost"] = {"FORMULA-900G": "228.005", "WIPES-80": "-1", "a b": "1"}
    assert sorted(problems_of(demo)) == [
        "settlement.alternative_supply_cost.WIPES-80: String should match pattern '^\\d+(\\.\\d+)?$'",
        "settlement.alternative_supply_cost.a b: String should match pattern '^[A-Za-z0-9][A-Za-z0-9._:/-]*$'",
    ]
    del demo["settlement"]["alternative_supply_cost"]["WIPES-80"], demo["settlement"]["alternative_supply_cost"]["a b"]
    assert problems_of(demo) == [
        "settlement.alternative_supply_cost.FORMULA-900G: 228.005 CNY has more than 2 decimals"
    ]
    demo["currency"] = {"code": "JPY", "minor_units": 0}
    demo["settlement"]["alternative_supply_cost"] = {"FORMULA-900G": "3400.5"}
    assert problems_of(demo) == ["settlement.alternative_supply_cost.FORMULA-900G: 3400.5 JPY has more than 0 decimals"]
    demo["settlement"]["alternative_supply_cost"] = {"FORMULA-900G": "3400", "BIG": "9007199254740992"}
    assert problems_of(demo) == [
        "settlement.alternative_supply_cost.BIG: 9007199254740992 JPY is more than 9007199254740991 minor units"
    ]
    del demo["settlement"]["alternative_supply_cost"]["BIG"]
    assert check_book(parse_book(demo)).book.alternative_supply_cost_minor() == {"FORMULA-900G": 3400}
