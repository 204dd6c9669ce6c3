"""Patients classified under every definition of clinical significance (cohort.analysis.significance
gives the thresholds), the responder rate under each with both denominators and multiple
imputation, the definitions that classify alike, and the agreement between definitions (% and
Cohen's kappa, statsmodels').
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.stats.inter_rater import cohens_kappa

from cohort.analysis.imputation import degenerate_pooling, pooled_proportion
from cohort.analysis.responders import (
    CATEGORIES,
    COULD_NOT_IMPROVE,
    MISSING,
    NON_RESPONDER,
    RESPONDER,
    category_codes,
    in_population,
    rate_rows,
)
from cohort.analysis.significance import (
    RciRule,
    SlopeRule,
    Threshold,
    definition_rule_text,
    slope_values,
)
from cohort.core.distributions import normal_critical
from cohort.core.frames import frame
from cohort.core.settings import (
    Outcome,
)


# --- Classification under a definition ---------------------------------------------------------
def definition_codes(
    start: np.ndarray,
    follow: np.ndarray,
    outcome: Outcome,
    threshold: Threshold,
    occasion: str | None = None,
) -> np.ndarray:
    """Each patient's category (an index into cohort.analysis.responders.CATEGORIES) under one
    definition: the rule's threshold as cohort.analysis.responders.category_codes applies it, and for
    clinically significant change the follow-up beyond the cut-off, a start value already beyond
    it making the patient could-not-improve (there is nothing to cross). An index of
    RCI_METHODS (at `occasion`): responder beyond its critical value towards better,
    could-not-improve where even the scale's best value would not be."""
    if threshold.slopes is not None:
        raise ValueError("the HLM index reads every occasion: use slope_codes")
    if threshold.rci is not None:
        return rci_codes(start, follow, outcome, threshold.rci, occasion)
    codes = category_codes(start, follow, replace(outcome, mcid=threshold.rule))
    if threshold.cutoff is None:
        return codes
    start, follow = np.asarray(start, dtype=float), np.asarray(follow, dtype=float)
    with np.errstate(invalid="ignore"):
        if outcome.better == "lower":
            follow_beyond, start_beyond = follow < threshold.cutoff, start < threshold.cutoff
        else:
            follow_beyond, start_beyond = follow > threshold.cutoff, start > threshold.cutoff
    code = CATEGORIES.index
    codes = codes.copy()
    codes[(codes == code(RESPONDER)) & ~follow_beyond] = code(NON_RESPONDER)
    codes[(codes != code(MISSING)) & start_beyond] = code(COULD_NOT_IMPROVE)
    return codes


def rci_codes(
    start: np.ndarray, follow: np.ndarray, outcome: Outcome, rci: RciRule, occasion: str | None
) -> np.ndarray:
    """Categories under a reliable-change index (definition_codes)."""
    if occasion is None:
        raise ValueError("a reliable-change index needs the follow-up occasion")
    start, follow = np.asarray(start, dtype=float), np.asarray(follow, dtype=float)
    best = np.full_like(start, outcome.range[1] if outcome.better == "higher" else outcome.range[0])
    with np.errstate(invalid="ignore"):
        improved = rci.index(start, follow, occasion, outcome.better) > rci.critical
        reachable = rci.index(start, best, occasion, outcome.better) > rci.critical
    code = CATEGORIES.index
    codes = np.where(improved, code(RESPONDER), code(NON_RESPONDER))
    codes = np.where(~improved & ~reachable, code(COULD_NOT_IMPROVE), codes)
    return np.where(np.isnan(start) | np.isnan(follow), code(MISSING), codes)


def slope_codes(values: np.ndarray, outcome: Outcome, slopes: SlopeRule) -> np.ndarray:
    """Categories under the HLM index, for the patients measured at the first and the last
    occasion (every definition's denominator there; a middle occasion may be missing, the
    slope then rests on the others): responder beyond the critical value towards better,
    could-not-improve where even the scale's best value at every measured follow-up would not
    be."""
    values = np.asarray(values, dtype=float)
    best = outcome.range[1] if outcome.better == "higher" else outcome.range[0]
    at_best = values.copy()
    follow = at_best[:, 1:]
    follow[~np.isnan(follow)] = best
    with np.errstate(invalid="ignore"):
        improved = slopes.index(values, outcome.better) > slopes.critical
        reachable = slopes.index(at_best, outcome.better) > slopes.critical
    code = CATEGORIES.index
    codes = np.where(improved, code(RESPONDER), code(NON_RESPONDER))
    codes = np.where(~improved & ~reachable, code(COULD_NOT_IMPROVE), codes)
    return np.where(np.isnan(values[:, 0]) | np.isnan(values[:, -1]), code(MISSING), codes)


