"""Clinically important improvement (MCID responders): classification per patient, outcome and
follow-up occasion; rates with Wilson intervals under stated denominators; composites;
the course of response over the follow-ups; subgroups; and the threshold sweep.

Improvement is measured in the direction of benefit: start - follow-up when lower is better,
follow-up - start when higher is better; percent improvement is relative to the start value.
A patient is one of:
- `responder`: meets the rule (absolute and/or percent threshold, combined by either/both);
- `non_responder`: measured at both occasions, could have met it, did not;
- `could_not_improve`: the start value leaves less room on the scale than the rule needs (floor
  or ceiling), so meeting it was impossible; never silently a non-responder: config
  `responders.could_not_improve` says whether they leave the denominator (exclude) or count as
  non-responders (non_responder);
- `missing`: not measured at start or at the follow-up occasion.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from cohort.core.distributions import normal_critical
from cohort.core.frames import frame
from cohort.core.settings import McidRule, Outcome

RESPONDER, NON_RESPONDER, COULD_NOT_IMPROVE, MISSING = (
    "responder",
    "non_responder",
    "could_not_improve",
    "missing",
)
CATEGORIES = (RESPONDER, NON_RESPONDER, COULD_NOT_IMPROVE, MISSING)
# Three directions of change under the same rule (a non-responder is unchanged or deteriorated).
IMPROVED, UNCHANGED, DETERIORATED = "improved", "unchanged", "deteriorated"
DIRECTIONS = (IMPROVED, UNCHANGED, DETERIORATED)
TOLERANCE = 1e-9  # DRI is a mean of items: 10 mm may be 9.999999999 in floating point
AVAILABLE = "available cases"
ALL_INCLUDED = "all in analysis set, missing = non-responder"


def in_population(categories: pd.Series | np.ndarray, handling: str) -> np.ndarray:
    """The one population rule of every responder analysis (rates, course, subgroups,
    models, imputed analyses, summary): a classified patient is counted when responder or
    non-responder, and, when could-not-improve, unless `responders.could_not_improve` is exclude
    (then counted as not improved). Missing patients never are."""
    values = np.asarray(categories)
    if np.issubdtype(values.dtype, np.integer):  # category_codes' indices into CATEGORIES
        counted_codes = [CATEGORIES.index(c) for c in (RESPONDER, NON_RESPONDER)]
        if handling != "exclude":
            counted_codes.append(CATEGORIES.index(COULD_NOT_IMPROVE))
        return np.isin(values, counted_codes)
    values = values.astype(object)
    counted = (values == RESPONDER) | (values == NON_RESPONDER)
    if handling != "exclude":
        counted |= values == COULD_NOT_IMPROVE
    return counted


def population_note(handling: str) -> str:
    """The population rule in words, for every footer of a responder table."""
    if handling == "exclude":
        return (
            "could-not-improve patients (the start value leaves less room than the MCID) are left "
            "out of the denominators, the course table and the models"
        )
    return (
        "could-not-improve patients (the start value leaves less room than the MCID) count as "
        "non-responders in the rates, the course table and the models"
    )


def wilson_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for k successes out of n (Wilson 1927; Newcombe 1998, method 3)."""
    if n == 0:
        return np.nan, np.nan
    z = normal_critical(level)
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    return max(0.0, centre - half), min(1.0, centre + half)


