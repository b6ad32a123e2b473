"""The rule book's expression language: parsed with a grammar, type-checked against a catalogue of names,
compiled to closures. Never `eval`: a rule can only read the names it is given and compute with them.

Numbers are exact: integers stay integers, decimals (money in major units, ratios) are fractions, so
`18.00 < sku.purchase_price` compares exactly what the business person wrote. docs/rules.md specifies the
language for anyone writing their own evaluator.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from functools import lru_cache
from typing import Any, Union

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from negotiation.errors import NegotiationError

GRAMMAR = r"""
?start: expr
?expr: orexpr
     | "if" orexpr "then" expr "else" expr        -> cond
?orexpr: andexpr ("or" andexpr)*                  -> or_
?andexpr: notexpr ("and" notexpr)*                -> and_
?notexpr: "not" notexpr                           -> not_
        | comparison
?comparison: sum
           | sum COMPOP sum                        -> compare
           | sum "in" "[" literal ("," literal)* "]"        -> member
           | sum "not" "in" "[" literal ("," literal)* "]"  -> not_member
?sum: product (ADDOP product)*                    -> arith
?product: unary (MULOP unary)*                    -> arith
?unary: "-" unary                                 -> neg
      | atom
?atom: literal
     | NAME ("." NAME)*                           -> name
     | FUNC "(" expr ("," expr)* ")"              -> call
     | "(" expr ")"
?literal: DECIMAL                                 -> decimal
        | INT                                     -> integer
        | STRING                                  -> string
        | "true"                                  -> true
        | "false"                                 -> false

COMPOP: "<=" | ">=" | "==" | "!=" | "<" | ">"
ADDOP: "+" | "-"
MULOP: "*" | "/"
FUNC.2: /(min|max|abs|floor|ceil)(?=\s*\()/
DECIMAL: /\d+\.\d+/
INT: /\d+/
STRING: /'[^'\n]*'/
NAME: /(?!(and|or|not|in|if|then|else|true|false)\b)[a-z_][a-z0-9_]*/

