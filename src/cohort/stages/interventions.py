"""Rule interventions: categories, dose and combinations."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from cohort.contract import load_codebook
from cohort.disclosure import protect
from cohort.interventions import category_table, combination_table, cooccurrence_matrix, dose_table
from cohort.outputs import table_notes, write_csv
from cohort.stages import analysis_set

log = logging.getLogger(__name__)


def interventions_stage(
    patients_path: str,
    sessions_path: str,
    codebook_path: str,
    settings: dict[str, Any],
    out: dict[str, str],
) -> None:
    """Rule `interventions`: categories per patient and session, dose, combinations, and the
    figures of categories and co-occurrence (drawn from the tables after disclosure control)."""
    analysis = analysis_set(patients_path)
    sessions = pd.read_parquet(sessions_path)
    codebook = load_codebook(codebook_path)
    n = len(analysis)
    categories = category_table(analysis, sessions, codebook)
    log.info(
        "interventions: %d sessions of the analysis set", int(categories["sessions_total"].iat[0])
    )
    base = f"N = {n} (analysis set). "
    write_csv(
        categories,
        out["categories"],
        table_notes(
            settings,
            base + "patients: received the category in at least one session, n (% of N); "
            "sessions_with_category: among those patients, sessions in which it was used, median [Q1, Q3]; "
            "share_of_sessions_pct: % of all sessions of the analysis set.",
        ),
    )
    write_csv(
        dose_table(analysis),
        out["dose"],
        table_notes(
            settings,
            base + "median [Q1, Q3] (min-max); programme duration from first to last session, "
            "months of 365.25/12 days; quartiles by linear interpolation.",
        ),
    )
    top = settings["interventions"]["top_combinations"]
    write_csv(
        combination_table(analysis, codebook, top),
        out["combinations"],
        table_notes(
            settings,
            base + f"The {top} most common sets of categories received per patient (ties kept), "
            "n (% of N); the last line gathers the rest.",
        ),
    )
    matrix = cooccurrence_matrix(analysis, codebook)
    write_csv(
        matrix,
        out["cooccurrence"],
        table_notes(
            settings,
            base
            + "Patients who received both categories; the diagonal is who received the category.",
        ),
    )
    draw_intervention_figures(categories, matrix, settings, out)


def draw_intervention_figures(
    categories: pd.DataFrame, matrix: pd.DataFrame, settings: dict[str, Any], out: dict[str, str]
) -> None:
    """Category bars and co-occurrence heatmap, from the tables as rule publish protects them
    (the figures show counts of patients)."""
    from cohort import figures  # matplotlib (0.5 s): imported only by rules that draw

    min_cell = settings["disclosure"]["min_cell"]
    n = int(categories["N"].iat[0])
    caption = " ".join(
        table_notes(
            settings,
            f"N = {n} (analysis set). Categories coded from the medical records; "
            f"counts below {min_cell} suppressed.",
        )
    )
    bars, _ = protect(categories, "interventions", min_cell)
    figures.save_figure(figures.category_bars(bars, caption), out["categories_figure"])
    heatmap, _ = protect(matrix, "intervention_cooccurrence", min_cell)
    figures.save_figure(
        figures.cooccurrence_heatmap(heatmap, n, caption), out["cooccurrence_figure"]
    )