def clopper_pearson_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial (Clopper-Pearson 1934) interval for k of n, from the beta quantiles:
    the interval a reader expects at 0 of n or n of n, where no normal approximation holds."""
    if n == 0:
        return np.nan, np.nan
    alpha = 1 - level
    low = 0.0 if k == 0 else float(special.betaincinv(k, n - k + 1, alpha / 2))
    high = 1.0 if k == n else float(special.betaincinv(k + 1, n - k, 1 - alpha / 2))
    return low, high


def rate_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float, str]:
    """The CI of a responder rate, with its method in words: Wilson's score interval, or the
    exact one at 0 of n and n of n (no patient or every patient), as a methods reviewer expects."""
    if n and k in (0, n):
        low, high = clopper_pearson_interval(k, n, level)
        return low, high, f"Clopper-Pearson exact {level:.0%} ({k} of {n})"
    low, high = wilson_interval(k, n, level)
    return low, high, f"Wilson score {level:.0%}"


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p: binomial test of b discordant pairs of one kind out of b + c."""
    if b + c == 0:
        return 1.0
    return float(min(1.0, 2 * special.bdtr(min(b, c), b + c, 0.5)))  # = stats.binom.cdf


def rule_text(mcid: McidRule) -> str:
    """The MCID rule in words, the one renderer of it (tables, summary, report): e.g.
    'improvement ≥ 2 or ≥ 30% of start', 'improvement > 35% of start' (a strict rule)."""
    sign = ">" if mcid.strict else "≥"
    parts = []
    if mcid.absolute is not None:
        parts.append(f"{sign} {mcid.absolute:g}")
    if mcid.percent is not None:
        parts.append(f"{sign} {mcid.percent:g}% of start")
    joiner = " or " if mcid.combine == "either" else " and "
    return "improvement " + joiner.join(parts)


def improvement_scores(
    start: pd.Series | np.ndarray, follow: pd.Series | np.ndarray, outcome: Outcome
) -> tuple[pd.Series | np.ndarray, np.ndarray]:
    """Improvement (change in the better direction) and percent improvement (of |start|; missing
    when start is 0): what a threshold applies to, whatever the threshold."""
    sign = 1.0 if outcome.better == "higher" else -1.0
    start = start.astype(float)
    improvement = sign * (follow.astype(float) - start)
    with np.errstate(divide="ignore", invalid="ignore"):
        percent = np.where(start != 0, 100 * improvement / np.abs(start), np.nan)
    return improvement, percent


def meets(values: np.ndarray, threshold: float, mcid: McidRule) -> np.ndarray:
    """values >= threshold, or > threshold for a strict rule (`mcid.strict`, 'more than'), with a
    floating-point tolerance either way (a DRI mean of items may be 9.999999999 for 10)."""
    values = np.asarray(values, dtype=float)
    with np.errstate(invalid="ignore"):
        if mcid.strict:
            return values > threshold + TOLERANCE
        return values >= threshold - TOLERANCE


def category_codes(start: np.ndarray, follow: np.ndarray, outcome: Outcome) -> np.ndarray:
    """Each patient's category under one outcome's MCID rule, as an index into CATEGORIES: the
    row-by-row core of `classify`, on numpy arrays (the imputed analyses classify millions)."""
    low, high = outcome.range
    start = np.asarray(start, dtype=float)
    follow = np.asarray(follow, dtype=float)
    improvement, percent = improvement_scores(start, follow, outcome)
    room = (high - start) if outcome.better == "higher" else (start - low)
    mcid = outcome.rule
    met, reachable = [], []
    if mcid.absolute is not None:
        met.append(meets(improvement, mcid.absolute, mcid))
        reachable.append(meets(room, mcid.absolute, mcid))
    if mcid.percent is not None:
        needed = np.abs(start) * mcid.percent / 100
        met.append(meets(percent, mcid.percent, mcid))
        reachable.append((start != 0) & meets(room - needed, 0.0, mcid))
    combine = np.logical_or.reduce if mcid.combine == "either" else np.logical_and.reduce
    measured = ~np.isnan(start) & ~np.isnan(follow)
    code = CATEGORIES.index
    return np.select(
        [~measured, ~combine(reachable), combine(met)],
        [code(MISSING), code(COULD_NOT_IMPROVE), code(RESPONDER)],
        default=code(NON_RESPONDER),
    ).astype(np.int8)


