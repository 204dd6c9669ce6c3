"""Rules missing_data and predictors: the pattern of missing data (per variable, completers vs
lost) and responder rates under complete-case analysis, multiple imputation (Rubin's rules on
the logit scale) and non-responder imputation, side by side."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from cohort.analysis.imputation import degenerate_pooling, pooled_proportion
from cohort.analysis.imputed_sets import ImputedAnalyses
from cohort.analysis.predictors import patient_categories
from cohort.analysis.responders import (
    AVAILABLE,
    rate_rows,
)
from cohort.analysis.tables import dominance_shares
from cohort.models.design import is_categorical

log = logging.getLogger(__name__)


def missingness_table(
    patients: pd.DataFrame, outcomes: list[str], occasions: list[str], variables: list[str]
) -> pd.DataFrame:
    """Missing values per variable (baseline) and per outcome and occasion, n and % of N."""
    n = len(patients)
    rows = [
        {"variable": v, "occasion": "baseline", "missing": int(patients[v].isna().sum())}
        for v in variables
    ]
    for outcome in outcomes:
        for occasion in occasions:
            rows.append(
                {
                    "variable": outcome,
                    "occasion": occasion,
                    "missing": int(patients[f"{outcome}_{occasion}"].isna().sum()),
                }
            )
    table = pd.DataFrame(rows)
    table["N"] = n
    table["pct"] = 100 * table["missing"] / n
    return table


def completers_vs_lost(patients: pd.DataFrame, occasion: str, variables: list[str]) -> pd.DataFrame:
    """Baseline of patients assessed at `occasion` vs those lost: mean (SD) or %, standardized
    difference, and Welch's t test or a chi-square test."""
    from scipy import stats  # 0.6-1 s to import: only rule missing_data needs it

    lost = ~patients[f"assessed_{occasion}"].astype(bool)
    rows = []
    for v in variables:
        values = patients[v]
        if is_categorical(values) or pd.api.types.is_bool_dtype(values.dtype):
            valid = values.dropna().astype(str)
            table = pd.crosstab(valid, lost[valid.index])
            p = (
                float(stats.chi2_contingency(table)[1])
                if table.shape == (table.shape[0], 2) and table.shape[0] > 1
                else np.nan
            )
            for level_value in table.index:
                p1 = (valid[~lost[valid.index]] == level_value).mean()
                p2 = (valid[lost[valid.index]] == level_value).mean()
                pooled = np.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / 2)
                rows.append(
                    {
                        "variable": v,
                        "level": level_value,
                        "statistic": "%",
                        "completers": 100 * p1,
                        "lost": 100 * p2,
                        "completers_n": int((~lost[valid.index]).sum()),
                        "lost_n": int(lost[valid.index].sum()),
                        "smd": (p1 - p2) / pooled if pooled > 0 else 0.0,
                        "p_value": p,
                        "test": "chi-square",
                    }
                )
        else:
            a = values[~lost].dropna().astype(float)
            b = values[lost].dropna().astype(float)
            pooled = np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
            p = (
                float(stats.ttest_ind(a, b, equal_var=False).pvalue)
                if len(a) > 1 and len(b) > 1
                else np.nan
            )
            rows.append(
                {
                    "variable": v,
                    "level": "",
                    "statistic": "mean",
                    "completers": a.mean(),
                    "lost": b.mean(),
                    "completers_n": len(a),
                    "lost_n": len(b),
                    "smd": (a.mean() - b.mean()) / pooled if pooled > 0 else 0.0,
                    "p_value": p,
                    "test": "Welch t",
                    **dominance_shares(a, "completers_dominance"),
                    **dominance_shares(b, "lost_dominance"),
                    **dominance_shares(pd.concat([a, b]), "all_dominance"),
                }
            )
    table = pd.DataFrame(rows)
    table.insert(0, "occasion", occasion)
    return table


def sensitivity_table(
    patients: pd.DataFrame,
    classified: pd.DataFrame,
    imputed: ImputedAnalyses,
    outcomes: list[str],
    occasions: list[str],
    handling: str,
    level: float,
) -> pd.DataFrame:
    """Responder rates: complete case, multiple imputation (Rubin, logit scale) and
    non-responder imputation, side by side, per outcome and follow-up occasion."""
    n = len(patients)
    rows = []
    for outcome in outcomes:
        for occasion in occasions[1:]:
            cats = pd.Series(patient_categories(classified, patients, outcome, occasion))
            for rate in rate_rows(cats, handling, n, level):  # the responders table's own rows
                analysis = (
                    "complete case"
                    if rate["denominator"] == AVAILABLE
                    else "non-responder imputation"
                )
                rows.append(
                    {
                        "outcome": outcome,
                        "occasion": occasion,
                        "analysis": analysis,
                        **{
                            k: rate[k]
                            for k in ("responders", "n", "pct", "ci_low_pct", "ci_high_pct")
                        },
                        "method": rate["ci_method"],
                    }
                )
            rows.append(_imputed_rate(imputed, outcome, occasion, n, level))
    table = pd.DataFrame(rows)
    table["denominator_note"] = table["analysis"].map(
        {
            "complete case": AVAILABLE,
            "non-responder imputation": "analysis set, missing = non-responder",
            "multiple imputation": "analysis set, missing values imputed",
        }
    )
    return table


def _imputed_rate(
    imputed: ImputedAnalyses, outcome: str, occasion: str, n: int, level: float
) -> dict[str, Any]:
    """The multiple-imputation row: the rate pooled by Rubin's rules on the logit scale, or why
    it is not estimable or degenerate (`n`: the analysis set)."""
    if (outcome, occasion) not in imputed.rates:
        return {
            "outcome": outcome,
            "occasion": occasion,
            "analysis": "multiple imputation",
            "n": n,
            "method": "not estimable: too few patients measured at this occasion to impute",
        }
    rates, ns = zip(*imputed.rates[(outcome, occasion)], strict=True)
    estimate, low, high, pooled = pooled_proportion(np.array(rates), int(np.mean(ns)), level)
    why = degenerate_pooling(np.array(rates), int(np.mean(ns)), pooled)
    if why:
        return {
            "outcome": outcome,
            "occasion": occasion,
            "analysis": "multiple imputation",
            "n": int(np.mean(ns)),
            "method": why,
        }
    return {
        "outcome": outcome,
        "occasion": occasion,
        "analysis": "multiple imputation",
        "responders": np.nan,
        "n": int(np.mean(ns)),
        "pct": 100 * estimate,
        "ci_low_pct": 100 * low,
        "ci_high_pct": 100 * high,
        "method": f"MICE, m = {imputed.m}, Rubin's rules on the logit scale, df {pooled.df:.0f}",
        "fmi": pooled.fmi,
        "lambda": pooled.lambda_,
        "monte_carlo_se_logit": np.sqrt(pooled.between / imputed.m),
    }
