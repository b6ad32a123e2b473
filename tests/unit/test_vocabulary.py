"""Message types, record types and record kinds are spelt once, in the enums that declare them
(negotiation/wire.py, chain/records.py); everywhere else the production code names the member, so a renamed or
misspelt type is an error mypy and this test see, not a branch that silently never runs.

Read from the source with `ast`. A string constant equal to a vocabulary value is a bare use when it is:
- an operand of `==`, `!=`, `is`, or the collection side of `in`;
- an element of a set, tuple or list literal (a `Literal[...]` of several names included);
- a dict key, unless it is a key of a record body declared in chain/records.py (a `plan` record keeps its plan
  under `"plan"`: that key names a field, not the type);
- the value of a `"type"` or `"kind"` key in a dict literal;
- an argument, or a parameter default, named `type`, `type_` or `kind`;
- the value of a member of an enum class, which would be a second list of the same names.
Words that mean something else where they are used are allowed below, each with its reason.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args, get_type_hints

import pytest

from chain.records import KIND_OF_TYPE, RECORD_FIELDS, RecordKind, RecordType
from negotiation.wire import MessageType
from node.api.schemas import MovementIn
from node.domain.ledger import MovementType

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("node", "negotiation", "settlement", "chain")
DECLARING = {"negotiation/wire.py", "chain/records.py"}
NAMED_ARGUMENTS = {"type", "type_", "kind"}


def _vocabulary() -> dict[str, str]:
    names: dict[str, list[str]] = {}
    for enum in (MessageType, RecordType, RecordKind):
        for member in enum:
            names.setdefault(member.value, []).append(f"{enum.__name__}.{member.name}")
    return {value: " or ".join(members) for value, members in names.items()}


def _body_keys() -> frozenset[str]:
    """Every key a record body may hold, at any depth, as chain/records.py declares them."""
    keys: set[str] = set()
    seen: set[type] = set()

    def walk(hint: object) -> None:
        if isinstance(hint, type) and hasattr(hint, "__annotations__") and hint not in seen:
            seen.add(hint)
            for key, sub in get_type_hints(hint).items():
                keys.add(key)
                walk(sub)
        for arg in getattr(hint, "__args__", ()):
            walk(arg)

    for shape in RECORD_FIELDS.values():
        walk(shape)
    return frozenset(keys)


VOCABULARY = _vocabulary()
BODY_KEYS = _body_keys()

# (module, value) -> why that word, where it stands in that module, is not the message type, record type or kind.
ALLOWED: dict[tuple[str, str], str] = {
    ("node/api/console/pages.py", "settlement"): "the console's settlement section and its page and action names",
    ("node/api/routes/ledger.py", "ledger"): "the OpenAPI tag of the ledger routes",
    ("node/api/routes/settlement.py", "settlement"): "the OpenAPI tag of the settlement routes",
    ("negotiation/rules/names.py", "joint_purchase"): "a rule book scenario and the place of its share formula",
    ("settlement/reconcile.py", "joint_purchase"): "Dealing.JOINT_PURCHASE: a subject a difference is about",
    ("settlement/contribution.py", "joint_purchase_share"): "FlowKind: a money flow a participant pays the buyer",
    ("settlement/contribution.py", "loan_sale"): "FlowKind: the money flow of units a borrower kept",
}


def _constant(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in VOCABULARY:
        return node.value
    return None


def _bare_in_compare(node: ast.Compare) -> list[ast.AST]:
    operands = [node.left, *node.comparators]
    out: list[ast.AST] = []
    for i, op in enumerate(node.ops):
        left, right = operands[i], operands[i + 1]
        # `"plan" in body` asks for a key; only the collection side of `in` holds types.
        out += [right] if isinstance(op, ast.In | ast.NotIn) else [left, right]
    return out


def _bare_in_call(node: ast.Call) -> list[ast.AST]:
    return [k.value for k in node.keywords if k.arg in NAMED_ARGUMENTS]


def _bare_in_dict(node: ast.Dict) -> list[ast.AST]:
    out: list[ast.AST] = []
    for key, value in zip(node.keys, node.values, strict=True):
        if isinstance(key, ast.Constant) and key.value in NAMED_ARGUMENTS:
            out.append(value)
        if key is not None and _constant(key) not in BODY_KEYS:
            out.append(key)
    return out


def _bare_in_defaults(node: ast.arguments) -> list[ast.AST]:
    positional = [*node.posonlyargs, *node.args]
    with_defaults = list(zip(positional[len(positional) - len(node.defaults) :], node.defaults, strict=True))
    with_defaults += [(a, d) for a, d in zip(node.kwonlyargs, node.kw_defaults, strict=True) if d is not None]
    return [default for arg, default in with_defaults if arg.arg in NAMED_ARGUMENTS]


def _bare_in_enum(node: ast.ClassDef) -> list[ast.AST]:
    return [s.value for s in node.body if isinstance(s, ast.Assign | ast.AnnAssign) and s.value is not None]


def bare_uses(source: str) -> list[tuple[int, str]]:
    """(line, value) of every bare vocabulary string in a module's source."""
    found: list[ast.AST] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            found += _bare_in_compare(node)
        elif isinstance(node, ast.Set | ast.Tuple | ast.List):
            found += node.elts
        elif isinstance(node, ast.Dict):
            found += _bare_in_dict(node)
        elif isinstance(node, ast.Call):
            found += _bare_in_call(node)
        elif isinstance(node, ast.arguments):
            found += _bare_in_defaults(node)
        elif isinstance(node, ast.ClassDef):
            found += _bare_in_enum(node)
    return sorted({(n.lineno, value) for n in found if (value := _constant(n)) is not None})


