"""Between-group comparison, for a study that declares one (config `comparison`, e.g. a trial
arm): each outcome by group and occasion, responder rates by group, the group difference at each
follow-up adjusted for the baseline value and covariates (ANCOVA: ordinary least squares,
t-based CI), and the group x occasion linear mixed model (exact REML, cohort.models.mixed)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from cohort.analysis.outcomes import describe
from cohort.analysis.responders import rate_rows
from cohort.analysis.tables import dominance_shares
from cohort.core.distributions import t_critical, t_p_value
from cohort.core.settings import Comparison, Outcome
from cohort.models.design import formula_term, model_ready
from cohort.models.lmm import fit_mixed, lmm_data
from cohort.models.mixed import LME4_CONVENTIONS, MixedFit, MixedModelSettings

log = logging.getLogger(__name__)


def levels_by_group(
    patients: pd.DataFrame,
    outcomes: dict[str, Outcome],
    occasions: list[str],
    quantiles: str,
    group: str,
) -> pd.DataFrame:
    """n, mean (SD), median [Q1, Q3] of each outcome per group and occasion."""
    rows = []
    for name, outcome in outcomes.items():
        for occasion in occasions:
            for level, part in patients.groupby(group, observed=True):
                rows.append(
                    {
                        "outcome": name,
                        "label": outcome.label,
                        "occasion": occasion,
                        "group": str(level),
                        **describe(part[outcome.column_at(occasion)], quantiles),
                        # the whole's mean (outcomes.csv) and the arms' give each other
                        **dominance_shares(
                            patients[outcome.column_at(occasion)], "whole_dominance"
                        ),
                    }
                )
    return pd.DataFrame(rows)


def ancova(
    patients: pd.DataFrame,
    outcome: str,
    occasion: str,
    baseline: str,
    comparison: Comparison,
    covariates: list[str],
    level: float = 0.95,
) -> pd.DataFrame:
    """Follow-up value ~ group + baseline value + covariates (OLS), complete cases: one row per
    non-reference group with the adjusted difference, its CI and p."""
    group, reference = comparison.variable, comparison.reference
    y, x0 = f"{outcome}_{occasion}", f"{outcome}_{baseline}"
    import statsmodels.formula.api as smf  # here: 1 s of start-up only rule groups needs

    data = model_ready(patients[[y, x0, group, *covariates]].dropna())
    terms = [
        f"C({group}, Treatment('{reference}'))",
        x0,
        *(formula_term(data, c) for c in covariates),
    ]
    fit = smf.ols(f"{y} ~ {' + '.join(terms)}", data).fit()
    if int(fit.nobs) != len(data):
        raise AssertionError(f"ancova {outcome} {occasion}: nobs {fit.nobs} != {len(data)}")
    ci = fit.conf_int(alpha=1 - level)
    rows = []
    for term in fit.params.index:
        if term.startswith(f"C({group}"):
            rows.append(
                {
                    "outcome": outcome,
                    "occasion": occasion,
                    "term": term,
                    "difference": float(fit.params[term]),
                    "ci_low": float(ci.loc[term, 0]),
                    "ci_high": float(ci.loc[term, 1]),
                    "p_value": float(fit.pvalues[term]),
                    "N": int(fit.nobs),
                    "analysis": "ANCOVA",
                    "se": float(fit.bse[term]),
                    "df": float(fit.df_resid),
                    "adjusted_for": ", ".join([x0, *covariates]),
                    "method": f"ANCOVA (OLS), t-based {level:.0%} CI",
                }
            )
    return pd.DataFrame(rows)


def change_difference(
    patients: pd.DataFrame,
    outcome: str,
    occasion: str,
    baseline: str,
    comparison: Comparison,
    level: float = 0.95,
) -> pd.DataFrame:
    """The unadjusted difference in mean change from baseline between each group and the
    reference, among patients measured at both occasions, with a Welch t CI and p (unequal
    variances, Welch-Satterthwaite df): what a trial reports beside its adjusted analysis."""
    group, reference = comparison.variable, comparison.reference
    change = patients[f"{outcome}_{occasion}"] - patients[f"{outcome}_{baseline}"]
    data = pd.DataFrame({"group": patients[group].astype(str), "change": change}).dropna()
    ref = data.loc[data["group"] == reference, "change"].to_numpy(dtype=float)
    rows = []
    for level_value in [g for g in data["group"].unique() if g != reference]:
        other = data.loc[data["group"] == level_value, "change"].to_numpy(dtype=float)
        n1, n0 = len(other), len(ref)
        row = {
            "outcome": outcome,
            "occasion": occasion,
            "analysis": "unadjusted difference in change (Welch)",
            "term": f"{level_value} vs {reference}",
            "N": n1 + n0,
            "n_group": n1,
            "n_reference": n0,
            "adjusted_for": "",
            "method": f"difference in mean change, Welch t {level:.0%} CI (Welch-Satterthwaite df)",
        }
        if n1 >= 2 and n0 >= 2:
            v1, v0 = other.var(ddof=1) / n1, ref.var(ddof=1) / n0
            se = float(np.sqrt(v1 + v0))
            df = (v1 + v0) ** 2 / (v1**2 / (n1 - 1) + v0**2 / (n0 - 1)) if se > 0 else np.inf
            difference = float(other.mean() - ref.mean())
            half = t_critical(level, df) * se
            row |= {
                "difference": difference,
                "se": se,
                "df": df,
                "ci_low": difference - half,
                "ci_high": difference + half,
                "p_value": t_p_value(difference / se, df) if se > 0 else np.nan,
            }
        rows.append(row)
    return pd.DataFrame(rows)


def responders_by_group(
    classified: pd.DataFrame, patients: pd.DataFrame, group: str, handling: str, level: float = 0.95
) -> pd.DataFrame:
    """Available-case responder rates per group, outcome and occasion, with Wilson CIs."""
    data = classified.assign(
        group=classified["patient_id"].map(patients.set_index("patient_id")[group])
    )
    rows = []
    for (outcome, occasion, level_value), part in data.groupby(
        ["outcome", "occasion", "group"], sort=False, observed=True
    ):
        rate = rate_rows(part["category"], handling, len(part), level)[0]  # available cases
        rows.append(
            {
                "outcome": outcome,
                "occasion": occasion,
                "group": str(level_value),
                **rate,
                "rule": part["rule"].iat[0],
            }
        )
    return pd.DataFrame(rows)


def group_by_occasion_lmm(
    patients: pd.DataFrame,
    outcome: str,
    occasions: list[str],
    group: str,
    reference: str,
    covariates: list[str],
    inference: MixedModelSettings = LME4_CONVENTIONS,
    cluster: str | None = None,
) -> MixedFit:
    """value ~ occasion * group + covariates, random intercept per patient (and per cluster when
    `cluster` names one): the exact REML of cohort.models.mixed on the design patsy builds from
    the formula (interaction columns named as statsmodels names them)."""
    import patsy  # here: only rule groups needs formulas with interactions

    long = lmm_data(
        patients, outcome, occasions, [group, *covariates, *([cluster] if cluster else [])]
    )
    terms = [
        f"C(occasion, Treatment('{occasions[0]}')) * C({group}, Treatment('{reference}'))",
        *(formula_term(long, c) for c in covariates),
    ]
    design = patsy.dmatrix(" + ".join(terms), long, return_type="dataframe")
    if len(design) != len(long):
        raise AssertionError(f"group lmm {outcome}: design rows {len(design)} != {len(long)}")
    return fit_mixed(long, design.to_numpy(), list(design.columns), inference, cluster)
