"""Rules responders and threshold_sweep: the MCID classification and what it gives, and the threshold-free sweep."""

from __future__ import annotations

import logging
from typing import Any

from cohort.analysis.responders import (
    COURSE_COLUMNS,
    classify_all,
    composites,
    course,
    direction_rates,
    population_note,
    responder_rates,
    subgroup_rates,
    threshold_sweep,
    versus_paper,
)

# Imports by name, as every stage module (see cohort.workflow.stages.models): they set the rule's code inputs.
from cohort.core.frames import frame
from cohort.io.outputs import table_notes, write_csv
from cohort.workflow.stages import stage_inputs

log = logging.getLogger(__name__)


def responders_stage(patients_path: str, settings: dict[str, Any], out: dict[str, str]) -> None:
    """Rule `responders`: MCID classification, rates, composites, course, directions, subgroups."""
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
            f"counted as non-responder. {cni_note}. {level:.0%} CI: Wilson score (Clopper-Pearson exact at 0 or n of n). Composite: all outcomes measured.",
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
        courses = course(classified, follow_ups[0], follow_ups[-1], handling, level)
        first, last = (config.occasion_labels[o] for o in (follow_ups[0], follow_ups[-1]))
        note = (
            f"N = {n} (analysis set); n = in the responder population at {first} and at {last} ({cni_note}); "
            f"the others are not_classified_at_both. sustained = responder at both, lost = at {first} only, "
            f"late = at {last} only, never = at neither. {level:.0%} CI: Wilson score; McNemar: exact binomial "
            "test of lost vs late, two-sided."
        )
    else:  # the table is written, with its header, and says why it is empty
        courses = frame([], COURSE_COLUMNS)
        note = "Not estimable: the study has one follow-up occasion; the course compares two."
        log.info("responder course skipped: %s", note)
    write_csv(courses, out["course"], table_notes(config.synthetic, note))
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
            f"range, also in SD units of the start values of the analysis set, threshold_sd; percent of the start "
            f"value: 0-100%); {level:.0%} Wilson CI.",
        ),
    )
