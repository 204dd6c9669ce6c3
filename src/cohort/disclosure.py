"""Disclosure control of everything published in results/: one suppression pattern over the
counts of all tables at once, so that no hidden cell can be recovered from any combination of
published cells, in any table.

How it works (rule `publish`, `protect_tables`):
1. **One register of counts.** Each table's rule (`TABLE_RULES`) names the counts it publishes
   by a key that identifies the count itself, not its place: the responders at discharge are one
   key whether `responders.csv`, `responders_vs_paper.csv`, `missing_data_sensitivity.csv` or the
   threshold sweep prints them. The rule also states the linear relations between counts
   (responders + non-responders + could-not-improve = measured; measured + missing = N; the
   levels of a subgroup add up to the whole; flow stages minus exclusions; ...), including counts
   that are not published but implied (e.g. N minus those who received a category).
2. **Primary suppression**: a published count below `min_cell` (and zero, where zeros are
   declared disclosive) is hidden; an implied count below `min_cell` is sensitive too.
3. **Secondary suppression across tables**: wherever a relation would leave a hidden or
   sensitive count as its only unknown, one more count of that relation is hidden (not a zero if
   it can be helped, then one outside the headline tables, then the one that leaves the fewest
   new lone unknowns, then the smallest), until no relation has a lone unknown.
4. **Audit by linear programming** (scipy's HiGHS): for every hidden or sensitive count, the
   smallest and largest value consistent with every published count and relation. Where a cell
   is pinned to one value, or a small cell provably below `min_cell`, a count of the relations
   that bind it is hidden and the audit repeats; a hidden cell that is derivable anyway is
   published again; as a last resort every count related to what is still exposed is hidden,
   and what is still exposed then stops publish. A study of fewer than `min_cell` patients hides
   every count. (tests/disclosure_attack.py is an independent attacker on the published files.)
5. **Everything computed from a hidden count or a small group is hidden with it**: percentages,
   CIs, p-values, means, SDs, medians, quartiles; model estimates of a model with fewer than
   `min_cell` patients or events or fewer than 10 residual degrees of freedom. Min and max are
   single patients' values: dropped unless `disclosure.allow_min_max` is true.
6. **Honest markers**: `<5` (a count below min_cell), `[c]` (hidden so that another cell cannot
   be recovered, or computed from such a cell), `[s]` (a statistic of fewer than min_cell
   patients, or computed from a count below min_cell).
7. Optional **rounding** of every published count to a base (as OpenSAFELY does), with the
   percentages and Wilson CIs recomputed from the rounded counts.

Why not ACRO (PyPI `acro`, the output checker of trusted research environments): it checks one
output at a time as the analyst makes it (wrapping pandas crosstabs and statsmodels fits), with
primary suppression per table; it has no model of the relations between tables, which is what
leaked here (a count hidden in one table recovered from two others). Its per-output rules for
counts and models (threshold, zeros, residual degrees of freedom) are applied here too; its
dominance rule for magnitude tables is not (results/disclosure_report.md asks a checker to look).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from cohort.errors import CohortError
from cohort.responders import wilson_interval
from cohort.settings import PRIMARY as PRIMARY_DEFINITION
from cohort.settings import McidRule

Key = tuple
N_KEY: Key = ("analysis set",)
SECONDARY = "[c]"
SMALL_GROUP = "[s]"
MIN_RESIDUAL_DF = 10  # models with fewer residual degrees of freedom are not published (ACRO)


MAX_AUDIT_ROUNDS = 200  # of hiding more after an audit; what is still exposed then stops publish


class DisclosureError(CohortError):
    """A table cannot be published safely (no rule, or a count no suppression can protect)."""


@dataclass(frozen=True)
class DisclosureSettings:
    """The config section `disclosure`: threshold, rounding base, zeros, min/max."""

    min_cell: int = 5
    rounding: int | None = None
    zeros_disclosive: bool = False
    allow_min_max: bool = False

    @classmethod
    def from_config(cls, section: dict[str, Any]) -> DisclosureSettings:
        return cls(
            min_cell=int(section["min_cell"]),
            rounding=section.get("rounding"),
            zeros_disclosive=bool(section.get("zeros_disclosive", False)),
            allow_min_max=bool(section.get("allow_min_max", False)),
        )

    @property
    def primary(self) -> str:
        return f"<{self.min_cell}"

    def small(self, value: float) -> bool:
        """A count that is disclosive by itself."""
        return (0 < value < self.min_cell) or (self.zeros_disclosive and value == 0)

    def footer(self) -> str:
        """The footer line every protected output carries."""
        rounding = (
            f" Counts rounded to the nearest {self.rounding}, percentages and CIs recomputed from the rounded counts."
            if self.rounding
            else ""
        )
        zeros = " Zero counts are treated as disclosive." if self.zeros_disclosive else ""
        minmax = (
            " Min and max are published by the study's explicit choice (disclosure.allow_min_max): each is one patient's value."
            if self.allow_min_max
            else ""
        )
        return (
            f"Disclosure control (min_cell = {self.min_cell}): {self.primary} = a count below {self.min_cell}; "
            f"{SECONDARY} = hidden so that another hidden cell cannot be recovered from the published "
            f"tables, or computed from such a cell; {SMALL_GROUP} = a statistic of fewer than "
            f"{self.min_cell} patients, or computed from a count below {self.min_cell}.{rounding}{zeros}{minmax}"
        )


@dataclass(frozen=True)
class Context:
    """What the table rules need to know about the study to name and relate its counts."""

    n_analysis: int
    handling: str = "non_responder"  # could-not-improve patients: non_responder or exclude
    mcid: dict[str, McidRule] = field(default_factory=dict)  # outcome -> its MCID rule
    shown_level: dict[str, str] = field(default_factory=dict)  # Table 2 rows of one level
    occasions: tuple[str, ...] = ()
    confidence_level: float = 0.95
    disclosure: DisclosureSettings | None = None  # set by protect_tables


@dataclass
class Register:
    """Every count of the tables to publish, by key, with the linear relations between them."""

    values: dict[Key, int] = field(default_factory=dict)
    cells: dict[str, list[tuple[int, str, Key]]] = field(default_factory=lambda: defaultdict(list))
    equations: list[tuple[tuple[Key, ...], Key]] = field(default_factory=list)
    published: set[Key] = field(default_factory=set)
    fixed: set[Key] = field(default_factory=set)  # never suppressed (the analysis set N)
    origin: dict[Key, str] = field(default_factory=dict)
    tables_of: dict[Key, set[str]] = field(default_factory=lambda: defaultdict(set))

    def value(self, key: Key, value: Any, where: str) -> bool:
        """Record a count (False if it is missing); the same key must carry the same value."""
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return False
        try:
            number = float(value)
        except (TypeError, ValueError):
            return False
        if not math.isfinite(number):
            return False
        count = int(round(number))
        if key in self.values and self.values[key] != count:
            raise AssertionError(
                f"disclosure: {key} is {self.values[key]} in {self.origin[key]} but {count} in {where}"
            )
        self.values.setdefault(key, count)
        self.origin.setdefault(key, where)
        return True

    def cell(self, table: str, row: int, column: str, key: Key, value: Any) -> None:
        """A count published in `table` at (row, column)."""
        if self.value(key, value, f"{table}.csv row {row + 1}, column {column}"):
            self.cells[table].append((row, column, key))
            self.published.add(key)
            self.tables_of[key].add(table)

    def implied(self, key: Key, value: Any) -> None:
        """A count not published but implied by the relations (its value, where known)."""
        self.value(key, value, "implied")

    def equation(self, parts: Iterable[Key], total: Key) -> None:
        """sum(parts) == total."""
        self.equations.append((tuple(parts), total))


# --- Table rules: which counts a table publishes and how they relate -----------------------------
Builder = Callable[[pd.DataFrame, str, Register, Context], None]


@dataclass(frozen=True)
class TableRule:
    """How one published table is protected. `describe` says it in words (disclosure report)."""

    describe: str
    counts: Builder | None = None
    derived: dict[str, tuple[str, ...]] = field(default_factory=dict)  # column -> its counts
    group_stats: dict[str, tuple[str, ...]] = field(default_factory=dict)  # group n -> its stats
    rates: tuple[tuple[str, str, str, str | None, str | None], ...] = ()  # pct, num, den, lo, hi
    min_max: tuple[str, ...] = ()  # single patients' values: dropped unless allowed
    finish: (
        Callable[
            [pd.DataFrame, pd.DataFrame, DisclosureSettings, Context],
            tuple[pd.DataFrame, dict[str, int]],
        ]
        | None
    ) = None


RESPONDER_COUNTS = ("responders", "non_responders", "could_not_improve", "missing")
# Where a reader looks first: their counts are hidden as secondary cells only when nothing else will do.
HEADLINE_TABLES = {"flow", "baseline", "responders", "responders_vs_paper"}
RATE_COLUMNS = ("pct", "ci_low_pct", "ci_high_pct")
AVAILABLE = "available cases"


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _breakdown(
    reg: Register,
    table: str,
    i: int,
    row: pd.Series,
    prefix: Key,
    measured: Key,
    total: Key,
    ctx: Context,
    n_column: str | None = "n",
    denominator: str = AVAILABLE,
    missing: Key | None = None,
) -> None:
    """Responders, non-responders, could-not-improve and missing of one population: the first
    three add up to those measured at start and at the occasion, and with missing to its total.
    `missing`: the key of the missing count where another table's is the same count."""
    keys = {part: (*prefix, part) for part in RESPONDER_COUNTS}
    if missing is not None:
        keys["missing"] = missing
    for part in RESPONDER_COUNTS:
        if part in row.index:
            reg.cell(table, i, part, keys[part], row[part])
    r, nr, cni = (_num(row.get(p)) for p in RESPONDER_COUNTS[:3])
    reg.implied(measured, r + nr + cni)
    reg.equation([keys["responders"], keys["non_responders"], keys["could_not_improve"]], measured)
    reg.equation([measured, keys["missing"]], total)
    if n_column is not None and n_column in row.index:
        reg.cell(
            table,
            i,
            n_column,
            _denominator_key(reg, prefix, measured, total, denominator, ctx),
            row[n_column],
        )


