"""Cooperative games of the consortium's plans: coalition values, Shapley values, the core check and the
nucleolus, exact (Fractions), over plain data (docs/settlement.md, section 3).

The consortium's game is a sum of small games, one per plan, each over the few members the plan involves
(its requester and the suppliers whose offers it saw): v(S) = sum over plans p of v_p(S & N_p). A
`PlanGame` holds v_p for every subset of its N_p (at most a few dozen values); `ConsortiumGame` sums them.
Shapley values are additive, so the consortium's are the sums of the plans'; the core check needs v(S) for
every coalition of the whole consortium (up to MAX_ENUMERATED members), computed from the plans' Harsanyi
dividends with one subset-sum transform; beyond, `core_check_by_plan` proves membership plan by plan or
says it does not know. The nucleolus has a closed form on big boss games and is otherwise found by
sequential LPs (HiGHS) on scaled values, then recovered exactly in Fractions and checked.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

# The most members for which every coalition is enumerated (2^n - 1 of them: 1,048,575 at 20, checked as
# int64 vectors in well under a second).
MAX_ENUMERATED = 20

# Integers are vectorised as int64 only when every sum formed from them is proven below this bound (one more
# addition of two such sums still fits in 2^63); otherwise the same code runs on Python integers.
_INT64_SAFE = 1 << 62


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
    """Whether no coalition gets less than it would alone: `deficit` = max over proper S of v(S) - x(S) (<= 0
    in the core), and the coalition where it is reached.

    `scope` "each plan" (from `core_check_by_plan`): `in_core` is True (proven) or None (not known, never a
    false alarm), `deficit` is only an upper bound on the largest deficit and no coalition is named."""

    in_core: bool | None
    worst_coalition: tuple[str, ...]
    deficit: Fraction
    coalitions_checked: int
    scope: str = "all coalitions"


def _int_array(values: Sequence[int] | Sequence[list[int]], bound: int) -> np.ndarray:
    """int64 when `bound` (on every sum that will be formed) fits, else Python integers."""
    return np.array(values, dtype=np.int64 if bound < _INT64_SAFE else object)


def _subset_sums(a: np.ndarray, n: int) -> np.ndarray:
    """In place, over the 2^n masks: a[S] becomes the sum of a[T] over every T contained in S (the zeta
    transform: n vectorised passes instead of 3^n additions)."""
    for i in range(n):
        pairs = a.reshape(-1, 2, 1 << i)
        pairs[:, 1, :] += pairs[:, 0, :]
    return a


def _dividends(a: np.ndarray, k: int) -> np.ndarray:
    """In place, along the last axis of 2^k masks: the Harsanyi dividends (Moebius transform) of a game, the
    inverse of `_subset_sums`."""
    for i in range(k):
        pairs = a.reshape(*a.shape[:-1], -1, 2, 1 << i)
        pairs[..., 1, :] -= pairs[..., 0, :]
    return a


def _worst(deficits: np.ndarray) -> int:
    """The proper coalition (mask) of largest deficit: ties to the smaller coalition, then the smaller mask."""
    inner = deficits[1:-1]
    candidates = np.flatnonzero(inner == inner.max()) + 1
    sizes, rest = np.zeros_like(candidates), candidates.copy()
    while rest.any():  # popcount, one bit a pass (np.bitwise_count needs numpy 2)
        sizes += rest & 1
        rest >>= 1
    return int(candidates[np.lexsort((candidates, sizes))[0]])


@dataclass
class ConsortiumGame:
    """The sum of the plans' games over every member that took part in one."""

    plans: list[PlanGame] = field(default_factory=list)
    # Members in no plan still count: a coalition of them is worth 0, and the core check covers them.
    others: tuple[str, ...] = ()
    _table: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)
    _bound: int = field(default=0, init=False, repr=False, compare=False)  # >= |v(S)| for every S

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

        v is the sum of the plans' Harsanyi dividends over the subsets of each coalition: each plan's
        dividends (Moebius transform of its 2^k table, plans with the same players summed first) are put at
        their coalitions' masks, then one subset-sum transform over the 2^n masks gives every v(S). Exact:
        int64 when a bound on every partial sum fits (sum over plans of 3^k max |v_p|), else Python ints."""
        if self._table is not None:
            return self._table
        members = self.members
        n = len(members)
        if n > MAX_ENUMERATED:
            raise GameError(f"{n} members: every coalition is enumerated only up to {MAX_ENUMERATED}")
        index = {m: i for i, m in enumerate(members)}
        tables: dict[tuple[str, ...], list[int]] = {}
        for g in self.plans:
            known = tables.get(g.players, [0] * len(g.values))
            tables[g.players] = [a + b for a, b in zip(known, g.values, strict=True)]
        bound = sum(3 ** len(p) * max(map(abs, t)) for p, t in tables.items())
        out = _int_array([0] * (1 << n), bound)
        by_size: dict[int, list[tuple[str, ...]]] = {}
        for players in tables:
            by_size.setdefault(len(players), []).append(players)
        for k, sets in by_size.items():
            dividends = _dividends(_int_array([tables[p] for p in sets], bound), k)
            bits = np.array([[index[p] for p in players] for players in sets], dtype=np.int64).reshape(len(sets), k)
            local = np.arange(1 << k, dtype=np.int64)
            spread = (((local[None, :, None] >> np.arange(k)) & 1) << bits[:, None, :]).sum(axis=2)
            np.add.at(out, spread.ravel(), dividends.ravel())
        self._table, self._bound = _subset_sums(out, n), bound
        return self._table

    def deficit_table(self, allocation: Mapping[str, Fraction | int]) -> tuple[np.ndarray, int]:
        """(d, D): d[S] = D x (v(S) - x(S)) for every coalition mask S, in integers, with D the common
        denominator of the allocation (1 for whole minor units). Members not in `allocation` get 0."""
        members = self.members
        n = len(members)
        values = self.value_table()
        shares = [Fraction(allocation.get(m, 0)) for m in members]
        scale = math.lcm(*(x.denominator for x in shares))
        scaled = [int(x * scale) for x in shares]
        bound = self._bound * scale + sum(map(abs, scaled))
        got = _int_array([0] * (1 << n), bound if values.dtype == np.int64 else _INT64_SAFE)
        got[1 << np.arange(n)] = scaled
        _subset_sums(got, n)
        table = values.astype(got.dtype)
        return (table * scale if scale != 1 else table) - got, scale

    def core_check(self, allocation: Mapping[str, Fraction | int]) -> CoreCheck:
        """The worst proper coalition for `allocation`: the one whose value most exceeds what its members get
        (the grand coalition is left out: what it gets is the surplus by construction). Ties: the smaller
        coalition, then the smaller mask. Every coalition, up to MAX_ENUMERATED members."""
        members = self.members
        n = len(members)
        if n < 2:
            return CoreCheck(True, (), Fraction(0), 0)
        deficits, scale = self.deficit_table(allocation)
        worst_mask = _worst(deficits)
        coalition = tuple(m for i, m in enumerate(members) if worst_mask >> i & 1)
        deficit = Fraction(int(deficits[worst_mask]), scale)
        return CoreCheck(deficit <= 0, coalition, deficit, (1 << n) - 2)


def _excesses(game: PlanGame, allocation: Mapping[str, Fraction | int]) -> list[Fraction]:
    """x(T) - v_p(T) for every subset T of the plan's players (by mask)."""
    shares = [Fraction(allocation.get(p, 0)) for p in game.players]
    got = [Fraction(0)] * len(game.values)
    for mask in range(1, len(got)):
        low = mask & -mask
        got[mask] = got[mask ^ low] + shares[low.bit_length() - 1]
    return [g - v for g, v in zip(got, game.values, strict=True)]


