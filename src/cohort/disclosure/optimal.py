"""Secondary suppression of least information loss: the pattern that hides the cheapest set of
counts under which no hidden or sensitive count can be recovered, or shown to be below min_cell,
from every published count and relation (the problem tau-Argus's OPT and sdcTable solve).

The model (a mixed-integer program, solved by HiGHS through `scipy.optimize.milp`, which is
already a dependency; no solver of our own):
- one binary y_k per count of the register: 1 when the attacker does not know it. Published
  counts cost their weight (`loss_weight`) when hidden; counts no table prints (implied) cost
  nothing; N is always known; every count below min_cell is unknown (y = 1).
- no relation may have exactly one unknown: for each relation and each count c in it,
  y_c <= sum of the other counts' y. Then the unknowns are closed under solving one relation
  at a time, so a count with y = 1 is truly unknown (an implied count the attacker could derive
  gets y = 0, which only makes the others' constraints harder: never unsafe).
- a small count c that is a part of a relation whose total is known can reach at most its
  value plus the other unknown parts': they must add up to min_cell (a necessary condition).
- what the attacker gets by solving many relations at once is left to the audit (linear
  programming, `cohort.disclosure.audit`): each count it still pins below min_cell comes back
  with the published counts of the relations that bind it (the rows of non-zero dual value of
  its LP); as long as none of those is hidden, the same dual solution still proves the same
  bound, so "hide at least one of them" is a valid cut. The program is solved again with the
  cuts until the audit finds nothing (row generation, as in Fischetti & Salazar-Gonzalez,
  Management Science 1999;45:1107 and Math Programming 2001;91:283).
Every pattern the program rejects is unsafe, so the final pattern is of least loss among the
safe ones (for the register's relations and the weights), to HiGHS's optimality gap.

A pattern solved to optimality is kept (`cohort.core.cache`) under the content of the register
and the settings: a rerun of rule publish whose counts did not change (an edit of a model, a
label, a confidence level) takes it instead of solving again (about 8 s of HiGHS on the default
study); the same register and settings give the same program, so the same pattern.

Limits: a time limit (`disclosure.time_limit`, seconds, for all rounds together); when it is
reached without a safe pattern, or HiGHS fails, the greedy pattern of
`cohort.disclosure.pattern` runs instead and the report says so and why.
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict

import numpy as np

from cohort.core.cache import OutputCache, content_key, package_version
from cohort.disclosure.audit import audit
from cohort.disclosure.pattern import Pattern, suppression_pattern
from cohort.disclosure.register import Register
from cohort.disclosure.settings import N_KEY, DisclosureSettings, Key

CACHE_SLOT = "suppression_pattern"

MAX_ROUNDS = 200  # of cuts after an audit
# Relative optimality gaps asked of HiGHS: loose while the audit still finds cuts (each round's
# pattern is only a step), tight for the last round, whose pattern is published (its own
# default is 1e-4). Measured on the default study: 20 s with the tight gap in every round,
# 7 s with the loose one, and the same pattern.
SEARCH_GAP = 1e-2
FINAL_GAP = 1e-6

# What hiding a count costs, per table cell it is printed in, by what the count is (the key's
# first part; for the responder breakdowns, the part too). The numbers a study exists to
# publish cost most: the flow's stage totals, the headline responders and their denominators,
# Table 2's levels and valid n; missing, could-not-improve and the threshold curve's points
# cost least. Anything not named costs DEFAULT_WEIGHT.
DEFAULT_WEIGHT = 5
DISTINCT_COST = 100  # every count hidden, wherever printed
FAMILY_WEIGHT: dict[str, int] = {
    "flow": 100,  # stage totals (an exclusion: see loss_weight)
    "measured both": 50,  # the responder rates' denominators
    "count": 50,  # Table 2's levels
    "valid": 50,  # Table 2's valid n
    "measured": 30,  # outcomes measured at an occasion
    "model": 50,  # a model's N and events
    "mixed model": 50,
    "missing": 1,
    "not measured": 1,
    "reaching": 2,  # the threshold curve (its figure's data)
}
RESPONDER_PART_WEIGHT: dict[str, int] = {
    "responders": 100,  # the headline
    "denominator": 50,
    "measured": 50,
    "non_responders": 10,
    "unchanged": 5,
    "deteriorated": 5,
    "could_not_improve": 1,
    "missing": 1,
}
PART_FAMILIES = {"responders of": 1.0, "responders in level": 0.1, "responders in arm": 0.5}
PART_FAMILIES["responders under"] = 0.1  # other definitions of clinical significance


def loss_weight(key: Key, cells: int) -> float:
    """The cost of hiding `key`, printed in `cells` table cells."""
    family = str(key[0])
    if family in PART_FAMILIES:
        weight = max(
            1.0, RESPONDER_PART_WEIGHT.get(str(key[-1]), DEFAULT_WEIGHT) * PART_FAMILIES[family]
        )
    elif family == "flow" and len(key) > 2:  # an exclusion, not a stage total
        weight = DEFAULT_WEIGHT
    else:
        weight = FAMILY_WEIGHT.get(family, DEFAULT_WEIGHT)
    return DISTINCT_COST + float(weight) * max(1, cells)


def least_cost_pattern(
    reg: Register, settings: DisclosureSettings, cache: OutputCache | None = None
) -> Pattern:
    """The protective pattern of least loss (see the module docstring); the greedy pattern,
    with the reason, where the program cannot give one in time. A `cache` gives the pattern
    solved before for the same register and settings, and keeps a new one solved to optimality."""
    key = register_key(reg, settings) if cache is not None else ""
    kept = cache.get(CACHE_SLOT, key) if cache is not None else None
    if kept is not None:
        return pattern_from_bytes(kept[0], reg)
    pattern = _least_cost_pattern(reg, settings)
    if cache is not None and pattern.method == "optimal" and "time left" not in pattern.detail:
        cache.put(CACHE_SLOT, key, [pattern_bytes(pattern)])
    return pattern


def register_key(reg: Register, settings: DisclosureSettings) -> str:
    """The content key of the program: every field of the register the solve reads (values,
    relations, published and fixed counts, the cells each count is printed in), the settings
    and the package's code."""

    def listed(keys) -> str:
        return "\n".join(sorted(map(repr, keys)))

    cells = sorted(f"{table}|{row}|{column}|{k!r}" for table, rows in reg.cells.items() for row, column, k in rows)  # fmt: skip
    return content_key(
        package_version(),
        repr(settings),
        "\n".join(sorted(f"{k!r}={v}" for k, v in reg.values.items())),
        "\n".join(repr(e) for e in reg.equations),
        listed(reg.published),
        listed(reg.fixed),
        "\n".join(cells),
        "\n".join(sorted(f"{k!r}:{sorted(t)}" for k, t in reg.tables_of.items())),
    )


