"""Rule clinical_significance: every definition of clinically important improvement beside the
primary (MCID) one, the rates under each and their agreement."""

from __future__ import annotations

import logging
from typing import Any

# Imports by name, as every stage module (see cohort.workflow.stages.models): they set the rule's code inputs.
from cohort.analysis.imputed_sets import completed_data_sets, imputation_columns, read_parts
from cohort.analysis.responders import population_note
from cohort.analysis.significance import definitions_table, thresholds
from cohort.analysis.significance_rates import (
    agreement,
    classify_definitions,
    definition_rates,
    imputed_rates,
)
from cohort.io.outputs import table_notes, write_csv
from cohort.workflow.stages import stage_inputs

log = logging.getLogger(__name__)


def significance_stage(
    patients_path: str, imputation_paths: list[str], settings: dict[str, Any], out: dict[str, str]
) -> None:
    """Rule `clinical_significance`: the definitions table, the rate under each definition (two
    denominators and multiple imputation) and the pairwise agreement."""
    config, analysis = stage_inputs(patients_path, settings)
    n = len(analysis)
    level = config.statistics.confidence_level
    handling = config.could_not_improve
    occasions = config.occasion_names
    found = thresholds(analysis, config.outcomes, occasions, config.significance, level)
    for t in found:
        log.info(
            "%s, %s: %s", t.outcome, t.definition.name,
            t.rule if t.defined else f"not defined: {t.reason}",
        )  # fmt: skip
    classified = classify_definitions(analysis, config.outcomes, occasions, found)
    columns = imputation_columns(config.terms, list(config.outcomes), occasions)
    parts = read_parts(imputation_paths)
    imputed = imputed_rates(
        completed_data_sets(analysis[columns], columns, config.imputation, parts),
        config.outcomes,
        occasions,
        found,
        handling,
    )
    cni_note = population_note(handling)
    write_csv(
        definitions_table(found, config.outcomes),
        out["definitions"],
        table_notes(
            config.synthetic,
            f"N = {n} (analysis set). Each definition of clinically important improvement per outcome; mcid = the "
            "outcome's own rule, the primary one (responders.csv, the models and the summary). Data-derived "
            f"thresholds are computed once from the observed values of the analysis set: baseline SD of the start "
            f"values (n = baseline_n), SEM = SD x sqrt(1 - r), S_diff = sqrt(2) x SEM; anchor: the patients with the "
            f"anchor and the outcome at start and at the anchor's occasion; AUC {level:.0%} CI: DeLong; "
            "Youden cut-off: the lowest observed improvement maximising sensitivity + specificity - 1.",
        ),
    )
    write_csv(
        definition_rates(classified, found, occasions, handling, n, level, imputed),
        out["rates"],
        table_notes(
            config.synthetic,
            f"N = {n} (analysis set). The responder rate under each definition: available cases (measured at start "
            "and at the occasion), all of the analysis set with a missing follow-up counted as not improved "
            f"({level:.0%} CI: Wilson score; Clopper-Pearson exact at 0 or n of n), and multiple imputation (MICE as "
            "in missing_data_sensitivity.csv, each imputed set classified with the same thresholds, pooled by Rubin's "
            "rules on the logit scale; not pooled, with the reason, where no or every patient responds in every "
            "imputation or the imputations do not differ). "
            f"{cni_note}. Under mcid the counts are those of responders.csv.",
        ),
    )
    write_csv(
        agreement(classified, level),
        out["agreement"],
        table_notes(
            config.synthetic,
            "Pairwise agreement between definitions among the patients measured at start and at the occasion (n), "
            "could-not-improve counting as not improved, so that every pair is compared on the same patients: "
            "both = responder under both definitions, first_only / second_only = under one, neither. "
            f"Cohen's kappa with its {level:.0%} CI (asymptotic SE, Fleiss, Cohen & Everitt 1969); blank where "
            "one definition classifies everyone alike; no CI at perfect agreement (the asymptotic SE is 0).",
        ),
    )