def _move(excess: list[Fraction], bit: int, amount: Fraction, source: int = 0) -> None:
    """The player of `bit` gets `amount` more in a plan, taken from the player of `source` if any: every
    subset holding the first and not the second gains it, every subset holding the second and not the
    first loses it."""
    for mask in range(len(excess)):
        if mask & bit and not mask & source:
            excess[mask] += amount
        elif mask & source and not mask & bit:
            excess[mask] -= amount


def _least(excess: list[Fraction], bit: int, without: int = 0) -> Fraction:
    """The least excess of the subsets of a plan holding the player of `bit` (and not that of `without`)."""
    return min(e for mask, e in enumerate(excess) if mask & bit and not mask & without)


@dataclass
class _Parts:
    """`core_check_by_plan`'s per-plan parts: each plan's excess table, where each member plays (plan, bit),
    and what each member's parts still differ from the allocation checked by (> 0: to receive, < 0: to
    give), members in lower-case address order."""

    excesses: list[list[Fraction]]
    where: dict[str, list[tuple[int, int]]]
    bits: list[list[tuple[str, int]]]
    left: dict[str, Fraction]

    @classmethod
    def of(
        cls,
        plans: Sequence[PlanGame],
        allocation_by_plan: Sequence[Mapping[str, Fraction | int]],
        allocation: Mapping[str, Fraction | int] | None,
    ) -> _Parts:
        parts = cls([_excesses(g, a) for g, a in zip(plans, allocation_by_plan, strict=True)], {}, [], {})
        total: dict[str, Fraction] = {}
        for p, (g, a) in enumerate(zip(plans, allocation_by_plan, strict=True)):
            parts.bits.append([(player, 1 << i) for i, player in enumerate(g.players)])
            for player, bit in parts.bits[p]:
                parts.where.setdefault(player, []).append((p, bit))
                total[player] = total.get(player, Fraction(0)) + Fraction(a.get(player, 0))
        wanted = {m: Fraction(x) for m, x in (allocation or total).items()}
        members = sorted(set(wanted) | set(total), key=str.lower)
        parts.left = {m: wanted.get(m, Fraction(0)) - total.get(m, Fraction(0)) for m in members}
        return parts

    def trade(self) -> None:
        """Each giver, plan by plan in the order given, gives to the receivers of the same plan (in address
        order) as much as every subset holding the giver and not the receiver allows (plans' totals kept)."""
        for giver in [m for m, x in self.left.items() if x < 0 and m in self.where]:
            for p, bit in self.where[giver]:
                for receiver, to in self.bits[p]:  # players are in address order
                    if self.left[receiver] > 0 and self.left[giver] < 0:
                        room = max(Fraction(0), _least(self.excesses[p], bit, without=to))
                        amount = min(-self.left[giver], self.left[receiver], room)
                        _move(self.excesses[p], to, amount, source=bit)
                        self.left[giver] += amount
                        self.left[receiver] -= amount
                if self.left[giver] == 0:
                    break

    def place(self) -> Fraction:
        """What trading left: a receiver's units go, plan by plan, where a subset holding it has a negative
        excess (as much as lifts it to 0), the rest to its first plan; a giver's are taken, plan by plan, as
        far as every subset holding it keeps an excess >= 0. Returns what no plan could give."""
        for member in [m for m, x in self.left.items() if x > 0 and m in self.where]:
            for p, bit in self.where[member]:
                lift = min(self.left[member], max(Fraction(0), -_least(self.excesses[p], bit)))
                _move(self.excesses[p], bit, lift)
                self.left[member] -= lift
            p, bit = self.where[member][0]
            _move(self.excesses[p], bit, self.left[member])
            self.left[member] = Fraction(0)
        unplaced = Fraction(0)
        for member in [m for m, x in self.left.items() if x < 0 and m in self.where]:
            for p, bit in self.where[member]:
                take = min(-self.left[member], max(Fraction(0), _least(self.excesses[p], bit)))
                _move(self.excesses[p], bit, -take)
                self.left[member] += take
            unplaced -= self.left[member]
        return unplaced