def pattern_bytes(pattern: Pattern) -> bytes:
    """A pattern as JSON (keys by their repr), for the cache."""
    return json.dumps(
        {
            "hidden": sorted([repr(k), why] for k, why in pattern.hidden.items()),
            "unprotectable": [repr(k) for k in pattern.unprotectable],
            "method": pattern.method,
            "detail": pattern.detail,
        }
    ).encode()


def pattern_from_bytes(data: bytes, reg: Register) -> Pattern:
    """`pattern_bytes` read back, each key the register's own."""
    by_repr = {repr(k): k for k in {*reg.values, *reg.published}}
    record = json.loads(data)
    return Pattern(
        {by_repr[k]: why for k, why in record["hidden"]},
        [by_repr[k] for k in record["unprotectable"]],
        method=record["method"],
        detail=record["detail"],
    )


def _least_cost_pattern(reg: Register, settings: DisclosureSettings) -> Pattern:
    """`least_cost_pattern` solved."""
    started = time.perf_counter()
    if reg.values[N_KEY] < settings.min_cell:
        return suppression_pattern(reg, settings)
    keys, index, lower, upper, cost, rows, small = _program(reg, settings)
    sensitive = {k for k in small if k not in reg.published}
    cuts = 0
    note = ""
    gap = SEARCH_GAP
    for round_number in range(1, MAX_ROUNDS + 1):
        left = settings.time_limit - (time.perf_counter() - started)
        if left <= 0:
            note = f"the time limit of {settings.time_limit:g} s was reached after {round_number - 1} rounds"
            break
        res = _solve(cost, rows, len(keys), lower, upper, left, gap)
        if res.x is None:
            note = f"HiGHS found no pattern ({res.message.strip()})"
            break
        y = np.round(res.x)
        hidden = {k for k in reg.published if k not in reg.fixed and y[index[k]] == 1}
        targets = sensitive | (hidden & small)
        exposed = audit(reg, hidden, sensitive, settings.min_cell, targets=targets)
        if not exposed and gap > FINAL_GAP:  # safe: solve once more to the tight gap
            gap = FINAL_GAP
            continue
        if not exposed:
            hidden = _publish_recoverable(reg, hidden, sensitive, targets, settings)
            gap = "" if res.status == 0 else f"; best found in the time left, {res.message.strip()}"
            return Pattern(
                {k: "primary" if k in small else "secondary" for k in hidden},
                method="optimal",
                detail=(
                    f"least loss by mixed-integer programming (HiGHS), {round_number} round(s), "
                    f"{cuts} cut(s) from the audit, loss {res.fun:g}{gap}"
                ),
            )
        for k, binding in exposed.items():
            candidates = [
                j
                for j in dict.fromkeys(binding)
                if j in reg.published and j not in hidden and j not in reg.fixed
            ]
            if not candidates:
                note = f"{k} cannot be protected by hiding another published count"
                break
            rows.append({index[k]: 1.0, **{index[j]: -1.0 for j in candidates}})
            cuts += 1
        if note:
            break
    else:
        note = f"no safe pattern after {MAX_ROUNDS} rounds"
    fallback = suppression_pattern(reg, settings)
    return Pattern(
        fallback.hidden,
        fallback.unprotectable,
        method="greedy",
        detail=f"greedy suppression (the fallback: {note})",
    )


