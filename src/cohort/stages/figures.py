"""Rule figures (rules/report.smk): every figure of counts or estimates, drawn from the tables
as published by rule publish (cohort.stages.publish)."""

from __future__ import annotations

import logging
from typing import Any

from cohort.outputs import read_csv, read_notes
from cohort.settings import Analysis

log = logging.getLogger(__name__)


def figures_stage(tables: dict[str, str], settings: dict[str, Any], out: dict[str, str]) -> None:
    """Rule `figures`: every figure of counts or estimates, drawn from the tables as published
    (after disclosure control): a hidden value is not drawn, a hidden n is printed as its marker."""
    import pandas as pd

    from cohort import figures  # matplotlib (0.5 s): imported only by rules that draw

    def numeric(table: pd.DataFrame, *columns: str) -> pd.DataFrame:
        return table.assign(
            **{c: pd.to_numeric(table[c], errors="coerce") for c in columns if c in table}
        )

    def caption(name: str, *extra: str) -> str:
        """The table's notes, its disclosure footer shortened (the table explains the markers)."""
        notes = [
            "Disclosure control: nothing of fewer than min_cell patients is drawn (markers as in the table)."
            if note.startswith("Disclosure control")
            else note
            for note in read_notes(tables[name])
        ]
        return " ".join([*notes, *extra])

    config = Analysis.from_config(settings)
    occasion_labels = config.occasion_labels
    ranges = {name: outcome.range for name, outcome in config.outcomes.items()}
    labels = config.outcome_labels
    # One block per figure: read its table, draw, save (the same shape on purpose; issue #18
    # redesigns the figures one by one).
    flow = read_csv(tables["flow"])
    figures.save_figure(figures.flow_diagram(flow, caption("flow")), out["flow"])

    outcomes = read_csv(tables["outcomes"])
    levels = numeric(outcomes[outcomes["section"] == "level"], "median", "q1", "q3")
    figures.save_figure(
        figures.trajectories(
            levels, occasion_labels, ranges, caption("outcomes", "Median and interquartile range.")
        ),
        out["trajectories"],
    )
    lmm = read_csv(tables["lmm"])
    means = numeric(lmm[lmm["section"] == "estimated mean"], "estimated_mean", "ci_low", "ci_high")
    figures.save_figure(
        figures.estimated_means(
            means, occasion_labels, ranges, caption("lmm", "Estimated means with CIs.")
        ),
        out["lmm"],
    )
    predictors = numeric(read_csv(tables["predictors"]), "odds_ratio", "ci_low", "ci_high")
    figures.save_figure(
        figures.forest_plot(predictors, caption("predictors", "Odds ratios with CIs, log scale.")),
        out["forest"],
    )
    sweep = numeric(
        read_csv(tables["threshold_sweep"]), "pct", "ci_low_pct", "ci_high_pct", "threshold_sd"
    )
    figures.save_figure(
        figures.threshold_sweep_figure(
            sweep,
            labels,
            occasion_labels,
            {name: outcome.rule for name, outcome in config.outcomes.items()},
            caption("threshold_sweep", "Dashed: the configured MCID on its scale."),
        ),
        out["sweep"],
    )
    figures.save_figure(
        figures.direction_bars(
            read_csv(tables["responder_directions"]),
            labels,
            occasion_labels,
            caption("responder_directions"),
        ),
        out["directions"],
    )
    figures.save_figure(
        figures.course_bars(
            read_csv(tables["responder_course"]), labels, caption("responder_course")
        ),
        out["course"],
    )
    definitions = read_csv(tables["clinical_significance_definitions"])
    first = definitions.drop_duplicates("definition")
    figures.save_figure(
        figures.definition_rates_figure(
            read_csv(tables["clinical_significance_rates"]),
            list(zip(first["definition"], first["label"], strict=True)),
            labels,
            occasion_labels,
            caption(
                "clinical_significance_rates",
                "Points: rates with their CIs; shaded: the primary definition.",
            ),
        ),
        out["significance"],
    )
    if "interventions" in tables:
        categories = read_csv(tables["interventions"])
        n = float(pd.to_numeric(categories["N"], errors="coerce").max())  # NaN when hidden
        figures.save_figure(
            figures.category_bars(categories, caption("interventions")), out["interventions"]
        )
        figures.save_figure(
            figures.cooccurrence_heatmap(
                read_csv(tables["intervention_cooccurrence"]),
                n,
                caption("intervention_cooccurrence"),
            ),
            out["cooccurrence"],
        )
    log.info("drew %d figures from the published tables", len(out))
