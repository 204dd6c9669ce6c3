"""Rule predictors: logistic models of response per outcome and follow-up, complete case and
pooled over the imputations.

responder ~ covariates + baseline score + dose + categories received, over the responder
population (cohort.analysis.responders.in_population); maximum likelihood or Firth's penalised
likelihood, profile-likelihood or Wald CIs, cluster-robust SEs with a cluster (config
`models.logistic`, `cluster`; cohort.models.logistic); events per variable (EPV) = the smaller of
events and non-events per coefficient, flagged below `models.logistic.epv_minimum` (Peduzzi
et al. 1996); Rubin's rules over the m imputations, only when all m fits succeeded."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from cohort.analysis.imputation import rubin_pool
from cohort.analysis.imputed_sets import ImputedAnalyses
from cohort.analysis.responders import (
    RESPONDER,
    in_population,
)
from cohort.core.distributions import normal_critical, normal_p_value, t_p_value
from cohort.models.design import design_matrix, term_level_n
from cohort.models.logistic import (
    R_CONVENTIONS,
    LogisticFit,
    LogisticSettings,
    cluster_robust,
    logistic_regression,
    profile_likelihood,
)

log = logging.getLogger(__name__)


def predictor_terms(
    outcome: str, covariates: list[str], dose: str | None, categories: list[str], baseline: str
) -> list[str]:
    """Explanatory variables of the response model: covariates, baseline score, dose, categories."""
    return [
        *covariates,
        f"{outcome}_{baseline}",
        *([dose] if dose else []),
        *(f"received_{c}" for c in categories),
    ]


def response_frame(
    patients: pd.DataFrame, categories: np.ndarray, variables: list[str], handling: str
) -> pd.DataFrame:
    """One row per patient of the responder population (responders.in_population: responder 1,
    non-responder 0, could-not-improve 0 unless excluded), complete on the explanatory
    variables; `categories` is aligned with the patient rows."""
    counted = in_population(categories, handling)
    frame = patients.loc[counted, ["patient_id", *variables]].assign(
        responder=(categories[counted] == RESPONDER).astype(float)
    )
    return frame.dropna().reset_index(drop=True)


def patient_categories(
    classified: pd.DataFrame, patients: pd.DataFrame, outcome: str, occasion: str
) -> np.ndarray:
    """The responders rule's categories for one outcome and occasion, aligned with the patient
    rows (by position when the classification is in patient order, as classify_all writes it;
    otherwise by patient id). Raises if a patient is unclassified."""
    part = classified[(classified["outcome"] == outcome) & (classified["occasion"] == occasion)]
    ids = part["patient_id"].reset_index(drop=True)
    if len(ids) == len(patients) and ids.eq(patients["patient_id"].reset_index(drop=True)).all():
        return part["category"].to_numpy(dtype=object)
    rows = pd.Index(ids).get_indexer(patients["patient_id"])
    if (rows < 0).any():
        raise AssertionError(f"{outcome} {occasion}: {int((rows < 0).sum())} patients unclassified")
    return part["category"].to_numpy(dtype=object)[rows]


def fit_logistic(
    frame: pd.DataFrame, variables: list[str], firth: bool = False
) -> tuple[LogisticFit, np.ndarray, np.ndarray]:
    """Logistic regression of `responder` on the variables (dummies for categorical ones), by
    maximum likelihood or Firth's penalised likelihood; returns the fit, y and the design."""
    x, names = design_matrix(frame, variables, drop_unused_levels=True)
    y = frame["responder"].to_numpy(dtype=float)
    result = logistic_regression(y, x, names, firth=firth)
    for message in result.warnings:
        log.warning("%s", message)
    return result, y, x


def logistic_method(firth: bool, ci: str, level: float, cluster: str | None = None) -> str:
    """The logistic model's estimator and inference in words (method column, footers)."""
    estimator = "Firth's penalised likelihood" if firth else "maximum likelihood"
    if cluster:
        return (
            f"logistic regression, {estimator}; cluster-robust (sandwich) standard errors by "
            f"{cluster}; Wald {level:.0%} CI and p"
        )
    if ci == "profile":
        return (
            f"logistic regression, {estimator}; {'penalised ' if firth else ''}profile-likelihood "
            f"{level:.0%} CI and likelihood-ratio p"
        )
    return f"logistic regression, {estimator}; Wald {level:.0%} CI and p"


