"""How the outcomes changed: each outcome at each occasion, the change from the baseline occasion
(paired), and a Friedman test across all occasions among complete cases.

Change = value at the later occasion minus value at baseline (in the scale's own direction); the
`better` column says whether a negative change is an improvement. Methods:
- mean change: 95% CI by the t distribution with n - 1 degrees of freedom;
- Wilcoxon signed-rank test on the paired differences: V (sum of positive ranks) and p as R's
  wilcox.test (exact with fewer than 50 differences and no ties or zeros, else the normal
  approximation with continuity correction); zero differences dropped (Wilcoxon) or ranked
  then dropped (Pratt), config statistics.wilcoxon_zeros;
- standardized response mean (SRM) = mean change / SD of change (Liang et al. 1990);
- Friedman test across all occasions, complete cases, chi-square approximation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from cohort.analysis.tables import dominance_shares, quartiles
from cohort.core.distributions import t_critical
from cohort.core.settings import Outcome, Statistics

WILCOXON_EXACT_MAX_N = 50


def describe(values: pd.Series, quantiles: str = "type7") -> dict[str, float]:
    """n, median, Q1, Q3 (tables.quartiles) mean and SD (n - 1) of the non-missing values, and
    the mean's dominance evidence (tables.dominance_shares; rule publish drops it)."""
    v = values.dropna().astype(float)
    return {
        "n": len(v),
        **quartiles(v, quantiles),
        "mean": v.mean() if len(v) else np.nan,
        "sd": v.std(ddof=1) if len(v) > 1 else np.nan,
        **dominance_shares(v),
    }


def mean_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and its t-based confidence interval (n - 1 df)."""
    n = len(values)
    mean = float(np.mean(values)) if n else np.nan
    if n < 2:
        return mean, np.nan, np.nan
    se = float(np.std(values, ddof=1)) / np.sqrt(n)
    half = t_critical(level, n - 1) * se
    return mean, mean - half, mean + half


def wilcoxon_signed_rank(differences: np.ndarray, zeros: str = "wilcox") -> dict[str, Any]:
    """Wilcoxon signed-rank test of paired differences, as R's wilcox.test reports it: the
    statistic V is the sum of the ranks of the positive differences; the p-value is exact when
    fewer than 50 differences remain and none are tied or zero, else from the normal
    approximation with tie and continuity corrections (R's rule). `zeros`: wilcox drops zero
    differences before ranking (R, SPSS); pratt ranks them and then drops them (Pratt 1959;
    normal approximation)."""
    d = np.asarray(differences, dtype=float)
    nonzero = d[d != 0]
    n = len(nonzero)
    if n == 0:
        return {
            "n_nonzero": 0,
            "statistic": np.nan,
            "p_value": np.nan,
            "method": "no non-zero differences",
        }
    ranked = d if zeros == "pratt" else nonzero
    ranks = stats.rankdata(np.abs(ranked))
    v = float(ranks[ranked > 0].sum())
    ties = len(np.unique(np.abs(nonzero))) < n
    exact = zeros == "wilcox" and n < WILCOXON_EXACT_MAX_N and not ties and n == len(d)
    result = stats.wilcoxon(
        ranked,
        zero_method=zeros,
        correction=not exact,
        method="exact" if exact else "approx",
    )
    zero_note = "zeros dropped" if zeros == "wilcox" else "zeros ranked then dropped (Pratt)"
    method = "exact" if exact else "normal approximation, tie and continuity corrected"
    return {
        "n_nonzero": n,
        "statistic": v,
        "p_value": float(result.pvalue),
        "method": f"V = sum of positive ranks; {method}; {zero_note}",
    }


def outcome_levels(
    patients: pd.DataFrame, outcomes: dict[str, Outcome], occasions: list[str], quantiles: str
) -> pd.DataFrame:
    """Each outcome at each occasion: n, median [Q1, Q3] (`quantiles` definition), mean (SD)."""
    rows = []
    for name, outcome in outcomes.items():
        for occasion in occasions:
            stat = describe(patients[outcome.column_at(occasion)], quantiles)
            rows.append(
                {
                    "outcome": name,
                    "label": outcome.label,
                    "occasion": occasion,
                    "N": len(patients),
                    **stat,
                }
            )
    return pd.DataFrame(rows)


def outcome_changes(
    patients: pd.DataFrame,
    outcomes: dict[str, Outcome],
    occasions: list[str],
    statistics: Statistics,
) -> pd.DataFrame:
    """Change from the baseline occasion to each later one, among patients measured at both."""
    baseline = occasions[0]
    level = statistics.confidence_level
    rows = []
    for name, outcome in outcomes.items():
        for occasion in occasions[1:]:
            pair = patients[[outcome.column_at(baseline), outcome.column_at(occasion)]].dropna()
            d = (pair.iloc[:, 1] - pair.iloc[:, 0]).to_numpy(dtype=float)
            stat = describe(pd.Series(d), statistics.quantiles)
            mean, low, high = mean_ci(d, level)
            test = wilcoxon_signed_rank(d, statistics.wilcoxon_zeros)
            rows.append(
                {
                    "outcome": name,
                    "label": outcome.label,
                    "comparison": f"{occasion} - {baseline}",
                    "occasion": occasion,
                    "better": outcome.better,
                    "N": len(patients),
                    "pairs_n": len(d),
                    "median_change": stat["median"],
                    "q1_change": stat["q1"],
                    "q3_change": stat["q3"],
                    "mean_change": mean,
                    "sd_change": stat["sd"],
                    "ci_low": low,
                    "ci_high": high,
                    "ci_method": f"{level:.0%} CI, t distribution (n - 1 df)",
                    "wilcoxon_statistic": test["statistic"],
                    "wilcoxon_n_nonzero": test["n_nonzero"],
                    "wilcoxon_p": test["p_value"],
                    "wilcoxon_method": test["method"],
                    "srm": mean / stat["sd"] if stat["sd"] and not np.isnan(stat["sd"]) else np.nan,
                    **dominance_shares(d),
                }
            )
    return pd.DataFrame(rows)


def friedman_tests(
    patients: pd.DataFrame, outcomes: dict[str, Outcome], occasions: list[str]
) -> pd.DataFrame:
    """Friedman test across all occasions, among patients measured at every occasion."""
    rows = []
    for name, outcome in outcomes.items():
        complete = (
            patients[[outcome.column_at(o) for o in occasions]].dropna().to_numpy(dtype=float)
        )
        n = len(complete)
        if n >= 2 and len(occasions) >= 3:
            result = stats.friedmanchisquare(*complete.T)
            statistic, p = float(result.statistic), float(result.pvalue)
        else:
            statistic, p = np.nan, np.nan
        rows.append(
            {
                "outcome": name,
                "label": outcome.label,
                "occasions": " / ".join(occasions),
                "N": len(patients),
                "complete_cases_n": n,
                "statistic": statistic,
                "df": len(occasions) - 1,
                "p_value": p,
                "method": "Friedman chi-square (ties corrected), complete cases",
            }
        )
    return pd.DataFrame(rows)