def deteriorates(improvement: np.ndarray, percent: np.ndarray, mcid: McidRule) -> np.ndarray:
    """The MCID rule the other way: a worsening of at least (or, strict, more than) the absolute
    threshold and/or the percent of the start value, combined as the rule combines them."""
    met = []
    if mcid.absolute is not None:
        met.append(meets(-np.asarray(improvement, dtype=float), mcid.absolute, mcid))
    if mcid.percent is not None:
        met.append(meets(-np.asarray(percent, dtype=float), mcid.percent, mcid))
    combine = np.logical_or.reduce if mcid.combine == "either" else np.logical_and.reduce
    return combine(met)


def classify(start: pd.Series, follow: pd.Series, outcome: Outcome) -> pd.DataFrame:
    """Improvement, percent improvement, category and direction for each patient under one
    outcome's rule. Direction: improved (a responder), deteriorated (the rule the other way),
    unchanged (neither); could-not-improve and missing patients keep their category."""
    start = start.astype(float)
    follow = follow.astype(float)
    improvement, percent = improvement_scores(start, follow, outcome)
    codes = category_codes(start.to_numpy(), follow.to_numpy(), outcome)
    category = np.array(CATEGORIES, dtype=object)[codes]
    worse = deteriorates(improvement.to_numpy(), percent, outcome.rule)
    direction = np.select(
        [category == RESPONDER, category == NON_RESPONDER],
        [IMPROVED, np.where(worse, DETERIORATED, UNCHANGED)],
        default=category,
    )
    return pd.DataFrame(
        {
            "start": start,
            "value": follow,
            "change": follow - start,
            "improvement": improvement,
            "percent_improvement": percent,
            "category": category,
            "direction": direction,
        },
        index=start.index,
    )


def classify_all(
    patients: pd.DataFrame, outcomes: dict[str, Outcome], occasions: list[str]
) -> pd.DataFrame:
    """Long table: patient x outcome x follow-up occasion, with the rule applied."""
    frames = []
    for name, outcome in outcomes.items():
        for occasion in occasions[1:]:
            c = classify(
                patients[outcome.column_at(occasions[0])],
                patients[outcome.column_at(occasion)],
                outcome,
            )
            c.insert(0, "patient_id", patients["patient_id"].to_numpy())
            c.insert(1, "outcome", name)
            c.insert(2, "occasion", occasion)
            c["rule"] = rule_text(outcome.rule)
            frames.append(c)
    return pd.concat(frames, ignore_index=True)


def composites(classified: pd.DataFrame) -> pd.DataFrame:
    """Improved on any outcome / on all outcomes, per patient and occasion. Missing when any
    outcome is missing; a could-not-improve outcome counts as not improved (stated in `rule`)."""
    wide = classified.pivot_table(
        index=["patient_id", "occasion"], columns="outcome", values="category", aggfunc="first"
    )
    responder = wide.eq(RESPONDER)
    missing = wide.eq(MISSING).any(axis=1)
    frames = []
    for name, hit in (("any", responder.any(axis=1)), ("all", responder.all(axis=1))):
        label = "any outcome" if name == "any" else "all outcomes"
        category = np.where(missing, MISSING, np.where(hit, RESPONDER, NON_RESPONDER))
        frame = pd.DataFrame({"category": category}, index=wide.index).reset_index()
        frame["outcome"] = label
        frame["rule"] = (
            f"responder on {name} of {', '.join(wide.columns)}; could-not-improve counts as not improved"
        )
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def rate_rows(
    categories: pd.Series, handling: str, n_analysis: int, level: float
) -> list[dict[str, Any]]:
    """Responder rate under both denominators, with Wilson CIs."""
    counts = categories.value_counts().reindex(list(CATEGORIES), fill_value=0)
    if int(counts.sum()) != n_analysis:
        raise AssertionError(
            f"classified {int(counts.sum())} patients, analysis set has {n_analysis}"
        )
    k = int(counts[RESPONDER])
    cni = int(counts[COULD_NOT_IMPROVE])
    available = int(in_population(categories, handling).sum())
    denominators = {
        AVAILABLE: available,
        ALL_INCLUDED: available + int(counts[MISSING]),  # a missing follow-up = non-responder
    }
    rows = []
    for denominator, n in denominators.items():
        low, high, method = rate_interval(k, n, level)
        rows.append(
            {
                "denominator": denominator,
                "responders": k,
                "n": n,
                "pct": 100 * k / n if n else np.nan,
                "ci_low_pct": 100 * low,
                "ci_high_pct": 100 * high,
                "ci_method": method,
                "non_responders": int(counts[NON_RESPONDER]),
                "could_not_improve": cni,
                "could_not_improve_handling": handling,
                "missing": int(counts[MISSING]),
                "N": n_analysis,
            }
        )
    return rows


