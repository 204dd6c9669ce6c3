"""Models: linear mixed models over the occasions, logistic models of response, the pattern of
missing data, and responder rates under complete-case analysis, multiple imputation and
non-responder imputation.

- Linear mixed model (per outcome): value ~ occasion + covariates, random intercept per patient,
  exact REML on per-patient sums (cohort.regression; estimates equal to lme4's and statsmodels');
  standard errors, Satterthwaite or Kenward-Roger df and t-based CIs as lmerTest (config
  `models.lmm`); estimated means per occasion at the mean of the covariate design over the
  model's observations (categorical covariates at their observed proportions: for this additive
  model, the average prediction with the occasion set, emmeans' `weights = "proportional"`).
- Logistic model (per outcome and follow-up): responder ~ covariates + baseline score + dose +
  categories received (Newton-Raphson, cohort.regression); odds ratios with Wald CIs; events per variable (EPV) = the smaller of
  events and non-events per estimated coefficient, flagged below 10 (Peduzzi et al. 1996).
- Multiple imputation: cohort.imputation (MICE with mice's default methods), pooled by Rubin's
  rules only when every one of the m analyses succeeded.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cohort.config import occasion_names
from cohort.distributions import normal_critical, normal_p_value, t_critical, t_p_value
from cohort.imputation import mice, pooled_proportion, rubin_pool
from cohort.regression import (
    LME4_CONVENTIONS,
    R_CONVENTIONS,
    LogisticFit,
    LogisticSettings,
    MixedFit,
    MixedModelSettings,
    cluster_robust,
    design_matrix,
    is_categorical,
    logistic_regression,
    nested_intercepts_reml,
    profile_likelihood,
    random_intercept_reml,
)
from cohort.responders import (
    AVAILABLE,
    CATEGORIES,
    RESPONDER,
    category_codes,
    in_population,
    rate_rows,
)

log = logging.getLogger(__name__)


def _term(data: pd.DataFrame, variable: str) -> str:
    """The variable as a term of a statsmodels formula (cohort.groups)."""
    return f"C({variable})" if is_categorical(data[variable]) else variable


def _model_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """Booleans as 0/1 floats (nullable booleans included), so formulas treat them as numbers;
    categories that no row has are dropped (an empty level would make the design singular)."""
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_bool_dtype(out[column].dtype):
            out[column] = out[column].astype("Float64").astype(float)
        elif isinstance(out[column].dtype, pd.CategoricalDtype) and column != "occasion":
            out[column] = out[column].cat.remove_unused_categories()
    return out


LEVEL_TERM = re.compile(r"C\((\w+)[^\[]*\[T\.([^\]]+)\]")


def term_level_n(
    terms: list[str], frame: pd.DataFrame, patient: str | None = None
) -> dict[str, float]:
    """For each term of a categorical level (`C(var)[T.level]`), the patients in that level or
    in the reference level, whichever is fewer: the estimate compares those two groups, and
    disclosure control hides it when either is small. NaN for other terms (occasion excepted:
    its patients per occasion are the observed n)."""
    people = frame.drop_duplicates(patient) if patient else frame
    counts: dict[str, pd.Series] = {}
    in_terms: dict[str, set[str]] = {}
    for term in terms:
        for variable, level in LEVEL_TERM.findall(term):
            in_terms.setdefault(variable, set()).add(level)
    for variable in in_terms:
        if variable in people.columns and variable != "occasion":
            counts[variable] = people[variable].astype(str).value_counts()
    out = {}
    for term in terms:
        smallest = np.nan
        for variable, level in LEVEL_TERM.findall(term):
            if variable not in counts:
                continue
            present = counts[variable][counts[variable] > 0]
            reference = present[[lv not in in_terms[variable] for lv in present.index]]
            n = min(
                float(present.get(level, 0)), float(reference.min()) if len(reference) else np.inf
            )
            smallest = n if np.isnan(smallest) else min(smallest, n)
        out[term] = smallest
    return out


# --- Linear mixed models -------------------------------------------------------------------------
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
    return _model_ready(long).reset_index(drop=True)


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
    cluster and patient within it (regression.nested_intercepts_reml)."""
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
    config: dict[str, Any],
    covariates: list[str],
    level: float,
    inference: MixedModelSettings = LME4_CONVENTIONS,
    cluster: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Fixed effects, variance components and estimated means per occasion for every outcome
    (patients nested in `cluster` when it names a column)."""
    occasions = occasion_names(config)
    method = mixed_method_note(inference, level, cluster)
    effects, means, fits = [], [], {}
    for outcome, spec in config["outcomes"].items():
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
                    "label": spec["label"],
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
            "label": spec["label"],
            "patients": n_patients,
            "observations": len(long),
            "method": method,
            "converged": result.converged,
            "warnings": " | ".join(notes),
        }
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
        effects.append(
            {**common, "term": "variance: patient intercept", "estimate": result.group_variance}
        )
        effects.append({**common, "term": "variance: residual", "estimate": result.scale})
        # Estimated means per occasion, covariates at the mean of their design columns.
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


# --- Logistic models of response -----------------------------------------------------------------
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
    config: dict[str, Any],
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
    for outcome in config["outcomes"]:
        for occasion in occasion_names(config)[1:]:
            variables = terms_of(outcome)
            frame = response_frame(
                patients,
                patient_categories(classified, patients, outcome, occasion),
                [*variables, *([cluster] if cluster else [])],
                config["responders"]["could_not_improve"],
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
            notes = (
                [f"EPV {epv:.1f} < {logistic.epv_minimum:g}"] if epv < logistic.epv_minimum else []
            )
            firth = logistic.firth == "always" or (
                logistic.firth == "auto" and epv < logistic.epv_minimum
            )
            try:
                try:
                    result, y, x = fit_logistic(frame, variables, firth)
                except ValueError as exc:
                    if "separation" not in str(exc) or logistic.firth != "auto":
                        raise
                    notes.append(f"{exc}: Firth's penalised likelihood used")
                    firth = True
                    result, y, x = fit_logistic(frame, variables, firth)
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


# --- Missing data --------------------------------------------------------------------------------
def missingness_table(
    patients: pd.DataFrame, config: dict[str, Any], variables: list[str]
) -> pd.DataFrame:
    """Missing values per variable (baseline) and per outcome and occasion, n and % of N."""
    n = len(patients)
    rows = [
        {"variable": v, "occasion": "baseline", "missing": int(patients[v].isna().sum())}
        for v in variables
    ]
    for outcome in config["outcomes"]:
        for occasion in occasion_names(config):
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
                }
            )
    table = pd.DataFrame(rows)
    table.insert(0, "occasion", occasion)
    return table


def imputation_frame(
    patients: pd.DataFrame, config: dict[str, Any], variables: list[str]
) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Numeric frame for MICE: categorical variables as integer codes of their observed levels,
    booleans as 0/1; returns it with the category levels to decode."""
    columns = [
        *variables,
        *(f"{o}_{occ}" for o in config["outcomes"] for occ in occasion_names(config)),
    ]
    columns = list(dict.fromkeys(columns))
    frame, levels = pd.DataFrame(index=patients.index), {}
    for c in columns:
        values = patients[c]
        if is_categorical(values):
            cat = values.astype("category").cat.remove_unused_categories()
            levels[c] = list(cat.cat.categories)
            frame[c] = cat.cat.codes.replace(-1, np.nan).astype(float)
        else:
            frame[c] = values.astype("Float64").astype(float)
    return frame, levels


