"""Money in a statement: exact shares rounded to minor units that still add up (and stay in the core when
the exact shares are), and net positions settled by few payments (docs/settlement.md, sections 3 to 5).
Integers in, integers out: money is never a float (the core repair's MIP only proposes integer moves, which
are checked exactly)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from settlement.games import MAX_ENUMERATED, ConsortiumGame


@dataclass(frozen=True, order=True)
class Payment:
    payer: str
    payee: str
    amount: int


def largest_remainder(exact: Mapping[str, Fraction | int], total: int) -> dict[str, int]:
    """Whole minor units for exact shares that sum to `total`: each gets the floor of its share, and the units
    left go one each to the largest fractional parts (ties: the smaller address first). Requires
    sum(exact) == total."""
    if sum(Fraction(v) for v in exact.values()) != total:
        raise ValueError(f"shares add up to {sum(Fraction(v) for v in exact.values())}, not {total}")
    floors = {k: math.floor(Fraction(v)) for k, v in exact.items()}
    left = total - sum(floors.values())
    by_remainder = sorted(exact, key=lambda k: (-(Fraction(exact[k]) - floors[k]), k.lower()))
    for k in by_remainder[:left]:
        floors[k] += 1
    return floors


def rounded_in_core(game: ConsortiumGame, exact: Mapping[str, Fraction | int], total: int) -> dict[str, int]:
    """Whole minor units for exact shares that sum to `total`, kept in the core when the exact shares are in it.

    The rule, for the members of `game` and of `exact` (a member of the game missing from `exact` has an
    exact share of 0):

    1. r = `largest_remainder(exact, total)`.
    2. r is the answer when there are more than MAX_ENUMERATED members (no coalition is enumerated), when r
       is in the core (no proper coalition S with v(S) > r(S)), or when the exact shares are not in the
       core themselves (the method chose a split outside it; rounding is not the place to change that).
    3. Otherwise r is repaired: among the integer allocations y with y(N) = total and y(S) >= v(S) for every
       proper coalition S, those that move the fewest units away from r (smallest sum over members of
       |y_i - r_i|) are kept; among them, the one where the members, taken in the largest remainder's order
       (largest fractional part of the exact share first, ties to the lower-case smaller address), each
       receive as much as possible in turn (the lexicographically greatest y in that order). That y is
       unique. If no integer allocation is in the core, r is the answer.

    Step 3 is solved by a sequence of small integer programs (HiGHS), one per criterion, each over the
    coalitions found violated so far and repeated until the solution is checked exactly against every
    coalition; every objective is an integer, so every member computes the same y."""
    exact = {**dict.fromkeys(game.members, 0), **exact}
    rounded = largest_remainder(exact, total)
    whole = game if set(exact) <= set(game.members) else ConsortiumGame(list(game.plans), others=tuple(exact))
    n = len(whole.members)
    if n < 2 or n > MAX_ENUMERATED or whole.core_check(rounded).in_core or not whole.core_check(exact).in_core:
        return rounded
    floors = {k: math.floor(Fraction(v)) for k, v in exact.items()}
    order = sorted(exact, key=lambda k: (-(Fraction(exact[k]) - floors[k]), k.lower()))
    repaired = _CoreRepair(whole, rounded).solve(order)
    return repaired if repaired is not None else rounded


@dataclass
class _CoreRepair:
    """Step 3 of `rounded_in_core`: integer moves z from the rounding r (y = r + z), sum z = 0, each
    criterion an integer program over the coalitions found violated so far (`pool`)."""

    game: ConsortiumGame
    rounded: dict[str, int]
    pool: list[int] = field(default_factory=list)
    members: tuple[str, ...] = ()
    needed: np.ndarray = field(default_factory=lambda: np.zeros(0))  # v(S) - r(S) by mask
    checked: tuple[int, ...] | None = None  # the last z checked against every coalition

    def __post_init__(self) -> None:
        self.members = self.game.members
        self.needed = self.game.deficit_table(self.rounded)[0]

    def solve(self, order: Sequence[str]) -> dict[str, int] | None:
        """Fewest units moved, then each member in `order` as much as possible; None: no integer core point
        (or one the integer programs could not confirm: then every member keeps the largest remainder)."""
        fixed: dict[int, int] = {}
        first = self._optimum(None, fixed)
        if first is None:
            return None
        moved, z = first
        for member in order[:-1]:  # the last one gets what the sum leaves
            i = self.members.index(member)
            best = self._optimum((moved, i), fixed)
            if best is None:  # pragma: no cover - the previous solution is feasible
                return None
            fixed[i], z = best
        return {m: self.rounded[m] + z[i] for i, m in enumerate(self.members)}

    def _optimum(self, stage: tuple[int, int] | None, fixed: Mapping[int, int]) -> tuple[int, tuple[int, ...]] | None:
        """The optimum of one criterion and its solution, every coalition satisfied: units moved (stage None)
        or, with the units moved fixed at stage[0], member stage[1]'s move maximised. None: infeasible."""
        while True:
            z = _repair_mip(len(self.members), self.pool, self.needed, stage, fixed)
            if z is None:
                return None
            if z != self.checked:
                y = {m: self.rounded[m] + z[i] for i, m in enumerate(self.members)}
                deficits = self.game.deficit_table(y)[0]
                violated = np.flatnonzero(deficits[1:-1] > 0) + 1
                if len(violated):
                    # The most violated first (then the smaller coalition, then the smaller mask): a few a round.
                    worst = sorted(violated.tolist(), key=lambda m: (-int(deficits[m]), m.bit_count(), m))[:64]
                    if set(worst) <= set(self.pool):  # pragma: no cover - the MIP's rows hold in integers
                        return None
                    self.pool.extend(m for m in worst if m not in self.pool)
                    continue
                self.checked = z
            return (sum(map(abs, z)) if stage is None else z[stage[1]]), z