def _odds_rows(
    result: LogisticFit, y: np.ndarray, x: np.ndarray, level: float, ci: str
) -> list[dict[str, Any]]:
    """One row per term: log odds ratio, SE, odds ratio with its CI and p (profile or Wald;
    Wald with a cluster-robust covariance, which no likelihood profiles)."""
    z = normal_critical(level)
    rows = []
    for j, (term, b, se) in enumerate(zip(result.names, result.params, result.bse, strict=True)):
        if term == "Intercept":
            continue
        note = ""
        low = high = p = np.nan
        if ci == "profile" and result.clusters is None:
            try:
                low, high, p = profile_likelihood(result, y, x, j, level)
            except (ValueError, np.linalg.LinAlgError):
                note = "profile likelihood failed numerically for this term: Wald CI and p"
        if np.isnan(p):
            low, high, p = b - z * se, b + z * se, float(normal_p_value(b / se))
        rows.append(
            {
                "term": term,
                "log_or": float(b),
                "se": float(se),
                "odds_ratio": np.exp(b),
                "ci_low": np.exp(low),
                "ci_high": np.exp(high),
                "p_value": p,
                "ci_note": note,
            }
        )
    return rows


def predictor_table(
    patients: pd.DataFrame,
    classified: pd.DataFrame,
    outcomes: list[str],
    occasions: list[str],
    handling: str,
    terms_of: Any,
    level: float,
    logistic: LogisticSettings = R_CONVENTIONS,
    cluster: str | None = None,
) -> tuple[pd.DataFrame, set[tuple[str, str]]]:
    """Complete-case logistic models per outcome and follow-up occasion, and the models fitted
    by Firth's penalised likelihood (`logistic.firth`: always; auto = under separation or when
    EPV < `logistic.epv_minimum`; never = separation makes the model fail), which the
    imputed data sets then use too. With a `cluster`, SEs are cluster-robust (Wald CIs)."""
    rows, firth_models = [], set()
    for outcome in outcomes:
        for occasion in occasions[1:]:
            variables = terms_of(outcome)
            frame = response_frame(
                patients,
                patient_categories(classified, patients, outcome, occasion),
                [*variables, *([cluster] if cluster else [])],
                handling,
            )
            events = int(frame["responder"].sum())
            common = {
                "outcome": outcome,
                "occasion": occasion,
                "analysis": "complete case",
                "N": len(frame),
                "events": events,
            }
            parameters = len(design_matrix(frame, variables, drop_unused_levels=True)[1]) - 1
            epv = min(events, len(frame) - events) / max(parameters, 1)
            low_epv = epv < logistic.epv_minimum
            notes = [f"EPV {epv:.1f} < {logistic.epv_minimum:g}"] if low_epv else []
            firth = logistic.firth == "always" or (logistic.firth == "auto" and low_epv)
            try:
                result, y, x, firth = _fit_firth_if_separated(
                    frame, variables, firth, logistic, notes
                )
            except (ValueError, np.linalg.LinAlgError) as exc:  # singular design: reported
                log.warning("logistic %s %s failed: %s", outcome, occasion, exc)
                rows.append(
                    {
                        **common,
                        "method": logistic_method(firth, logistic.ci, level, cluster),
                        "term": "(model failed)",
                        "warnings": f"{type(exc).__name__}: {exc}",
                    }
                )
                continue
            if cluster:
                result = cluster_robust(result, y, x, frame[cluster].to_numpy())
            if result.nobs != len(frame):
                raise AssertionError(
                    f"logistic {outcome} {occasion}: nobs {result.nobs} != {len(frame)}"
                )
            if firth:
                firth_models.add((outcome, occasion))
            warning = " | ".join([*result.warnings, *notes])
            level_n = term_level_n(result.names, frame)
            for row in _odds_rows(result, y, x, level, logistic.ci):
                note = row.pop("ci_note")
                rows.append(
                    {
                        **common,
                        "method": logistic_method(firth, logistic.ci, level, cluster),
                        **row,
                        "level_n": level_n[row["term"]],
                        "parameters": parameters,
                        "epv": epv,
                        "converged": result.converged,
                        "warnings": " | ".join(w for w in (warning, note) if w),
                    }
                )
    return pd.DataFrame(rows), firth_models


