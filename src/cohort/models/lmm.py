"""Rule lmm: the linear mixed model of each outcome over the occasions.

value ~ occasion + covariates, random intercept per patient (and per cluster, patients nested
in it, with config `cluster`): exact REML on per-patient sums (cohort.models.mixed; estimates
equal to lme4's and statsmodels'); standard errors, Satterthwaite or Kenward-Roger df and
t-based CIs as lmerTest (config `models.lmm`); estimated means per occasion at the mean of the
covariate design over the model's observations (categorical covariates at their observed
proportions: for this additive model, the average prediction with the occasion set, emmeans'
`weights = "proportional"`). The long-format reshape and the result rows serve rule groups'
occasion x group model too."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from cohort.core.distributions import t_critical, t_p_value
from cohort.core.settings import Outcome
from cohort.models.design import design_matrix, model_ready, term_level_n
from cohort.models.mixed import (
    LME4_CONVENTIONS,
    MixedFit,
    MixedModelSettings,
    random_intercept_reml,
)
from cohort.models.nested import nested_intercepts_reml

log = logging.getLogger(__name__)


def lmm_data(
    patients: pd.DataFrame, outcome: str, occasions: list[str], covariates: list[str]
) -> pd.DataFrame:
    """Long data for one outcome: one row per patient and measured occasion, complete on the
    patient-level `covariates` (every column a mixed model reads besides the outcome: the
    covariates, a comparison's group, a cluster); the one reshape of both mixed models."""
    long = patients.melt(
        id_vars=["patient_id", *dict.fromkeys(covariates)],
        value_vars=[f"{outcome}_{o}" for o in occasions],
        var_name="occasion",
        value_name="value",
    )
    long["occasion"] = pd.Categorical(
        long["occasion"].str.removeprefix(f"{outcome}_"), categories=occasions
    )
    long = long.dropna(subset=["value", *covariates])
    return model_ready(long).reset_index(drop=True)


def fit_lmm(
    long: pd.DataFrame,
    covariates: list[str],
    occasions: list[str],
    inference: MixedModelSettings = LME4_CONVENTIONS,
    cluster: str | None = None,
) -> MixedFit:
    """REML fit of value ~ occasion + covariates with a random intercept per patient (and per
    cluster, patients nested in it, when `cluster` names one)."""
    x, names = design_matrix(long, ["occasion", *covariates], {"occasion": occasions[0]})
    return fit_mixed(long, x, names, inference, cluster)


def fit_mixed(
    long: pd.DataFrame,
    x: np.ndarray,
    names: list[str],
    inference: MixedModelSettings,
    cluster: str | None,
) -> MixedFit:
    """The mixed model of `long`'s value on the design x: random intercept per patient, or per
    cluster and patient within it (nested.nested_intercepts_reml)."""
    y, patients = long["value"].to_numpy(dtype=float), long["patient_id"].to_numpy()
    if cluster:
        return nested_intercepts_reml(
            y, x, patients, long[cluster].to_numpy(), names, inference.covariance, inference.df
        )
    return random_intercept_reml(
        y, x, patients, names, covariance=inference.covariance, df_method=inference.df
    )


def mixed_effect_rows(fit: MixedFit, level: float) -> list[dict[str, Any]]:
    """One row per fixed effect: estimate, SE, df, CI and p by the fit's method (MixedFit)."""
    rows = []
    for term, weights in zip(fit.names, np.eye(len(fit.names)), strict=True):
        rows.append({"term": term, **contrast_row(fit, weights, level)})
    return rows


COVARIANCE_TERM = "covariance: "  # rows of the occasion terms' covariance in lmm.csv


def occasion_covariance_rows(
    fit: MixedFit, occasions: list[str], common: dict[str, Any]
) -> list[dict[str, Any]]:
    """The covariance of each pair of occasion terms (changes from the start), as rows
    `covariance: <a>, <b>`: with the SEs, the covariance matrix another site's coordinator
    needs to pool a contrast of them, e.g. the change between two follow-ups."""
    index = {
        o: fit.names.index(f"C(occasion, Treatment('{occasions[0]}'))[T.{o}]")
        for o in occasions[1:]
        if f"C(occasion, Treatment('{occasions[0]}'))[T.{o}]" in fit.names
    }
    pairs = [(a, b) for i, a in enumerate(index) for b in list(index)[i + 1 :]]
    return [
        {
            **common,
            "term": f"{COVARIANCE_TERM}{a}, {b}",
            "estimate": float(fit.cov_params[index[a], index[b]]),
        }  # fmt: skip
        for a, b in pairs
    ]


def contrast_row(fit: MixedFit, weights: np.ndarray, level: float) -> dict[str, float]:
    """Estimate, SE, df, t-based CI (z when df is infinite) and two-sided p of w'b."""
    estimate, se, df = fit.contrast(weights)
    half = t_critical(level, df) * se
    return {
        "estimate": estimate,
        "se": se,
        "df": df,
        "ci_low": estimate - half,
        "ci_high": estimate + half,
        "p_value": t_p_value(estimate / se, df),
    }


def mixed_method_note(
    inference: MixedModelSettings, level: float, cluster: str | None = None
) -> str:
    """The mixed models' inference in words, for table footers."""
    if cluster:
        return (
            f"REML, random intercepts per {cluster} and per patient within {cluster}; standard "
            "errors from s2(X'V^-1X)^-1; "
            + (
                f"Wald z {level:.0%} CI"
                if inference.df == "normal"
                else f"Satterthwaite degrees of freedom (as lmerTest); t-based {level:.0%} CI"
            )
        )
    se = {
        "model_based": "standard errors from s2(X'V^-1X)^-1 at the REML estimate (as lme4, SAS "
        "PROC MIXED)",
        "observed_information": "standard errors from the observed information (as statsmodels)",
    }[inference.covariance]
    if inference.df == "kenward_roger":
        return (
            f"REML; Kenward-Roger adjusted standard errors and degrees of freedom (as pbkrtest); "
            f"t-based {level:.0%} CI"
        )
    if inference.df == "normal":
        return f"REML; {se}; Wald z {level:.0%} CI"
    return f"REML; {se}; Satterthwaite degrees of freedom (as lmerTest); t-based {level:.0%} CI"


def lmm_tables(
    patients: pd.DataFrame,
    outcomes: dict[str, Outcome],
    occasions: list[str],
    covariates: list[str],
    level: float,
    inference: MixedModelSettings = LME4_CONVENTIONS,
    cluster: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Fixed effects, variance components and estimated means per occasion for every outcome
    (patients nested in `cluster` when it names a column)."""
    method = mixed_method_note(inference, level, cluster)
    effects, means, fits = [], [], {}
    for outcome, spec in outcomes.items():
        long = lmm_data(
            patients, outcome, occasions, [*covariates, *([cluster] if cluster else [])]
        )
        expected = patients.dropna(subset=[*covariates, *([cluster] if cluster else [])])
        expected = expected[expected[[f"{outcome}_{o}" for o in occasions]].notna().any(axis=1)]
        n_patients = long["patient_id"].nunique()
        try:
            result = fit_lmm(long, covariates, occasions, inference, cluster)
        except (ValueError, np.linalg.LinAlgError) as exc:  # singular design: reported
            log.warning("lmm %s failed: %s", outcome, exc)
            effects.append(
                {
                    "outcome": outcome,
                    "label": spec.label,
                    "patients": n_patients,
                    "observations": len(long),
                    "term": "(model failed)",
                    "converged": False,
                    "warnings": f"{type(exc).__name__}: {exc}",
                }
            )
            continue
        if n_patients != len(expected) or result.groups != n_patients or result.nobs != len(long):
            raise AssertionError(
                f"lmm {outcome}: N {result.groups}/{result.nobs} does not match the analysis set"
            )
        fits[outcome] = result
        notes = ["patient-intercept variance on the boundary (0)"] if result.boundary else []
        common = {
            "outcome": outcome,
            "label": spec.label,
            "patients": n_patients,
            "observations": len(long),
            "method": method,
            "converged": result.converged,
            "warnings": " | ".join(notes),
        }
        effects += _effect_rows(result, long, occasions, common, cluster, level)
        means += _estimated_mean_rows(result, occasions, long, common, level)
    means_columns = [
        "outcome",
        "label",
        "occasion",
        "estimated_mean",
        "se",
        "df",
        "ci_low",
        "ci_high",
    ]
    return (
        pd.DataFrame(effects),
        pd.DataFrame(means or None, columns=None if means else means_columns),
        fits,
    )


def _effect_rows(
    result: MixedFit,
    long: pd.DataFrame,
    occasions: list[str],
    common: dict[str, Any],
    cluster: str | None,
    level: float,
) -> list[dict[str, Any]]:
    """One model's rows of lmm.csv: fixed effects with their smallest level's n, the cluster
    variance, the occasion terms' covariances and the variance components."""
    effects: list[dict[str, Any]] = []
    level_n = term_level_n(result.names, long, "patient_id")
    for row in mixed_effect_rows(result, level):
        effects.append({**common, **row, "level_n": level_n[row["term"]]})
    if result.cluster_variance is not None:
        effects.append(
            {
                **common,
                "term": f"variance: {cluster} intercept",
                "estimate": result.cluster_variance,
                "clusters": result.clusters,
            }
        )
    effects += occasion_covariance_rows(result, occasions, common)
    effects.append(
        {**common, "term": "variance: patient intercept", "estimate": result.group_variance}
    )
    effects.append({**common, "term": "variance: residual", "estimate": result.scale})
    return effects


def _estimated_mean_rows(
    result: MixedFit,
    occasions: list[str],
    long: pd.DataFrame,
    common: dict[str, Any],
    level: float,
) -> list[dict[str, Any]]:
    """Estimated means per occasion, covariates at the mean of their design columns."""
    means: list[dict[str, Any]] = []
    occasion_cols = [i for i, c in enumerate(result.names) if c.startswith("C(occasion")]
    for occasion in occasions:
        x = result.design_mean.copy()
        x[occasion_cols] = 0.0
        col = f"C(occasion, Treatment('{occasions[0]}'))[T.{occasion}]"
        if col in result.names:
            x[result.names.index(col)] = 1.0
        row = contrast_row(result, x, level)
        means.append(
            {
                **common,
                "occasion": occasion,
                "estimated_mean": row.pop("estimate"),
                **{k: row[k] for k in ("se", "df", "ci_low", "ci_high")},
                "observed_n": int((long["occasion"] == occasion).sum()),
            }
        )
    return means