def _denominator_key(
    reg: Register, prefix: Key, measured: Key, total: Key, denominator: str, ctx: Context
) -> Key:
    """The key of a responder rate's denominator: measured (available cases) or the whole
    population, less the could-not-improve patients where they are left out."""
    base = measured if denominator == AVAILABLE else total
    if ctx.handling != "exclude":
        return base
    key = (*prefix, "denominator", denominator)
    reg.equation([key, (*prefix, "could_not_improve")], base)
    return key


def _flow(table: pd.DataFrame, name: str, reg: Register, ctx: Context) -> None:
    """Stages minus the exclusions after them give the next stage; after the analysis set, each
    occasion's assessed and not assessed add up to the analysis set."""
    current: Key | None = None
    pending: list[Key] = []
    assessed: dict[str, Key] = {}
    for i, row in table.reset_index(drop=True).iterrows():
        kind, key_name = row["kind"], str(row["key"])
        if kind == "stage":
            key = N_KEY if key_name == "analysis_set" else ("flow", key_name)
            reg.cell(name, i, "n", key, row["n"])
            if key_name.startswith("assessed_"):
                assessed[key_name.removeprefix("assessed_")] = key
                continue
            if current is not None:
                reg.equation([*pending, key], current)
            current, pending = key, []
        else:
            key = ("flow", key_name, str(row["label"]))
            reg.cell(name, i, "n", key, row["n"])
            occasion = key_name.removeprefix("missing_")
            if key_name.startswith("missing_") and occasion in assessed:
                reg.equation([assessed[occasion], key], N_KEY)
            else:
                pending.append(key)


def _outcome_variable(variable: str, ctx: Context) -> tuple[str, str] | None:
    """(outcome, occasion) when a variable is an outcome at an occasion (e.g. pain_start)."""
    for outcome in ctx.mcid:
        for occasion in ctx.occasions:
            if variable == f"{outcome}_{occasion}":
                return outcome, occasion
    return None


def _valid_keys(variable: str, ctx: Context) -> tuple[Key, Key]:
    """(valid, missing) keys of a variable in the analysis set; outcomes share them with the
    outcome tables."""
    pair = _outcome_variable(variable, ctx)
    if pair:
        return ("measured", *pair), ("not measured", *pair)
    return ("valid", variable), ("missing", variable)


def _baseline(table: pd.DataFrame, name: str, reg: Register, ctx: Context) -> None:
    """Table 2: levels add up to the valid n (or, for one shown level, with the rest); valid and
    missing add up to N."""
    table = table.reset_index(drop=True)
    for variable, rows in table.groupby("variable", sort=False):
        valid, missing = _valid_keys(str(variable), ctx)
        first = rows.index[0]
        reg.implied(missing, ctx.n_analysis - _num(rows["valid_n"].iat[0]))
        reg.equation([valid, missing], N_KEY)
        levels = []
        for i, row in rows.iterrows():
            reg.cell(name, i, "valid_n", valid, row["valid_n"])
            reg.cell(name, i, "n", N_KEY, row["n"])
            if math.isfinite(_num(row.get("count"))):
                level = ctx.shown_level.get(str(variable), row["level"])
                key = ("count", str(variable), str(level))
                reg.cell(name, i, "count", key, row["count"])
                levels.append(key)
        if len(levels) == 1:
            rest = ("count rest", str(variable))
            reg.implied(rest, _num(rows["valid_n"].iat[0]) - _num(rows.loc[first, "count"]))
            reg.equation([levels[0], rest], valid)
        elif levels:
            reg.equation(levels, valid)


def _missingness(table: pd.DataFrame, name: str, reg: Register, ctx: Context) -> None:
    """Missing counts per variable and occasion (missing + valid = N); assessed vs lost: valid
    counts of each group, and each level's share as the count it implies."""
    table = table.reset_index(drop=True)
    miss = table[table["section"] == "missing"]
    for i, row in miss.iterrows():
        variable, occasion = str(row["variable"]), str(row["occasion"])
        if variable in ctx.mcid:
            valid, missing = ("measured", variable, occasion), ("not measured", variable, occasion)
        else:
            valid, missing = _valid_keys(variable, ctx)
        reg.cell(name, i, "missing", missing, row["missing"])
        reg.cell(name, i, "N", N_KEY, row["N"])
        reg.implied(valid, ctx.n_analysis - _num(row["missing"]))
        reg.equation([valid, missing], N_KEY)
    lost = table[table["section"] != "missing"]
    for (occasion, variable), rows in lost.groupby(["occasion", "variable"], sort=False):
        valid, _ = _valid_keys(str(variable), ctx)
        groups = {}
        for group, flow_key in (
            ("completers", f"assessed_{occasion}"),
            ("lost", f"missing_{occasion}"),
        ):
            key = ("valid in group", str(variable), str(occasion), group)
            for i in rows.index:
                reg.cell(name, i, f"{group}_n", key, rows.loc[i, f"{group}_n"])
            groups[group] = key
            rest = ("missing in group", str(variable), str(occasion), group)
            whole = (
                ("flow", flow_key)
                if group == "completers"
                else ("flow", flow_key, _missing_label(occasion, reg))
            )
            if whole in reg.values:
                reg.implied(rest, reg.values[whole] - _num(rows[f"{group}_n"].iat[0]))
                reg.equation([key, rest], whole)
        reg.equation([groups["completers"], groups["lost"]], valid)
        if (rows["statistic"] == "%").all():
            parts: dict[str, list[Key]] = {"completers": [], "lost": []}
            for i, row in rows.iterrows():
                level = str(row["level"])
                for group in parts:
                    key = ("level in group", str(variable), str(occasion), level, group)
                    reg.cell(name, i, group, key, _num(row[group]) * _num(row[f"{group}_n"]) / 100)
                    parts[group].append(key)
                reg.equation(
                    [("level in group", str(variable), str(occasion), level, g) for g in parts],
                    ("count", str(variable), level),
                )
            for group, keys in parts.items():
                reg.equation(keys, groups[group])


def _missing_label(occasion: str, reg: Register) -> str:
    """The label of the flow's 'not assessed at <occasion>' row, as the flow registered it."""
    for key in reg.values:
        if len(key) == 3 and key[0] == "flow" and key[1] == f"missing_{occasion}":
            return key[2]
    return ""


def _outcomes(table: pd.DataFrame, name: str, reg: Register, ctx: Context) -> None:
    """n measured per occasion (with the unmeasured, N), pairs measured at start and at the
    occasion, non-zero changes among them, complete cases over all occasions."""
    for i, row in table.reset_index(drop=True).iterrows():
        outcome = str(row["outcome"])
        if row["section"] == "level":
            key = ("measured", outcome, str(row["occasion"]))
            reg.cell(name, i, "n", key, row["n"])
            reg.cell(name, i, "N", N_KEY, row["N"])
            missing = ("not measured", outcome, str(row["occasion"]))
            reg.implied(missing, _num(row["N"]) - _num(row["n"]))
            reg.equation([key, missing], N_KEY)
        elif row["section"] == "change":
            pairs = ("measured both", outcome, str(row["occasion"]))
            reg.cell(name, i, "pairs_n", pairs, row["pairs_n"])
            if "N" in row.index:
                reg.cell(name, i, "N", N_KEY, row["N"])
            nonzero = ("non-zero change", outcome, str(row["occasion"]))
            reg.cell(name, i, "wilcoxon_n_nonzero", nonzero, row.get("wilcoxon_n_nonzero"))
            zero = ("zero change", outcome, str(row["occasion"]))
            reg.implied(zero, _num(row["pairs_n"]) - _num(row.get("wilcoxon_n_nonzero")))
            reg.equation([nonzero, zero], pairs)
        else:
            reg.cell(
                name,
                i,
                "complete_cases_n",
                ("measured at all occasions", outcome),
                row["complete_cases_n"],
            )


def _responders(table: pd.DataFrame, name: str, reg: Register, ctx: Context) -> None:
    for i, row in table.reset_index(drop=True).iterrows():
        outcome, occasion = str(row["outcome"]), str(row["occasion"])
        reg.cell(name, i, "N", N_KEY, row["N"])
        _breakdown(
            reg, name, i, row, ("responders of", outcome, occasion),
            ("measured both", outcome, occasion), N_KEY, ctx, "n", str(row["denominator"]),
        )  # fmt: skip


