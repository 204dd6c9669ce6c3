"""Rule outcomes: each outcome per occasion and its change."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from cohort.analysis.outcomes import friedman_tests, outcome_changes, outcome_levels
from cohort.analysis.pooling import site_aggregates
from cohort.analysis.tables import QUANTILE_NOTES
from cohort.disclosure import DisclosureSettings
from cohort.io.outputs import table_notes, write_csv
from cohort.workflow.stages import stage_inputs

log = logging.getLogger(__name__)


def outcomes_stage(patients_path: str, settings: dict[str, Any], out: dict[str, str]) -> None:
    """Rule `outcomes`: each outcome at each occasion, paired change from baseline, Friedman."""
    from cohort.publish import (  # matplotlib (0.5 s): imported only by rules that draw
        figures,
        outcome_figures,
    )

    config, analysis = stage_inputs(patients_path, settings)
    level = config.statistics.confidence_level
    quantiles = config.statistics.quantiles
    levels = outcome_levels(analysis, config.outcomes, config.occasion_names, quantiles)
    changes = outcome_changes(analysis, config.outcomes, config.occasion_names, config.statistics)
    friedman = friedman_tests(analysis, config.outcomes, config.occasion_names)
    for _, row in changes.iterrows():
        log.info(
            "%s %s: %d pairs, Wilcoxon %s",
            row["outcome"],
            row["comparison"],
            row["pairs_n"],
            row["wilcoxon_method"],
        )
    table = pd.concat(
        [
            levels.assign(section="level"),
            changes.assign(section="change"),
            friedman.assign(section="friedman"),
        ],
        ignore_index=True,
    )
    table = table[["section", *[c for c in table.columns if c != "section"]]]
    write_csv(
        table,
        out["table"],
        table_notes(
            config.synthetic,
            f"N = {len(analysis)} (analysis set). level: n measured, median [Q1, Q3], mean (SD); "
            f"{QUANTILE_NOTES[quantiles]}. "
            "change: later occasion minus baseline among patients measured at both (pairs_n); mean change "
            f"with {level:.0%} CI (t); Wilcoxon signed-rank as R's wilcox.test (statistic V = sum of positive "
            "ranks; wilcoxon_method says exact or normal and how zeros are handled); SRM = mean / SD of change. "
            "friedman: all occasions, complete cases. `better` gives the direction of improvement.",
        ),
    )
    write_csv(
        site_aggregates(analysis, config.outcomes, config.occasion_names),
        out["aggregates"],
        table_notes(
            config.synthetic,
            f"N = {len(analysis)} (analysis set). The aggregates another site's results pool with (cohort.analysis.pooling): "
            "per outcome, n, sum and sum of squares of the values at each occasion (level) and of the change from "
            "the start among the patients measured at both (change); *_hex: the same sums exactly (Python's "
            "float.hex). n as in outcomes.csv, with the same suppression.",
        ),
    )
    if "changes" not in out:  # withheld by the steward's decisions (cohort.disclosure.decisions)
        log.info("figures/outcome_changes.png withheld by the release decisions: not drawn")
        return
    min_cell = DisclosureSettings.from_config(settings["disclosure"]).min_cell
    baseline = config.baseline
    individual = {}
    for _, row in changes.iterrows():
        pair = analysis[
            [f"{row['outcome']}_{baseline}", f"{row['outcome']}_{row['occasion']}"]
        ].dropna()
        individual[(row["outcome"], row["occasion"])] = (
            pair.iloc[:, 1] - pair.iloc[:, 0]
        ).to_numpy()
    figures.save_figure(
        outcome_figures.change_distributions(
            individual,
            config.outcome_labels,
            config.occasion_labels,
            min_cell,
            quantiles,
        ),
        out["changes"],
    )
