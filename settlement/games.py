"""Cooperative games of the consortium's plans: coalition values, Shapley values, the core check and the
nucleolus, exact (Fractions), over plain data (docs/settlement.md, section 3).

The consortium's game is a sum of small games, one per plan, each over the few members the plan involves
(its requester and the suppliers whose offers it saw): v(S) = sum over plans p of v_p(S & N_p). A
`PlanGame` holds v_p for every subset of its N_p (at most a few dozen values); `ConsortiumGame` sums them.
Shapley values are additive, so the consortium's are the sums of the plans'; the core check and the
nucleolus need v(S) for every coalition of the whole consortium, computed by summing the plans' tables.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

# The most members for which every coalition is enumerated (2^n - 1 of them: 4,095 at 12).
MAX_ENUMERATED = 16


class GameError(ValueError):
    """A game that cannot be evaluated as asked (too many players to enumerate, an unknown player)."""


@dataclass(frozen=True)
class PlanGame:
    """v_p over the subsets of `players` (sorted addresses): `values[mask]` is v_p of the players whose bit
    is set in `mask` (bit i = players[i]); values[0] = 0."""

    plan: str
    players: tuple[str, ...]
    values: tuple[int, ...]
    requester: str = ""  # who realises the plan's value (it avoided the shortages); "" in abstract games

    def __post_init__(self) -> None:
        if len(self.values) != 1 << len(self.players) or self.values[0] != 0:
            raise GameError(f"plan {self.plan}: a value per subset of its {len(self.players)} players, v(empty) = 0")
        if list(self.players) != sorted(set(self.players), key=str.lower):
            raise GameError(f"plan {self.plan}: players are distinct and in lower-case address order")

    @classmethod
    def of(
        cls, plan: str, players: Iterable[str], value: Callable[[frozenset[str]], int], requester: str = ""
    ) -> PlanGame:
        """The game whose value for a subset of `players` is `value(subset)` (called once per subset)."""
        ordered = tuple(sorted(set(players), key=str.lower))
        values = [0] * (1 << len(ordered))
        for mask in range(1, 1 << len(ordered)):
            values[mask] = value(frozenset(p for i, p in enumerate(ordered) if mask >> i & 1))
        return cls(plan, ordered, tuple(values), requester)

    def masks(self) -> dict[int, int]:
        """v_p by bit mask over `players`, every nonempty subset (what `nucleolus` takes)."""
        return {mask: self.values[mask] for mask in range(1, len(self.values))}

    @property
    def grand(self) -> int:
        return self.values[-1]

    def value(self, coalition: Iterable[str]) -> int:
        members = set(coalition)
        return self.values[sum(1 << i for i, p in enumerate(self.players) if p in members)]

    def shapley(self) -> dict[str, Fraction]:
        """Exact Shapley values: each player's marginal contribution averaged over every order of arrival.
        Summed in integers (each term times n!), divided once."""
        n = len(self.players)
        weight = [math.factorial(k) * math.factorial(n - k - 1) for k in range(n)]
        out = {}
        for i, player in enumerate(self.players):
            bit = 1 << i
            total = 0
            for mask in range(1 << n):
                if not mask & bit:
                    total += weight[mask.bit_count()] * (self.values[mask | bit] - self.values[mask])
            out[player] = Fraction(total, math.factorial(n))
        return out


@dataclass(frozen=True)
class CoreCheck:
    """Whether no coalition gets less than it would alone: `deficit` = max over S of v(S) - x(S) (<= 0 in the
    core), and the coalition where it is reached."""

    in_core: bool
    worst_coalition: tuple[str, ...]
    deficit: Fraction
    coalitions_checked: int


@dataclass
class ConsortiumGame:
    """The sum of the plans' games over every member that took part in one."""

    plans: list[PlanGame] = field(default_factory=list)
    # Members in no plan still count: a coalition of them is worth 0, and the core check covers them.
    others: tuple[str, ...] = ()
    _table: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def members(self) -> tuple[str, ...]:
        """Every member, in lower-case address order (bit i of a coalition mask = members[i])."""
        return tuple(sorted({p for g in self.plans for p in g.players} | set(self.others), key=str.lower))

    @property
    def surplus(self) -> int:
        """v(N): what every plan created, with all its participants."""
        return sum(g.grand for g in self.plans)

    def value(self, coalition: Iterable[str]) -> int:
        members = set(coalition)
        return sum(g.value(members) for g in self.plans)

    def shapley(self) -> dict[str, Fraction]:
        """Exact, by additivity: the sum of each plan's Shapley values (a member outside a plan gets 0 of it)."""
        out: dict[str, Fraction] = {m: Fraction(0) for m in self.members}
        for g in self.plans:
            for player, phi in g.shapley().items():
                out[player] += phi
        return out

    def coalition_values(self) -> dict[int, int]:
        """v(S) for every nonempty coalition, keyed by its bit mask over `members` (bit i = members[i])."""
        values = self.value_table()
        return {mask: int(values[mask]) for mask in range(1, len(values))}

    def value_table(self) -> np.ndarray:
        """v(S) for every coalition as an array indexed by bit mask (entry 0: the empty coalition, 0).

        Plans with the same players are summed first (their tables add up); each distinct player set then
        adds its table to every coalition through the coalition's sub-mask over those players, computed for
        all 2^n masks at once. Integers stay exact: int64 holds any sum of minor units a consortium makes."""
        if self._table is not None:
            return self._table
        members = self.members
        n = len(members)
        if n > MAX_ENUMERATED:
            raise GameError(f"{n} members: every coalition is enumerated only up to {MAX_ENUMERATED}")
        index = {m: i for i, m in enumerate(members)}
        tables: dict[tuple[str, ...], np.ndarray] = {}
        for g in self.plans:
            row = np.asarray(g.values, dtype=object)
            tables[g.players] = tables[g.players] + row if g.players in tables else row
        masks = np.arange(1 << n, dtype=np.int64)
        # Python integers (object arrays): exact whatever the sums reach.
        out = np.zeros(1 << n, dtype=object)
        for players, table in tables.items():
            sub = np.zeros(1 << n, dtype=np.int64)
            for j, p in enumerate(players):
                sub |= ((masks >> index[p]) & 1) << j
            out += table[sub]
        self._table = out
        return out

    def core_check(self, allocation: Mapping[str, Fraction | int]) -> CoreCheck:
        """The worst proper coalition for `allocation`: the one whose value most exceeds what its members get
        (the grand coalition is left out: what it gets is the surplus by construction). Ties: the smaller
        coalition, then the smaller mask."""
        members = self.members
        n = len(members)
        if n < 2:
            return CoreCheck(True, (), Fraction(0), 0)
        shares = [Fraction(allocation.get(m, 0)) for m in members]
        scale = math.lcm(*(x.denominator for x in shares))
        scaled = np.asarray([int(x * scale) for x in shares], dtype=object)
        masks = np.arange(1, (1 << n) - 1, dtype=np.int64)
        got = np.zeros(len(masks), dtype=object)
        for i in range(n):
            got = got + ((masks >> i) & 1).astype(object) * scaled[i]
        deficits = self.value_table()[1:-1].astype(object) * scale - got
        worst = max(deficits)
        candidates = [int(m) for m, d in zip(masks, deficits, strict=True) if d == worst]
        worst_mask = min(candidates, key=lambda m: (m.bit_count(), m))
        coalition = tuple(m for i, m in enumerate(members) if worst_mask >> i & 1)
        deficit = Fraction(int(worst), scale)
        return CoreCheck(deficit <= 0, coalition, deficit, len(masks))