def _classifications(
    data: pd.DataFrame, outcomes: dict[str, Outcome], occasions: list[str], found: list[Threshold]
) -> Iterator[tuple[Threshold, str, np.ndarray, bool]]:
    """Each defined definition's categories (definition_codes) per follow-up occasion, and
    whether both occasions are observed for every patient (an imputed set left incomplete
    where too few values were observed to impute)."""
    for t in found:
        if not t.defined:
            continue
        outcome = outcomes[t.outcome]
        if t.slopes is not None:
            values = slope_values(data, outcome, occasions)
            ends = values[:, [0, -1]]
            complete = not np.isnan(ends).any()
            yield t, t.slopes.occasion, slope_codes(values, outcome, t.slopes), complete
            continue
        start = data[outcome.column_at(occasions[0])].to_numpy(dtype=float, na_value=np.nan)
        for occasion in occasions[1:]:
            follow = data[outcome.column_at(occasion)].to_numpy(dtype=float, na_value=np.nan)
            complete = not (np.isnan(start).any() or np.isnan(follow).any())
            yield t, occasion, definition_codes(start, follow, outcome, t, occasion), complete


def classify_definitions(
    patients: pd.DataFrame,
    outcomes: dict[str, Outcome],
    occasions: list[str],
    found: list[Threshold],
) -> pd.DataFrame:
    """Long table: patient x defined definition x outcome x follow-up occasion, with the category.
    Every column is categorical (one small code per row): the table has a row per patient and
    definition (60 per patient on the default config), which as strings took 2.7 GB at 10^5
    patients and more than this machine's 24 GB at 10^6."""
    columns = ["patient_id", "definition", "outcome", "occasion", "category"]
    keys, codes = [], []
    for t, occasion, category, _ in _classifications(patients, outcomes, occasions, found):
        keys.append((t.definition.name, t.outcome, occasion))
        codes.append(np.asarray(category, dtype=np.int8))
    if not keys:
        return pd.DataFrame(columns=columns)
    n = len(patients)
    ids = pd.Index(patients["patient_id"])
    if not ids.is_unique:
        raise ValueError("classify_definitions: patient_id is not unique in the analysis set")

    def repeated(values: list[str]) -> pd.Categorical:
        levels = list(dict.fromkeys(values))
        index = np.array([levels.index(v) for v in values], dtype=np.int16)
        return pd.Categorical.from_codes(np.repeat(index, n), categories=levels)

    return pd.DataFrame(
        {
            "patient_id": pd.Categorical.from_codes(np.tile(np.arange(n), len(keys)), ids),
            "definition": repeated([k[0] for k in keys]),
            "outcome": repeated([k[1] for k in keys]),
            "occasion": repeated([k[2] for k in keys]),
            "category": pd.Categorical.from_codes(np.concatenate(codes), list(CATEGORIES)),
        }
    )


