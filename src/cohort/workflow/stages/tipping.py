"""Rule tipping_point (rules/models.smk): delta-adjusted multiple imputation (cohort.analysis.tipping).
Its own stage module, so that editing it reruns no other rule of the models stage."""

from __future__ import annotations

import logging
from typing import Any

from cohort.analysis.imputed_sets import completed_data_sets, imputation_columns, read_parts
from cohort.analysis.responders import population_note
from cohort.analysis.tipping import TippingSettings, delta_adjusted
from cohort.io.outputs import table_notes, write_csv
from cohort.workflow.stages import stage_inputs

log = logging.getLogger(__name__)


def tipping_point_stage(
    patients_path: str, imputation_paths: list[str], settings: dict[str, Any], out: str
) -> None:
    """Rule `tipping_point`: delta-adjusted multiple imputation of the missing follow-ups and the
    tipping point of the responder rate and of the mean improvement (cohort.analysis.tipping)."""
    config, analysis = stage_inputs(patients_path, settings)
    tipping = TippingSettings.from_config(settings["models"].get("tipping_point"))
    columns = imputation_columns(config.terms, list(config.outcomes), config.occasion_names)
    level = config.statistics.confidence_level
    table = delta_adjusted(
        completed_data_sets(
            analysis[columns], columns, config.imputation, read_parts(imputation_paths)
        ),
        analysis,
        config.outcomes,
        config.occasion_names,
        config.could_not_improve,
        tipping,
        level,
    )
    log.info(
        "tipping points: %s", "; ".join(table.loc[table["section"] == "tipping point", "method"])
    )
    write_csv(
        table,
        out,
        table_notes(
            config.synthetic,
            f"N = {len(analysis)} (analysis set). Delta-adjusted multiple imputation: in each completed data set of "
            "missing_data_sensitivity.csv's imputation (MAR), the follow-up values that were missing "
            "(missing_shifted = outcomes.csv's not measured) are made worse by delta (in SD units of the start "
            "values: delta_sd; on the outcome's scale: delta), within the scale; the responder rate (MCID rule, "
            f"{population_note(config.could_not_improve)}) and the mean improvement from start (positive = better) "
            f"are pooled by Rubin's rules, {level:.0%} CIs. At delta 0 the rate is the MI estimate. Tipping point: "
            f"the first delta at which the rate's CI reaches rate_margin_pct = {tipping.rate_margin_pct:g}% "
            "(an assumption of the study), or the improvement's CI reaches 0. van Buuren, Flexible Imputation of "
            "Missing Data, 2nd ed., 9.2; Ratitch et al., Pharm Stat 2013;12:337.",
        ),
    )