def imputation_levels(
    patients: pd.DataFrame, frame: pd.DataFrame, levels: dict[str, list[str]]
) -> dict[str, int]:
    """The number of levels of each categorical or boolean column of the imputation frame, which
    sets its imputation method (cohort.imputation.imputation_method); a column with fewer than
    two observed levels has nothing to model and is left to PMM (it copies the one level)."""
    counts = {c: len(v) for c, v in levels.items()}
    for c in frame.columns:
        if c not in counts and pd.api.types.is_bool_dtype(patients[c].dtype):
            counts[c] = 2
    return {c: k for c, k in counts.items() if k >= 2}


def decode_imputed(
    patients: pd.DataFrame, imputed: pd.DataFrame, levels: dict[str, list[str]]
) -> pd.DataFrame:
    """The patient table with the imputed columns put back, categories with their original
    dtype (all declared levels, observed or not)."""
    out = patients.copy()
    for c in imputed.columns:
        if c in levels:
            values = pd.Categorical.from_codes(imputed[c].round().astype(int), categories=levels[c])
            dtype = patients[c].dtype
            out[c] = (
                values.set_categories(dtype.categories)
                if isinstance(dtype, pd.CategoricalDtype)
                else values
            )
        else:
            out[c] = imputed[c].to_numpy()
    return out