def _rate_cells(
    reg: Register, name: str, i: int, row: pd.Series, denominator: str, ctx: Context
) -> None:
    """A responder rate's count and denominator: those of responders.csv for the outcome and
    occasion of the row."""
    outcome, occasion = str(row["outcome"]), str(row["occasion"])
    prefix = ("responders of", outcome, occasion)
    reg.cell(name, i, "responders", (*prefix, "responders"), row["responders"])
    key = _denominator_key(
        reg, prefix, ("measured both", outcome, occasion), N_KEY, denominator, ctx
    )
    reg.cell(name, i, "n", key, row["n"])


def _versus_paper(table: pd.DataFrame, name: str, reg: Register, ctx: Context) -> None:
    """The same responders and available-case n as responders.csv."""
    for i, row in table.reset_index(drop=True).iterrows():
        _rate_cells(reg, name, i, row, AVAILABLE, ctx)


def _sensitivity(table: pd.DataFrame, name: str, reg: Register, ctx: Context) -> None:
    """Complete case and non-responder imputation: the responders and denominators of
    responders.csv; multiple imputation: N."""
    for i, row in table.reset_index(drop=True).iterrows():
        if row["analysis"] == "multiple imputation":
            if ctx.handling != "exclude":
                reg.cell(name, i, "n", N_KEY, row["n"])
            continue
        denominator = AVAILABLE if row["analysis"] == "complete case" else "all"
        _rate_cells(reg, name, i, row, denominator, ctx)


def _subgroups(table: pd.DataFrame, name: str, reg: Register, ctx: Context) -> None:
    """Each level's breakdown (as responders.csv); the levels of a variable add up to the whole,
    part by part, and their sizes to N (the sizes are Table 2's counts)."""
    table = table.reset_index(drop=True)
    parts_of: dict[tuple, dict[str, list[Key]]] = defaultdict(lambda: defaultdict(list))
    sizes: dict[str, dict[Key, None]] = defaultdict(dict)
    for i, row in table.iterrows():
        variable, level = str(row["subgroup"]), str(row["level"])
        outcome, occasion = str(row["outcome"]), str(row["occasion"])
        # The '(missing)' level is Table 2's and missingness.csv's count of missing values.
        size = _valid_keys(variable, ctx)[1] if level == "(missing)" else ("count", variable, level)
        reg.cell(name, i, "patients_in_level", size, row["patients_in_level"])
        sizes[variable][size] = None
        prefix = ("responders in level", variable, level, outcome, occasion)
        measured = (*prefix, "measured")
        _breakdown(reg, name, i, row, prefix, measured, size, ctx, "n", AVAILABLE)
        whole = parts_of[(variable, outcome, occasion)]
        for part in RESPONDER_COUNTS:
            whole[part].append((*prefix, part))
        whole["measured"].append(measured)
    for (_, outcome, occasion), whole in parts_of.items():
        _sum_to_responder_totals(reg, outcome, occasion, whole)
    for keys in sizes.values():
        reg.equation(list(keys), N_KEY)


def _course(table: pd.DataFrame, name: str, reg: Register, ctx: Context) -> None:
    """Sustained, lost, late and never add up to n; n and those not classified at both
    occasions add up to N."""
    for i, row in table.reset_index(drop=True).iterrows():
        prefix = ("course", str(row["outcome"]), str(row["occasions"]))
        for c in COURSE_PARTS:
            reg.cell(name, i, c, (*prefix, c), row[c])
        reg.cell(name, i, "n", (*prefix, "n"), row["n"])
        reg.cell(name, i, "N", N_KEY, row["N"])
        reg.cell(
            name,
            i,
            "not_classified_at_both",
            (*prefix, "not classified"),
            row["not_classified_at_both"],
        )
        reg.equation([(*prefix, c) for c in COURSE_PARTS], (*prefix, "n"))
        reg.equation([(*prefix, "n"), (*prefix, "not classified")], N_KEY)


def _directions(table: pd.DataFrame, name: str, reg: Register, ctx: Context) -> None:
    """Improved is responders.csv's responders, could-not-improve and missing its counts;
    unchanged and deteriorated add up to its non-responders; n is its available denominator."""
    for i, row in table.reset_index(drop=True).iterrows():
        outcome, occasion = str(row["outcome"]), str(row["occasion"])
        prefix = ("responders of", outcome, occasion)
        reg.cell(name, i, "N", N_KEY, row["N"])
        for column, part in (
            ("improved", "responders"),
            ("could_not_improve", "could_not_improve"),
            ("missing", "missing"),
            ("unchanged", "unchanged"),
            ("deteriorated", "deteriorated"),
        ):
            reg.cell(name, i, column, (*prefix, part), row[column])
        non_responders = (*prefix, "non_responders")
        reg.implied(non_responders, _num(row["unchanged"]) + _num(row["deteriorated"]))
        reg.equation([(*prefix, "unchanged"), (*prefix, "deteriorated")], non_responders)
        measured = ("measured both", outcome, occasion)
        reg.implied(measured, sum(_num(row[c]) for c in (*DIRECTION_PARTS, "could_not_improve")))
        reg.equation(
            [(*prefix, "responders"), non_responders, (*prefix, "could_not_improve")], measured
        )
        reg.equation([measured, (*prefix, "missing")], N_KEY)
        reg.cell(
            name, i, "n", _denominator_key(reg, prefix, measured, N_KEY, AVAILABLE, ctx), row["n"]
        )


def _definition_prefix(definition: str, outcome: str, occasion: str) -> Key:
    """The responder counts of a definition of clinical significance: under the primary one
    (mcid), those of responders.csv."""
    if definition == PRIMARY_DEFINITION:
        return ("responders of", outcome, occasion)
    return ("responders under", definition, outcome, occasion)


def _significance_definitions(table: pd.DataFrame, name: str, reg: Register, ctx: Context) -> None:
    """The start values' n (outcomes.csv's n at the first occasion) and the anchor's groups:
    improved and not improved add up to the patients with the anchor, the 'a little better'
    level and the rest too."""
    for i, row in table.reset_index(drop=True).iterrows():
        outcome = str(row["outcome"])
        if ctx.occasions:
            reg.cell(
                name, i, "baseline_n", ("measured", outcome, ctx.occasions[0]), row["baseline_n"]
            )
        occasion = row.get("anchor_occasion")
        if not isinstance(occasion, str) or not occasion:
            continue
        prefix = ("anchor", outcome, occasion)
        reg.cell(name, i, "anchor_n", (*prefix, "n"), row["anchor_n"])
        for column, part, rest in (
            ("anchor_improved_n", "improved", "not improved"),
            ("anchor_minimal_n", "a little better", "not a little better"),
        ):
            reg.cell(name, i, column, (*prefix, part), row[column])
            if part == "improved":
                reg.cell(
                    name, i, "anchor_not_improved_n", (*prefix, rest), row["anchor_not_improved_n"]
                )
            else:
                reg.implied((*prefix, rest), _num(row["anchor_n"]) - _num(row[column]))
            reg.equation([(*prefix, part), (*prefix, rest)], (*prefix, "n"))
        measured = ("measured both", outcome, occasion)
        if measured in reg.values:
            reg.implied((*prefix, "without"), reg.values[measured] - _num(row["anchor_n"]))
            reg.equation([(*prefix, "n"), (*prefix, "without")], measured)


def _significance_rates(table: pd.DataFrame, name: str, reg: Register, ctx: Context) -> None:
    """Each definition's responder breakdown (as responders.csv, whose counts the primary one
    shares): responders, non-responders and could-not-improve add up to the measured, with
    missing to N; multiple imputation: N."""
    for i, row in table.reset_index(drop=True).iterrows():
        outcome, occasion = str(row["outcome"]), str(row["occasion"])
        analysis = row["analysis"]
        if analysis == "multiple imputation":
            if ctx.handling != "exclude":
                reg.cell(name, i, "n", N_KEY, row["n"])
            reg.cell(name, i, "N", N_KEY, row["N"])
            continue
        if analysis not in (AVAILABLE, "all in analysis set, missing = non-responder"):
            reg.cell(name, i, "N", N_KEY, row["N"])
            continue  # a definition not defined for the outcome: no counts
        reg.cell(name, i, "N", N_KEY, row["N"])
        _breakdown(
            reg, name, i, row, _definition_prefix(str(row["definition"]), outcome, occasion),
            ("measured both", outcome, occasion), N_KEY, ctx, "n",
            AVAILABLE if analysis == AVAILABLE else "all",
            missing=("responders of", outcome, occasion, "missing"),  # whatever the definition
        )  # fmt: skip


AGREEMENT_CELLS = ("both", "first_only", "second_only", "neither")


def _significance_agreement(table: pd.DataFrame, name: str, reg: Register, ctx: Context) -> None:
    """n is the measured (responders.csv's); the four cells are published afterwards only where
    both definitions' responders and n are published and no cell is small
    (publish_agreement): they then relate only to published counts, and no hidden count can
    be recovered through them."""
    for i, row in table.reset_index(drop=True).iterrows():
        measured = ("measured both", str(row["outcome"]), str(row["occasion"]))
        reg.cell(name, i, "n", measured, row["n"])


