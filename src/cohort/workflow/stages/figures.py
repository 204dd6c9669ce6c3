"""Rule figures (rules/report.smk): every figure of counts or estimates, drawn from the tables
as published by rule publish (cohort.workflow.stages.publish), and their legends
(results/figures/legends.md: the captions are not drawn into the images)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cohort.core.labels import reference_levels, term_label, variable_labels
from cohort.core.settings import Analysis
from cohort.io.outputs import markdown_html, read_csv, read_notes

log = logging.getLogger(__name__)

# The title of each figure in legends.md, by its output name.
TITLES = {
    "flow": "Flow of patients",
    "trajectories": "Outcomes per occasion",
    "lmm": "Estimated means of the mixed models",
    "forest": "Predictors of response",
    "sweep": "Share of patients reaching each improvement threshold",
    "directions": "Improved, unchanged and deteriorated",
    "course": "Course of response over the follow-ups",
    "significance": "Responder rates under each definition of clinical significance",
    "interventions": "Intervention categories",
    "cooccurrence": "Categories received together",
    "changes": "Change from start",
    "tipping": "Delta-adjusted imputation: the tipping point",
}


def figures_stage(
    tables: dict[str, str],
    settings: dict[str, Any],
    level_names: dict[str, dict[str, str]],
    out: dict[str, str],
    changes_published: bool = True,
) -> None:
    """Rule `figures`: every figure of counts or estimates, drawn from the tables as published
    (after disclosure control): a hidden value is not drawn, a hidden n is printed as its marker;
    levels by the contract's labels (`level_names`). Each figure's legend (the notes of its table)
    goes to legends.md. A figure the steward's decisions withhold is not in `out`: not drawn,
    and no legend (nor for rule outcomes' figure of changes unless `changes_published`)."""
    import pandas as pd

    from cohort.publish import (  # matplotlib (0.5 s): imported only by rules that draw
        figures,
    )

    def numeric(table: pd.DataFrame, *columns: str) -> pd.DataFrame:
        return table.assign(
            **{c: pd.to_numeric(table[c], errors="coerce") for c in columns if c in table}
        )

    legends: dict[str, str] = {}

    def draw(name: str, fig: Any, table: str, *extra: str) -> None:
        """Save the figure `name` and its legend: the table's notes, its disclosure footer
        shortened (the table explains the markers), and what the figure shows."""
        notes = [
            "Disclosure control: nothing of fewer than min_cell patients is drawn (markers as in the table)."
            if note.startswith("Disclosure control")
            else note
            for note in read_notes(tables[table])
        ]
        figures.save_figure(fig, out[name])
        legends[name] = " ".join([*extra, *notes])

    config = Analysis.from_config(settings)
    if "flow" in out:
        draw("flow", figures.flow_diagram(read_csv(tables["flow"])), "flow")
    _outcome_figures(tables, config, level_names, out, draw, numeric)
    _response_figures(tables, config, out, draw)
    _intervention_figures(tables, out, draw)
    if changes_published:
        legends["changes"] = _changes_legend(tables)
    markdown = legends_markdown(legends, out)
    Path(out["legends"]).write_text(markdown, encoding="utf-8")
    Path(out["legends_html"]).write_text(markdown_html(markdown, "Figure legends"), "utf-8")
    log.info("drew %d figures from the published tables", len(legends) - changes_published)


def _outcome_figures(
    tables: dict[str, str],
    config: Analysis,
    level_names: dict[str, dict[str, str]],
    out: dict[str, str],
    draw: Callable[..., None],
    numeric: Callable[..., Any],
) -> None:
    """Trajectories, the mixed model's means, the forest plot and the threshold sweep."""
    from cohort.publish import outcome_figures

    occasion_labels = config.occasion_labels
    ranges = {name: outcome.range for name, outcome in config.outcomes.items()}
    if "trajectories" in out:
        outcomes = read_csv(tables["outcomes"])
        levels = numeric(outcomes[outcomes["section"] == "level"], "median", "q1", "q3")
        draw(
            "trajectories",
            outcome_figures.trajectories(levels, occasion_labels, ranges),
            "outcomes",
            "Median and interquartile range per occasion.",
        )
    if "lmm" in out:
        lmm = read_csv(tables["lmm"])
        means = numeric(
            lmm[lmm["section"] == "estimated mean"], "estimated_mean", "ci_low", "ci_high"
        )
        draw(
            "lmm",
            outcome_figures.estimated_means(means, occasion_labels, ranges),
            "lmm",
            "Estimated means with CIs.",
        )
    if "forest" in out:
        _forest(tables, config, level_names, draw, numeric)
    if "sweep" in out:
        _sweep(tables, config, draw, numeric)


def _response_figures(
    tables: dict[str, str], config: Analysis, out: dict[str, str], draw: Callable[..., None]
) -> None:
    """Directions of change, the course over the follow-ups, the definitions' rates and the
    tipping point."""
    from cohort.publish import response_figures

    labels, occasion_labels = config.outcome_labels, config.occasion_labels
    if "directions" in out:
        draw(
            "directions",
            response_figures.direction_bars(
                read_csv(tables["responder_directions"]), labels, occasion_labels
            ),
            "responder_directions",
        )
    if "course" in out:
        draw(
            "course",
            response_figures.course_bars(read_csv(tables["responder_course"]), labels),
            "responder_course",
        )
    if "significance" in out:
        definitions = read_csv(tables["clinical_significance_definitions"])
        first = definitions.drop_duplicates("definition")
        draw(
            "significance",
            response_figures.definition_rates_figure(
                read_csv(tables["clinical_significance_rates"]),
                list(zip(first["definition"], first["label"], strict=True)),
                labels,
                occasion_labels,
            ),
            "clinical_significance_rates",
            "Points: rates with their CIs; shaded: the primary definition.",
        )
    if "tipping" in out:
        draw(
            "tipping",
            response_figures.tipping_point_figure(
                read_csv(tables["tipping_point"]), labels, occasion_labels
            ),
            "tipping_point",
            "Lines: pooled estimates with CI bands against delta; dashed: the margin of the rate and 0 of the improvement.",
        )


def _intervention_figures(
    tables: dict[str, str], out: dict[str, str], draw: Callable[..., None]
) -> None:
    """Patients per category and the co-occurrence of categories."""
    import pandas as pd

    from cohort.publish import figures

    if "interventions" in out:
        draw(
            "interventions",
            figures.category_bars(read_csv(tables["interventions"])),
            "interventions",
        )
    if "cooccurrence" in out:
        categories = read_csv(tables["interventions"])
        n = float(pd.to_numeric(categories["N"], errors="coerce").max())  # NaN when hidden
        draw(
            "cooccurrence",
            figures.cooccurrence_heatmap(read_csv(tables["intervention_cooccurrence"]), n),
            "intervention_cooccurrence",
        )


def _changes_legend(tables: dict[str, str]) -> str:
    """The legend of rule outcomes' figure of changes (drawn there, from the patient rows)."""
    legend = (
        "Box of quartiles of the change from start per outcome and follow-up (rule outcomes); "
        "individual changes are not shown, nor groups below min_cell."
    )
    if "outcomes" not in tables:
        return legend
    notes = [n for n in read_notes(tables["outcomes"]) if not n.startswith("Disclosure")]
    return legend + " " + " ".join(notes)


def _forest(
    tables: dict[str, str],
    config: Analysis,
    level_names: dict[str, dict[str, str]],
    draw: Any,
    numeric: Any,
) -> None:
    """The forest plot of the predictors' odds ratios, with their terms in words."""
    from cohort.publish import response_figures

    predictors = numeric(read_csv(tables["predictors"]), "odds_ratio", "ci_low", "ci_high")
    draw(
        "forest",
        response_figures.forest_plot(
            predictors,
            model_term_labels(predictors, tables, config, level_names),
            config.outcome_labels,
            config.occasion_labels,
        ),
        "predictors",
        "Odds ratios with CIs, log scale.",
    )


def _sweep(tables: dict[str, str], config: Analysis, draw: Any, numeric: Any) -> None:
    """The threshold sweep: the share reaching each threshold, with the MCID marked."""
    from cohort.publish import outcome_figures

    sweep = numeric(
        read_csv(tables["threshold_sweep"]), "pct", "ci_low_pct", "ci_high_pct", "threshold_sd"
    )
    draw(
        "sweep",
        outcome_figures.threshold_sweep_figure(
            sweep,
            config.outcome_labels,
            config.occasion_labels,
            {name: outcome.rule for name, outcome in config.outcomes.items()},
        ),
        "threshold_sweep",
        "Steps: the share reaching each threshold, with Wilson bands; dashed: the configured MCID on its scale.",
    )


def legends_markdown(legends: dict[str, str], out: dict[str, str]) -> str:
    """results/figures/legends.md: one legend per figure, under its file names."""
    lines = ["# Figure legends", ""]
    for name, legend in legends.items():
        stem = Path(out[name]).stem if name in out else "outcome_changes"
        lines += [f"## {TITLES.get(name, name)} (`{stem}.png`, `{stem}.pdf`)", "", legend, ""]
    return "\n".join(lines)


def model_term_labels(
    predictors: Any, tables: dict[str, str], config: Analysis, levels: dict[str, dict[str, str]]
) -> dict[str, str]:
    """Each model term of the predictors table in words (cohort.core.labels.term_label): variables
    by their Table 2 labels, the baseline score by its outcome, categories by their codebook
    label, levels by the contract's labels against the reference level."""
    import pandas as pd

    baseline = read_csv(tables["baseline"]) if "baseline" in tables else pd.DataFrame()
    variables = variable_labels(baseline)
    variables.update(  # a baseline score is the outcome at the first occasion
        {
            f"{name}_{config.baseline}": f"{o.label} at {config.occasion_labels[config.baseline].lower()}"
            for name, o in config.outcomes.items()
        }
    )
    categories = {}
    if "interventions" in tables:
        codes = read_csv(tables["interventions"])
        categories = dict(zip(codes["code"].astype(str), codes["category"], strict=True))
    terms = predictors["term"].astype(str).unique().tolist()
    references = reference_levels(terms, levels)
    return {term: term_label(term, variables, references, categories, levels) for term in terms}