def nucleolus(players: Sequence[str], value: Mapping[int, int | Fraction]) -> dict[str, Fraction]:
    """The nucleolus of the game `value` (bit masks over `players` -> v(S), every nonempty S given), exact.

    Sequential LPs (Maschler, Peleg & Shapley 1979): at each level, maximise the smallest excess
    e(S) = x(S) - v(S) over the coalitions not yet fixed, subject to x(N) = v(N) and the levels fixed before;
    coalitions whose constraint has a positive dual price are tight at every optimum and are fixed at that
    level. When the fixed constraints determine x, it is solved again exactly in Fractions from them, so the
    result does not depend on floating-point rounding. In the least core when the core is empty."""
    n = len(players)
    grand = (1 << n) - 1
    if n == 0:
        return {}
    if n == 1:
        return {players[0]: Fraction(value[grand])}
    fixed: list[tuple[int, int]] = []  # (mask, level)
    levels: list[float] = []
    free = [m for m in range(1, grand)]
    while free:
        eps, duals = _level_lp(n, value, fixed, levels, free)
        level = len(levels)
        levels.append(eps)
        tight = [m for m, d in zip(free, duals, strict=True) if d > 1e-9]
        if not tight:  # degenerate: take the coalitions at the bound
            raise GameError("the nucleolus LP gave no tight coalition")
        fixed.extend((m, level) for m in tight)
        free = [m for m in free if m not in set(tight)]
        solution = _exact(n, value, fixed, len(levels))
        if solution is not None:
            return _checked(players, value, solution, levels[0])
    solution = _exact(n, value, fixed, len(levels))
    if solution is None:
        raise GameError("the nucleolus is not determined by its tight coalitions")
    return _checked(players, value, solution, levels[0])