def _sweep(table: pd.DataFrame, name: str, reg: Register, ctx: Context) -> None:
    """Patients reaching each threshold among those measured at start and occasion; the point at
    a one-part MCID is the responders count of responders.csv."""
    for i, row in table.reset_index(drop=True).iterrows():
        outcome, occasion, scale = str(row["outcome"]), str(row["occasion"]), str(row["scale"])
        measured = ("measured both", outcome, occasion)
        if scale == "percent":  # a percent of the start value: starts of 0 are left out
            base = ("percent base", outcome, occasion)
            zero = ("start of zero", outcome, occasion)
            if base not in reg.values and measured in reg.values:
                reg.implied(zero, reg.values[measured] - _num(row["n"]))
                reg.equation([base, zero], measured)
            measured = base
        reg.cell(name, i, "n", measured, row["n"])
        key: Key = ("reaching", outcome, occasion, scale, float(row["threshold"]))
        mcid = ctx.mcid.get(outcome)
        other = "percent" if scale == "absolute" else "absolute"
        threshold = getattr(mcid, scale) if mcid else None
        responders = ("responders of", outcome, occasion, "responders")
        if (
            threshold is not None
            and getattr(mcid, other) is None
            and math.isclose(float(row["threshold"]), float(threshold), abs_tol=1e-9)
            and reg.values.get(responders) == int(_num(row["reaching"]))
        ):
            key = responders
        reg.cell(name, i, "reaching", key, row["reaching"])
        rest = ("not reaching", outcome, occasion, scale, float(row["threshold"]))
        reg.implied(rest, _num(row["n"]) - _num(row["reaching"]))
        reg.equation([key, rest], measured)


def _part_of_n(
    reg: Register, name: str, i: int, row: pd.Series, column: str, key: Key, rest: Key
) -> None:
    """A count of the analysis set printed beside N: with N, it implies the rest."""
    reg.cell(name, i, column, key, row[column])
    reg.cell(name, i, "N", N_KEY, row["N"])
    reg.implied(rest, _num(row["N"]) - _num(row[column]))
    reg.equation([key, rest], N_KEY)


def _interventions(table: pd.DataFrame, name: str, reg: Register, ctx: Context) -> None:
    for i, row in table.reset_index(drop=True).iterrows():
        code = str(row["code"])
        _part_of_n(reg, name, i, row, "patients_n", ("received", code), ("not received", code))


def _pair(a: str, b: str) -> Key:
    return ("received both", *sorted((a, b), key=lambda c: (len(c), c)))


def _cooccurrence(table: pd.DataFrame, name: str, reg: Register, ctx: Context) -> None:
    """Diagonal: who received the category (interventions.csv); off the diagonal: both, with
    the implied 'first but not the second'."""
    codes = [c for c in table.columns if c not in ("code", "category")]
    for i, row in table.reset_index(drop=True).iterrows():
        a = str(row["code"])
        for b in codes:
            key = ("received", a) if a == b else _pair(a, b)
            reg.cell(name, i, b, key, row[b])
            if a != b:
                rest = ("received first only", a, b)
                reg.implied(rest, _num(row[a]) - _num(row[b]) if a in row.index else math.nan)
                reg.equation([key, rest], ("received", a))


def _combinations(table: pd.DataFrame, name: str, reg: Register, ctx: Context) -> None:
    keys = []
    for i, row in table.reset_index(drop=True).iterrows():
        key = (
            "combination",
            str(row["codes"]) if str(row["codes"]) not in ("", "nan") else "other",
        )
        reg.cell(name, i, "n", key, row["n"])
        reg.cell(name, i, "N", N_KEY, row["N"])
        keys.append(key)
    reg.equation(keys, N_KEY)


def _dose(table: pd.DataFrame, name: str, reg: Register, ctx: Context) -> None:
    for i, row in table.reset_index(drop=True).iterrows():
        variable = str(row["variable"])
        _part_of_n(reg, name, i, row, "n", ("valid", variable), ("missing", variable))


def _predictors(table: pd.DataFrame, name: str, reg: Register, ctx: Context) -> None:
    """Patients and events of each model (with the implied non-events)."""
    for i, row in table.reset_index(drop=True).iterrows():
        model = ("model", str(row["outcome"]), str(row["occasion"]), str(row["analysis"]))
        if row["analysis"] == "multiple imputation":
            if ctx.handling != "exclude":
                reg.cell(name, i, "N", N_KEY, row["N"])
            continue
        reg.cell(name, i, "N", (*model, "N"), row["N"])
        reg.cell(name, i, "events", (*model, "events"), row["events"])
        reg.implied((*model, "non-events"), _num(row["N"]) - _num(row["events"]))
        reg.equation([(*model, "events"), (*model, "non-events")], (*model, "N"))


def _lmm(table: pd.DataFrame, name: str, reg: Register, ctx: Context) -> None:
    """Patients and observations of each mixed model; patients measured at each occasion."""
    for i, row in table.reset_index(drop=True).iterrows():
        model = ("mixed model", name, str(row["outcome"]))
        reg.cell(name, i, "patients", (*model, "patients"), row.get("patients"))
        reg.cell(name, i, "observations", (*model, "observations"), row.get("observations"))
        if "observed_n" in row.index and math.isfinite(_num(row["observed_n"])):
            group = str(row.get("group", "")) if "group" in row.index else ""
            reg.cell(
                name,
                i,
                "observed_n",
                (*model, "observed", str(row["occasion"]), group),
                row["observed_n"],
            )


def _group_outcomes(table: pd.DataFrame, name: str, reg: Register, ctx: Context) -> None:
    """n per arm and occasion: the arms add up to those measured at the occasion."""
    arms: dict[Key, list[Key]] = defaultdict(list)
    for i, row in table.reset_index(drop=True).iterrows():
        outcome, occasion = str(row["outcome"]), str(row["occasion"])
        key = ("measured in arm", str(row["group"]), outcome, occasion)
        reg.cell(name, i, "n", key, row["n"])
        arms[("measured", outcome, occasion)].append(key)
    for total, keys in arms.items():
        reg.equation(keys, total)


def _group_responders(table: pd.DataFrame, name: str, reg: Register, ctx: Context) -> None:
    """Each arm's breakdown (as responders.csv); the arms add up to the whole, part by part."""
    whole: dict[tuple, dict[str, list[Key]]] = defaultdict(lambda: defaultdict(list))
    for i, row in table.reset_index(drop=True).iterrows():
        arm, outcome, occasion = str(row["group"]), str(row["outcome"]), str(row["occasion"])
        size = ("arm size", arm)
        if "N" in row.index:
            reg.cell(name, i, "N", size, row["N"])
        prefix = ("responders in arm", arm, outcome, occasion)
        _breakdown(reg, name, i, row, prefix, (*prefix, "measured"), size, ctx, "n", AVAILABLE)
        for part in (*RESPONDER_COUNTS, "measured"):
            whole[(outcome, occasion)][part].append((*prefix, part))
    for (outcome, occasion), parts in whole.items():
        _sum_to_responder_totals(reg, outcome, occasion, parts)


def _sum_to_responder_totals(
    reg: Register, outcome: str, occasion: str, parts: dict[str, list[Key]]
) -> None:
    """The counts of the parts of a population (subgroup levels, arms) sum to its totals of
    measured patients and of each responder category (responders.csv's counts)."""
    for part, keys in parts.items():
        total = (
            ("measured both", outcome, occasion)
            if part == "measured"
            else ("responders of", outcome, occasion, part)
        )
        reg.equation(keys, total)


def _ancova(table: pd.DataFrame, name: str, reg: Register, ctx: Context) -> None:
    """ANCOVA rows: their N; Welch rows: the patients measured at both occasions in each group,
    which add up to the row's N."""
    for i, row in table.reset_index(drop=True).iterrows():
        outcome, occasion = str(row["outcome"]), str(row["occasion"])
        if str(row.get("analysis", "ANCOVA")) == "ANCOVA":
            reg.cell(name, i, "N", ("ancova", outcome, occasion), row["N"])
            continue
        group, reference = str(row["term"]).split(" vs ", 1)
        parts = [("change pairs", outcome, occasion, g) for g in (group, reference)]
        reg.cell(name, i, "n_group", parts[0], row["n_group"])
        reg.cell(name, i, "n_reference", parts[1], row["n_reference"])
        total = ("change pairs", outcome, occasion, group, reference)
        reg.cell(name, i, "N", total, row["N"])
        reg.equation(parts, total)


# --- Models: not published when too small (ACRO's rules) ----------------------------------------
def _suppress_models(
    out: pd.DataFrame,
    original: pd.DataFrame,
    by: list[str],
    reasons: Callable[[pd.DataFrame], str],
    estimates: Sequence[str],
) -> tuple[pd.DataFrame, int]:
    """Blank the estimates of every model (rows grouped by `by`) whose `reasons` are not empty,
    with the reason in column `disclosure`."""
    if original.empty:
        return out, 0
    out = out.copy()
    out["disclosure"] = ""
    hidden = 0
    for _, rows in original.groupby(by, sort=False, dropna=False):
        reason = reasons(rows)
        if not reason:
            continue
        hidden += 1
        for column in estimates:
            if column in out.columns:
                out[column] = out[column].astype(object)
                out.loc[rows.index, column] = SMALL_GROUP
        out.loc[rows.index, "disclosure"] = reason
    return out, hidden