%import common.WS
%ignore WS
"""


class Type(StrEnum):
    INT = "int"
    DECIMAL = "decimal"
    BOOL = "bool"
    TEXT = "text"

    @property
    def numeric(self) -> bool:
        return self in (Type.INT, Type.DECIMAL)


@dataclass(frozen=True)
class NameSpec:
    """A name a rule may read: its type, the range its values take (for conflict search), and for text
    the values it can take, if they are a closed set."""

    type: Type
    description: str
    low: int = 0
    high: int = 1_000_000
    values: tuple[str, ...] | None = None


Value = Union[int, Fraction, bool, str]  # noqa: UP007 - used at runtime in isinstance-free code paths


# --- the syntax tree --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    value: Value
    type: Type


@dataclass(frozen=True)
class Name:
    path: str
    column: int


@dataclass(frozen=True)
class Unary:
    op: str  # "-" or "not"
    operand: Node


@dataclass(frozen=True)
class Binary:
    op: str  # + - * / < <= > >= == != and or
    left: Node
    right: Node


@dataclass(frozen=True)
class Member:
    operand: Node
    options: tuple[Literal, ...]
    negated: bool


@dataclass(frozen=True)
class Call:
    function: str
    args: tuple[Node, ...]
    column: int


@dataclass(frozen=True)
class Cond:
    test: Node
    then: Node
    otherwise: Node


Node = Union[Literal, Name, Unary, Binary, Member, Call, Cond]  # noqa: UP007


class ExpressionError(NegotiationError, ValueError):
    """An expression that does not parse or does not type-check; `column` is 1-based, 0 when unknown."""

    def __init__(self, message: str, column: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.column = column

    def __str__(self) -> str:
        return f"{self.message} (column {self.column})" if self.column else self.message


@v_args(inline=True)
class _ToTree(Transformer[Token, Node]):
    def decimal(self, tok: Token) -> Literal:
        return Literal(Fraction(str(tok)), Type.DECIMAL)

    def integer(self, tok: Token) -> Literal:
        return Literal(int(tok), Type.INT)

    def string(self, tok: Token) -> Literal:
        return Literal(str(tok)[1:-1], Type.TEXT)

    def true(self) -> Literal:
        return Literal(True, Type.BOOL)

    def false(self) -> Literal:
        return Literal(False, Type.BOOL)

    def name(self, *parts: Token) -> Name:
        return Name(".".join(str(p) for p in parts), parts[0].column or 0)

    def call(self, func: Token, *args: Node) -> Call:
        return Call(str(func), tuple(args), func.column or 0)

    def neg(self, operand: Node) -> Node:
        if isinstance(operand, Literal) and operand.type.numeric:
            return Literal(-operand.value, operand.type)  # type: ignore[operator]
        return Unary("-", operand)

    def not_(self, operand: Node) -> Unary:
        return Unary("not", operand)

    def compare(self, left: Node, op: Token, right: Node) -> Binary:
        return Binary(str(op), left, right)

    def member(self, operand: Node, *options: Literal) -> Member:
        return Member(operand, tuple(options), False)

    def not_member(self, operand: Node, *options: Literal) -> Member:
        return Member(operand, tuple(options), True)

    def arith(self, first: Node, *rest: Any) -> Node:
        node = first
        for op, right in zip(rest[::2], rest[1::2], strict=True):
            node = Binary(str(op), node, right)
        return node

    def and_(self, *operands: Node) -> Node:
        return _fold("and", operands)

    def or_(self, *operands: Node) -> Node:
        return _fold("or", operands)

    def cond(self, test: Node, then: Node, otherwise: Node) -> Cond:
        return Cond(test, then, otherwise)


def _fold(op: str, operands: tuple[Node, ...]) -> Node:
    node = operands[0]
    for right in operands[1:]:
        node = Binary(op, node, right)
    return node


_PARSER = Lark(GRAMMAR, parser="lalr", maybe_placeholders=False)


@lru_cache(maxsize=4096)
def parse(source: str) -> Node:
    """The syntax tree of one expression, or an ExpressionError saying where it stops making sense."""
    try:
        tree = _PARSER.parse(source)
    except UnexpectedCharacters as e:
        raise ExpressionError(f"unexpected character {source[e.pos_in_stream or 0]!r}", e.column) from None
    except UnexpectedEOF:
        raise ExpressionError("the expression ends too early", len(source) + 1) from None
    except UnexpectedToken as e:
        if e.token.type == "$END":
            raise ExpressionError("the expression ends too early", len(source) + 1) from None
        raise ExpressionError(f"unexpected {str(e.token)!r}", e.column) from None
    except UnexpectedInput as e:  # pragma: no cover - the three above are all LALR raises
        raise ExpressionError(str(e), getattr(e, "column", 0)) from None
    node: Node = _ToTree().transform(tree)
    return node


# --- types ------------------------------------------------------------------------------------------------


def check(node: Node, names: Mapping[str, NameSpec]) -> Type:
    """The expression's type, or an ExpressionError naming the first unknown name or type mismatch."""
    if isinstance(node, Literal):
        return node.type
    if isinstance(node, Name):
        return _name_type(node, names)
    if isinstance(node, Unary):
        return _unary_type(node, names)
    if isinstance(node, Member):
        return _member_type(node, names)
    if isinstance(node, Call):
        return _call_type(node, names)
    if isinstance(node, Cond):
        return _cond_type(node, names)
    return _binary_type(node, names)


def _name_type(node: Name, names: Mapping[str, NameSpec]) -> Type:
    spec = names.get(node.path)
    if spec is None:
        near = difflib.get_close_matches(node.path, list(names), n=1)
        hint = f"; did you mean {near[0]}?" if near else f"; known here: {', '.join(sorted(names)) or 'none'}"
        raise ExpressionError(f"unknown name {node.path}{hint}", node.column)
    return spec.type


