"""Which counts each table publishes and how they relate: one builder per table family, called
by `protect_tables` in the order of `TABLE_RULES`, so that a count printed by several tables is
registered once, under one key."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import pandas as pd

from cohort.disclosure.register import Register
from cohort.disclosure.settings import N_KEY, Context, Key

RESPONDER_COUNTS = ("responders", "non_responders", "could_not_improve", "missing")
FOLDED = (
    "non-responders and could-not-improve"  # one count per subgroup level (fold_could_not_improve)
)
# Where a reader looks first: their counts are hidden as secondary cells only when nothing else will do.
HEADLINE_TABLES = {"flow", "baseline", "responders", "responders_vs_paper"}
RATE_COLUMNS = ("pct", "ci_low_pct", "ci_high_pct")
AVAILABLE = "available cases"
DIRECTION_PARTS = ("improved", "unchanged", "deteriorated")
COURSE_PARTS = ("sustained", "lost", "late", "never")


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
    # Without a could-not-improve column (folded into the non-responders, FOLDED), two parts.
    parts = [p for p in RESPONDER_COUNTS[:3] if p in row.index or p != "could_not_improve"]
    reg.implied(measured, sum(_num(row.get(p)) for p in parts))
    reg.equation([keys[p] for p in parts], measured)
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


def _site_aggregates(table: pd.DataFrame, name: str, reg: Register, ctx: Context) -> None:
    """The n of each sum: outcomes.csv's measured (level) and pairs (change), so that the
    aggregates are hidden exactly where outcomes.csv's counts are."""
    for i, row in table.reset_index(drop=True).iterrows():
        outcome, occasion = str(row["outcome"]), str(row["occasion"])
        kind = "measured" if row["section"] == "level" else "measured both"
        reg.cell(name, i, "n", (kind, outcome, occasion), row["n"])
        reg.cell(name, i, "N", N_KEY, row["N"])


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


def _tipping(table: pd.DataFrame, name: str, reg: Register, ctx: Context) -> None:
    """Delta-adjusted MI: estimates over N; the shifted follow-ups are outcomes.csv's not
    measured."""
    for i, row in table.reset_index(drop=True).iterrows():
        reg.cell(name, i, "N", N_KEY, row["N"])
        missing = ("not measured", str(row["outcome"]), str(row["occasion"]))
        reg.cell(name, i, "missing_shifted", missing, row.get("missing_shifted"))


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
            if part in row.index or part != "could_not_improve":
                whole[part].append((*prefix, part))
        whole["measured"].append(measured)
    folded = "could_not_improve" not in table.columns
    for (_, outcome, occasion), whole in parts_of.items():
        if folded:  # each level's non-responders include its could-not-improve
            totals = [("responders of", outcome, occasion, p) for p in RESPONDER_COUNTS[1:3]]
            both = ("responders of", outcome, occasion, FOLDED)
            reg.equation(totals, both)
            reg.equation(whole.pop("non_responders"), both)
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