def _program(
    reg: Register, settings: DisclosureSettings
) -> tuple[
    list[Key], dict[Key, int], np.ndarray, np.ndarray, np.ndarray, list[dict[int, float]], set[Key]
]:
    """The mixed-integer program of the module docstring: the counts (`keys`, `index`), their
    bounds (N known, small counts unknown), their costs, the rows of `A y <= 0` (no relation
    with a lone unknown; a small part's room within a known total) and the small counts."""
    keys = sorted(
        {*reg.values, *(k for parts, total in reg.equations for k in (*parts, total))}, key=str
    )
    index = {k: j for j, k in enumerate(keys)}
    cells_of: dict[Key, int] = defaultdict(int)
    for cells in reg.cells.values():
        for _, _, key in cells:
            cells_of[key] += 1
    lower, upper, cost = np.zeros(len(keys)), np.ones(len(keys)), np.zeros(len(keys))
    small = {k for k, v in reg.values.items() if k not in reg.fixed and settings.small(v)}
    for k, j in index.items():
        if k in reg.fixed:
            upper[j] = 0
        elif k in small:
            lower[j] = 1
        if k in reg.published and k not in reg.fixed:
            cost[j] = loss_weight(k, cells_of[k])
    rows: list[dict[int, float]] = []
    for parts, total in reg.equations:
        members = [k for k in dict.fromkeys((*parts, total)) if k not in reg.fixed]
        for c in members:  # no relation with a lone unknown
            rows.append({index[c]: 1.0, **{index[k]: -1.0 for k in members if k != c}})
        for c in dict.fromkeys(parts):  # a small part's room within a known total
            if c not in small or c == total:
                continue
            need = float(settings.min_cell - reg.values[c])
            row = {index[c]: need}
            for k in dict.fromkeys((*parts, total)):
                if k == c or k in reg.fixed:
                    continue
                value = reg.values.get(k, settings.min_cell) if k != total else math.inf
                if value > 0:
                    row[index[k]] = row.get(index[k], 0.0) - min(float(value), need)
            rows.append(row)
    return keys, index, lower, upper, cost, rows, small


def _solve(
    cost: np.ndarray,
    rows: list[dict[int, float]],
    n: int,
    lower: np.ndarray,
    upper: np.ndarray,
    time_limit: float,
    gap: float,
):
    """One round: HiGHS on the binary program with the rows (and cuts) so far."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import csr_array

    data, r, c = [], [], []
    for i, row in enumerate(rows):
        for j, value in row.items():
            r.append(i), c.append(j), data.append(value)
    a = csr_array((data, (r, c)), shape=(len(rows), n))
    return milp(
        cost,
        integrality=np.ones(n),
        bounds=Bounds(lower, upper),
        constraints=LinearConstraint(a, -np.inf, 0.0),
        options={"time_limit": time_limit, "mip_rel_gap": gap, "disp": False},
    )


def _publish_recoverable(
    reg: Register,
    hidden: set[Key],
    sensitive: set[Key],
    targets: set[Key],
    settings: DisclosureSettings,
) -> set[Key]:
    """Hidden counts beyond the small ones that the attacker can bound on one side or pin: each
    is published again where that leaves every small count protected (a pinned count always
    does: it is known already), so that no published marker claims to hide a known value."""
    secondaries = hidden - targets
    loose = audit(reg, hidden, sensitive, settings.min_cell, targets=secondaries)
    hidden = set(hidden)
    for key in sorted(loose, key=str):
        trial = hidden - {key}
        if not audit(reg, trial, sensitive, settings.min_cell, targets=targets):
            hidden = trial
    return hidden
