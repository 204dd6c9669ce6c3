"""Rule groups: the between-group comparison of a study that declares one."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from cohort.analysis.groups import (
    ancova,
    change_difference,
    group_by_occasion_lmm,
    levels_by_group,
    responders_by_group,
)
from cohort.analysis.responders import population_note
from cohort.core.settings import Analysis
from cohort.io.outputs import read_parquet, table_notes, write_csv
from cohort.models.lmm import mixed_effect_rows, mixed_method_note
from cohort.models.mixed import MixedModelSettings
from cohort.workflow.stages import cluster_column, stage_inputs

log = logging.getLogger(__name__)


def groups_stage(
    patients_path: str, classified_path: str, settings: dict[str, Any], out: dict[str, str]
) -> None:
    """Rule `groups`: outcomes and responder rates by group, ANCOVA per follow-up, and the
    group x occasion mixed model, for the comparison the study declares."""
    config, analysis = stage_inputs(patients_path, settings)
    classified = read_parquet(classified_path)
    if config.comparison is None:
        raise ValueError("rule groups needs config key 'comparison'")
    group, reference = config.comparison.variable, config.comparison.reference
    level = config.statistics.confidence_level
    covariates = list(config.terms.covariates)
    occasions = config.occasion_names
    handling = config.could_not_improve
    n = len(analysis)
    write_csv(
        levels_by_group(analysis, config.outcomes, occasions, config.statistics.quantiles, group),
        out["levels"],
        table_notes(
            config.synthetic,
            f"N = {n}; n measured per group and occasion; mean (SD), median [Q1, Q3].",
        ),
    )
    ancovas = [
        table
        for o in config.outcomes
        for occ in occasions[1:]
        for table in (
            ancova(analysis, o, occ, occasions[0], config.comparison, covariates, level),
            change_difference(analysis, o, occ, occasions[0], config.comparison, level),
        )
    ]
    write_csv(
        pd.concat(ancovas, ignore_index=True),
        out["ancova"],
        table_notes(
            config.synthetic,
            f"Difference from {group} = {reference} at each follow-up, two analyses: ANCOVA = the follow-up value "
            f"adjusted for the baseline value and {', '.join(covariates)}, complete cases (N), OLS, t-based "
            f"{level:.0%} CI; unadjusted difference in change (Welch) = difference in mean change from baseline "
            f"among patients measured at both occasions (n_group, n_reference), Welch t {level:.0%} CI. The "
            "occasion x group mixed model (group_lmm.csv) uses every measurement.",
        ),
    )
    write_csv(
        responders_by_group(classified, analysis, group, handling, level),
        out["responders"],
        table_notes(
            config.synthetic,
            f"Available cases per group; Wilson {level:.0%} CI; {population_note(handling)}.",
        ),
    )
    inference = MixedModelSettings.from_config(settings["models"].get("lmm"))
    cluster = cluster_column(config.cluster, analysis)
    method = mixed_method_note(inference, level, cluster)
    rows = _group_lmm_rows(analysis, config, inference, cluster, method)
    write_csv(
        pd.DataFrame(rows),
        out["lmm"],
        table_notes(
            config.synthetic,
            f"value ~ occasion x {group} + {', '.join(covariates)}; the occasion:{group} terms are the "
            f"between-group differences in change from baseline. {method}.",
        ),
    )


def _group_lmm_rows(
    analysis: pd.DataFrame,
    config: Analysis,
    inference: MixedModelSettings,
    cluster: str | None,
    method: str,
) -> list[dict[str, Any]]:
    """group_lmm.csv's rows: each outcome's occasion x group model, or why it failed."""
    group, reference = config.comparison.variable, config.comparison.reference
    level, occasions = config.statistics.confidence_level, config.occasion_names
    covariates = list(config.terms.covariates)
    rows = []
    for outcome in config.outcomes:
        try:
            fit = group_by_occasion_lmm(
                analysis, outcome, occasions, group, reference, covariates, inference, cluster
            )
        except (ValueError, np.linalg.LinAlgError) as exc:  # singular design: reported
            rows.append(
                {
                    "outcome": outcome,
                    "term": "(model failed)",
                    "warnings": f"{type(exc).__name__}: {exc}",
                }
            )
            continue
        notes = "patient-intercept variance on the boundary (0)" if fit.boundary else ""
        for row in mixed_effect_rows(fit, level):
            rows.append(
                {
                    "outcome": outcome,
                    **row,
                    "observations": fit.nobs,
                    "patients": fit.groups,
                    "converged": fit.converged,
                    "warnings": notes,
                    "method": method,
                }
            )
    return rows