def core_check_by_plan(
    plans: Sequence[PlanGame],
    allocation_by_plan: Sequence[Mapping[str, Fraction | int]],
    allocation: Mapping[str, Fraction | int] | None = None,
) -> CoreCheck:
    """A sufficient core check for any number of members: `in_core` True (proven) or None (not known).

    `allocation_by_plan[p]` is what plan p's players get of v_p (the method's shares, plan by plan);
    `allocation` is the allocation checked, default their sum (the statement passes its rounded shares,
    with every member). Proof: if the allocation splits into per-plan parts y_p, each in the core of its
    plan's game (y_p(T) >= v_p(T) for every T in N_p), and members in no plan get >= 0, then x(S) >= v(S)
    for every S, since v(S) is the sum of the v_p(S & N_p). The parts start as `allocation_by_plan`; what
    a member's parts differ from `allocation` by (the rounding's units) is moved into them by a fixed rule
    (`_Parts.trade`, then `_Parts.place`): first from members who have too much to members who have too
    little in the same plan, as far as that plan's core allows; then what is left.

    `deficit` is an upper bound on the largest deficit: the sum of each plan's most negative remaining
    excess, of what no plan could give, and of the negative shares of members in no plan; `in_core` is True
    when that bound is 0, else None. `coalitions_checked`: the plans' subsets."""
    parts = _Parts.of(plans, allocation_by_plan, allocation)
    parts.trade()
    bound = parts.place()
    bound += sum((-x for m, x in parts.left.items() if x < 0 and m not in parts.where), Fraction(0))
    bound += sum((max(Fraction(0), -min(e)) for e in parts.excesses), Fraction(0))
    checked = sum(len(e) - 1 for e in parts.excesses)
    return CoreCheck(True if bound == 0 else None, (), bound, checked, scope="each plan")


