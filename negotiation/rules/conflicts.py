"""Conflict detection: two parts of a rule book that can apply to the same situation and ask for
contradictory things, each reported with a concrete situation that triggers both.

Conditions are translated into an SMT problem (z3) over the names they read, with the names' ranges, and
the solver either finds such a situation (the witness we report) or proves there is none. Exact rational
arithmetic throughout: a conflict is never missed or invented through rounding. docs/rules.md lists the kinds.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import z3

from negotiation.rules.book import CONTRADICTORY_ACTIONS, CheckedBook, CompiledBranch
from negotiation.rules.expr import OPERATORS, Call, Cond, Expression, Literal, Member, Name, NameSpec, Node, Type, Unary
from negotiation.rules.names import all_names

# What a candidate (the lot, the road to it, the partner holding it) is, as opposed to the situation it is
# weighed in: a requirement rules out candidates, so two requirements conflict when no candidate meets both.
CANDIDATE_PREFIXES = ("lot.", "lane.", "partner.", "offer.")
SOLVER_TIMEOUT_MS = 5_000


@dataclass(frozen=True)
class Conflict:
    kind: str  # contradictory_settings, contradictory_requirements, ambiguous_weights, contradictory_actions, undecided
    paths: tuple[str, ...]
    message: str
    situation: Mapping[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        where = " and ".join(self.paths)
        when = ", ".join(f"{k} = {v}" for k, v in sorted(self.situation.items()))
        return f"{self.kind}: {where}: {self.message}" + (f" (for example when {when})" if when else "")


class _Translator:
    def __init__(self, specs: Mapping[str, NameSpec]) -> None:
        self.specs = specs
        self.vars: dict[str, Any] = {}
        self.bounds: dict[str, Any] = {}
        self.guards: list[Any] = []

    def var(self, path: str) -> Any:
        if path not in self.vars:
            spec = self.specs[path]
            if spec.type == Type.INT:
                v = z3.Int(path)
                self.bounds[path] = z3.And(v >= spec.low, v <= spec.high)
            elif spec.type == Type.DECIMAL:
                v = z3.Real(path)
                self.bounds[path] = z3.And(v >= spec.low, v <= spec.high)
            elif spec.type == Type.BOOL:
                v = z3.Bool(path)
            else:
                v = z3.String(path)
                if spec.values is not None:
                    self.bounds[path] = z3.Or(*[v == z3.StringVal(s) for s in spec.values])
            self.vars[path] = v
        return self.vars[path]

    def __call__(self, node: Node) -> Any:
        if isinstance(node, Literal):
            value = node.value
            if isinstance(value, bool):
                return z3.BoolVal(value)
            if isinstance(value, str):
                return z3.StringVal(value)
            if isinstance(value, Fraction):
                return z3.RealVal(f"{value.numerator}/{value.denominator}")
            return z3.IntVal(value)
        if isinstance(node, Name):
            return self.var(node.path)
        if isinstance(node, Unary):
            inner = self(node.operand)
            return z3.Not(inner) if node.op == "not" else -inner
        if isinstance(node, Member):
            operand = self(node.operand)
            hit = z3.Or(*[operand == self(o) for o in node.options])
            return z3.Not(hit) if node.negated else hit
        if isinstance(node, Call):
            args = [self(a) for a in node.args]
            if node.function in ("min", "max"):
                out = args[0]
                for a in args[1:]:
                    out = z3.If(a < out, a, out) if node.function == "min" else z3.If(a > out, a, out)
                return out
            (a,) = args
            if node.function == "abs":
                return z3.If(a < 0, -a, a)
            real = z3.ToReal(a) if a.sort() == z3.IntSort() else a
            return z3.ToInt(real) if node.function == "floor" else -z3.ToInt(-real)
        if isinstance(node, Cond):
            return z3.If(self(node.test), self(node.then), self(node.otherwise))
        left, right = self(node.left), self(node.right)
        if node.op == "and":
            return z3.And(left, right)
        if node.op == "or":
            return z3.Or(left, right)
        if node.op == "/":
            self.guards.append(right != 0)
            lr = z3.ToReal(left) if left.sort() == z3.IntSort() else left
            rr = z3.ToReal(right) if right.sort() == z3.IntSort() else right
            return lr / rr
        return OPERATORS[node.op](left, right)


def _show(value: Any) -> str:
    if z3.is_int_value(value):
        return str(value.as_long())
    if z3.is_rational_value(value):
        f = Fraction(value.numerator_as_long(), value.denominator_as_long())
        for places in range(7):
            if (f * 10**places).denominator == 1:
                return f"{float(f):.{places}f}" if places else str(int(f))
        return f"{f.numerator}/{f.denominator}"
    if z3.is_true(value) or z3.is_false(value):
        return "true" if z3.is_true(value) else "false"
    if z3.is_string_value(value):
        return repr(value.as_string())
    return str(value)


class _Search:
    """One solver context per rule book: the same name is the same variable in every condition."""

    def __init__(self, book: CheckedBook) -> None:
        specs = dict(all_names())
        for place in ("cell", "objective", "rule", "safety"):
            specs.update(book.names(place))  # the book's customer tiers close request.customer_tier
        self.t = _Translator(specs)

    def situation(
        self, *conditions: Any, forall_not: Any | None = None, candidate: Iterable[str] = ()
    ) -> dict[str, str] | str | None:
        """A situation meeting every condition (and, if given, in which no candidate meets `forall_not`),
        None if there is none, or "unknown" when the solver gives up."""
        s = z3.Solver()
        s.set("timeout", SOLVER_TIMEOUT_MS)
        s.add(*conditions, *self.t.guards)
        cand = sorted(set(candidate))
        for path, bound in self.t.bounds.items():
            if path not in cand:
                s.add(bound)
        if forall_not is not None:
            bound_vars = [self.t.var(p) for p in cand]
            inner_bounds = [self.t.bounds[p] for p in cand if p in self.t.bounds]
            body = z3.Implies(z3.And(*inner_bounds), z3.Not(forall_not)) if inner_bounds else z3.Not(forall_not)
            s.add(z3.ForAll(bound_vars, body) if bound_vars else body)
        verdict = s.check()
        if verdict == z3.unsat:
            return None
        if verdict == z3.unknown:
            return "unknown"
        model = s.model()
        shown = {}
        for path, v in self.t.vars.items():
            if path in cand:
                continue
            value = model.eval(v, model_completion=False)
            if z3.is_const(value) and not z3.is_app_of(value, z3.Z3_OP_UNINTERPRETED):
                shown[path] = _show(value)
        return shown

    def expr(self, e: Expression) -> Any:
        return self.t(e.tree)


def _involved(*exprs: Expression | None) -> set[str]:
    return set().union(*(set(e.names) for e in exprs if e is not None))


def _trim(situation: Mapping[str, str], names: set[str]) -> dict[str, str]:
    return {k: v for k, v in situation.items() if k in names}


def _pairs(items: Sequence[Any]) -> Iterable[tuple[Any, Any]]:
    return itertools.combinations(items, 2)


def find_conflicts(book: CheckedBook) -> list[Conflict]:
    """Every conflict in the book; an empty list means none can arise in any situation."""
    search = _Search(book)
    return [
        *_cell_conflicts(search, book),
        *_profile_conflicts(search, book),
        *_adjustment_conflicts(search, book),
        *_rule_conflicts(search, book),
    ]


def _overlap(
    search: _Search, kind: str, paths: tuple[str, ...], message: str, conds: list[Any], names: set[str]
) -> Iterator[Conflict]:
    """A conflict of `kind` if some situation meets every condition (an undecided one if the solver gives up)."""
    result = search.situation(*conds)
    if result == "unknown":
        yield Conflict("undecided", paths, f"the solver could not decide whether: {message}")
    elif isinstance(result, dict):
        yield Conflict(kind, paths, message, _trim(result, names))


def _cell_conflicts(search: _Search, book: CheckedBook) -> Iterator[Conflict]:
    """In each scenario: two branches of one cell that apply together and set a setting, or the weights,
    differently; and requirements that, where they apply, no candidate can meet."""
    scenario = search.t.var("request.scenario")
    for s_name, rows in book.cells.items():
        in_scenario = scenario == z3.StringVal(s_name)
        for branches in rows.values():
            for a, b in _pairs(branches):
                yield from _branch_pair_conflicts(search, in_scenario, a, b)
        requiring = [b for branches in rows.values() for b in branches if b.require is not None]
        for a, b in [(x, x) for x in requiring] + list(_pairs(requiring)):
            yield from _requirements(search, in_scenario, a, b)


def _branch_pair_conflicts(
    search: _Search, in_scenario: Any, a: CompiledBranch, b: CompiledBranch
) -> Iterator[Conflict]:
    both = [in_scenario, search.expr(a.when), search.expr(b.when)]
    names = _involved(a.when, b.when)
    for key in sorted(set(a.settings) & set(b.settings)):
        if a.settings[key] != b.settings[key]:
            message = f"{key} is set to {_fmt(a.settings[key])} and to {_fmt(b.settings[key])}"
            yield from _overlap(search, "contradictory_settings", (a.path, b.path), message, both, names)
    if a.weights and b.weights and a.weights != b.weights:
        yield from _overlap(search, "ambiguous_weights", (a.path, b.path), "two sets of weights apply", both, names)


def _profile_conflicts(search: _Search, book: CheckedBook) -> Iterator[Conflict]:
    for (pa, wa, weights_a), (pb, wb, weights_b) in _pairs(book.profiles):
        if weights_a != weights_b:
            yield from _overlap(
                search,
                "ambiguous_weights",
                (pa, pb),
                "two weight profiles apply with different weights",
                [search.expr(wa), search.expr(wb)],
                _involved(wa, wb),
            )


def _adjustment_conflicts(search: _Search, book: CheckedBook) -> Iterator[Conflict]:
    for (pa, wa, adj_a), (pb, wb, adj_b) in _pairs(book.safety_adjustments):
        for key in ("service_level", "lead_time_days"):
            va, vb = getattr(adj_a, key), getattr(adj_b, key)
            if va is not None and vb is not None and va != vb:
                yield from _overlap(
                    search,
                    "contradictory_settings",
                    (pa, pb),
                    f"{key} is set to {va} and to {vb}",
                    [search.expr(wa), search.expr(wb)],
                    _involved(wa, wb),
                )


def _rule_conflicts(search: _Search, book: CheckedBook) -> Iterator[Conflict]:
    """Two business rules that fire together with contradictory actions, or set two different safety levels."""
    for (pa, wa, ra, va), (pb, wb, rb, vb) in _pairs(book.rules):
        kinds = (ra.action.kind, rb.action.kind)
        conds = [search.expr(wa), search.expr(wb)]
        names = _involved(wa, wb, va, vb)
        if kinds in CONTRADICTORY_ACTIONS or kinds[::-1] in CONTRADICTORY_ACTIONS:
            message = f"{kinds[0]} and {kinds[1]} both fire"
            yield from _overlap(search, "contradictory_actions", (pa, pb), message, conds, names)
        elif kinds == ("set_safety_level", "set_safety_level") and va is not None and vb is not None:
            yield from _overlap(
                search,
                "contradictory_actions",
                (pa, pb),
                f"the safety level is set to {va.source} and to {vb.source}, which differ here",
                [*conds, search.expr(va) != search.expr(vb)],
                names,
            )


def _requirements(search: _Search, in_scenario: Any, a: CompiledBranch, b: CompiledBranch) -> Iterator[Conflict]:
    """Requirements contradict when, in a situation where both branches apply, no candidate meets both."""
    assert a.require is not None and b.require is not None
    exprs = (a.when, b.when, a.require, b.require)
    names = _involved(*exprs)
    candidate = {n for n in names if n.startswith(CANDIDATE_PREFIXES)}
    for n in candidate:
        search.t.var(n)
    both = [in_scenario, search.expr(a.when), search.expr(b.when)]
    meets = z3.And(search.expr(a.require), search.expr(b.require))
    result = search.situation(*both, forall_not=meets, candidate=candidate)
    paths = (f"{a.path}.require",) if a is b else (f"{a.path}.require", f"{b.path}.require")
    if result == "unknown":
        yield Conflict("undecided", paths, "the solver could not decide whether any lot can meet this")
    elif isinstance(result, dict):
        message = "no lot can ever meet this requirement" if a is b else "no lot can meet both requirements"
        yield Conflict("contradictory_requirements", paths, message, _trim(result, names - candidate))


def _fmt(value: int | Fraction | str) -> str:
    if isinstance(value, Fraction):
        return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"
    return str(value)