def _unary_type(node: Unary, names: Mapping[str, NameSpec]) -> Type:
    t = check(node.operand, names)
    if node.op == "not":
        _expect(t, Type.BOOL, "not")
        return Type.BOOL
    if not t.numeric:
        raise ExpressionError(f"- needs a number, got {t.value}", _column(node))
    return t


def _member_type(node: Member, names: Mapping[str, NameSpec]) -> Type:
    t = check(node.operand, names)
    for option in node.options:
        if option.type != t and not (t.numeric and option.type.numeric):
            raise ExpressionError(f"in [...] mixes {t.value} with {option.type.value}", _column(node))
    if t == Type.TEXT and isinstance(node.operand, Name):
        _check_text_values(node.operand, [str(o.value) for o in node.options], names)
    return Type.BOOL


def _call_type(node: Call, names: Mapping[str, NameSpec]) -> Type:
    types = [check(a, names) for a in node.args]
    for t in types:
        if not t.numeric:
            raise ExpressionError(f"{node.function}() needs numbers, got {t.value}", node.column)
    if node.function in ("abs", "floor", "ceil") and len(types) != 1:
        raise ExpressionError(f"{node.function}() takes one argument", node.column)
    if node.function in ("min", "max") and len(types) < 2:
        raise ExpressionError(f"{node.function}() takes two or more arguments", node.column)
    if node.function in ("floor", "ceil"):
        return Type.INT
    return Type.DECIMAL if Type.DECIMAL in types else Type.INT


def _cond_type(node: Cond, names: Mapping[str, NameSpec]) -> Type:
    _expect(check(node.test, names), Type.BOOL, "if")
    a, b = check(node.then, names), check(node.otherwise, names)
    if a == b:
        return a
    if a.numeric and b.numeric:
        return Type.DECIMAL
    raise ExpressionError(f"then gives {a.value}, else gives {b.value}", _column(node))


def _binary_type(node: Binary, names: Mapping[str, NameSpec]) -> Type:
    left, right = check(node.left, names), check(node.right, names)
    if node.op in ("and", "or"):
        _expect(left, Type.BOOL, node.op, _column(node.left))
        _expect(right, Type.BOOL, node.op, _column(node.right))
        return Type.BOOL
    if node.op in ("+", "-", "*", "/"):
        for t, side in ((left, node.left), (right, node.right)):
            if not t.numeric:
                raise ExpressionError(f"{node.op} needs numbers, got {t.value}", _column(side))
        return Type.DECIMAL if node.op == "/" or Type.DECIMAL in (left, right) else Type.INT
    _check_comparison(node, left, right, names)
    return Type.BOOL


def _check_comparison(node: Binary, left: Type, right: Type, names: Mapping[str, NameSpec]) -> None:
    """Numbers compare freely; text and bool only with == or != and with their own type, and a closed text
    name only with one of its values."""
    if left.numeric and right.numeric:
        return
    if left != right:
        raise ExpressionError(f"{node.op} compares {left.value} with {right.value}", _column(node))
    if left in (Type.TEXT, Type.BOOL) and node.op not in ("==", "!="):
        raise ExpressionError(f"{left.value} values can only be compared with == or !=", _column(node))
    if left == Type.TEXT:
        for side, other in ((node.left, node.right), (node.right, node.left)):
            if isinstance(side, Name) and isinstance(other, Literal):
                _check_text_values(side, [str(other.value)], names)


def _check_text_values(name: Name, values: list[str], names: Mapping[str, NameSpec]) -> None:
    allowed = names[name.path].values
    if allowed is None:
        return
    for v in values:
        if v not in allowed:
            raise ExpressionError(f"{name.path} is never {v!r}; it is one of {', '.join(allowed)}", name.column)


def _expect(t: Type, wanted: Type, where: str, column: int = 0) -> None:
    if t != wanted:
        raise ExpressionError(f"{where} needs {wanted.value}, got {t.value}", column)


