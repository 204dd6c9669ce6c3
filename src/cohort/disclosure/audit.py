"""The audit by linear programming: the range that an attacker who solves every published
relation can give each hidden or sensitive count."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from cohort.disclosure.register import Register
from cohort.disclosure.settings import Key


def audit(
    reg: Register,
    hidden: set[Key],
    sensitive: set[Key],
    min_cell: int,
    cache: dict[frozenset, dict[Key, list[Key]]] | None = None,
    reach: dict[Key, tuple[float, float]] | None = None,
    targets: set[Key] | None = None,
) -> dict[Key, list[Key]]:
    """Hidden and sensitive counts that the published counts and the relations pin to one value,
    or (for a count below min_cell) prove to be below min_cell, by linear programming; each with
    the published counts of the relations that bind it (the candidates to hide next).
    Components of unknowns linked by relations are solved on their own, and a component already
    solved with the same unknowns (`cache`) is not solved again."""
    from scipy.optimize import linprog  # only rule publish needs it

    cache = {} if cache is None else cache
    reach = {} if reach is None else reach

    def known(k: Key) -> bool:
        return k in reg.published and k not in hidden

    parent: dict[Key, Key] = {}

    def find(k: Key) -> Key:
        parent.setdefault(k, k)
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    relevant = []
    for parts, total in reg.equations:
        unknown = [k for k in (*parts, total) if not known(k)]
        if unknown:
            relevant.append((parts, total, unknown))
            root = find(unknown[0])
            for k in unknown[1:]:
                parent[find(k)] = root
    targets_of: dict[Key, list[Key]] = defaultdict(list)
    for k in {*hidden, *sensitive} if targets is None else targets:
        if k in parent and k in reg.values:
            targets_of[find(k)].append(k)
    components: dict[Key, list[int]] = defaultdict(list)
    for e, (_, _, unknown) in enumerate(relevant):
        components[find(unknown[0])].append(e)
    exposed: dict[Key, list[Key]] = {}
    for root, equations in components.items():
        wanted = sorted(targets_of.get(root, []), key=str)
        if not wanted:
            continue
        variables = sorted({k for e in equations for k in relevant[e][2]}, key=str)
        signature = frozenset(variables)
        if signature not in cache:
            cache[signature] = _solve_component(
                reg, relevant, equations, variables, wanted, known, min_cell, linprog, reach
            )
        exposed.update(cache[signature])
    return exposed


def _nearest_published(k: Key, relevant, equations, visible_of, reg) -> list[Key]:
    """The published counts nearest to k through the relations (those of k's own relations,
    else of its unknown neighbours', ...): where a degenerate LP names no binding relation."""
    seen, frontier = {k}, {k}
    while frontier:
        rows = [r for r, e in enumerate(equations) if frontier & set(relevant[e][2])]
        found = [v for r in rows for v in visible_of[r] if v not in reg.fixed]
        if found:
            return found
        frontier = {u for r in rows for u in relevant[equations[r]][2]} - seen
        seen |= frontier
    return []


def _solve_component(reg, relevant, equations, variables, wanted, known, min_cell, linprog, reach):
    """Bounds of each wanted count of one component by linear programming. A count is settled
    by any feasible point that takes it high enough (and, for a count of min_cell or more, low
    enough). `reach` keeps, per count, the lowest and highest value of every feasible point
    found so far: hiding more cells only widens the feasible set, so they stay feasible (rule
    `suppression_pattern` clears it when it publishes a hidden cell again), and an LP is solved
    only for counts they do not settle. Counts are bounded by twice the largest count (a count
    that can reach that can reach min_cell)."""
    index, a, b, visible_of, cap = _component_system(
        reg, relevant, equations, variables, known, min_cell
    )
    options = {"A_eq": a, "b_eq": b, "bounds": (0, cap), "method": "highs"}

    def record(x: np.ndarray) -> None:
        for key, value in zip(variables, x, strict=True):
            low, high = reach.get(key, (math.inf, -math.inf))
            reach[key] = (min(low, value), max(high, value))

    def need_high(k: Key) -> float:
        return min_cell if reg.values[k] < min_cell else reg.values[k] + 0.5

    def high_enough(k: Key) -> bool:
        return reach.get(k, (math.inf, -math.inf))[1] >= need_high(k) - 1e-6

    def low_enough(k: Key) -> bool:
        value = reg.values[k]
        return value < min_cell or reach.get(k, (math.inf, -math.inf))[0] <= value - 0.5 + 1e-6

    def solve(c: np.ndarray):
        res = linprog(c, **options)
        if res.status == 0:
            record(res.x)
        return res

    # First the points furthest up (then down) for all unsettled counts at once, again for those
    # still unsettled while that settles any; one LP per count only for the rest.
    for sign, enough in ((-1.0, high_enough), (1.0, low_enough)):
        pending = [k for k in wanted if not enough(k)]
        while pending:
            c = np.zeros(len(variables))
            c[[index[k] for k in pending]] = sign
            if solve(c).status == 2:
                return {}  # infeasible only through the rounding of implied shares
            still = [k for k in pending if not enough(k)]
            if len(still) == len(pending):
                break
            pending = still
    unsettled = [k for k in wanted if not (high_enough(k) and low_enough(k))]
    exposed: dict[Key, list[Key]] = {}
    for k in unsettled:
        j = index[k]
        binding = []
        if not high_enough(k):
            c = np.zeros(len(variables))
            c[j] = -1.0
            high = solve(c)
            if high.status != 0:
                continue
            if not high_enough(k):
                binding.append(high)
        if not binding and not low_enough(k):
            c = np.zeros(len(variables))
            c[j] = 1.0
            low = solve(c)
            if low.status != 0 or low_enough(k):
                continue
            binding.append(low)
        if not binding:
            continue
        rows = {r for res in binding for r, m in enumerate(res.eqlin.marginals) if abs(m) > 1e-9}
        candidates = [v for r in sorted(rows) for v in visible_of[r] if v not in reg.fixed]
        exposed[k] = candidates or _nearest_published(k, relevant, equations, visible_of, reg)
    return exposed


def _component_system(reg, relevant, equations, variables, known, min_cell):
    """The attacker's equations of one component as `a x = b` over its unknown counts (known
    counts moved to the right), the known counts of each equation, and the counts' upper bound
    (twice the largest count: a count that can reach that can reach min_cell)."""
    from scipy.sparse import csr_array

    index = {k: j for j, k in enumerate(variables)}
    rows, cols, signs = [], [], []
    b = np.zeros(len(equations))
    visible_of: list[list[Key]] = []
    for row, e in enumerate(equations):
        parts, total, _ = relevant[e]
        visible_of.append([k for k in (*parts, total) if known(k)])
        for k, sign in [*((p, 1.0) for p in parts), (total, -1.0)]:
            if known(k):
                b[row] -= sign * reg.values[k]
            else:
                rows.append(row), cols.append(index[k]), signs.append(sign)
    # Sparse: a component's relations touch few of its counts, and a dense matrix is converted
    # again by every one of the component's LPs (most of rule publish's time on small cohorts).
    a = csr_array((signs, (rows, cols)), shape=(len(equations), len(variables)))
    cap = 2.0 * max([*reg.values.values(), min_cell]) + min_cell
    return index, a, b, visible_of, cap