def _checked(
    players: Sequence[str], value: Mapping[int, int | Fraction], x: list[Fraction], first_level: float
) -> dict[str, Fraction]:
    """The exact solution, once its smallest excess is shown to be the first LP's optimum: a coalition the
    float duals misclassified would leave some excess below it (then refused rather than returned)."""
    n = len(players)
    smallest = min(sum(x[i] for i in range(n) if m >> i & 1) - Fraction(value[m]) for m in range(1, (1 << n) - 1))
    if float(smallest) < first_level - 1e-6 * max(1.0, abs(first_level)):
        raise GameError(f"the nucleolus LP's classification does not hold exactly ({float(smallest)} < {first_level})")
    return {p: x[i] for i, p in enumerate(players)}


def _level_lp(
    n: int, value: Mapping[int, int | Fraction], fixed: list[tuple[int, int]], levels: list[float], free: list[int]
) -> tuple[float, list[float]]:
    from ortools.linear_solver import pywraplp

    solver = pywraplp.Solver.CreateSolver("GLOP")
    if solver is None:  # pragma: no cover - GLOP ships with OR-Tools
        raise GameError("no LP solver")
    inf = solver.infinity()
    x = [solver.NumVar(-inf, inf, f"x{i}") for i in range(n)]
    eps = solver.NumVar(-inf, inf, "eps")
    grand = (1 << n) - 1
    solver.Add(sum(x) == float(value[grand]))
    for mask, level in fixed:
        solver.Add(sum(x[i] for i in range(n) if mask >> i & 1) == float(value[mask]) + levels[level])
    rows = [solver.Add(sum(x[i] for i in range(n) if mask >> i & 1) - eps >= float(value[mask])) for mask in free]
    solver.Maximize(eps)
    if solver.Solve() != pywraplp.Solver.OPTIMAL:
        raise GameError("the nucleolus LP has no optimum")
    return eps.solution_value(), [abs(r.dual_value()) for r in rows]


def _exact(n: int, value: Mapping[int, int | Fraction], fixed: list[tuple[int, int]], k: int) -> list[Fraction] | None:
    """x and the k excess levels from x(N) = v(N) and x(S) - e_level = v(S) for the fixed S, if they determine
    x uniquely (exact Gaussian elimination), else None."""
    grand = (1 << n) - 1
    width = n + k
    rows: list[list[Fraction]] = [[Fraction(1)] * n + [Fraction(0)] * k + [Fraction(value[grand])]]
    for mask, level in fixed:
        row = [Fraction(1 if mask >> i & 1 else 0) for i in range(n)] + [Fraction(0)] * k
        row[n + level] = Fraction(-1)
        rows.append([*row, Fraction(value[mask])])
    pivots = _row_reduce(rows, width)
    if any(all(c == 0 for c in r[:width]) and r[width] != 0 for r in rows):
        return None  # inconsistent: the float LP fixed coalitions that are not tight together
    if not all(col in pivots for col in range(n)):
        return None
    # x is determined only if no free column (an undetermined excess level) enters an x row.
    free_cols = [c for c in range(width) if c not in pivots]
    out = []
    for col in range(n):
        r = rows[pivots[col]]
        if any(r[c] != 0 for c in free_cols):
            return None
        out.append(r[width])
    return out


def _row_reduce(rows: list[list[Fraction]], width: int) -> dict[int, int]:
    """Reduced row echelon form in place; {pivot column: its row}."""
    pivots: dict[int, int] = {}
    r = 0
    for col in range(width):
        pivot = next((i for i in range(r, len(rows)) if rows[i][col] != 0), None)
        if pivot is None:
            continue
        rows[r], rows[pivot] = rows[pivot], rows[r]
        lead = rows[r][col]
        rows[r] = [v / lead for v in rows[r]]
        for i in range(len(rows)):
            if i != r and rows[i][col] != 0:
                f = rows[i][col]
                rows[i] = [a - f * b for a, b in zip(rows[i], rows[r], strict=True)]
        pivots[col] = r
        r += 1
    return pivots
