"""Rules lmm, missing_data, impute and predictors."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

# Each stage module imports the functions its rules run, by name (the same shape in every
# stage, on purpose): a rule's code inputs are derived from these imports (cohort.workflow.provenance).
from cohort.analysis.imputed_sets import (
    analyse_imputed,
    completed_data_sets,
    imputation_columns,
    imputation_variables,
    impute_part,
    read_parts,
    write_part,
)
from cohort.analysis.missing_data import completers_vs_lost, missingness_table, sensitivity_table
from cohort.analysis.predictors import pooled_predictors, predictor_table, predictor_terms
from cohort.analysis.responders import classify_all, population_note
from cohort.core.settings import Analysis
from cohort.io.outputs import table_notes, write_csv
from cohort.models.lmm import lmm_tables, mixed_method_note
from cohort.models.logistic import LogisticSettings
from cohort.models.mixed import MixedModelSettings
from cohort.workflow.stages import analysis_set, cluster_column, stage_inputs

log = logging.getLogger(__name__)


def lmm_stage(patients_path: str, settings: dict[str, Any], out: dict[str, str]) -> None:
    """Rule `lmm`: linear mixed model per outcome (no MCID needed: a threshold edit skips it)."""

    config, analysis = stage_inputs(patients_path, settings)
    n = len(analysis)
    level = config.statistics.confidence_level
    covariates = list(config.terms.covariates)
    inference = MixedModelSettings.from_config(settings["models"].get("lmm"))
    cluster = cluster_column(config.cluster, analysis)
    effects, means, _ = lmm_tables(
        analysis, config.outcomes, config.occasion_names, covariates, level, inference, cluster
    )
    lmm = pd.concat(
        [
            effects.assign(section="fixed effect or variance"),
            means.assign(section="estimated mean"),
        ],
        ignore_index=True,
    )
    write_csv(
        lmm,
        out["lmm"],
        table_notes(
            config.synthetic,
            f"N = {n} (analysis set); patients/observations: those with the outcome measured and complete "
            f"covariates ({', '.join(covariates)}). Linear mixed model, random intercept per patient; "
            f"{mixed_method_note(inference, level, cluster)}. Estimated means: every covariate at its mean over the "
            "model's observations, categorical covariates at their observed proportions (emmeans' "
            "proportional weights); df by the same method. Rows `covariance: a, b`: the covariance of the "
            "occasion terms a and b (changes from the start), for contrasts of them (e.g. the change "
            "between two follow-ups, as the site bundle pools it).",
        ),
    )


def _baseline_variables(config: Analysis) -> list[str]:
    terms = config.terms
    return [
        *terms.covariates,
        *(o.column_at(config.baseline) for o in config.outcomes.values()),
        *([terms.dose] if terms.dose else []),
    ]


def _imputation_columns(config: Analysis) -> list[str]:
    return imputation_columns(config.terms, list(config.outcomes), config.occasion_names)


def missing_data_stage(patients_path: str, settings: dict[str, Any], out: str) -> None:
    """Rule `missing_data`: the pattern of missing values, and patients assessed vs lost."""
    config, analysis = stage_inputs(patients_path, settings)
    n = len(analysis)
    last = config.occasion_names[-1]
    baseline_vars = _baseline_variables(config)
    missing = missingness_table(
        analysis,
        list(config.outcomes),
        config.occasion_names,
        list(dict.fromkeys([*imputation_variables(config.terms), *baseline_vars])),
    )
    compared = completers_vs_lost(analysis, last, baseline_vars)
    write_csv(
        pd.concat(
            [
                missing.assign(section="missing"),
                compared.assign(section=f"assessed vs lost at {last}"),
            ],
            ignore_index=True,
        ),
        out,
        table_notes(
            config.synthetic,
            f"N = {n}. missing: n and % of N per variable and occasion. assessed vs lost: baseline of "
            "patients assessed at the last occasion vs those lost; smd = standardized mean difference; Welch t or chi-square.",
        ),
    )


def impute_stage(
    patients_path: str, part: int, parts: int, settings: dict[str, Any], out: str
) -> None:
    """Rule `impute` (one job per part): imputations part, part + parts, ... of the m."""
    config = Analysis.from_config(settings)
    analysis = analysis_set(patients_path)
    imputed, m = impute_part(analysis, _imputation_columns(config), config.imputation, part, parts)
    log.info("part %d of %d: %d imputed rows written (m = %d)", part + 1, parts, len(imputed), m)
    write_part(imputed, out, len(analysis))


def predictors_stage(
    patients_path: str,
    imputation_paths: list[str],
    settings: dict[str, Any],
    out: dict[str, str],
) -> None:
    """Rule `predictors`: response models (complete case and pooled over the imputations) and
    responder rates under three handlings of missing follow-up."""

    config, analysis = stage_inputs(patients_path, settings)
    # The MCID rule applied here as in rule responders (the same function), not read from its
    # output: the two jobs then run side by side after a threshold edit.
    occasions = config.occasion_names
    outcomes = list(config.outcomes)
    handling = config.could_not_improve
    # The columns patient_categories reads: the rest of the 6-rows-per-patient table (changes,
    # rule texts) would stay in memory beside the imputations (0.3 GB at 10^6 patients).
    classified = classify_all(analysis, config.outcomes, occasions)[
        ["patient_id", "outcome", "occasion", "category"]
    ]
    n = len(analysis)
    level = config.statistics.confidence_level
    terms = config.terms

    def terms_of(outcome: str) -> list[str]:
        return predictor_terms(
            outcome, list(terms.covariates), terms.dose, list(terms.categories), config.baseline
        )

    logistic = LogisticSettings.from_config(settings["models"].get("logistic"))
    cluster = cluster_column(config.cluster, analysis)
    complete_case, firth_models = predictor_table(
        analysis, classified, outcomes, occasions, handling, terms_of, level, logistic, cluster
    )
    parts = read_parts(imputation_paths)
    # The completed data sets hold only what the response models read (each is a copy: at
    # registry size the other columns of the patient table would double the job's memory).
    columns = _imputation_columns(config)
    model_columns = [t for outcome in outcomes for t in terms_of(outcome)]
    needed = list(dict.fromkeys([*columns, *model_columns, *([cluster] if cluster else [])]))
    imputed = analyse_imputed(
        completed_data_sets(analysis[needed], columns, config.imputation, parts),
        config.outcomes,
        occasions,
        handling,
        terms_of,
        firth_models,
        cluster,
    )
    predictors = pd.concat(
        [complete_case, pooled_predictors(imputed, outcomes, occasions, level)], ignore_index=True
    )
    write_csv(
        predictors,
        out["predictors"],
        table_notes(
            config.synthetic,
            f"Logistic regression of response (MCID rule of the responders rule) on {', '.join(terms_of('<outcome>'))}. "
            f"complete case: N = patients classified at the occasion with complete variables; multiple imputation: "
            f"all N = {n}, m = {imputed.m}, Monte Carlo SE = sqrt(B / m), pooled only when all m fits succeeded. "
            f"Odds ratios with {level:.0%} CI: complete case {'profile likelihood (likelihood-ratio p)' if logistic.ci == 'profile' else 'Wald'}, "
            f"multiple imputation Rubin's rules (t); epv = min(events, non-events) per coefficient, flagged below "
            f"{logistic.epv_minimum:g}; Firth's penalised likelihood ({logistic.firth}: under separation or EPV below "
            f"{logistic.epv_minimum:g}) where the method column says so; "
            f"{population_note(handling)}.",
        ),
    )
    write_csv(
        sensitivity_table(analysis, classified, imputed, outcomes, occasions, handling, level),
        out["sensitivity"],
        table_notes(
            config.synthetic,
            f"Responder rates under three handlings of missing follow-up; N = {n}. complete case: measured at "
            "start and occasion; non-responder imputation: missing = non-responder; multiple imputation: outcomes "
            f"imputed (MICE: PMM for numeric, logistic for binary, multinomial logistic for categorical variables; "
            f"m = {imputed.m}) and classified in each imputed set, pooled by Rubin's rules on the logit scale; "
            "Monte Carlo SE on the logit scale; fmi and lambda as mice reports them; "
            f"{population_note(handling)}.",
        ),
    )