def _fit_firth_if_separated(
    frame: pd.DataFrame,
    variables: list[str],
    firth: bool,
    logistic: LogisticSettings,
    notes: list[str],
) -> tuple[LogisticFit, np.ndarray, np.ndarray, bool]:
    """The logistic fit, by Firth's penalised likelihood where asked or, with `firth: auto`,
    where the data separate (said in `notes`); whether Firth's was used."""
    try:
        result, y, x = fit_logistic(frame, variables, firth)
    except ValueError as exc:
        if "separation" not in str(exc) or logistic.firth != "auto":
            raise
        notes.append(f"{exc}: Firth's penalised likelihood used")
        firth = True
        result, y, x = fit_logistic(frame, variables, firth)
    return result, y, x, firth


def pooled_predictors(
    imputed: ImputedAnalyses, outcomes: list[str], occasions: list[str], level: float
) -> pd.DataFrame:
    """Log odds ratios of the logistic models fitted in each imputed data set, pooled by Rubin's
    rules (Barnard-Rubin df), with the Monte Carlo standard error sqrt(B / m), mice's fmi and
    lambda. Pooled only when the model was fitted in all m imputations (and a term estimated in
    all of them): a pool of the fits that succeeded is not multiple imputation; the row says
    how many failed and why."""
    rows = []
    for outcome in outcomes:
        for occasion in occasions[1:]:
            fits = imputed.fits.get((outcome, occasion), [])
            notes = imputed.notes.get((outcome, occasion), set())
            if len(fits) < imputed.m:  # Rubin's rules need every imputation's fit
                rows.append(
                    {
                        "outcome": outcome,
                        "occasion": occasion,
                        "analysis": "multiple imputation",
                        "term": "(model failed)",
                        "method": f"not pooled: the model was fitted in {len(fits)} of "
                        f"m = {imputed.m} imputations",
                        "warnings": " | ".join(sorted(notes)),
                    }
                )
                continue
            n = fits[0].nobs
            for term in dict.fromkeys(t for f in fits for t in f.names):
                if term == "Intercept":
                    continue
                having = [f for f in fits if term in f.names]  # a level absent in one imputation
                row = {
                    "outcome": outcome,
                    "occasion": occasion,
                    "analysis": "multiple imputation",
                    "N": n,
                    "term": term,
                }
                if len(having) < len(fits):
                    rows.append(
                        {
                            **row,
                            "method": f"not pooled: estimable in {len(having)} of m = "
                            f"{imputed.m} imputations (a level absent from the others)",
                            "warnings": " | ".join(sorted(notes)),
                        }
                    )
                    continue
                pooled = rubin_pool(
                    np.array([f.params[f.names.index(term)] for f in having]),
                    np.array([f.bse[f.names.index(term)] ** 2 for f in having]),
                    level,
                    df_complete=n - len(fits[0].params),
                )
                rows.append(
                    {
                        **row,
                        "log_or": pooled.estimate,
                        "se": np.sqrt(pooled.total),
                        "odds_ratio": np.exp(pooled.estimate),
                        "ci_low": np.exp(pooled.ci_low),
                        "ci_high": np.exp(pooled.ci_high),
                        "p_value": t_p_value(pooled.estimate / np.sqrt(pooled.total), pooled.df),
                        "method": f"logistic regression ({'Firth' if fits[0].firth else 'maximum likelihood'}) "
                        f"in each of m = {imputed.m} imputations, Rubin's rules (Barnard-Rubin df), t-based CI",
                        "fmi": pooled.fmi,
                        "lambda": pooled.lambda_,
                        "monte_carlo_se": np.sqrt(pooled.between / len(having)),
                        "warnings": " | ".join(sorted(notes)),
                    }
                )
    return pd.DataFrame(rows)
