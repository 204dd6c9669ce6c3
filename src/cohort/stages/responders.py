"""Rules responders and threshold_sweep: the MCID classification and what it gives, and the threshold-free sweep."""

from __future__ import annotations

import logging
from typing import Any

# Imports by name, as every stage module (see cohort.stages.models): they set the rule's code inputs.
from cohort.frames import frame
from cohort.outputs import table_notes, write_csv
from cohort.responders import (
    STABILITY_COLUMNS,
    classify_all,
    composites,
    direction_rates,
    population_note,
    responder_rates,
    stability,
    subgroup_rates,
    threshold_sweep,
    versus_paper,
)
from cohort.stages import stage_inputs

log = logging.getLogger(__name__)


def responders_stage(patients_path: str, settings: dict[str, Any], out: dict[str, str]) -> None:
    """Rule `responders`: MCID classification, rates, composites, stability, subgroups."""
    config, analysis = stage_inputs(patients_path, settings)
    n = len(analysis)
    level = config.statistics.confidence_level
    handling = config.could_not_improve
    classified = classify_all(analysis, config.outcomes, config.occasion_names)
    classified.to_parquet(out["classified"], index=False)
    for (outcome, occasion), counts in classified.groupby(["outcome", "occasion"], sort=False)[
        "category"
    ]:
        log.info("%s at %s: %s", outcome, occasion, counts.value_counts().to_dict())
    composite = composites(classified)
    rates = responder_rates(classified, composite, handling, n, level)
    cni_note = population_note(handling)
    write_csv(
        rates,
        out["rates"],
        table_notes(
            config.synthetic,
            f"N = {n} (analysis set). Denominators: '{rates['denominator'].iat[0]}' = measured at start and at the "
            f"occasion; '{rates['denominator'].iat[1]}' = every patient of the analysis set, a missing follow-up "
            f"counted as non-responder. {cni_note}. {level:.0%} CI: Wilson score. Composite: all outcomes measured.",
        ),
    )
    write_csv(
        direction_rates(classified, handling, n, level),
        out["directions"],
        table_notes(
            config.synthetic,
            f"N = {n} (analysis set); n = the responder population (measured at start and at the occasion; "
            f"{cni_note}). improved = responders (responders.csv); deteriorated = the same rule the other way "
            "(a worsening of at least the threshold, or more than it for a strict rule); unchanged = neither. "
            f"Could-not-improve patients are kept apart. {level:.0%} CI: Wilson score.",
        ),
    )
    follow_ups = config.occasion_names[1:]
    if len(follow_ups) > 1:
        stable = stability(classified, follow_ups[0], follow_ups[-1], handling)
        note = f"Patients in the responder population at both occasions; {cni_note}; exact McNemar test."
    else:  # the table is written, with its header, and says why it is empty
        stable = frame([], STABILITY_COLUMNS)
        note = "Not estimable: the study has one follow-up occasion; stability compares two."
        log.info("responder stability skipped: %s", note)
    write_csv(stable, out["stability"], table_notes(config.synthetic, note))
    subgroups = subgroup_rates(analysis, classified, settings["subgroups"], handling, level)
    write_csv(
        subgroups,
        out["subgroups"],
        table_notes(
            config.synthetic,
            f"Available cases within each level; {level:.0%} Wilson CI; {cni_note}.",
        ),
    )
    published = settings["responders"].get("paper", {})
    paper = config.study.paper or "not named (config study.paper)"
    source = settings["responders"].get("paper_source", "config responders.paper")
    write_csv(
        versus_paper(rates, published, config.outcome_labels),
        out["vs_paper"],
        table_notes(
            config.synthetic,
            f"paper: {paper}, {source}. this_run: available cases."
            if published
            else "Empty: the study file gives no published responder rates (responders.paper).",
        ),
    )


def threshold_sweep_stage(
    patients_path: str, outcome: str, settings: dict[str, Any], out: str
) -> None:
    """Rule `threshold_sweep` (one job per outcome): responder shares over a range of thresholds."""
    config, analysis = stage_inputs(patients_path, settings)
    level = config.statistics.confidence_level
    sweep = threshold_sweep(
        analysis, config.outcomes[outcome], config.occasion_names, settings["sweep_points"], level
    )
    log.info("%s: %d thresholds x scales x occasions", outcome, len(sweep))
    write_csv(
        sweep,
        out,
        table_notes(
            config.synthetic,
            f"Available cases; share whose improvement reaches (is at least) each threshold (absolute: 0 to half the "
            f"range; percent of the start value: 0-100%); {level:.0%} Wilson CI.",
        ),
    )