def number_of_imputations(frame: pd.DataFrame, settings: dict[str, Any]) -> int:
    """`auto`: at least the percentage of incomplete cases (White, Royston, Wood 2011), min 5;
    then at most max(5, `max_imputed_records` / N), so that imputation work (m x N) stays
    bounded at registry scale (the cost of the cap shows in the reported Monte Carlo error)."""
    setting = settings["m"]
    if setting != "auto":
        return int(setting)
    incomplete = float(frame.isna().any(axis=1).mean())
    m = max(5, int(np.ceil(100 * incomplete)))
    cap = max(5, int(settings["max_imputed_records"]) // max(len(frame), 1))
    if m > cap:
        log.info("m = %d by the incomplete share, capped at %d for N = %d", m, cap, len(frame))
    return min(m, cap)


def imputation_variables(config: dict[str, Any]) -> list[str]:
    """Baseline variables of the imputation model besides the outcomes: covariates, dose and
    the categories received (the explanatory variables of the response models)."""
    models = config["models"]
    return list(
        dict.fromkeys(
            [
                *config["covariates"],
                *([models["dose"]] if models["dose"] else []),
                *(f"received_{c}" for c in models["categories"]),
            ]
        )
    )


def not_imputable(frame: pd.DataFrame) -> dict[str, str]:
    """Columns MICE cannot impute (missing values, fewer than 2 observed): left missing, with
    the reason; the analyses of those outcomes say they are not estimable."""
    return {
        c: f"{int(frame[c].notna().sum())} observed value(s): not imputed"
        for c in frame.columns
        if frame[c].isna().any() and frame[c].notna().sum() < 2
    }


def impute_part(
    patients: pd.DataFrame, config: dict[str, Any], part: int, parts: int
) -> tuple[pd.DataFrame, int]:
    """Imputations part, part + parts, ... of the m (one Snakemake job each part): the imputed
    columns in long form (imputation, row, values), and m."""
    settings = config["models"]["imputation"]
    frame, levels = imputation_frame(patients, config, imputation_variables(config))
    m = number_of_imputations(frame, settings)
    skipped = not_imputable(frame)
    for column, reason in skipped.items():
        log.warning("multiple imputation: %s: %s", column, reason)
    frame = frame.drop(columns=list(skipped))
    incomplete = [c for c in frame.columns if frame[c].isna().any()]
    log.info(
        "multiple imputation: m = %d, this job %d of %d; %d iterations; %d of %d patients incomplete",
        m,
        part + 1,
        parts,
        settings["iterations"],
        int(frame.isna().any(axis=1).sum()),
        len(frame),
    )
    chains = mice(
        frame,
        list(range(part, m, parts)),
        settings["iterations"],
        settings["seed"],
        settings["donors"],
        imputation_levels(patients, frame, levels),
    )
    pieces = [
        completed[incomplete].assign(imputation=i, row=np.arange(len(frame)))
        for i, completed in chains
    ]
    empty = pd.DataFrame(columns=[*incomplete, "imputation", "row"], dtype=float)
    return (pd.concat(pieces, ignore_index=True) if pieces else empty), m


def completed_data_sets(
    patients: pd.DataFrame, config: dict[str, Any], parts: pd.DataFrame
) -> Iterator[pd.DataFrame]:
    """The m completed patient tables from the stacked imputation parts, one at a time (the m
    tables are never all in memory); checks that imputations 0..m-1 each have every patient."""
    frame, levels = imputation_frame(patients, config, imputation_variables(config))
    m = number_of_imputations(frame, config["models"]["imputation"])
    found = sorted(parts["imputation"].astype(int).unique()) if len(parts) else []
    if found != list(range(m)):
        raise AssertionError(f"imputations {found} found, 0..{m - 1} expected")
    for i, rows in parts.groupby("imputation", sort=True):
        if len(rows) != len(patients) or not (rows["row"].to_numpy() == np.arange(len(rows))).all():
            raise AssertionError(f"imputation {i}: {len(rows)} rows for N = {len(patients)}")
        yield decode_imputed(patients, rows.drop(columns=["imputation", "row"]), levels)


@dataclass
class ImputedAnalyses:
    """Per outcome and follow-up: the responder rate and its denominator, and the logistic fit,
    in each imputed data set (the inputs of Rubin's rules)."""

    m: int = 0
    rates: dict[tuple[str, str], list[tuple[float, int]]] = field(default_factory=dict)
    fits: dict[tuple[str, str], list[LogisticFit]] = field(default_factory=dict)
    notes: dict[tuple[str, str], set[str]] = field(default_factory=dict)


def analyse_imputed(
    completed: Iterable[pd.DataFrame],
    config: dict[str, Any],
    terms_of: Any,
    firth_models: set[tuple[str, str]] | None = None,
    cluster: str | None = None,
    batch_rows: int = 200_000,
) -> ImputedAnalyses:
    """Classify each completed data set with the MCID rule and fit the response models in it
    (by Firth's penalised likelihood for the models in `firth_models`, as in the complete-case
    analysis, so that every imputation uses the same estimator). Small data sets are stacked
    into batches of about `batch_rows` rows, so that the design matrices and classifications
    are built once per batch (same numbers: both act row by row). With a `cluster`, each fit's
    covariance is cluster-robust, as in the complete-case models."""
    results = ImputedAnalyses()
    batch: list[pd.DataFrame] = []
    firth_models = firth_models or set()
    for data in completed:
        batch.append(data)
        if len(batch) * len(data) >= batch_rows:
            _analyse_batch(batch, config, terms_of, firth_models, cluster, results)
            batch = []
    if batch:
        _analyse_batch(batch, config, terms_of, firth_models, cluster, results)
    return results


def _analyse_batch(
    batch: list[pd.DataFrame],
    config: dict[str, Any],
    terms_of: Any,
    firth_models: set[tuple[str, str]],
    cluster: str | None,
    results: ImputedAnalyses,
) -> None:
    """`analyse_imputed` for completed data sets of equal length, stacked."""
    handling = config["responders"]["could_not_improve"]
    occasions = occasion_names(config)
    n = len(batch[0])
    data = pd.concat(batch, ignore_index=True) if len(batch) > 1 else batch[0]
    designs = {outcome: design_matrix(data, terms_of(outcome)) for outcome in config["outcomes"]}
    categories = {  # indices into CATEGORIES
        (outcome, occasion): category_codes(
            data[f"{outcome}_{occasions[0]}"].to_numpy(dtype=float, na_value=np.nan),
            data[f"{outcome}_{occasion}"].to_numpy(dtype=float, na_value=np.nan),
            spec,
        )
        for outcome, spec in config["outcomes"].items()
        for occasion in occasions[1:]
    }
    responder = CATEGORIES.index(RESPONDER)
    clusters = data[cluster].to_numpy() if cluster else None
    unobserved = {  # not imputed (too few observed values): not estimable
        (outcome, occasion)
        for outcome in config["outcomes"]
        for occasion in occasions[1:]
        if data[f"{outcome}_{occasion}"].isna().all()
    }
    for j in range(len(batch)):
        rows_of_set = slice(j * n, (j + 1) * n)
        results.m += 1
        for (outcome, occasion), all_categories in categories.items():
            key = (outcome, occasion)
            if key in unobserved:
                results.notes.setdefault(key, set()).add(
                    "not estimable: too few patients measured at this occasion to impute"
                )
                continue
            x_all, names_all = designs[outcome][0][rows_of_set], designs[outcome][1]
            cat = all_categories[rows_of_set]
            population = in_population(cat, handling)
            d = int(population.sum())  # no follow-up is missing after imputation
            results.rates.setdefault(key, []).append((int((cat == responder).sum()) / d, d))
            rows = ~np.isnan(x_all).any(axis=1) & population
            if clusters is not None:
                rows &= pd.notna(clusters[rows_of_set])
            x = x_all[rows]
            used = [c for c, name in enumerate(names_all) if "[T." not in name or x[:, c].any()]
            notes = results.notes.setdefault(key, set())
            names = [names_all[c] for c in used]
            previous = results.fits.get(key, [])
            start = previous[-1].params if previous and previous[-1].names == names else None
            try:
                fit = logistic_regression(
                    (cat[rows] == responder).astype(float),
                    x[:, used],
                    names,
                    start=start,
                    firth=key in firth_models,
                )
            except (ValueError, np.linalg.LinAlgError) as exc:
                notes.add(f"{type(exc).__name__}: {exc}")
                continue
            if clusters is not None:
                y = (cat[rows] == responder).astype(float)
                fit = cluster_robust(fit, y, x[:, used], clusters[rows_of_set][rows])
            notes.update(fit.warnings)
            results.fits.setdefault(key, []).append(fit)
        log.info("imputed data set %d analysed", results.m)


def sensitivity_table(
    patients: pd.DataFrame,
    classified: pd.DataFrame,
    imputed: ImputedAnalyses,
    config: dict[str, Any],
    level: float,
) -> pd.DataFrame:
    """Responder rates: complete case, multiple imputation (Rubin, logit scale) and
    non-responder imputation, side by side, per outcome and follow-up occasion."""
    n = len(patients)
    handling = config["responders"]["could_not_improve"]
    rows = []
    for outcome in config["outcomes"]:
        for occasion in occasion_names(config)[1:]:
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
            if (outcome, occasion) not in imputed.rates:
                rows.append(
                    {
                        "outcome": outcome,
                        "occasion": occasion,
                        "analysis": "multiple imputation",
                        "n": n,
                        "method": "not estimable: too few patients measured at this occasion to impute",
                    }
                )
                continue
            rates, ns = zip(*imputed.rates[(outcome, occasion)], strict=True)
            estimate, low, high, pooled = pooled_proportion(
                np.array(rates), int(np.mean(ns)), level
            )
            rows.append(
                {
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
            )
    table = pd.DataFrame(rows)
    table["denominator_note"] = table["analysis"].map(
        {
            "complete case": AVAILABLE,
            "non-responder imputation": "analysis set, missing = non-responder",
            "multiple imputation": "analysis set, missing values imputed",
        }
    )
    return table


def pooled_predictors(
    imputed: ImputedAnalyses, config: dict[str, Any], level: float
) -> pd.DataFrame:
    """Log odds ratios of the logistic models fitted in each imputed data set, pooled by Rubin's
    rules (Barnard-Rubin df), with the Monte Carlo standard error sqrt(B / m), mice's fmi and
    lambda. Pooled only when the model was fitted in all m imputations (and a term estimated in
    all of them): a pool of the fits that succeeded is not multiple imputation; the row says
    how many failed and why."""
    rows = []
    for outcome in config["outcomes"]:
        for occasion in occasion_names(config)[1:]:
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
