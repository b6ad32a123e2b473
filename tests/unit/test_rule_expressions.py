"""The rule language: parsed (never eval'd), type-checked against the names of its place, exact arithmetic."""

from fractions import Fraction

import pytest

from negotiation.rules.expr import EvaluationError, ExpressionError, NameSpec, Type, compile_expression

NAMES = {
    "lot.shelf_life_days": NameSpec(Type.INT, ""),
    "sku.purchase_price": NameSpec(Type.DECIMAL, ""),
    "stock.available": NameSpec(Type.INT, ""),
    "stock.safety_level": NameSpec(Type.INT, ""),
    "request.customer_tier": NameSpec(Type.TEXT, "", values=("standard", "hospital")),
    "request.urgent": NameSpec(Type.BOOL, ""),
}
ENV = {
    "lot.shelf_life_days": 200,
    "sku.purchase_price": Fraction("18.01"),
    "stock.available": 3,
    "stock.safety_level": 5,
    "request.customer_tier": "hospital",
    "request.urgent": False,
}


@pytest.mark.parametrize(
    ("source", "type_", "value"),
    [
        ("sku.purchase_price > 18.00 and stock.available < stock.safety_level", Type.BOOL, True),
        ("sku.purchase_price > 18.01", Type.BOOL, False),  # exact: 18.01 is not above 18.01
        ("if request.customer_tier == 'hospital' then 4 else 1", Type.INT, 4),
        ("max(lot.shelf_life_days, 10) / 3", Type.DECIMAL, Fraction(200, 3)),
        ("request.customer_tier not in ['standard']", Type.BOOL, True),
        ("not request.urgent or stock.available > 100", Type.BOOL, True),
        ("-stock.available + ceil(1.5) * 2", Type.INT, 1),
        ("0.1 + 0.2 == 0.3", Type.BOOL, True),  # no binary floating point anywhere
        ("2 * stock.safety_level - stock.available", Type.INT, 7),
        ("floor(sku.purchase_price)", Type.INT, 18),
        ("abs(stock.available - stock.safety_level)", Type.INT, 2),
        ("1 + 2 * 3 - 4 / 2", Type.DECIMAL, 5),
    ],
)
def test_expressions_type_and_evaluate_exactly(source: str, type_: Type, value: object) -> None:
    e = compile_expression(source, NAMES)
    assert e.type == type_
    assert e.evaluate(ENV) == value


@pytest.mark.parametrize(
    ("source", "message", "column"),
    [
        ("lot.shelf_lif > 3", "unknown name lot.shelf_lif; did you mean lot.shelf_life_days?", 1),
        ("sku.purchase_price > 'x'", "> compares decimal with text", 1),
        ("stock.available >", "the expression ends too early", 18),
        ("request.customer_tier == 'gold'", "request.customer_tier is never 'gold'", 1),
        ("stock.available < 3 and 5", "and needs bool, got int", 0),
        ("stock.available # 3", "unexpected character '#'", 17),
        ("request.urgent < true", "bool values can only be compared with == or !=", 1),
        ("min(stock.available)", "min() takes two or more arguments", 1),
        ("__import__('os')", "unexpected '('", 11),
        ("if request.urgent then 1 else 'x'", "then gives int, else gives text", 4),
    ],
)
def test_bad_expressions_say_what_and_where(source: str, message: str, column: int) -> None:
    with pytest.raises(ExpressionError) as e:
        compile_expression(source, NAMES)
    assert message in e.value.message
    if column:
        assert e.value.column == column


def test_a_formula_must_give_the_type_its_place_needs() -> None:
    with pytest.raises(ExpressionError, match="this must give bool, it gives int"):
        compile_expression("stock.available + 1", NAMES, Type.BOOL)
    assert compile_expression("stock.available + 1", NAMES, Type.DECIMAL).evaluate(ENV) == 4


def test_evaluation_refuses_a_missing_name_and_division_by_zero() -> None:
    e = compile_expression("stock.available / (stock.safety_level - 5)", NAMES)
    with pytest.raises(EvaluationError, match="division by zero"):
        e.evaluate(ENV)
    with pytest.raises(EvaluationError, match=r"no stock\.safety_level"):
        e.evaluate({"stock.available": 1})