def responder_rates(
    classified: pd.DataFrame, composite: pd.DataFrame, handling: str, n_analysis: int, level: float
) -> pd.DataFrame:
    """Responder rates per outcome (and composite) and occasion, under both denominators."""
    rows = []
    columns = ["outcome", "occasion", "category", "rule"]  # grouped alone: groups are copies
    for table in (classified, composite):  # no outcome is in both: the order of one table
        if table.empty:  # no composite for a study of one outcome (a table without columns)
            continue
        for (outcome, occasion), group in table[columns].groupby(
            ["outcome", "occasion"], sort=False
        ):
            for row in rate_rows(group["category"], handling, n_analysis, level):
                rows.append(
                    {"outcome": outcome, "occasion": occasion, "rule": group["rule"].iat[0], **row}
                )
    return pd.DataFrame(rows)


VERSUS_PAPER_COLUMNS = (
    "outcome", "label", "occasion", "paper_pct", "this_run_pct", "ci_low_pct", "ci_high_pct",
    "responders", "n", "paper_within_ci", "rule",
)  # fmt: skip


DIRECTION_COLUMNS = (
    "outcome", "occasion", "rule", "N", "n", *DIRECTIONS, "could_not_improve", "missing",
    *(f"{d}_{c}" for d in DIRECTIONS for c in ("pct", "ci_low_pct", "ci_high_pct")),
    "could_not_improve_pct", "ci_method",
)  # fmt: skip


def direction_rates(
    classified: pd.DataFrame, handling: str, n_analysis: int, level: float
) -> pd.DataFrame:
    """Improved, unchanged and deteriorated per outcome and follow-up occasion (the rule both
    ways), with could-not-improve and missing kept apart; shares of the responder population
    (in_population: improved + unchanged + deteriorated, and could-not-improve unless excluded)
    with Wilson CIs. improved is the responders count of responders.csv."""
    rows = []
    columns = ["outcome", "occasion", "category", "direction", "rule"]
    for (outcome, occasion), group in classified[columns].groupby(
        ["outcome", "occasion"], sort=False
    ):
        counts = group["direction"].value_counts()
        if len(group) != n_analysis:
            raise AssertionError(f"directions {outcome} {occasion}: {len(group)} != {n_analysis}")
        n = int(in_population(group["category"], handling).sum())
        row: dict[str, Any] = {
            "outcome": outcome,
            "occasion": occasion,
            "rule": group["rule"].iat[0] + " (deteriorated: the same, worsening)",
            "N": n_analysis,
            "n": n,
            **{d: int(counts.get(d, 0)) for d in (*DIRECTIONS, COULD_NOT_IMPROVE, MISSING)},
        }
        for d in DIRECTIONS:
            low, high = wilson_interval(row[d], n, level)
            row |= {
                f"{d}_pct": 100 * row[d] / n if n else np.nan,
                f"{d}_ci_low_pct": 100 * low,
                f"{d}_ci_high_pct": 100 * high,
            }
        cni = row[COULD_NOT_IMPROVE]
        row["could_not_improve_pct"] = 100 * cni / n if n and handling != "exclude" else np.nan
        row["ci_method"] = f"Wilson score {level:.0%}"
        rows.append(row)
    return frame(rows, DIRECTION_COLUMNS)


