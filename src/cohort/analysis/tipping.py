"""Delta-adjusted multiple imputation and its tipping point: how much worse would the patients
with a missing follow-up have to be for the conclusion to change?

Each completed data set of the imputation (rule impute, the MAR model) is taken as it is, and
the follow-up values that were missing are shifted by delta in the direction of worse (added
where lower is better, subtracted where higher is), kept within the scale; the responder rate
(the MCID rule, the one population rule) and the mean improvement from start are computed in
each set and pooled by Rubin's rules (the rate on the logit scale, as every MI rate here). At
delta = 0 the rate is the MI estimate of missing_data_sensitivity.csv. The delta grid is in SD
units of the start values (`models.tipping_point.deltas_sd`), printed on the outcome's scale.
The tipping point is the first delta of the grid at which the CI's bound in the direction of
worse reaches the null: 0 for the mean improvement, the stated margin for the rate
(`rate_margin_pct`); it is found within the grid's resolution, or said to lie beyond it.

This is the delta-adjustment (pattern-mixture) sensitivity analysis of van Buuren, Flexible
Imputation of Missing Data, 2nd ed., section 9.2 (mice's `post` argument), and of Ratitch,
O'Kelly & Tosiello, Pharm Stat 2013;12:337. With complete and balanced data a random-intercept
mixed model's change from start equals the mean change; so the mean improvement of the completed
sets stands for the mixed model's, without refitting it 2 x m x grid times.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cohort.analysis.imputation import degenerate_pooling, pooled_proportion, rubin_pool
from cohort.analysis.responders import (
    CATEGORIES,
    RESPONDER,
    baseline_sd,
    category_codes,
    in_population,
)
from cohort.core.settings import Outcome

TIPPING_COLUMNS = (
    "outcome", "occasion", "section", "delta_sd", "delta", "N", "missing_shifted",
    "rate_pct", "rate_ci_low_pct", "rate_ci_high_pct", "rate_margin_pct",
    "improvement", "improvement_ci_low", "improvement_ci_high", "method",
)  # fmt: skip


@dataclass(frozen=True)
class TippingSettings:
    """The config section `models.tipping_point`."""

    deltas_sd: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0)
    rate_margin_pct: float = 25.0

    @classmethod
    def from_config(cls, section: dict | None) -> TippingSettings:
        section = section or {}
        return cls(
            tuple(float(d) for d in section.get("deltas_sd", cls.deltas_sd)),
            float(section.get("rate_margin_pct", cls.rate_margin_pct)),
        )


def shifted_follow_up(
    follow: np.ndarray, was_missing: np.ndarray, delta: float, outcome: Outcome
) -> np.ndarray:
    """The completed follow-up values with those that were missing made worse by `delta` on the
    outcome's scale, within its range."""
    low, high = outcome.range
    worse = delta if outcome.better == "lower" else -delta
    return np.where(was_missing, np.clip(follow + worse, low, high), follow)


def improvement_of(start: np.ndarray, follow: np.ndarray, outcome: Outcome) -> np.ndarray:
    """Each patient's improvement from start (positive = better, whichever way the scale runs)."""
    return start - follow if outcome.better == "lower" else follow - start


