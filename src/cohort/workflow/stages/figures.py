"""Rule figures (rules/report.smk): every figure of counts or estimates, drawn from the tables
as published by rule publish (cohort.workflow.stages.publish), and their legends
(results/figures/legends.md: the captions are not drawn into the images)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cohort.core.cache import OutputCache, content_key, package_version
from cohort.core.labels import reference_levels, term_label, variable_labels
from cohort.core.settings import Analysis
from cohort.io.outputs import markdown_html, read_csv, read_notes

if TYPE_CHECKING:
    import pandas as pd

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


@dataclass(frozen=True)
class FigureSpec:
    """One figure of rule figures: the published tables it reads (the first gives its legend's
    notes), the sentence its legend opens with, whether it shows the MCID rules, and the
    function that draws it from those tables only."""

    reads: tuple[str, ...]
    draw: Callable[[dict[str, str], Analysis, dict[str, dict[str, str]]], Any]
    legend: str = ""
    shows_mcid: bool = False


def figures_stage(
    tables: dict[str, str],
    settings: dict[str, Any],
    level_names: dict[str, dict[str, str]],
    out: dict[str, str],
    changes_published: bool = True,
    cache: str | None = None,
) -> None:
    """Rule `figures`: every figure of counts or estimates, drawn from the tables as published
    (after disclosure control): a hidden value is not drawn, a hidden n is printed as its marker;
    levels by the contract's labels (`level_names`). Each figure's legend (the notes of its table)
    goes to legends.md. A figure the steward's decisions withhold is not in `out`: not drawn,
    and no legend (nor for rule outcomes' figure of changes unless `changes_published`).
    A figure whose tables, settings and code are as when it was last drawn is taken from
    `cache` (cohort.core.cache) instead of drawn again: each is drawn from its own tables only
    (FIGURES), and without the MCID rules unless it shows them, so that is all its key holds."""
    kept = OutputCache(cache)
    version = package_version() if cache else ""
    legends: dict[str, str] = {}
    for name, spec in FIGURES.items():
        if name not in out:
            continue
        inputs = {t: tables[t] for t in spec.reads if t in tables}
        used = settings if spec.shows_mcid else _without_mcid(settings)
        key = content_key(
            version, name, json.dumps([used, level_names], sort_keys=True),
            *(f"{t}\0{Path(path).read_text(encoding='utf-8')}" for t, path in inputs.items()),
        )  # fmt: skip
        png, pdf = Path(out[name]), Path(out[name]).with_suffix(".pdf")
        drawn = kept.get(name, key)
        if drawn is None:
            from cohort.publish import figures  # matplotlib (0.5 s): only when one is drawn

            figures.save_figure(spec.draw(inputs, Analysis.from_config(used), level_names), png)
            kept.put(name, key, [png.read_bytes(), pdf.read_bytes()])
        else:
            png.parent.mkdir(parents=True, exist_ok=True)
            png.write_bytes(drawn[0]), pdf.write_bytes(drawn[1])
        legends[name] = _legend(tables[spec.reads[0]], spec.legend)
    if changes_published:
        legends["changes"] = _changes_legend(tables)
    markdown = legends_markdown(legends, out)
    Path(out["legends"]).write_text(markdown, encoding="utf-8")
    Path(out["legends_html"]).write_text(markdown_html(markdown, "Figure legends"), "utf-8")
    log.info("drew %d figures from the published tables", len(legends) - changes_published)
    if cache:
        log.info(kept.summary())


def _without_mcid(settings: dict[str, Any]) -> dict[str, Any]:
    """The figure rule's settings without the outcomes' MCID rules."""
    outcomes = {
        name: {k: v for k, v in spec.items() if k != "mcid"}
        for name, spec in settings.get("outcomes", {}).items()
    }
    return {**settings, "outcomes": outcomes}


def _legend(table: str, extra: str) -> str:
    """A figure's legend: what it shows, then its table's notes with the disclosure footer
    shortened (the table explains the markers)."""
    notes = [
        "Disclosure control: nothing of fewer than min_cell patients is drawn (markers as in the table)."
        if note.startswith("Disclosure control")
        else note
        for note in read_notes(table)
    ]
    return " ".join([*([extra] if extra else []), *notes])


def _numeric(table: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """The named columns as numbers (a disclosure marker becomes NaN: not drawn)."""
    import pandas as pd

    return table.assign(
        **{c: pd.to_numeric(table[c], errors="coerce") for c in columns if c in table}
    )


def _flow(tables: dict[str, str], config: Analysis, levels: dict) -> Any:
    from cohort.publish import figures

    return figures.flow_diagram(read_csv(tables["flow"]))


def _trajectories(tables: dict[str, str], config: Analysis, levels: dict) -> Any:
    from cohort.publish import outcome_figures

    outcomes = read_csv(tables["outcomes"])
    medians = _numeric(outcomes[outcomes["section"] == "level"], "median", "q1", "q3")
    ranges = {name: outcome.range for name, outcome in config.outcomes.items()}
    return outcome_figures.trajectories(medians, config.occasion_labels, ranges)


def _estimated_means(tables: dict[str, str], config: Analysis, levels: dict) -> Any:
    from cohort.publish import outcome_figures

    lmm = read_csv(tables["lmm"])
    means = _numeric(lmm[lmm["section"] == "estimated mean"], "estimated_mean", "ci_low", "ci_high")  # fmt: skip
    ranges = {name: outcome.range for name, outcome in config.outcomes.items()}
    return outcome_figures.estimated_means(means, config.occasion_labels, ranges)


def _forest(tables: dict[str, str], config: Analysis, levels: dict) -> Any:
    """The forest plot of the predictors' odds ratios, with their terms in words."""
    from cohort.publish import response_figures

    predictors = _numeric(read_csv(tables["predictors"]), "odds_ratio", "ci_low", "ci_high")
    return response_figures.forest_plot(
        predictors,
        model_term_labels(predictors, tables, config, levels),
        config.outcome_labels,
        config.occasion_labels,
    )


def _sweep(tables: dict[str, str], config: Analysis, levels: dict) -> Any:
    """The threshold sweep: the share reaching each threshold, with the MCID marked."""
    from cohort.publish import outcome_figures

    sweep = _numeric(
        read_csv(tables["threshold_sweep"]), "pct", "ci_low_pct", "ci_high_pct", "threshold_sd"
    )
    return outcome_figures.threshold_sweep_figure(
        sweep,
        config.outcome_labels,
        config.occasion_labels,
        {name: outcome.rule for name, outcome in config.outcomes.items()},
    )


def _directions(tables: dict[str, str], config: Analysis, levels: dict) -> Any:
    from cohort.publish import response_figures

    return response_figures.direction_bars(
        read_csv(tables["responder_directions"]), config.outcome_labels, config.occasion_labels
    )


def _course(tables: dict[str, str], config: Analysis, levels: dict) -> Any:
    from cohort.publish import response_figures

    return response_figures.course_bars(read_csv(tables["responder_course"]), config.outcome_labels)


def _definitions(tables: dict[str, str], config: Analysis, levels: dict) -> Any:
    from cohort.publish import response_figures

    definitions = read_csv(tables["clinical_significance_definitions"])
    first = definitions.drop_duplicates("definition")
    return response_figures.definition_rates_figure(
        read_csv(tables["clinical_significance_rates"]),
        list(zip(first["definition"], first["label"], strict=True)),
        config.outcome_labels,
        config.occasion_labels,
    )


def _tipping(tables: dict[str, str], config: Analysis, levels: dict) -> Any:
    from cohort.publish import response_figures

    return response_figures.tipping_point_figure(
        read_csv(tables["tipping_point"]), config.outcome_labels, config.occasion_labels
    )


def _categories(tables: dict[str, str], config: Analysis, levels: dict) -> Any:
    from cohort.publish import figures

    return figures.category_bars(read_csv(tables["interventions"]))


def _cooccurrence(tables: dict[str, str], config: Analysis, levels: dict) -> Any:
    import pandas as pd

    from cohort.publish import figures

    categories = read_csv(tables["interventions"])
    n = float(pd.to_numeric(categories["N"], errors="coerce").max())  # NaN when hidden
    return figures.cooccurrence_heatmap(read_csv(tables["intervention_cooccurrence"]), n)


# Every figure of rule figures, by output name, in the order of legends.md.
FIGURES: dict[str, FigureSpec] = {
    "flow": FigureSpec(("flow",), _flow),
    "trajectories": FigureSpec(
        ("outcomes",), _trajectories, "Median and interquartile range per occasion."
    ),
    "lmm": FigureSpec(("lmm",), _estimated_means, "Estimated means with CIs."),
    "forest": FigureSpec(
        ("predictors", "baseline", "interventions"), _forest, "Odds ratios with CIs, log scale."
    ),
    "sweep": FigureSpec(
        ("threshold_sweep",),
        _sweep,
        "Steps: the share reaching each threshold, with Wilson bands; dashed: the configured MCID on its scale.",
        shows_mcid=True,
    ),
    "directions": FigureSpec(("responder_directions",), _directions),
    "course": FigureSpec(("responder_course",), _course),
    "significance": FigureSpec(
        ("clinical_significance_rates", "clinical_significance_definitions"),
        _definitions,
        "Points: rates with their CIs; shaded: the primary definition.",
    ),
    "tipping": FigureSpec(
        ("tipping_point",),
        _tipping,
        "Lines: pooled estimates with CI bands against delta; dashed: the margin of the rate and 0 of the improvement.",
    ),
    "interventions": FigureSpec(("interventions",), _categories),
    "cooccurrence": FigureSpec(("intervention_cooccurrence", "interventions"), _cooccurrence),
}


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