def classification_blocks(
    classified: pd.DataFrame, by: list[str]
) -> dict[tuple, np.ndarray | slice]:
    """The rows of each combination of the `by` columns of a long classification table (as
    groupby(by, sort=False): in order of first appearance, rows in table order, rows with a
    missing key left out), found from the columns' codes in one pass where each combination is
    one run of rows, as classify_definitions writes them (then its rows are a slice: no copy),
    by a stable sort otherwise (then an array of positions). pandas' groupby hashed the table's
    60 rows per patient: 20 s at 10^6 patients; the codes are combined in place (each copy of
    them is 480 MB there)."""
    combined = np.zeros(len(classified), dtype=np.int64)
    complete = np.ones(len(classified), dtype=bool)
    for column in by:
        values = classified[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            codes, size = values.cat.codes.to_numpy(), len(values.cat.categories)
        else:
            codes, uniques = pd.factorize(values)
            size = len(uniques)
        combined *= size + 1  # combined * (size + 1) + (code + 1), a missing code -1 -> 0
        combined += codes
        combined += 1
        complete &= codes >= 0
    starts = np.flatnonzero(np.r_[True, combined[1:] != combined[:-1]]) if len(combined) else []
    ends = [*starts[1:], len(combined)]
    first: dict[int, int] = {}  # each combination's first row
    for a in starts:
        first.setdefault(int(combined[a]), int(a))
    rows_of: dict[int, np.ndarray | slice]
    if len(first) == len(starts):  # each combination one run of rows
        rows_of = {int(combined[a]): slice(int(a), int(b)) for a, b in zip(starts, ends, strict=True)}  # fmt: skip
    else:
        order = np.argsort(combined, kind="stable")
        parts = np.split(order, np.flatnonzero(np.diff(combined[order])) + 1)
        rows_of = {int(combined[part[0]]): part for part in parts if len(part)}
    return {
        tuple(classified[column].iat[row] for column in by): rows_of[key]
        for key, row in sorted(first.items(), key=lambda item: item[1])
        if complete[row]
    }


def category_codes_of(classified: pd.DataFrame) -> np.ndarray:
    """The category column as indices into CATEGORIES (-1 where missing); a label that is not
    one of CATEGORIES gets a code of its own beyond them, so that two such labels still differ."""
    values = classified["category"]
    if isinstance(values.dtype, pd.CategoricalDtype) and list(values.cat.categories) == list(CATEGORIES):  # fmt: skip
        return values.cat.codes.to_numpy()
    codes, labels = pd.factorize(values)
    known = [CATEGORIES.index(v) if v in CATEGORIES else len(CATEGORIES) + i for i, v in enumerate(labels)]  # fmt: skip
    out = np.full(len(codes), -1, dtype=np.int16)
    out[codes >= 0] = np.asarray(known, dtype=np.int16)[codes[codes >= 0]]
    return out


# --- Rates under each definition ---------------------------------------------------------------
RATE_COLUMNS = (
    "definition", "outcome", "occasion", "analysis", "rule", "same_as", "threshold_absolute",
    "threshold_percent", "strict", "cutoff", "N", "n", "responders",
    "non_responders", "could_not_improve", "missing", "pct", "ci_low_pct", "ci_high_pct",
    "method", "fmi", "monte_carlo_se_logit",
)  # fmt: skip
COMPLETE_CASE, ALL_INCLUDED, MULTIPLE_IMPUTATION = (
    "available cases",
    "all in analysis set, missing = non-responder",
    "multiple imputation",
)


def imputed_rates(
    completed: Iterable[pd.DataFrame],
    outcomes: dict[str, Outcome],
    occasions: list[str],
    found: list[Threshold],
    handling: str,
) -> tuple[int, dict[tuple[str, str, str], list[tuple[float, int]]]]:
    """In each completed data set, the responder rate and denominator under every defined
    definition, per outcome and follow-up (not estimable where the imputation left values
    missing): (m, rates by (definition, outcome, occasion))."""
    rates: dict[tuple[str, str, str], list[tuple[float, int]]] = {}
    m = 0
    responder = CATEGORIES.index(RESPONDER)
    for data in completed:
        m += 1
        for t, occasion, codes, complete in _classifications(data, outcomes, occasions, found):
            d = int(in_population(codes, handling).sum())
            if complete and d:  # else not imputed: too few observed values
                key = (t.definition.name, t.outcome, occasion)
                rates.setdefault(key, []).append((int((codes == responder).sum()) / d, d))
    return m, rates


def identical_definitions(
    classified: pd.DataFrame, blocks: dict[tuple, np.ndarray | slice] | None = None
) -> dict[tuple[str, str, str], str]:
    """Each definition that classifies every patient as an earlier one does (table order, the
    primary first) at an outcome and occasion, with that earlier definition's name: two rows
    of the same counts are one result, not two. `blocks`: the table's classification_blocks by
    definition, outcome and occasion, where the caller has them."""
    same: dict[tuple[str, str, str], str] = {}
    seen: dict[tuple[str, str], list[tuple[str, np.ndarray]]] = {}
    codes = category_codes_of(classified)
    if blocks is None:
        blocks = classification_blocks(classified, ["definition", "outcome", "occasion"])
    for (name, outcome, occasion), rows in blocks.items():
        categories = codes[rows]  # patients in the analysis set's order
        earlier = seen.setdefault((outcome, occasion), [])
        match = next(
            (d for d, c in earlier if len(c) == len(categories) and (c == categories).all()), None
        )
        if match is not None:
            same[(name, outcome, occasion)] = match
        earlier.append((name, categories))
    return same


def definition_rates(
    classified: pd.DataFrame,
    found: list[Threshold],
    occasions: list[str],
    handling: str,
    n_analysis: int,
    level: float,
    imputed: tuple[int, dict[tuple[str, str, str], list[tuple[float, int]]]],
) -> pd.DataFrame:
    """The responder rate under each definition, outcome and follow-up: available cases and all
    of the analysis set (missing = non-responder) with Wilson CIs (cohort.analysis.responders.rate_rows),
    and pooled over the imputations by Rubin's rules on the logit scale. A definition that cannot
    be defined for the outcome gets one row saying why; one that classifies every patient as an
    earlier one does names it (same_as)."""
    m, rates = imputed
    groups = classification_blocks(classified, ["definition", "outcome", "occasion"])
    same = identical_definitions(classified, groups)
    rows = []
    for t in found:
        name = t.definition.name
        for occasion in occasions[1:]:
            base = {"definition": name, "outcome": t.outcome, "occasion": occasion, "N": n_analysis}
            if not t.defined:
                rows.append({**base, "analysis": "", "method": f"not defined: {t.reason}"})
                continue
            if t.slopes is not None and occasion != t.slopes.occasion:
                rows.append(
                    {
                        **base,
                        "analysis": "",
                        "method": "not defined at this occasion: the HLM index is each patient's "
                        f"slope over all occasions, published at {t.slopes.occasion}",
                    }
                )
                continue
            rule = definition_rule_text(t)
            base |= {
                "threshold_absolute": t.rule.absolute if t.rule else np.nan,
                "threshold_percent": t.rule.percent if t.rule else np.nan,
                "strict": t.rule.strict if t.rule else np.nan,
                "cutoff": t.cutoff,
            }
            group = classified["category"].iloc[groups[(name, t.outcome, occasion)]]
            for rate, analysis in zip(
                rate_rows(group, handling, n_analysis, level),
                (COMPLETE_CASE, ALL_INCLUDED),
                strict=True,
            ):
                rows.append(
                    {
                        **base,
                        "analysis": analysis,
                        "rule": rule,
                        "same_as": same.get((name, t.outcome, occasion), ""),
                        **{k: rate[k] for k in RATE_COLUMNS if k in rate and k not in base},
                        "method": rate["ci_method"],
                    }
                )
            rows.append(
                _imputed_rate_row(
                    rates.get((name, t.outcome, occasion)), m, base | {"rule": rule}, level
                )
            )
    return frame(rows, RATE_COLUMNS).reindex(columns=list(RATE_COLUMNS))


def _imputed_rate_row(
    pooled_rates: list[tuple[float, int]] | None, m: int, base: dict[str, Any], level: float
) -> dict[str, Any]:
    """The multiple-imputation row of a definition at an occasion: the rate pooled by Rubin's
    rules on the logit scale, or why it is not estimable or degenerate."""
    base = {**base, "analysis": MULTIPLE_IMPUTATION}
    if not pooled_rates or len(pooled_rates) < m:
        return {
            **base,
            "method": "not estimable: too few patients measured at this occasion to impute",
        }
    shares, ns = zip(*pooled_rates, strict=True)
    n = int(np.mean(ns))
    estimate, low, high, pooled = pooled_proportion(np.array(shares), n, level)
    why = degenerate_pooling(np.array(shares), n, pooled)
    if why:
        return {**base, "n": n, "method": why}
    return {
        **base,
        "n": n,
        "pct": 100 * estimate,
        "ci_low_pct": 100 * low,
        "ci_high_pct": 100 * high,
        "method": f"MICE, m = {m}, Rubin's rules on the logit scale, df {pooled.df:.0f}",
        "fmi": pooled.fmi,
        "monte_carlo_se_logit": np.sqrt(pooled.between / m),
    }


# --- Agreement between definitions -------------------------------------------------------------
AGREEMENT_COLUMNS = (
    "outcome", "occasion", "first", "second", "n", "both", "first_only", "second_only",
    "neither", "agreement_pct", "kappa", "kappa_ci_low", "kappa_ci_high", "method",
)  # fmt: skip


def kappa_2x2(both: int, first_only: int, second_only: int, neither: int, level: float) -> tuple[float, float, float]:  # fmt: skip
    """Cohen's kappa of two binary classifications and its asymptotic CI (statsmodels'
    cohens_kappa: the large-sample SE of Fleiss, Cohen & Everitt, Psychol Bull 1969;72:323);
    NaN where undefined (one classification constant, so that chance agreement is 1)."""
    table = np.array([[both, first_only], [second_only, neither]], dtype=float)
    n = table.sum()
    chance = (table.sum(axis=1) @ table.sum(axis=0)) / n**2 if n else 1.0
    if n == 0 or math.isclose(chance, 1.0):
        return math.nan, math.nan, math.nan
    result = cohens_kappa(table)
    kappa, se = float(result["kappa"]), float(result["std_kappa"])
    if se == 0:  # perfect agreement (or disagreement): the asymptotic SE is 0, no interval
        return kappa, math.nan, math.nan
    half = normal_critical(level) * se
    return kappa, kappa - half, kappa + half


def agreement(classified: pd.DataFrame, level: float) -> pd.DataFrame:
    """Pairwise agreement between definitions, per outcome and follow-up occasion, among the
    patients measured at start and at the occasion (could-not-improve counts as not improved,
    so that every pair is compared on the same patients): responder under both, the first only,
    the second only, neither; % agreement and Cohen's kappa with its CI (none at perfect
    agreement, where the asymptotic SE is 0)."""
    rows = []
    for (outcome, occasion), (names, wide) in _wide_categories(classified).items():
        measured = wide[:, 0] != CATEGORIES.index(MISSING)
        responder = wide[measured] == CATEGORIES.index(RESPONDER)
        for (i, first), (j, second) in itertools.combinations(enumerate(names), 2):
            x, y = responder[:, i], responder[:, j]
            cells = [
                int((x & y).sum()),
                int((x & ~y).sum()),
                int((~x & y).sum()),
                int((~x & ~y).sum()),
            ]
            n = int(measured.sum())
            kappa, low, high = kappa_2x2(*cells, level)
            rows.append(
                {
                    "outcome": outcome,
                    "occasion": occasion,
                    "first": first,
                    "second": second,
                    "n": n,
                    **dict(
                        zip(("both", "first_only", "second_only", "neither"), cells, strict=True)
                    ),
                    "agreement_pct": 100 * (cells[0] + cells[3]) / n if n else np.nan,
                    "kappa": kappa,
                    "kappa_ci_low": low,
                    "kappa_ci_high": high,
                    "method": f"Cohen's kappa, {level:.0%} CI: asymptotic SE (Fleiss, Cohen & Everitt 1969)",
                }
            )
    return frame(rows, AGREEMENT_COLUMNS).reindex(columns=list(AGREEMENT_COLUMNS))


def _wide_categories(classified: pd.DataFrame) -> dict[tuple[str, str], tuple[list[str], np.ndarray]]:  # fmt: skip
    """Per outcome and occasion, the definitions (in table order: config order, the primary
    first) and a patients x definitions matrix of category codes (-1 where a definition did
    not classify a patient): the long table's pivot, without pandas' pivot (36 s at 10^6)."""
    codes = category_codes_of(classified)
    patients = classification_blocks(classified, ["outcome", "occasion", "definition"])
    by_occasion: dict[tuple[str, str], list[tuple[str, np.ndarray]]] = {}
    for (outcome, occasion, name), rows in patients.items():
        by_occasion.setdefault((outcome, occasion), []).append((name, rows))
    ids = classified["patient_id"]
    ids = ids.cat.codes.to_numpy() if isinstance(ids.dtype, pd.CategoricalDtype) else pd.factorize(ids)[0]  # fmt: skip
    wide = {}
    for key, parts in by_occasion.items():
        first = ids[parts[0][1]]
        if all(np.array_equal(ids[rows], first) for _, rows in parts):  # same patients, same order
            matrix = np.column_stack([codes[rows] for _, rows in parts])
        else:
            positions, union = pd.factorize(np.concatenate([ids[rows] for _, rows in parts]))
            matrix = np.full((len(union), len(parts)), -1, dtype=np.int16)
            start = 0
            for j, (_, rows) in enumerate(parts):
                values = codes[rows]
                matrix[positions[start : start + len(values)], j] = values
                start += len(values)
        wide[key] = ([name for name, _ in parts], matrix)
    return wide