def delta_adjusted(
    completed: Iterable[pd.DataFrame],
    observed: pd.DataFrame,
    outcomes: dict[str, Outcome],
    occasions: list[str],
    handling: str,
    settings: TippingSettings,
    level: float = 0.95,
) -> pd.DataFrame:
    """One row per outcome, follow-up and delta (section `delta`), and the tipping points
    (section `tipping point`), from the completed data sets and the observed analysis set (which
    follow-ups were missing). See the module docstring."""
    start_sd = {name: baseline_sd(observed, o, occasions[0])[2] for name, o in outcomes.items()}
    per_set: dict[tuple[str, str, float], list[tuple[float, int, float, float]]] = {}
    responder = CATEGORIES.index(RESPONDER)
    m = 0
    for data in completed:
        m += 1
        if len(data) != len(observed):
            raise AssertionError(f"a completed set of {len(data)} rows for N = {len(observed)}")
        for name, outcome in outcomes.items():
            start = data[outcome.column_at(occasions[0])].to_numpy(dtype=float, na_value=np.nan)
            for occasion in occasions[1:]:
                column = outcome.column_at(occasion)
                follow = data[column].to_numpy(dtype=float, na_value=np.nan)
                missing = observed[column].isna().to_numpy()
                if np.isnan(follow).any() or np.isnan(start).any():
                    continue  # not imputed (too few observed values): not estimable
                for k in settings.deltas_sd:
                    y = shifted_follow_up(follow, missing, k * start_sd[name], outcome)
                    codes = category_codes(start, y, outcome)
                    counted = in_population(codes, handling)
                    gain = improvement_of(start, y, outcome)
                    per_set.setdefault((name, occasion, k), []).append(
                        (
                            float((codes[counted] == responder).mean())
                            if counted.any()
                            else np.nan,
                            int(counted.sum()),
                            float(gain.mean()),
                            float(gain.var(ddof=1) / len(gain)),
                        )
                    )
    rows = []
    for name, outcome in outcomes.items():
        for occasion in occasions[1:]:
            missing = int(observed[outcome.column_at(occasion)].isna().sum())
            curve = []
            for k in settings.deltas_sd:
                base = {
                    "outcome": name, "occasion": occasion, "section": "delta", "delta_sd": k,
                    "delta": k * start_sd[name], "N": len(observed), "missing_shifted": missing,
                    "rate_margin_pct": settings.rate_margin_pct,
                }  # fmt: skip
                found = per_set.get((name, occasion, k), [])
                if len(found) < m or not m:
                    rows.append({**base, "method": "not estimable: the follow-up was not imputed"})
                    continue
                rows.append(_pooled_row(base, found, m, level))
                curve.append(rows[-1])
            rows += _tipping_rows(name, occasion, curve, settings, len(observed))
    return pd.DataFrame(rows, columns=list(TIPPING_COLUMNS))


def _pooled_row(
    base: dict, found: list[tuple[float, int, float, float]], m: int, level: float
) -> dict:
    """One delta: the rate (logit Rubin, or why not) and the mean improvement (Rubin, df of
    Barnard and Rubin with n - 1 complete-data df)."""
    rates, ns, gains, variances = (np.array(x) for x in zip(*found, strict=True))
    n = int(ns.mean())
    estimate, low, high, pooled = pooled_proportion(rates, n, level)
    why = degenerate_pooling(rates, n, pooled)
    gain = rubin_pool(gains, variances, level, df_complete=base["N"] - 1)
    method = (
        f"MICE, m = {m}, missing follow-ups shifted by delta towards worse; Rubin's rules "
        f"(rate on the logit scale; improvement with Barnard-Rubin df {gain.df:.0f})"
    )
    return {
        **base,
        "rate_pct": np.nan if why else 100 * estimate,
        "rate_ci_low_pct": np.nan if why else 100 * low,
        "rate_ci_high_pct": np.nan if why else 100 * high,
        "improvement": gain.estimate,
        "improvement_ci_low": gain.ci_low,
        "improvement_ci_high": gain.ci_high,
        "method": method + (f"; rate {why}" if why else ""),
    }


def _tipping_rows(
    name: str, occasion: str, curve: list[dict], settings: TippingSettings, n: int
) -> list[dict]:
    """The first delta at which each conclusion no longer holds: the rate's lower bound at or
    below the margin, the improvement's lower bound at or below 0 (None beyond the grid)."""
    out = []
    for what, column, null in (
        ("responder rate", "rate_ci_low_pct", settings.rate_margin_pct),
        ("mean improvement", "improvement_ci_low", 0.0),
    ):
        points = [r for r in curve if np.isfinite(r[column])]
        first = next((r for r in points if r[column] <= null), None)
        if not points:
            say = f"{what}: not estimable"
        elif first is None:
            top = points[-1]
            say = f"{what}: beyond the grid (the CI excludes {null:g} up to delta {top['delta']:.3g}, {top['delta_sd']:g} SD)"
        elif first is points[0] and first["delta_sd"] == 0:
            say = f"{what}: none (the CI includes {null:g} already at delta 0)"
        else:
            say = f"{what}: the CI first reaches {null:g} at delta {first['delta']:.3g} ({first['delta_sd']:g} SD of the start values)"
        out.append(
            {
                "outcome": name,
                "occasion": occasion,
                "section": "tipping point",
                "delta_sd": first["delta_sd"] if first else np.nan,
                "delta": first["delta"] if first else np.nan,
                "N": n,
                "rate_margin_pct": settings.rate_margin_pct,
                "method": say,
            }  # fmt: skip
        )
    return out