def nucleolus(
    players: Sequence[str], value: Mapping[int, int | Fraction], closed_form: bool = True
) -> dict[str, Fraction]:
    """The nucleolus of the game `value` (bit masks over `players` -> v(S), every nonempty S given), exact.

    On a big boss game (`big_boss`) it is the closed form of Muto, Nakayama, Potters & Tijs (1988): each
    other player i gets M_i / 2, with M_i = v(N) - v(N minus i), and the boss the rest (the tau-value).
    Otherwise (or with `closed_form=False`) it is found by sequential LPs (Maschler, Peleg & Shapley 1979;
    `_nucleolus_by_lp`), then solved exactly in Fractions from the coalitions the LPs fixed, and checked.
    Strictly the prenucleolus (x(N) = v(N), no individual bound): the same whenever the core is non-empty;
    in the least core when it is empty."""
    n = len(players)
    grand = (1 << n) - 1
    if n == 0:
        return {}
    if n == 1:
        return {players[0]: Fraction(value[grand])}
    exact = [Fraction(0)] + [Fraction(value[m]) for m in range(1, grand + 1)]
    boss = big_boss(n, exact) if closed_form else None
    if boss is not None:
        return dict(zip(players, _big_boss_split(n, exact, boss), strict=True))
    return dict(zip(players, _nucleolus_by_lp(n, exact), strict=True))


def _scaled_integers(exact: Sequence[Fraction], bound_factor: int) -> np.ndarray:
    """The values times their common denominator, int64 when `bound_factor` times the largest fits."""
    scale = math.lcm(*(v.denominator for v in exact))
    ints = [int(v * scale) for v in exact]
    return _int_array(ints, bound_factor * max(map(abs, ints)))


def big_boss(n: int, exact: Sequence[Fraction]) -> int | None:
    """The big boss of the game `exact` (v by mask over n players, exact[0] = 0), or None if it is not a big
    boss game: the boss b makes every coalition without it worth 0; v is monotonic; and for every S holding
    b, v(N) - v(S) >= sum over i outside S of M_i (M_i = v(N) - v(N minus i)). The lowest such b."""
    v = _scaled_integers(exact, 8 * n)
    grand = (1 << n) - 1
    for i in range(n):
        pairs = v.reshape(-1, 2, 1 << i)
        if (pairs[:, 1, :] < pairs[:, 0, :]).any():
            return None
    masks = np.arange(1 << n, dtype=np.int64)
    for boss in range(n):
        bit = 1 << boss
        if (v[(masks & bit) == 0] != 0).any():
            continue
        singles = np.zeros(1 << n, dtype=v.dtype)
        for i in range(n):
            if i != boss:
                singles[1 << i] = v[grand] - v[grand ^ (1 << i)]
        outside = _subset_sums(singles, n)
        holding = masks[(masks & bit) != 0]
        if (v[grand] - v[holding] >= outside[grand ^ holding]).all():
            return boss
    return None