def production_modules() -> list[Path]:
    return [
        path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if path.relative_to(ROOT).as_posix() not in DECLARING
    ]


def test_no_bare_message_type_record_type_or_kind_in_production_code() -> None:
    bare = [
        f"{rel}:{line}: {value!r} is {VOCABULARY[value]}"
        for path in production_modules()
        for rel in [path.relative_to(ROOT).as_posix()]
        for line, value in bare_uses(path.read_text(encoding="utf-8"))
        if (rel, value) not in ALLOWED
    ]
    assert not bare, "\n".join(bare)


def test_every_allowance_is_still_needed() -> None:
    used = {
        (rel, value)
        for path in production_modules()
        for rel in [path.relative_to(ROOT).as_posix()]
        for _line, value in bare_uses(path.read_text(encoding="utf-8"))
    }
    assert set(ALLOWED) <= used, sorted(set(ALLOWED) - used)


@pytest.mark.parametrize(
    ("source", "line"),
    [
        ('if r["type"] == "transfer_out":\n    pass\n', 1),
        ('if msg.type != "Ruling":\n    pass\n', 1),
        ('if t in ("lend", "borrow"):\n    pass\n', 1),
        ('TYPES = frozenset({"issue", "buy_out"})\n', 1),
        ('FIELDS = {\n    "transfer_in": 1,\n}\n', 2),
        ('body = {"type": "receipt", "sku": "A"}\n', 1),
        ('append(s, kind="ledger")\n', 1),
        ('def f(kind: str = "ledger") -> None:\n    pass\n', 1),
        ('class Again:\n    ISSUE = "issue"\n', 2),
        ('x: Literal["StatementSignature", "Offer"]\n', 1),
    ],
)
def test_the_check_sees_each_bare_use(source: str, line: int) -> None:
    assert {n for n, _value in bare_uses(source)} == {line}


@pytest.mark.parametrize(
    "source",
    [
        'plan = record["plan"]\n',
        'if "plan" in record:\n    pass\n',
        'body = {"plan": {}, "lines": []}\n',
        'evidence = {"source": "dispute", "reference": "x"}\n',
        'if status == "settled":\n    pass\n',
    ],
)
def test_the_check_leaves_other_meanings_alone(source: str) -> None:
    assert bare_uses(source) == []


def test_each_movement_type_is_a_ledger_record_type() -> None:
    for movement in MovementType:
        assert KIND_OF_TYPE[RecordType(movement.value)] is RecordKind.LEDGER, movement


def test_the_movement_api_takes_exactly_the_movement_types() -> None:
    """The API's movement bodies keep plain `Literal["receipt"]` tags (pydantic would print an enum's repr in a
    422's problem text); this ties them to MovementType instead."""
    models = get_args(get_args(MovementIn)[0])
    assert {get_args(m.model_fields["type"].annotation)[0] for m in models} == {t.value for t in MovementType}