def _small_levels(
    out: pd.DataFrame, original: pd.DataFrame, estimates: Sequence[str], min_cell: int
) -> tuple[pd.DataFrame, int]:
    """Terms comparing a level (or its reference) of fewer than min_cell patients: hidden."""
    if "level_n" not in original.columns:
        return out, 0
    small = pd.to_numeric(original["level_n"], errors="coerce") < min_cell
    small &= out["disclosure"].eq("") if "disclosure" in out.columns else True
    if not small.any():
        return out, 0
    out = out.copy()
    for column in [c for c in estimates if c in out.columns]:
        out[column] = out[column].astype(object)
        out.loc[small, column] = SMALL_GROUP
    out.loc[small, "disclosure"] = (
        f"not published: a level or its reference has fewer than {min_cell} patients"
    )
    out["level_n"] = out["level_n"].astype(object)
    out.loc[small, "level_n"] = f"<{min_cell}"
    return out, int(small.sum())


def _model_reasons(n: float, events: float | None, parameters: float, min_cell: int) -> str:
    reasons = []
    if not math.isfinite(n) or n < min_cell:
        reasons.append(f"fewer than {min_cell} patients")
    if (
        events is not None
        and math.isfinite(events)
        and (events < min_cell or n - events < min_cell)
    ):
        reasons.append(f"fewer than {min_cell} patients with or without the event")
    if math.isfinite(parameters) and math.isfinite(n) and n - parameters < MIN_RESIDUAL_DF:
        reasons.append(f"fewer than {MIN_RESIDUAL_DF} residual degrees of freedom")
    return "not published: " + "; ".join(reasons) if reasons else ""


PREDICTOR_ESTIMATES = (
    "log_or", "se", "odds_ratio", "ci_low", "ci_high", "p_value", "epv",
    "fmi", "lambda", "monte_carlo_se",
)  # fmt: skip


def _finish_predictors(out, original, settings, ctx):
    def reasons(rows: pd.DataFrame) -> str:
        first = rows.iloc[0]
        if first["analysis"] == "multiple imputation":
            return ""  # the complete-case model of the same outcome carries the check
        return _model_reasons(
            _num(first.get("N")),
            _num(first.get("events")),
            _num(first.get("parameters")),
            settings.min_cell,
        )

    out, models = _suppress_models(
        out, original, ["outcome", "occasion", "analysis"], reasons, PREDICTOR_ESTIMATES
    )
    out, terms = _small_levels(out, original, PREDICTOR_ESTIMATES, settings.min_cell)
    # What is not published of a complete-case model is not published of the pooled model of
    # the same outcome and occasion either (the same few events, the same small level).
    blocked = out[(out["analysis"] == "complete case") & (out["disclosure"] != "")]
    for _, b in blocked.iterrows():
        rows = (
            (out["outcome"] == b["outcome"])
            & (out["occasion"] == b["occasion"])
            & (out["analysis"] == "multiple imputation")
            & (
                out["term"] == b["term"]
                if b["disclosure"].startswith("not published: a level")
                else True
            )
        )
        for column in [c for c in PREDICTOR_ESTIMATES if c in out.columns]:
            out[column] = out[column].astype(object)
            out.loc[rows, column] = SMALL_GROUP
        out.loc[rows, "disclosure"] = "not published: as its complete-case model"
    return out, {"models not published": models, "terms of small levels not published": terms}


def _finish_lmm(out, original, settings, ctx):
    def reasons(rows: pd.DataFrame) -> str:
        fixed = rows[
            (rows.get("section", pd.Series("", index=rows.index)) != "estimated mean")
            & ~rows["term"].astype(str).str.startswith("variance")
        ]
        first = rows.iloc[0]
        return _model_reasons(_num(first.get("patients")), None, math.nan, settings.min_cell) or (
            _model_reasons(_num(first.get("observations")), None, len(fixed) + 2, settings.min_cell)
        )

    estimates = ["estimate", "se", "ci_low", "ci_high", "p_value", "estimated_mean", "df"]
    out, models = _suppress_models(out, original, ["outcome"], reasons, estimates)
    out, terms = _small_levels(out, original, estimates, settings.min_cell)
    return out, {"models not published": models, "terms of small levels not published": terms}


def _finish_ancova(out, original, settings, ctx):
    def reasons(rows: pd.DataFrame) -> str:
        first = rows.iloc[0]
        if str(first.get("analysis", "ANCOVA")) != "ANCOVA":  # Welch: each group's pairs
            smallest = min(_num(first.get("n_group")), _num(first.get("n_reference")))
            return _model_reasons(smallest, None, math.nan, settings.min_cell)
        parameters = 2 + len(str(first.get("adjusted_for", "")).split(", ")) + len(rows)
        return _model_reasons(_num(first.get("N")), None, parameters, settings.min_cell)

    if "analysis" in original.columns:  # one ANCOVA per outcome and occasion; one Welch per row
        welch = original["analysis"].astype(str) != "ANCOVA"
        model = original["analysis"].astype(str).where(~welch, original["term"].astype(str))
        original = original.assign(model=model)
    else:
        original = original.assign(model="ANCOVA")
    out, models = _suppress_models(
        out,
        original,
        ["outcome", "occasion", "model"],
        reasons,
        ["difference", "se", "df", "ci_low", "ci_high", "p_value"],
    )
    return out, {"models not published": models}


def _finish_baseline(out, original, settings, ctx):
    """'n (%)' text of a level whose percentage is hidden (its valid n is): 'n ([c])'."""
    out = out.copy()
    markers = [SECONDARY, SMALL_GROUP, settings.primary]
    rows = (
        out["pct"].isin(markers)
        & ~out["count"].isin(markers)
        & ~out["value"].isin(markers)  # a statistic of a small group stays hidden
        & original["count"].notna()
    )
    out["value"] = out["value"].astype(object)
    out.loc[rows, "value"] = [
        f"{int(float(k))} ({p})"
        for k, p in zip(out.loc[rows, "count"], out.loc[rows, "pct"], strict=True)
    ]
    return out, {}


def _finish_missingness(out, original, settings, ctx):
    """Assessed vs lost: the means of two groups and of both (Table 2) give each other, so a
    group below min_cell hides the statistics of both groups; SMD and p go with any hidden share."""
    out = out.copy()
    hidden = 0
    rows = original["section"] != "missing"
    stats = ["completers", "lost", "smd", "p_value"]
    for column in stats:
        out[column] = out[column].astype(object)
    for _, group in original[rows].groupby(["occasion", "variable"], sort=False):
        small = (
            group[["completers_n", "lost_n"]].apply(pd.to_numeric, errors="coerce")
            < settings.min_cell
        ).any(axis=None)
        if small:
            out.loc[group.index, stats] = SMALL_GROUP
            hidden += len(group)
            continue
        shares_hidden = (
            out.loc[group.index, ["completers", "lost"]]
            .isin([SECONDARY, SMALL_GROUP, settings.primary])
            .any(axis=None)
        )
        if shares_hidden:
            out.loc[group.index, ["smd", "p_value"]] = SECONDARY
    return out, {"rows of groups below min_cell": hidden}


def _finish_sweep(out, original, settings, ctx):
    """Published only at thresholds where the count reaching is shown and each step from the
    previous published threshold carries at least min_cell patients (or none); the rest of the
    curve's points are merged into their neighbours (left out)."""
    keep = pd.Series(False, index=out.index)
    reaching = pd.to_numeric(out["reaching"], errors="coerce")
    for _, rows in out.groupby(["outcome", "occasion", "scale"], sort=False):
        previous = None
        for i in rows.sort_values("threshold", kind="stable").index:
            value = reaching[i]
            if not math.isfinite(value):
                continue
            step = None if previous is None else previous - value
            if (
                step is None
                or step >= settings.min_cell
                or (step == 0 and not settings.zeros_disclosive)
            ):
                keep[i] = True
                previous = value
    return out[keep].reset_index(drop=True), {
        "thresholds merged into neighbours": int((~keep).sum())
    }


# Statistics computed from a whole group of patients, hidden when the group is below min_cell.
LEVEL_STATS = ("median", "q1", "q3", "mean", "sd")
CHANGE_STATS = (
    "median_change", "q1_change", "q3_change", "mean_change", "sd_change", "ci_low", "ci_high",
    "wilcoxon_statistic", "wilcoxon_p", "srm",
)  # fmt: skip
RESPONDER_RATE = {c: ("responders", "n") for c in RATE_COLUMNS}
DIRECTION_PARTS = ("improved", "unchanged", "deteriorated")
COURSE_PARTS = ("sustained", "lost", "late", "never")
DIRECTION_RATES = tuple(
    (f"{d}_pct", d, "n", f"{d}_ci_low_pct", f"{d}_ci_high_pct") for d in DIRECTION_PARTS
)
WILSON_RATE = (("pct", "responders", "n", "ci_low_pct", "ci_high_pct"),)  # recomputed if rounded