def _big_boss_split(n: int, exact: Sequence[Fraction], boss: int) -> list[Fraction]:
    grand = (1 << n) - 1
    x = [(exact[grand] - exact[grand ^ (1 << i)]) / 2 for i in range(n)]
    x[boss] = exact[grand] - sum(x[i] for i in range(n) if i != boss)
    return x


class _Span:
    """An orthonormal basis (floats) of the span of some 0/1 row vectors: whether a coalition's x(S) is
    determined by the rows taken so far. Exact enough for 0/1 rows of a few dozen columns."""

    def __init__(self, width: int) -> None:
        self.basis = np.zeros((0, width))

    @property
    def rank(self) -> int:
        return len(self.basis)

    def residual(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(np.linalg.norm(rows - (rows @ self.basis.T) @ self.basis, axis=1))

    def add(self, row: np.ndarray) -> bool:
        """Takes `row` if it is independent of the basis (True), else leaves the basis as it was."""
        r = row.astype(np.float64)
        for _ in range(2):  # Gram-Schmidt twice: the basis stays orthonormal to machine precision
            r = r - (self.basis @ r) @ self.basis
        norm = float(np.linalg.norm(r))
        if norm <= 1e-7 * max(1.0, float(np.linalg.norm(row))):
            return False
        self.basis = np.vstack([self.basis, r / norm])
        return True


@dataclass
class _Levels:
    """What the sequential LPs found: each level's least excess (exact: a certified LP optimum), the
    coalitions fixed at a level (a positive exact dual price: tight at every optimum), those dropped after
    it (their x(S) determined by the fixed ones), and the fixed ones with independent rows, the LPs'
    equalities (level -1: x(N) = v(N))."""

    levels: list[Fraction] = field(default_factory=list)
    x: list[Fraction] = field(default_factory=list)  # the last level's optimal x (at first: one of x(N) = v(N))
    fixed: list[tuple[int, int]] = field(default_factory=list)
    dropped: list[tuple[int, int]] = field(default_factory=list)
    equalities: list[tuple[int, int]] = field(default_factory=list)


@dataclass(frozen=True)
class _Game:
    """A game as the LPs see it: exact values by mask, and the same divided by the largest |v| as floats (so
    HiGHS sees numbers of order 1 whatever the currency unit), with the 0/1 rows of the proper coalitions."""

    n: int
    exact: Sequence[Fraction]
    top: Fraction
    scaled: np.ndarray
    masks: np.ndarray
    member: np.ndarray

    @classmethod
    def of(cls, n: int, exact: Sequence[Fraction]) -> _Game:
        top = max(abs(v) for v in exact) or Fraction(1)
        masks = np.arange(1, (1 << n) - 1, dtype=np.int64)
        member = ((masks[:, None] >> np.arange(n)) & 1).astype(np.float64)
        return cls(n, exact, top, np.array([float(v / top) for v in exact]), masks, member)

    def rhs(self, mask: int, level: int, found: _Levels) -> Fraction:
        return self.exact[mask] + (found.levels[level] if level >= 0 else 0)


def _nucleolus_by_lp(n: int, exact: Sequence[Fraction]) -> list[Fraction]:
    """Sequential LPs. At each level: maximise the least excess e of the free coalitions subject to the
    equalities found before (HiGHS, `_highs_basis`); the optimal basis is then certified exactly
    (`_certified`), which gives the level's e and x in Fractions and the coalitions with a positive dual
    price, fixed at that level; free ones whose x(S) the fixed rows now determine are dropped (their excess
    cannot change). Each level adds at least one independent row, so there are at most n - 1, and the last
    level's x is the nucleolus (checked again by `_checked`)."""
    game = _Game.of(n, exact)
    free = np.ones(len(game.masks), dtype=bool)
    span = _Span(n)
    span.add(np.ones(n))
    found = _Levels(x=[exact[-1]] + [Fraction(0)] * (n - 1), equalities=[((1 << n) - 1, -1)])
    while span.rank < n:
        level = len(found.levels)
        eps, found.x, priced = _level_lp(game, np.flatnonzero(free), found)
        if not len(priced):  # pragma: no cover - a level's prices add up to 1
            raise GameError("the nucleolus LP gave no tight coalition")
        found.levels.append(eps)
        free[priced] = False
        for r in priced:
            found.fixed.append((int(game.masks[r]), level))
            if span.add(game.member[r]):
                found.equalities.append((int(game.masks[r]), level))
        rows = np.flatnonzero(free)
        determined = rows[span.residual(game.member[rows]) <= 1e-6]
        free[determined] = False
        found.dropped.extend((int(game.masks[r]), level) for r in determined)
    _checked(game, found.x, found)
    return found.x


def _level_lp(game: _Game, rows: np.ndarray, found: _Levels) -> tuple[Fraction, list[Fraction], np.ndarray]:
    """One level: HiGHS' optimal basis, certified exactly; if HiGHS' tolerances (1e-7 of the largest value)
    left it short of the exact optimum, the level is solved again exactly (`_exact_level`)."""
    active = _highs_basis(game, rows, found)
    certified = None if active is None else _certified(game, rows, active, found)
    return certified if certified is not None else _exact_level(game, rows, found)


def _highs_basis(game: _Game, rows: np.ndarray, found: _Levels) -> np.ndarray | None:
    """The free rows active in HiGHS' optimal basis of max e subject to x(S) - e >= v(S) for the free S and
    the equalities (built as arrays, solved by the simplex: a vertex). None if a column is not basic (the
    vertex is not defined by rows alone)."""
    import highspy

    from negotiation.matching import quiet_highs

    n = game.n
    eq = np.array([[m >> i & 1 for i in range(n)] + [0] for m, _ in found.equalities], dtype=np.float64)
    eq_rhs = np.array([float(game.rhs(m, lv, found) / game.top) for m, lv in found.equalities])
    a = np.vstack([eq, np.hstack([game.member[rows], -np.ones((len(rows), 1))])])
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n + 1, len(a)
    lp.sense_ = highspy.ObjSense.kMaximize
    lp.col_cost_ = np.r_[np.zeros(n), 1.0]
    lp.col_lower_, lp.col_upper_ = np.full(n + 1, -highspy.kHighsInf), np.full(n + 1, highspy.kHighsInf)
    lp.row_lower_ = np.r_[eq_rhs, game.scaled[game.masks[rows]]]
    lp.row_upper_ = np.r_[eq_rhs, np.full(len(rows), highspy.kHighsInf)]
    r, c = np.nonzero(a)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = np.searchsorted(r, np.arange(len(a) + 1)).astype(np.int32)
    lp.a_matrix_.index_ = c.astype(np.int32)
    lp.a_matrix_.value_ = a[r, c]
    h = quiet_highs()
    h.setOptionValue("solver", "simplex")
    h.setOptionValue("threads", 1)
    h.passModel(lp)
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise GameError(f"the nucleolus LP has no optimum ({h.modelStatusToString(h.getModelStatus())})")
    basis = h.getBasis()
    if any(status != highspy.HighsBasisStatus.kBasic for status in basis.col_status):
        return None
    nonbasic = np.array([status != highspy.HighsBasisStatus.kBasic for status in basis.row_status], dtype=bool)
    active: np.ndarray = rows[nonbasic[len(eq) :]]
    return active


def _certified(
    game: _Game, rows: np.ndarray, active: np.ndarray, found: _Levels
) -> tuple[Fraction, list[Fraction], np.ndarray] | None:
    """The basis' vertex and dual prices, exactly: (e, x, the active rows with a positive price) if the
    vertex satisfies every free row and every price is >= 0 (then e is the level's optimum and a row with a
    positive price is tight at every optimum), else None."""
    n = game.n
    system = [([m >> i & 1 for i in range(n)] + [0], game.rhs(m, lv, found)) for m, lv in found.equalities]
    system += [([int(m) >> i & 1 for i in range(n)] + [-1], game.exact[int(m)]) for m in game.masks[active]]
    if len(system) != n + 1:
        return None
    z = _solve_square([r for r, _ in system], [b for _, b in system])
    w = _solve_square([[r[i] for r, _ in system] for i in range(n + 1)], [Fraction(0)] * n + [Fraction(1)])
    if z is None or w is None:
        return None
    prices = np.array([-p for p in w[len(found.equalities) :]], dtype=object)
    x, eps = z[:n], z[n]
    excess, scale = _excess_table(game, x, [eps])
    if (prices < 0).any() or (excess[game.masks[rows]] < int(eps * scale)).any():
        return None
    return eps, x, active[prices > 0]


def _exact_level(game: _Game, rows: np.ndarray, found: _Levels) -> tuple[Fraction, list[Fraction], np.ndarray]:
    """The level's LP solved in Fractions (when HiGHS' basis is not exactly optimal: values whose structure
    lies below 1e-7 of the largest). A vertex is reached from the previous level's x, which meets every
    equality, with e its least excess over the free rows; then the primal simplex over the rows of that
    vertex, Bland's rule (the smallest row index leaves, the smallest enters on ties), so it ends."""
    n = game.n
    constraints = [([m >> i & 1 for i in range(n)] + [0], game.rhs(m, lv, found)) for m, lv in found.equalities]
    first_free = len(constraints)
    masks = game.masks[rows]
    constraints += [([int(m) >> i & 1 for i in range(n)] + [-1], game.exact[int(m)]) for m in masks]
    excess, scale = _excess_table(game, found.x, [])
    z = [*found.x, Fraction(int(excess[masks].min()), scale)]
    basis = _vertex(game, constraints, first_free, masks, z)
    while True:
        matrix = [constraints[i][0] for i in basis]
        w = _solve_square([[r[k] for r in matrix] for k in range(n + 1)], [Fraction(0)] * n + [Fraction(1)])
        if w is None:  # pragma: no cover - a basis is nonsingular by construction
            raise GameError("the nucleolus LP's exact basis is singular")
        leaving = [k for k, i in enumerate(basis) if i >= first_free and w[k] > 0]
        if not leaving:
            priced = np.array([basis[k] - first_free for k in range(n + 1) if basis[k] >= first_free and w[k] < 0])
            return z[n], z[:n], rows[priced.astype(np.int64)]
        k = min(leaving, key=lambda k: basis[k])
        d = _solve_square(matrix, [Fraction(int(j == k)) for j in range(n + 1)])
        assert d is not None
        step = _ratio(game, constraints, first_free, masks, z, d, basis)
        if step is None:  # pragma: no cover - the excesses of S and N minus S add up to a constant
            raise GameError("the nucleolus LP is unbounded")
        t, entering = step
        z = [a + t * b for a, b in zip(z, d, strict=True)]
        basis[k] = entering


def _vertex(
    game: _Game, constraints: list[tuple[list[int], Fraction]], first_free: int, masks: np.ndarray, z: list[Fraction]
) -> list[int]:
    """From the feasible point z, moves (changing z in place) to a vertex with no lower e: along directions
    that keep the active rows active, until n + 1 independent rows are active. Returns their indices."""
    n = game.n
    span = _Span(n + 1)
    basis = []
    for i in range(len(constraints)):
        row, rhs = constraints[i]
        if _dot(row, z) == rhs and span.add(np.array(row, dtype=np.float64)):
            basis.append(i)
    while len(basis) < n + 1:
        d = _null_direction([constraints[i][0] for i in basis], n + 1)
        d = d if d[n] >= 0 else [-v for v in d]
        step = _ratio(game, constraints, first_free, masks, z, d, basis)
        if step is None:
            d = [-v for v in d]
            step = _ratio(game, constraints, first_free, masks, z, d, basis)
        if step is None:  # pragma: no cover - no line lies in the feasible set
            raise GameError("the nucleolus LP has a line of solutions")
        t, entering = step
        z[:] = [a + t * b for a, b in zip(z, d, strict=True)]
        basis.append(entering)
    return basis


def _dot(row: list[int], z: Sequence[Fraction]) -> Fraction:
    return sum((Fraction(a) * b for a, b in zip(row, z, strict=True) if a), Fraction(0))


def _null_direction(matrix: list[list[int]], width: int) -> list[Fraction]:
    """A nonzero d with row . d = 0 for every row (fewer independent rows than `width`), exactly."""
    rows = [[Fraction(c) for c in row] for row in matrix]
    pivots = _row_reduce(rows, width)
    free = next(c for c in range(width) if c not in pivots)
    d = [Fraction(0)] * width
    d[free] = Fraction(1)
    for col, r in pivots.items():
        d[col] = -rows[r][free]
    return d


def _ratio(
    game: _Game,
    constraints: list[tuple[list[int], Fraction]],
    first_free: int,
    masks: np.ndarray,
    z: list[Fraction],
    d: list[Fraction],
    basis: list[int],
) -> tuple[Fraction, int] | None:
    """How far z can move along d before a free row outside `basis` becomes active, and that row (the
    smallest index on ties); None if no row stops it. Every row's a.z and a.d at once, in integers."""
    n = game.n
    excess, scale = _excess_table(game, z[:n], [z[n]])
    slack = excess[masks] - int(z[n] * scale)  # scale x (a.z - b) for the free rows
    direction_scale = math.lcm(*(v.denominator for v in d))
    moved = _int_array([0] * (1 << n), _INT64_SAFE)
    moved[1 << np.arange(n)] = [int(v * direction_scale) for v in d[:n]]
    rate = _subset_sums(moved, n)[masks] - int(d[n] * direction_scale)  # direction_scale x a.d
    blocking = [p for p in np.flatnonzero(rate < 0).tolist() if first_free + p not in basis]
    if not blocking:
        return None
    ratios = {p: Fraction(int(slack[p]) * direction_scale, -int(rate[p]) * scale) for p in blocking}
    best = min(ratios.values())
    return best, first_free + min(p for p, r in ratios.items() if r == best)


def _solve_square(matrix: list[list[int]], rhs: list[Fraction]) -> list[Fraction] | None:
    """The solution of a square system, exactly; None if singular."""
    rows = [[Fraction(c) for c in row] + [b] for row, b in zip(matrix, rhs, strict=True)]
    pivots = _row_reduce(rows, len(matrix))
    if len(pivots) < len(matrix):
        return None
    return [rows[pivots[c]][-1] for c in range(len(matrix))]


def _excess_table(game: _Game, x: Sequence[Fraction], extra: Sequence[Fraction]) -> tuple[np.ndarray, int]:
    """(L x (x(S) - v(S)) for every mask S, L), in integers, with L a common denominator of x, v and `extra`."""
    scale = math.lcm(*(f.denominator for f in [*x, *game.exact, *extra]))
    values = [int(v * scale) for v in game.exact]
    shares = [int(v * scale) for v in x]
    bound = max(map(abs, values)) + sum(map(abs, shares))
    got = _int_array([0] * (1 << game.n), bound)
    got[1 << np.arange(game.n)] = shares
    return _subset_sums(got, game.n) - _int_array(values, bound), scale


def _checked(game: _Game, x: list[Fraction], found: _Levels) -> None:
    """Refuses the solution (GameError) unless, exactly: every coalition fixed at a level has that level's
    excess, every coalition dropped after a level has at least that excess, and the levels do not decrease
    (so the least excess of all is the first level's). Each level was certified on its own; this checks
    that they fit together."""
    excess, scale = _excess_table(game, x, found.levels)
    levels = np.array([int(v * scale) for v in found.levels], dtype=object)
    fixed = np.array(found.fixed, dtype=np.int64).reshape(-1, 2)
    dropped = np.array(found.dropped, dtype=np.int64).reshape(-1, 2)
    ok = bool((excess[fixed[:, 0]] == levels[fixed[:, 1]]).all())
    ok &= bool((excess[dropped[:, 0]] >= levels[dropped[:, 1]]).all())
    if not ok or not all(a <= b for a, b in itertools.pairwise(found.levels)):
        raise GameError("the nucleolus LP's classification does not hold exactly")


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