def _column(node: Node) -> int:
    if isinstance(node, Name | Call):
        return node.column
    if isinstance(node, Unary):
        return _column(node.operand)
    if isinstance(node, Binary):
        return _column(node.left)
    if isinstance(node, Member):
        return _column(node.operand)
    if isinstance(node, Cond):
        return _column(node.test)
    return 0


def names_in(node: Node) -> set[str]:
    if isinstance(node, Name):
        return {node.path}
    if isinstance(node, Literal):
        return set()
    if isinstance(node, Unary):
        return names_in(node.operand)
    if isinstance(node, Member):
        return names_in(node.operand)
    if isinstance(node, Call):
        return set().union(*(names_in(a) for a in node.args))
    if isinstance(node, Cond):
        return names_in(node.test) | names_in(node.then) | names_in(node.otherwise)
    return names_in(node.left) | names_in(node.right)


# --- evaluation -------------------------------------------------------------------------------------------

Env = Mapping[str, Value]
Compiled = Callable[[Env], Any]


class EvaluationError(NegotiationError, ValueError):
    """A name the situation does not carry, or a division by zero."""


# The binary operators other than / and the logical ones; also applied to solver terms (conflicts.py).
OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def _divide(a: Any, b: Any) -> Fraction:
    if b == 0:
        raise EvaluationError("division by zero")
    return Fraction(a) / Fraction(b)


def _as_int(x: Any) -> Any:
    """Fractions that are whole become ints again, so int-typed results stay ints."""
    return int(x) if isinstance(x, Fraction) and x.denominator == 1 else x


def compile_node(node: Node) -> Compiled:
    """Closures over the tree: evaluating a rule costs a few function calls per node, no parsing."""
    if isinstance(node, Literal):
        value = node.value
        return lambda env: value
    if isinstance(node, Name):
        path = node.path

        def read(env: Env) -> Any:
            try:
                return env[path]
            except KeyError:
                raise EvaluationError(f"the situation has no {path}") from None

        return read
    if isinstance(node, Unary):
        inner = compile_node(node.operand)
        if node.op == "not":
            return lambda env: not inner(env)
        return lambda env: -inner(env)
    if isinstance(node, Member):
        operand = compile_node(node.operand)
        options = frozenset(o.value for o in node.options)
        if node.negated:
            return lambda env: operand(env) not in options
        return lambda env: operand(env) in options
    if isinstance(node, Call):
        args = [compile_node(a) for a in node.args]
        if node.function == "min":
            return lambda env: min(a(env) for a in args)
        if node.function == "max":
            return lambda env: max(a(env) for a in args)
        (only,) = args
        if node.function == "abs":
            return lambda env: abs(only(env))
        if node.function == "floor":
            return lambda env: math.floor(only(env))
        return lambda env: math.ceil(only(env))
    if isinstance(node, Cond):
        test, then, otherwise = compile_node(node.test), compile_node(node.then), compile_node(node.otherwise)
        return lambda env: then(env) if test(env) else otherwise(env)
    left, right = compile_node(node.left), compile_node(node.right)
    if node.op == "and":
        return lambda env: left(env) and right(env)
    if node.op == "or":
        return lambda env: left(env) or right(env)
    if node.op == "/":
        return lambda env: _as_int(_divide(left(env), right(env)))
    op = OPERATORS[node.op]
    return lambda env: op(left(env), right(env))


@dataclass(frozen=True)
class Expression:
    """One checked expression, ready to evaluate."""

    source: str
    tree: Node
    type: Type
    evaluate: Compiled
    # Computed once: every decision asks which names a condition reads before evaluating it.
    names: frozenset[str]


def compile_expression(source: str, names: Mapping[str, NameSpec], want: Type | None = None) -> Expression:
    """Parse, check (against `names`, and against the wanted type if given) and compile."""
    tree = parse(source)
    t = check(tree, names)
    if want is not None and t != want and not (want == Type.DECIMAL and t == Type.INT):
        raise ExpressionError(f"this must give {want.value}, it gives {t.value}", 1)
    return Expression(source, tree, t, compile_node(tree), frozenset(names_in(tree)))