TABLE_RULES: dict[str, TableRule] = {
    "flow": TableRule(
        "STROBE flow: stage totals and exclusions (coded reasons only), related by stage - exclusions = next stage.",
        _flow,
    ),
    "baseline": TableRule(
        "Table 2: counts of levels with their valid n and N; statistics of variables with fewer than min_cell valid values hidden; min and max dropped unless allowed.",
        _baseline,
        derived={"pct": ("count", "valid_n"), "value": ("count",)},
        group_stats={"valid_n": (*LEVEL_STATS, "value")},
        rates=(("pct", "count", "valid_n", None, None),),
        min_max=("min", "max"),
        finish=_finish_baseline,
    ),
    "missingness": TableRule(
        "Missing values per variable and occasion; assessed vs lost: the shares as the counts they imply, the statistics of both groups hidden when one is below min_cell.",
        _missingness,
        derived={"pct": ("missing",)},
        rates=(("pct", "missing", "N", None, None),),
        finish=_finish_missingness,
    ),
    "outcomes": TableRule(
        "Each outcome per occasion: n measured, pairs, non-zero changes, complete cases; statistics of fewer than min_cell patients hidden.",
        _outcomes,
        derived={
            "wilcoxon_statistic": ("wilcoxon_n_nonzero",),
            "wilcoxon_p": ("wilcoxon_n_nonzero",),
        },
        group_stats={
            "n": LEVEL_STATS,
            "pairs_n": CHANGE_STATS,
            "complete_cases_n": ("statistic", "df", "p_value"),
        },
    ),
    "responders": TableRule(
        "Responders, non-responders, could-not-improve and missing add up to the measured and to N; the same counts as in responders_vs_paper, missing_data_sensitivity, the subgroups and the sweep.",
        _responders,
        derived=RESPONDER_RATE,
        rates=WILSON_RATE,
    ),
    "responders_vs_paper": TableRule(
        "The responders and available-case n of responders.csv, with the same suppression.",
        _versus_paper,
        derived={
            c: ("responders", "n")
            for c in ("this_run_pct", "ci_low_pct", "ci_high_pct", "paper_within_ci")
        },
        rates=(("this_run_pct", "responders", "n", "ci_low_pct", "ci_high_pct"),),
    ),
    "missing_data_sensitivity": TableRule(
        "Complete case and non-responder imputation: the counts of responders.csv with the same suppression; multiple imputation: estimates over N.",
        _sensitivity,
        derived=RESPONDER_RATE,
        rates=WILSON_RATE,
    ),
    "responder_subgroups": TableRule(
        "Each level's responder breakdown; levels add up to the whole (responders.csv) and their sizes to N (Table 2's counts).",
        _subgroups,
        derived=RESPONDER_RATE,
        rates=WILSON_RATE,
    ),
    "responder_course": TableRule(
        "Sustained, lost, late and never add up to n, and n with those not classified at both occasions to N; McNemar's p derives from lost and late.",
        _course,
        derived={
            **{f"{c}_{s}": (c, "n") for c in COURSE_PARTS for s in RATE_COLUMNS},
            "mcnemar_p": ("lost", "late"),
        },
        rates=tuple(
            (f"{c}_pct", c, "n", f"{c}_ci_low_pct", f"{c}_ci_high_pct") for c in COURSE_PARTS
        ),
    ),
    "responder_directions": TableRule(
        "Improved (the responders), unchanged and deteriorated, with could-not-improve and missing: the counts of responders.csv, non-responders split in two; shares of the responder population.",
        _directions,
        derived={
            **{f"{d}_{c}": (d, "n") for d in DIRECTION_PARTS for c in RATE_COLUMNS},
            "could_not_improve_pct": ("could_not_improve", "n"),
        },
        rates=(*DIRECTION_RATES, ("could_not_improve_pct", "could_not_improve", "n", None, None)),
    ),
    "threshold_sweep": TableRule(
        "Patients reaching each threshold among the measured (the point at a one-part MCID is the responders count); published only where each step carries at least min_cell patients.",
        _sweep,
        derived={c: ("reaching", "n") for c in RATE_COLUMNS},
        rates=(("pct", "reaching", "n", "ci_low_pct", "ci_high_pct"),),
        finish=_finish_sweep,
    ),
    "clinical_significance_definitions": TableRule(
        "Each definition's threshold with the start values' n (outcomes.csv) and the anchor's groups (adding up to the patients with the anchor); statistics of fewer than min_cell patients hidden.",
        _significance_definitions,
        group_stats={
            "baseline_n": (
                "baseline_mean",
                "baseline_sd",
                "sem",
                "s_diff",
                "cutoff",
                "threshold_absolute",
            ),
            "anchor_minimal_n": (
                "anchor_minimal_mean",
                "anchor_minimal_ci_low",
                "anchor_minimal_ci_high",
                "threshold_absolute",
            ),
            **{
                n: (
                    "auc",
                    "auc_ci_low",
                    "auc_ci_high",
                    "roc_cutoff",
                    "sensitivity",
                    "specificity",
                    "threshold_absolute",
                )
                for n in ("anchor_improved_n", "anchor_not_improved_n")
            },
        },
    ),
    "clinical_significance_rates": TableRule(
        "Each definition's responder breakdown, as responders.csv (the primary one's counts are its own), adding up to the measured and to N; multiple imputation: estimates over N.",
        _significance_rates,
        derived=RESPONDER_RATE,
        rates=WILSON_RATE,
    ),
    "clinical_significance_agreement": TableRule(
        "n is the measured; the four cells (adding up to n, and to each definition's responders) are published only where both definitions' responders and n are published and no cell is below min_cell, so that they relate to published counts only.",
        _significance_agreement,
        derived={
            "agreement_pct": ("both", "neither", "n"),
            **{c: AGREEMENT_CELLS for c in ("kappa", "kappa_ci_low", "kappa_ci_high")},
        },
    ),
    "interventions": TableRule(
        "Patients per category (with those who did not receive it, implied by N); session statistics of categories received by fewer than min_cell patients hidden.",
        _interventions,
        derived={"patients_pct": ("patients_n",), "patients": ("patients_n",)},
        group_stats={
            "patients_n": (
                "sessions_with_category_median",
                "sessions_with_category_q1",
                "sessions_with_category_q3",
                "sessions_with_category",
                "sessions_n",
                "share_of_sessions_pct",
            )
        },  # fmt: skip
        rates=(("patients_pct", "patients_n", "N", None, None),),
    ),
    "intervention_cooccurrence": TableRule(
        "Patients who received both categories (the diagonal: interventions.csv), with those who received one but not the other.",
        _cooccurrence,
    ),
    "intervention_combinations": TableRule(
        "Patients per set of categories; the sets (with the rest) add up to N.",
        _combinations,
        derived={"pct": ("n",)},
        rates=(("pct", "n", "N", None, None),),
    ),
    "dose": TableRule(
        "Sessions and programme months: statistics of fewer than min_cell patients hidden; min and max dropped unless allowed.",
        _dose,
        group_stats={"n": ("median", "q1", "q3", "value")},
        min_max=("min", "max"),
    ),
    "lmm": TableRule(
        "Mixed models: not published with fewer than min_cell patients or 10 residual df; estimated means of occasions with fewer than min_cell patients hidden.",
        _lmm,
        group_stats={"observed_n": ("estimated_mean", "se", "df", "ci_low", "ci_high")},
        finish=_finish_lmm,
    ),
    "predictors": TableRule(
        "Logistic models: not published with fewer than min_cell patients, events or non-events, or 10 residual df.",
        _predictors,
        finish=_finish_predictors,
    ),
    "group_outcomes": TableRule(
        "Each outcome per arm: n measured (arms add up to the measured); statistics of fewer than min_cell patients hidden.",
        _group_outcomes,
        group_stats={"n": LEVEL_STATS},
    ),
    "group_responders": TableRule(
        "Each arm's responder breakdown; arms add up to the whole (responders.csv).",
        _group_responders,
        derived=RESPONDER_RATE,
        rates=WILSON_RATE,
    ),
    "group_ancova": TableRule(
        "ANCOVA: not published with fewer than min_cell patients or 10 residual df.",
        _ancova,
        finish=_finish_ancova,
    ),
    "group_lmm": TableRule(
        "Group x occasion mixed models: not published with fewer than min_cell patients or 10 residual df.",
        _lmm,
        group_stats={"observed_n": ("estimated_mean", "se", "df", "ci_low", "ci_high")},
        finish=_finish_lmm,
    ),
}

# Published files that are not tables of counts, and why they need no rule of their own.
EXEMPTIONS: dict[str, str] = {
    "provenance.json": "hashes of files, package versions and the resolved config: no value of the data",
    "disclosure_report.md": "the number of cells hidden per table and the rules: no hidden value",
}
# Published files rendered from tables after disclosure control (never from unprotected data).
RENDERED_FROM: dict[str, tuple[str, ...]] = {
    "baseline.md": ("baseline",),
    "baseline_vs_paper": ("baseline",),
    "summary.md": (
        "flow",
        "responders",
        "responders_vs_paper",
        "missing_data_sensitivity",
        "clinical_significance_rates",
        "clinical_significance_definitions",
        "lmm",
        "baseline",
    ),
}
RENDERED_FROM["legends.md"] = (  # each figure's legend: the notes of the table it is drawn from
    "flow", "outcomes", "lmm", "predictors", "threshold_sweep", "responder_directions",
    "responder_course", "clinical_significance_rates", "interventions", "intervention_cooccurrence",
)  # fmt: skip
# The print forms (rule publication_tables, cohort.publication): each table's HTML from that table
# alone, the Word document from all of them, the HTML pages from their Markdown.
RENDERED_FROM["html"] = ("tables/html/<table>.html: the published table <table> alone",)
RENDERED_FROM["manuscript_tables.docx"] = ("every published table",)
RENDERED_FROM["summary.html"] = ("summary.md",)
RENDERED_FROM["disclosure_report.html"] = ("disclosure_report.md",)
RENDERED_FROM["legends.html"] = ("legends.md",)
# Figures, and how each is protected: drawn from a published (protected) table, or checked here.
FIGURES: dict[str, str] = {
    "flow": "drawn from results/tables/flow.csv",
    "interventions": "drawn from results/tables/interventions.csv",
    "intervention_cooccurrence": "drawn from results/tables/intervention_cooccurrence.csv",
    "threshold_sweep": "drawn from results/tables/threshold_sweep.csv (merged steps only)",
    "outcome_trajectories": "drawn from results/tables/outcomes.csv (statistics of small groups hidden)",
    "outcome_changes": "box of quartiles only for groups of at least min_cell patients; no individual values",
    "lmm_means": "drawn from results/tables/lmm.csv",
    "predictors_forest": "drawn from results/tables/predictors.csv",
    "responder_directions": "drawn from results/tables/responder_directions.csv (hidden shares not drawn)",
    "responder_course": "drawn from results/tables/responder_course.csv (hidden shares not drawn)",
    "clinical_significance": "drawn from results/tables/clinical_significance_rates.csv (hidden rates not drawn)",
}