def course(
    classified: pd.DataFrame, first: str, second: str, handling: str, level: float
) -> pd.DataFrame:
    """Course of response over the first and last follow-up under the primary rule, among the
    patients in the responder population at both: sustained (responder at both), lost (at the
    first only), late (at the second only), never; with Wilson CIs and the exact McNemar test
    of lost vs late. Patients not classified at both are counted apart."""
    rows = []
    columns = ["outcome", "occasion", "patient_id", "category"]
    for outcome, group in classified[columns].groupby("outcome", sort=False):
        wide = group.pivot(index="patient_id", columns="occasion", values="category")[
            [first, second]
        ]
        both = in_population(wide[first], handling) & in_population(wide[second], handling)
        w = wide[both].eq(RESPONDER)
        counts = {
            "sustained": int((w[first] & w[second]).sum()),
            "lost": int((w[first] & ~w[second]).sum()),
            "late": int((~w[first] & w[second]).sum()),
            "never": int((~w[first] & ~w[second]).sum()),
        }
        n = int(both.sum())
        row: dict[str, Any] = {
            "outcome": outcome,
            "occasions": f"{first} vs {second}",
            "N": len(wide),
            "n": n,
            "not_classified_at_both": len(wide) - n,
            **counts,
        }
        for name, k in counts.items():
            low, high = wilson_interval(k, n, level)
            row |= {
                f"{name}_pct": 100 * k / n if n else np.nan,
                f"{name}_ci_low_pct": 100 * low,
                f"{name}_ci_high_pct": 100 * high,
            }
        row["mcnemar_p"] = mcnemar_exact(counts["lost"], counts["late"])
        row["method"] = (
            f"Wilson score {level:.0%}; McNemar: exact binomial on lost vs late, two-sided"
        )
        rows.append(row)
    return frame(rows, COURSE_COLUMNS)


COURSES = ("sustained", "lost", "late", "never")
COURSE_COLUMNS = (
    "outcome", "occasions", "N", "n", "not_classified_at_both", *COURSES,
    *(f"{c}_{s}" for c in COURSES for s in ("pct", "ci_low_pct", "ci_high_pct")),
    "mcnemar_p", "method",
)  # fmt: skip


def subgroup_rates(
    patients: pd.DataFrame,
    classified: pd.DataFrame,
    subgroups: list[str],
    handling: str,
    level: float,
) -> pd.DataFrame:
    """Available-case responder rates with Wilson CIs within each level of each subgroup."""
    rows = []
    # Each classified row's patient, looked up once for every subgroup variable.
    position = pd.Index(patients["patient_id"]).get_indexer(classified["patient_id"])
    for variable in subgroups:
        levels = patients[variable]
        data = classified[["outcome", "occasion", "category"]].assign(
            level=levels.array.take(position, allow_fill=True)
        )
        order = (
            list(levels.cat.categories)
            if isinstance(levels.dtype, pd.CategoricalDtype)
            else sorted(levels.dropna().unique())
        )
        for (outcome, occasion), group in data.groupby(["outcome", "occasion"], sort=False):
            for level_value in [*order, None]:
                part = (
                    group[group["level"].isna()]
                    if level_value is None
                    else group[group["level"] == level_value]
                )
                # The '(missing)' level is listed even when empty: its absence would say so.
                n_level = len(part)
                row = rate_rows(part["category"], handling, n_level, level)[0]
                rows.append(
                    {
                        "subgroup": variable,
                        "level": "(missing)" if level_value is None else str(level_value),
                        "outcome": outcome,
                        "occasion": occasion,
                        **row,
                    }
                )
    if not rows:  # no subgroups declared
        return pd.DataFrame(columns=["subgroup", "level", "outcome", "occasion", "denominator"])
    return pd.DataFrame(rows).rename(columns={"N": "patients_in_level"})


