"""Applying the pattern to the tables (markers, rounding, derived values, small-group statistics,
each table's own checks) and `protect_tables`, the entry point of rule publish."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from cohort.analysis.responders import rate_interval
from cohort.core.cache import OutputCache
from cohort.core.settings import PRIMARY as PRIMARY_DEFINITION
from cohort.core.settings import RCI_RULE_PREFIX, SLOPE_RULE_WORDS
from cohort.disclosure.counts import AVAILABLE, _num
from cohort.disclosure.optimal import least_cost_pattern
from cohort.disclosure.pattern import Pattern, suppression_pattern
from cohort.disclosure.register import Register, TableRule
from cohort.disclosure.rules import TABLE_RULES
from cohort.disclosure.settings import (
    DOMINATED,
    N_KEY,
    SECONDARY,
    SMALL_GROUP,
    Context,
    DisclosureError,
    DisclosureSettings,
    Key,
)
from cohort.disclosure.significance_counts import AGREEMENT_CELLS


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


def round_count(value: float, base: int, method: str = "nearest") -> int:
    """A count rounded to `base`: to the nearest multiple (halves up), or to the midpoint of its
    bin of `base` counts, as OpenSAFELY's midpoint rounding does (0 stays 0; with base 6, 1-6
    print as 3, 7-12 as 9: ceiling(x / base) * base - floor(base / 2))."""
    if method == "midpoint":
        return 0 if value == 0 else int(math.ceil(value / base) * base - base // 2)
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
        _round_counts(out, original, reg.cells.get(name, []), status, rule, settings, ctx)
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
    report.small_groups += _hide_small_group_statistics(out, original, rule, settings)
    report.other.update(hide_dominated(out, original, rule, settings))
    out = out.drop(columns=dominance_evidence(out, rule))
    for column in {column for _, column, _ in reg.cells.get(name, [])}:  # counts print as 240
        if column in out.columns and column not in ("completers", "lost"):
            out[column] = pd.Series([_whole(v) for v in out[column]], index=out.index, dtype=object)
    if rule.finish is not None:
        out, other = rule.finish(out, original, settings, ctx)
        report.other.update(other)
    if rule.min_max and not settings.allow_min_max:
        out = out.drop(columns=[c for c in rule.min_max if c in out.columns])
    return out, report


def _round_counts(
    out: pd.DataFrame,
    original: pd.DataFrame,
    cells: list[tuple[int, str, Key]],
    status: dict[tuple[int, str], str],
    rule: TableRule,
    settings: DisclosureSettings,
    ctx: Context,
) -> None:
    """Every published count of the table rounded (`disclosure.rounding`), in place, and the
    rates, Wilson CIs and 'n (%)' texts computed again from the rounded counts."""
    for row, column, _ in cells:
        if (row, column) not in status and column not in ("completers", "lost"):
            value = _num(original.at[row, column])
            if math.isfinite(value):
                out[column] = out[column].astype(object)
                out.at[row, column] = round_count(
                    value, settings.rounding, settings.rounding_method
                )
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
                        100 * x for x in rate_interval(int(k), int(n), ctx.confidence_level)[:2]
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


def _hide_small_group_statistics(
    out: pd.DataFrame, original: pd.DataFrame, rule: TableRule, settings: DisclosureSettings
) -> int:
    """Statistics of groups below min_cell marked [s], in place; how many were."""
    hidden = 0
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
                hidden += int(present.sum())
    return hidden


def hide_dominated(
    out: pd.DataFrame, original: pd.DataFrame, rule: TableRule, settings: DisclosureSettings
) -> dict[str, int]:
    """The means a few patients dominate (`DisclosureSettings.dominated`: ACRO's NK and p%
    rules on the evidence `tables.dominance_shares` wrote), with what is computed from them,
    read `[d]` in `out`; rows whose means add up to a published whole go together. Returns the
    counts for the report. (The evidence is dropped after: `dominance_evidence`.)"""
    flagged = pd.Series(False, index=original.index)
    targets: dict[str, pd.Series] = {}
    undefined = 0
    for prefix, stats in rule.dominance.items():
        columns = [f"{prefix}_{part}" for part in ("top1_share", "top2_share", "negative")]
        if not settings.dominance or not set(columns) <= set(original.columns):
            continue
        top1, top2, negative = (pd.to_numeric(original[c], errors="coerce") for c in columns)
        rows = pd.Series(
            [
                settings.dominated(a, b) != "" if n == 0 else False
                for a, b, n in zip(top1, top2, negative, strict=True)
            ],
            index=original.index,
        )
        undefined += int((negative == 1).sum())
        flagged |= rows
        for column in stats:
            targets[column] = targets.get(column, pd.Series(False, index=original.index)) | rows
    if rule.dominance_together and flagged.any():
        blocks = original[list(rule.dominance_together)].astype(str).agg("|".join, axis=1)
        together = blocks.isin(set(blocks[flagged]))
        targets = {column: together for column in targets}
        flagged = together
    hidden = 0
    for column, rows in targets.items():
        if column not in out.columns:
            continue
        present = rows & original[column].notna() & (original[column].astype(str) != "")
        present &= ~out[column].astype(str).isin([SMALL_GROUP, SECONDARY, settings.primary])
        if present.any():
            out[column] = out[column].astype(object)
            out.loc[present, column] = DOMINATED
            hidden += int(present.sum())
    if not rule.dominance:
        return {}
    return {
        "means dominated by their largest values (NK, p%): rows": int(flagged.sum()),
        "means of values of both signs (dominance not defined)": undefined,
    } if settings.dominance else {}  # fmt: skip


def dominance_evidence(table: pd.DataFrame, rule: TableRule) -> list[str]:
    """The columns of dominance evidence: never published, checked or not."""
    return [c for c in table.columns if any(c.startswith(f"{p}_") for p in rule.dominance)]


def protect_tables(
    tables: dict[str, pd.DataFrame],
    settings: DisclosureSettings,
    ctx: Context,
    cache: OutputCache | None = None,
) -> tuple[dict[str, pd.DataFrame], dict[str, TableReport], Pattern]:
    """Every table to publish, protected under one pattern over all their counts (the least-loss
    pattern kept in `cache` for the same counts, where there is one). Stops (naming the table)
    when a table has no rule, and when a count cannot be protected."""
    unknown = [name for name in tables if name not in TABLE_RULES]
    if unknown:
        raise DisclosureError(
            f"publish: no disclosure rule for table(s) {', '.join(sorted(unknown))}; declare one in "
            "cohort.disclosure.TABLE_RULES (or an exemption, with its reason, in EXEMPTIONS)"
        )
    ctx = replace(ctx, disclosure=settings)
    prepared: dict[str, dict[str, int]] = {}
    tables = dict(tables)
    for name, rule in TABLE_RULES.items():
        if name in tables and rule.prepare is not None:
            tables[name], prepared[name] = rule.prepare(tables[name].reset_index(drop=True), ctx)
    reg = Register()
    reg.fixed.add(N_KEY)
    reg.value(N_KEY, ctx.n_analysis, "the analysis set")
    for name in TABLE_RULES:  # the rules' order: shared counts are registered before their copies
        if name in tables and TABLE_RULES[name].counts is not None:
            TABLE_RULES[name].counts(tables[name].reset_index(drop=True), name, reg, ctx)
    pattern = (
        least_cost_pattern(reg, settings, cache)
        if settings.method == "optimal"
        else suppression_pattern(reg, settings)
    )
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
        reports[name].other.update(prepared.get(name, {}))
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
        withheld |= _withheld_at(group, points, close)
    rows = [
        i
        for i, r in rates.iterrows()
        if (r["definition"], r["outcome"], r["occasion"]) in withheld
        and r["analysis"] != "multiple imputation"
    ]
    _blank(rates, rows, ["responders", "non_responders", "could_not_improve", "pct", "ci_low_pct", "ci_high_pct"],
           "not published: a count within min_cell of a nested rule's (disclosure control)")  # fmt: skip
    _publish_same_as(rates)
    return withheld


def _rci_kind(rule_words: str) -> str:
    """What a reliable-change index is nested with: HA's is a threshold on the change (the
    absolute rules and the sweep); GLN, EN, NK and HLL are thresholds on r x start - follow-up,
    nested with each other only; the HLM slope with none."""
    if rule_words.startswith(f"{RCI_RULE_PREFIX} (HA "):
        return "absolute"
    if rule_words.startswith(f"{RCI_RULE_PREFIX} ({SLOPE_RULE_WORDS})"):
        return "slope"
    return "regressed"


def _withheld_at(
    group: pd.DataFrame, points: pd.DataFrame, close: Callable[[float, list[float]], bool]
) -> set[tuple[str, str, str]]:
    """The definitions withheld at one outcome and occasion (`group`: their available-case
    rows, the primary rule first; `points`: the sweep's published points there)."""
    withheld: set[tuple[str, str, str]] = set()
    responders = {
        kind: [
            v
            for v in pd.to_numeric(points.loc[points["scale"] == kind, "reaching"], errors="coerce")
            if math.isfinite(v)
        ]
        for kind in ("absolute", "percent")
    }
    not_improvable: dict[str, list[float]] = {"absolute": [], "percent": []}
    rule_counts: dict[tuple[float, bool], float] = {}  # one-threshold absolute rules: responders
    for _, row in group.iterrows():  # the primary rule first (the table's order)
        kind = _nested_kind(row)
        r, cni = _num(row["responders"]), _num(row["could_not_improve"])
        key = (str(row["definition"]), str(row["outcome"]), str(row["occasion"]))
        rule_words = str(row.get("rule", ""))
        if rule_words.startswith(f"{RCI_RULE_PREFIX} ("):
            kind = _rci_kind(rule_words)
            responders.setdefault(kind, [])
            not_improvable.setdefault(kind, [])
            if close(r, responders[kind]) or close(cni, not_improvable[kind]):
                withheld.add(key)
                continue
            if math.isfinite(r):
                responders[kind].append(r)
            if math.isfinite(cni):
                not_improvable[kind].append(cni)
            continue
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
    return withheld


def _publish_same_as(rates: pd.DataFrame) -> None:
    """A definition named as classifying alike would give away a hidden count by the other's:
    same_as is kept only where both rows' responder counts are published."""
    if "same_as" not in rates:
        return
    published = {
        (r["definition"], r["outcome"], r["occasion"], r["analysis"])
        for _, r in rates.iterrows()
        if math.isfinite(_num(r["responders"]))
    }
    for i, r in rates.iterrows():
        other = r["same_as"]
        if not isinstance(other, str) or not other:
            continue
        own = (r["definition"], r["outcome"], r["occasion"], r["analysis"])
        if own not in published or (other, *own[1:]) not in published:
            rates.at[i, "same_as"] = ""


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("true", "1", "1.0")