# --- The suppression pattern ----------------------------------------------------------------------
@dataclass
class Pattern:
    """Which keys are hidden, why (primary or secondary), and what could not be protected."""

    hidden: dict[Key, str]
    unprotectable: list[Key] = field(default_factory=list)


def suppression_pattern(reg: Register, settings: DisclosureSettings) -> Pattern:
    """Primary suppression, secondary suppression wherever a relation leaves one unknown, then
    the LP audit, repeated until no hidden or sensitive count can be pinned down."""
    if reg.values[N_KEY] < settings.min_cell:  # a study of fewer than min_cell: every count,
        return Pattern({k: "primary" for k in reg.published})  # zeros too (all share a trait)
    hidden = {k: "primary" for k in reg.published - reg.fixed if settings.small(reg.values[k])}
    sensitive = {k for k, v in reg.values.items() if k not in reg.published and settings.small(v)}
    relations_of: dict[Key, list[tuple[Key, ...]]] = defaultdict(list)
    for parts, total in reg.equations:
        for k in (*parts, total):
            relations_of[k].append((*parts, total))

    def visible(k: Key) -> bool:
        return k in reg.published and k not in hidden

    def cascade(k: Key) -> int:
        """Relations in which hiding k would leave k the only unknown (each asks for one more)."""
        return sum(all(visible(x) for x in keys if x != k) for keys in relations_of[k])

    revealed: set[Key] = set()  # hidden, then found derivable anyway: published, never hidden again

    def cheapest(options: Iterable[Key]) -> Key | None:
        """The count to hide: not a zero if it can be helped (a zero protects nothing by itself),
        then the one that starts the fewest further suppressions, then one outside the headline
        tables (flow, Table 2, responders), then the smallest."""
        usable = {
            k
            for k in options
            if visible(k) and k not in reg.fixed and k in reg.values and k not in revealed
        }
        if not usable:
            return None
        return min(
            usable,
            key=lambda k: (
                reg.values[k] == 0,
                bool(reg.tables_of[k] & HEADLINE_TABLES),
                cascade(k),
                reg.values[k],
                str(k),
            ),
        )

    cache: dict[frozenset, dict[Key, list[Key]]] = {}
    reach: dict[Key, tuple[float, float]] = {}
    seen_revealed: set[Key] = set()
    exposed: dict[Key, list[Key]] = {}
    for _ in range(MAX_AUDIT_ROUNDS):
        changed = True
        while changed:
            changed = False
            for parts, total in reg.equations:
                unknown = [k for k in (*parts, total) if not visible(k)]
                if len(unknown) == 1 and (unknown[0] in hidden or unknown[0] in sensitive):
                    pick = cheapest((*parts, total))
                    if pick is not None:
                        hidden[pick] = "secondary"
                        changed = True
                    elif hidden.get(unknown[0]) == "secondary":  # derivable: protects nothing
                        del hidden[unknown[0]]
                        revealed.add(unknown[0])
                        changed = True
        if revealed != seen_revealed:  # a cell published again narrows the feasible set
            reach.clear()
            seen_revealed = set(revealed)
        exposed = audit(reg, set(hidden), sensitive, settings.min_cell, cache, reach)
        added = False
        for key, binding in exposed.items():
            pick = cheapest(binding)
            if pick is not None:
                hidden[pick] = "secondary"
                added = True
            elif hidden.get(key) == "secondary":  # derivable anyway: hiding it protects nothing
                del hidden[key]
                revealed.add(key)
                added = True
        if not added:
            break
    if exposed:  # last resort: every published count related to what is still exposed
        for key in _related(reg, exposed):
            if visible(key) and key not in reg.fixed:
                hidden[key] = "secondary"
        exposed = audit(reg, set(hidden), sensitive, settings.min_cell)
    return Pattern(hidden, sorted(exposed, key=str))


def _related(reg: Register, keys: Iterable[Key]) -> set[Key]:
    """Every count linked to `keys` by relations, through any count but a fixed one (N)."""
    relations: dict[Key, list[tuple[Key, ...]]] = defaultdict(list)
    for parts, total in reg.equations:
        for k in (*parts, total):
            relations[k].append((*parts, total))
    seen, frontier = set(keys), list(keys)
    while frontier:
        for relation in relations[frontier.pop()]:
            for k in relation:
                if k not in seen and k not in reg.fixed:
                    seen.add(k)
                    frontier.append(k)
    return seen