def _repair_mip(
    n: int, pool: Sequence[int], needed: np.ndarray, stage: tuple[int, int] | None, fixed: Mapping[int, int]
) -> tuple[int, ...] | None:
    """Columns z (integer), p, q >= 0 with z = p - q; rows: sum z = 0, z(S) >= needed[S] for S in the pool,
    and in a later stage sum(p + q) = units moved and z_j fixed. Minimise sum(p + q), or maximise z_i."""
    import highspy

    from negotiation.matching import quiet_highs

    inf = highspy.kHighsInf
    rows: list[tuple[dict[int, float], float, float]] = [({i: 1.0 for i in range(n)}, 0.0, 0.0)]
    rows += [({i: 1.0, n + i: -1.0, 2 * n + i: 1.0}, 0.0, 0.0) for i in range(n)]
    rows += [({i: 1.0 for i in range(n) if s >> i & 1}, float(needed[s]), inf) for s in pool]
    rows += [({i: 1.0}, float(v), float(v)) for i, v in fixed.items()]
    cost = np.r_[np.zeros(n), np.ones(2 * n)]
    if stage is not None:
        rows.append(({j: 1.0 for j in range(n, 3 * n)}, float(stage[0]), float(stage[0])))
        cost = np.zeros(3 * n)
        cost[stage[1]] = -1.0
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = 3 * n, len(rows)
    lp.col_cost_ = cost
    lp.col_lower_ = np.r_[np.full(n, -inf), np.zeros(2 * n)]
    lp.col_upper_ = np.full(3 * n, inf)
    lp.row_lower_ = np.array([lo for _, lo, _ in rows])
    lp.row_upper_ = np.array([up for _, _, up in rows])
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = np.cumsum([0] + [len(r) for r, _, _ in rows]).astype(np.int32)
    lp.a_matrix_.index_ = np.array([c for r, _, _ in rows for c in r], dtype=np.int32)
    lp.a_matrix_.value_ = np.array([v for r, _, _ in rows for v in r.values()])
    lp.integrality_ = [highspy.HighsVarType.kInteger] * n + [highspy.HighsVarType.kContinuous] * (2 * n)
    h = quiet_highs()
    for option, value in (("threads", 1), ("random_seed", 0), ("mip_rel_gap", 0.0), ("mip_abs_gap", 0.0)):
        h.setOptionValue(option, value)
    h.passModel(lp)
    h.run()
    status = h.getModelStatus()
    if status == highspy.HighsModelStatus.kInfeasible:
        return None
    if status != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(f"the core repair's integer program ended {h.modelStatusToString(status)}")
    return tuple(int(v) for v in np.rint(np.asarray(h.getSolution().col_value[:n])))


def net_positions(flows: Iterable[Payment]) -> dict[str, int]:
    """What each party receives (positive) or pays (negative) once every flow is counted; sums to 0."""
    net: dict[str, int] = {}
    for f in flows:
        if f.amount < 0:
            raise ValueError(f"a flow from {f.payer} to {f.payee} is negative: {f.amount}")
        net[f.payer] = net.get(f.payer, 0) - f.amount
        net[f.payee] = net.get(f.payee, 0) + f.amount
    return net


def settle(net: Mapping[str, int]) -> list[Payment]:
    """Payments that bring every net position to 0: the largest debtor pays the largest creditor, repeatedly
    (ties: the smaller address first). At most (parties - 1) payments; deterministic."""
    if sum(net.values()) != 0:
        raise ValueError(f"net positions add up to {sum(net.values())}, not 0")
    owes = {k: -v for k, v in net.items() if v < 0}
    owed = {k: v for k, v in net.items() if v > 0}
    payments = []
    while owes:
        payer = min(owes, key=lambda k: (-owes[k], k.lower()))
        payee = min(owed, key=lambda k: (-owed[k], k.lower()))
        amount = min(owes[payer], owed[payee])
        payments.append(Payment(payer, payee, amount))
        for book, party in ((owes, payer), (owed, payee)):
            book[party] -= amount
            if book[party] == 0:
                del book[party]
    return payments