def baseline_sd(
    patients: pd.DataFrame, outcome: Outcome, baseline: str
) -> tuple[int, float, float]:
    """The outcome's start values in the analysis set: (n, mean, SD with n - 1), the unit of the
    SD-based definitions and of the sweep in SD units."""
    start = patients[outcome.column_at(baseline)].astype(float).dropna()
    n = len(start)
    return n, float(start.mean()) if n else np.nan, float(start.std(ddof=1)) if n > 1 else np.nan


def threshold_sweep(
    patients: pd.DataFrame,
    outcome: Outcome,
    occasions: list[str],
    points: int,
    level: float,
) -> pd.DataFrame:
    """Share of available cases whose improvement reaches each threshold, on the absolute scale
    (0 to half the range; also in SD units of the start values, threshold_sd, baseline_sd) and
    the percent scale (0 to 100%), per follow-up occasion: the reverse
    cumulative distribution of improvement. It needs no MCID (rule threshold_sweep runs once per
    outcome and is not rerun when a threshold is edited)."""
    low, high = outcome.range
    sd = baseline_sd(patients, outcome, occasions[0])[2]
    rows = []
    for occasion in occasions[1:]:
        improvement, percent = improvement_scores(
            patients[outcome.column_at(occasions[0])],
            patients[outcome.column_at(occasion)],
            outcome,
        )
        scales = [
            (
                "absolute",
                improvement.to_numpy(dtype=float),
                np.linspace(0, (high - low) / 2, points),
            ),
            ("percent", np.asarray(percent, dtype=float), np.linspace(0, 100, points)),
        ]

        for scale, values, thresholds in scales:
            v = np.sort(values[~np.isnan(values)])
            # At least the threshold, whatever a rule's strictness: the sweep reads no MCID.
            reaching = len(v) - np.searchsorted(v, thresholds - TOLERANCE, side="left")
            for t, k in zip(thresholds, reaching, strict=True):
                ci = wilson_interval(int(k), len(v), level)
                rows.append(
                    {
                        "outcome": outcome.name,
                        "occasion": occasion,
                        "scale": scale,
                        "threshold": round(float(t), 6),
                        # The same point in SD units: a second axis, not a second curve (a
                        # curve of its own would publish counts between the absolute points).
                        "threshold_sd": round(float(t) / sd, 6)
                        if scale == "absolute" and sd > 0
                        else np.nan,
                        "reaching": int(k),
                        "n": len(v),
                        "pct": 100 * k / len(v) if len(v) else np.nan,
                        "ci_low_pct": 100 * ci[0],
                        "ci_high_pct": 100 * ci[1],
                    }
                )
    return pd.DataFrame(rows)


def versus_paper(
    rates: pd.DataFrame, paper: dict[str, dict[str, float]], labels: dict[str, str]
) -> pd.DataFrame:
    """Available-case rates beside the paper's published percentages."""
    rows = []
    for occasion, figures in paper.items():
        for outcome, pct in figures.items():
            r = rates[
                (rates["outcome"] == outcome)
                & (rates["occasion"] == occasion)
                & (rates["denominator"] == AVAILABLE)
            ]
            if r.empty:
                continue
            r = r.iloc[0]
            rows.append(
                {
                    "outcome": outcome,
                    "label": labels[outcome],
                    "occasion": occasion,
                    "paper_pct": pct,
                    "this_run_pct": r["pct"],
                    "ci_low_pct": r["ci_low_pct"],
                    "ci_high_pct": r["ci_high_pct"],
                    "responders": r["responders"],
                    "n": r["n"],
                    "paper_within_ci": r["ci_low_pct"] <= pct <= r["ci_high_pct"],
                    "rule": r["rule"],
                }
            )
    return frame(rows, VERSUS_PAPER_COLUMNS)