def audit(
    reg: Register,
    hidden: set[Key],
    sensitive: set[Key],
    min_cell: int,
    cache: dict[frozenset, dict[Key, list[Key]]] | None = None,
    reach: dict[Key, tuple[float, float]] | None = None,
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
    for k in {*hidden, *sensitive}:
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


# --- Applying the pattern to the tables -----------------------------------------------------------
@dataclass
class TableReport:
    """What disclosure control did to one table (for results/disclosure_report.md)."""

    rule: str
    primary: int = 0
    secondary: int = 0
    derived: int = 0
    small_groups: int = 0
    other: dict[str, int] = field(default_factory=dict)


def _whole(value: Any) -> Any:
    """A count as a whole number (240, not 240.0); markers and blanks as they are."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _round_to(value: float, base: int) -> int:
    return int(math.floor(value / base + 0.5) * base)


def apply_pattern(
    name: str,
    table: pd.DataFrame,
    rule: TableRule,
    reg: Register,
    pattern: Pattern,
    settings: DisclosureSettings,
    ctx: Context,
) -> tuple[pd.DataFrame, TableReport]:
    """One table as it may be published under the pattern."""
    original = table.reset_index(drop=True)
    out = original.copy()
    report = TableReport(rule.describe)
    status: dict[tuple[int, str], str] = {}
    for row, column, key in reg.cells.get(name, []):
        if key in pattern.hidden:
            status[(row, column)] = pattern.hidden[key]
    # Counts: markers for hidden cells; rounding of the rest.
    for (row, column), why in status.items():
        out[column] = out[column].astype(object)
        if column in ("completers", "lost"):  # a share standing for the count it implies
            out.at[row, column] = SMALL_GROUP if why == "primary" else SECONDARY
        else:
            out.at[row, column] = settings.primary if why == "primary" else SECONDARY
        report.primary += why == "primary"
        report.secondary += why == "secondary"
    if settings.rounding:
        for row, column, _ in reg.cells.get(name, []):
            if (row, column) not in status and column not in ("completers", "lost"):
                value = _num(original.at[row, column])
                if math.isfinite(value):
                    out[column] = out[column].astype(object)
                    out.at[row, column] = _round_to(value, settings.rounding)
        for pct, num, den, low, high in rule.rates:
            if pct not in out.columns:
                continue
            for row in out.index:
                k, n = _num(out.at[row, num]), _num(out.at[row, den])
                if math.isfinite(k) and math.isfinite(n) and n > 0:
                    out[pct] = out[pct].astype(object)
                    out.at[row, pct] = 100 * k / n
                    if low and high:
                        out[low], out[high] = out[low].astype(object), out[high].astype(object)
                        out.at[row, low], out.at[row, high] = (
                            100 * x for x in wilson_interval(int(k), int(n), ctx.confidence_level)
                        )
        if "value" in rule.derived and "count" in out.columns:
            for row in out.index:
                k, p = _num(out.at[row, "count"]), _num(out.at[row, "pct"])
                if math.isfinite(k) and math.isfinite(p):
                    out.at[row, "value"] = f"{int(k)} ({p:.0f}%)"
        if "patients" in rule.derived:
            for row in out.index:
                k, p = _num(out.at[row, "patients_n"]), _num(out.at[row, "patients_pct"])
                if math.isfinite(k) and math.isfinite(p):
                    out.at[row, "patients"] = f"{int(k)} ({p:.0f}%)"
    # Values computed from hidden counts.
    for column, sources in rule.derived.items():
        if column not in out.columns:
            continue
        for row in out.index:
            why = {status.get((row, s)) for s in sources} - {None}
            if why:
                out[column] = out[column].astype(object)
                out.at[row, column] = SMALL_GROUP if "primary" in why else SECONDARY
                report.derived += 1
    # Statistics of groups below min_cell.
    for size, stats in rule.group_stats.items():
        if size not in original.columns:
            continue
        n = pd.to_numeric(original[size], errors="coerce")
        small = (n < settings.min_cell) & (n >= 0)
        for column in stats:
            if column in out.columns and small.any():
                present = small & original[column].notna() & (original[column].astype(str) != "")
                out[column] = out[column].astype(object)
                out.loc[present, column] = SMALL_GROUP
                report.small_groups += int(present.sum())
    for column in {column for _, column, _ in reg.cells.get(name, [])}:  # counts print as 240
        if column in out.columns and column not in ("completers", "lost"):
            out[column] = pd.Series([_whole(v) for v in out[column]], index=out.index, dtype=object)
    if rule.finish is not None:
        out, other = rule.finish(out, original, settings, ctx)
        report.other.update(other)
    if rule.min_max and not settings.allow_min_max:
        out = out.drop(columns=[c for c in rule.min_max if c in out.columns])
    return out, report


def protect_tables(
    tables: dict[str, pd.DataFrame], settings: DisclosureSettings, ctx: Context
) -> tuple[dict[str, pd.DataFrame], dict[str, TableReport], Pattern]:
    """Every table to publish, protected under one pattern over all their counts. Stops (naming
    the table) when a table has no rule, and when a count cannot be protected."""
    unknown = [name for name in tables if name not in TABLE_RULES]
    if unknown:
        raise DisclosureError(
            f"publish: no disclosure rule for table(s) {', '.join(sorted(unknown))}; declare one in "
            "cohort.disclosure.TABLE_RULES (or an exemption, with its reason, in EXEMPTIONS)"
        )
    ctx = replace(ctx, disclosure=settings)
    reg = Register()
    reg.fixed.add(N_KEY)
    reg.value(N_KEY, ctx.n_analysis, "the analysis set")
    for name in TABLE_RULES:  # the rules' order: shared counts are registered before their copies
        if name in tables and TABLE_RULES[name].counts is not None:
            TABLE_RULES[name].counts(tables[name].reset_index(drop=True), name, reg, ctx)
    pattern = suppression_pattern(reg, settings)
    if pattern.unprotectable:
        where = "; ".join(str(k) for k in pattern.unprotectable[:5])
        raise DisclosureError(
            f"publish: {len(pattern.unprotectable)} count(s) cannot be protected by suppression "
            f"(no other published count of their relations can be hidden): {where}"
        )
    out, reports = {}, {}
    for name, table in tables.items():
        out[name], reports[name] = apply_pattern(
            name, table, TABLE_RULES[name], reg, pattern, settings, ctx
        )
    if "clinical_significance_rates" in out:
        withheld = withhold_nested_definitions(out, settings)
        reports["clinical_significance_rates"].other[
            "definitions withheld at an occasion (a count within min_cell of a nested rule's)"
        ] = len(withheld)
        if "clinical_significance_agreement" in out:
            report = reports["clinical_significance_agreement"]
            report.other.update(publish_agreement(out, withheld, settings))
    return out, reports, pattern


def publish_agreement(
    out: dict[str, pd.DataFrame], withheld: set[tuple[str, str, str]], settings: DisclosureSettings
) -> dict[str, int]:
    """The agreement cells of a pair of definitions are published only where neither
    definition is withheld, both responder counts and n are published and no cell is small by
    itself; then every relation of the cells (they add up to n, and to each definition's
    responders) has only published terms, and no hidden count can be recovered through them.
    The other rows keep n and say why their cells are not published."""
    agreement, rates = out["clinical_significance_agreement"], out["clinical_significance_rates"]
    available = rates[rates["analysis"] == AVAILABLE]
    shown = {
        (r["definition"], r["outcome"], r["occasion"])
        for _, r in available.iterrows()
        if math.isfinite(_num(r["responders"]))
    }
    reasons = {
        "rows of a withheld definition": [],
        "rows with a hidden count": [],
        "rows with a cell below min_cell": [],
    }
    for i, row in agreement.iterrows():
        pair = [(row[side], row["outcome"], row["occasion"]) for side in ("first", "second")]
        cells = [_num(row[c]) for c in AGREEMENT_CELLS]
        if set(pair) & withheld:
            reasons["rows of a withheld definition"].append(i)
        elif not set(pair) <= shown or not math.isfinite(_num(row["n"])):
            reasons["rows with a hidden count"].append(i)
        elif any(not math.isfinite(c) or settings.small(c) for c in cells):
            reasons["rows with a cell below min_cell"].append(i)
    columns = [*AGREEMENT_CELLS, "agreement_pct", "kappa", "kappa_ci_low", "kappa_ci_high"]
    why = {
        "rows of a withheld definition": "a definition's counts are withheld (clinical_significance_rates.csv)",
        "rows with a hidden count": "a definition's responders or n are hidden (disclosure control)",
        "rows with a cell below min_cell": f"a cell below min_cell = {settings.min_cell} (disclosure control)",
    }
    for reason, rows in reasons.items():
        _blank(agreement, rows, columns, f"not published: {why[reason]}")
    return {reason: len(rows) for reason, rows in reasons.items()}


def _blank(table: pd.DataFrame, rows: list, columns: list[str], why: str) -> None:
    """Empty the given cells of the given rows and say why in the method column."""
    for c in columns:
        if c in table:
            table[c] = table[c].astype(object)
            table.loc[rows, c] = ""
    if rows:
        table["method"] = table["method"].astype(object)
        table.loc[rows, "method"] = why


def _nested_kind(row: pd.Series) -> str | None:
    """The scale on which a definition is one threshold (absolute or percent), or None (two
    thresholds combined, or a cut-off as well): rules of one kind are nested in each other."""
    absolute, percent, cutoff = (
        _num(row.get(c)) for c in ("threshold_absolute", "threshold_percent", "cutoff")
    )
    if math.isfinite(cutoff):
        return None
    if math.isfinite(absolute) != math.isfinite(percent):
        return "absolute" if math.isfinite(absolute) else "percent"
    return None


def withhold_nested_definitions(
    out: dict[str, pd.DataFrame], settings: DisclosureSettings
) -> set[tuple[str, str, str]]:
    """Rules of one threshold on one scale are nested (whoever reaches 12 reaches 10), so two
    published responder counts differ by the patients between their thresholds; the same for
    the could-not-improve counts (patients with room between them), and for a clinically
    significant change inside the reliable change it adds a cut-off to. As the threshold sweep
    publishes only steps of at least min_cell, a definition's counts at an outcome and occasion
    are published only where each is 0 or at least min_cell away from every published count of
    a rule it is nested with (the primary rule and the sweep's points first, then the
    definitions in order); the others are withheld, whole. Returns (definition, outcome,
    occasion) withheld."""
    rates = out["clinical_significance_rates"]
    sweep = out.get(
        "threshold_sweep", pd.DataFrame(columns=["outcome", "occasion", "scale", "reaching"])
    )
    available = rates[rates["analysis"] == AVAILABLE]
    withheld: set[tuple[str, str, str]] = set()

    def close(value: float, published: list[float]) -> bool:
        """The difference from a published count is disclosive by itself."""
        return math.isfinite(value) and any(settings.small(abs(value - p)) for p in published)

    for (outcome, occasion), group in available.groupby(["outcome", "occasion"], sort=False):
        points = sweep[(sweep["outcome"] == outcome) & (sweep["occasion"] == occasion)]
        responders = {
            kind: [
                v
                for v in pd.to_numeric(
                    points.loc[points["scale"] == kind, "reaching"], errors="coerce"
                )
                if math.isfinite(v)
            ]
            for kind in ("absolute", "percent")
        }
        not_improvable: dict[str, list[float]] = {"absolute": [], "percent": []}
        rule_counts: dict[
            tuple[float, bool], float
        ] = {}  # one-threshold absolute rules: responders
        for _, row in group.iterrows():  # the primary rule first (the table's order)
            kind = _nested_kind(row)
            r, cni = _num(row["responders"]), _num(row["could_not_improve"])
            key = (str(row["definition"]), outcome, occasion)
            if kind is None:
                containing = rule_counts.get(
                    (_num(row.get("threshold_absolute")), _truthy(row.get("strict")))
                )
                if (
                    math.isfinite(_num(row.get("cutoff")))
                    and containing is not None
                    and math.isfinite(r)
                    and close(r, [containing])
                ):
                    withheld.add(key)
                continue
            primary = row["definition"] == PRIMARY_DEFINITION  # its counts: responders.csv's
            if not primary and (close(r, responders[kind]) or close(cni, not_improvable[kind])):
                withheld.add(key)
                continue
            if math.isfinite(r):
                responders[kind].append(r)
                if kind == "absolute":
                    rule_counts[(_num(row["threshold_absolute"]), _truthy(row.get("strict")))] = r
            if math.isfinite(cni):
                not_improvable[kind].append(cni)
    rows = [
        i
        for i, r in rates.iterrows()
        if (r["definition"], r["outcome"], r["occasion"]) in withheld
        and r["analysis"] != "multiple imputation"
    ]
    _blank(rates, rows, ["responders", "non_responders", "could_not_improve", "pct", "ci_low_pct", "ci_high_pct"],
           "not published: a count within min_cell of a nested rule's (disclosure control)")  # fmt: skip
    return withheld


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("true", "1", "1.0")
