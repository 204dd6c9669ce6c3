"""Rule interventions: categories, dose and combinations."""

from __future__ import annotations

import logging
from typing import Any

from cohort.analysis.interventions import (
    category_table,
    combination_table,
    cooccurrence_matrix,
    dose_table,
)
from cohort.analysis.tables import QUANTILE_NOTES
from cohort.core.settings import Statistics, Study
from cohort.io.contract import load_codebook
from cohort.io.outputs import read_parquet, table_notes, write_csv
from cohort.workflow.stages import analysis_set

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
    sessions = read_parquet(sessions_path)
    codebook = load_codebook(codebook_path)
    n = len(analysis)
    quantiles = Statistics.from_config(settings["statistics"]).quantiles
    synthetic = Study.from_config(settings["study"]).synthetic
    categories = category_table(analysis, sessions, codebook, quantiles)
    log.info(
        "interventions: %d sessions of the analysis set", int(categories["sessions_total"].iat[0])
    )
    base = f"N = {n} (analysis set). "
    write_csv(
        categories,
        out["categories"],
        table_notes(
            synthetic,
            base + "patients: received the category in at least one session, n (% of N); "
            "sessions_with_category: among those patients, sessions in which it was used, median [Q1, Q3] "
            f"({QUANTILE_NOTES[quantiles]}); "
            "share_of_sessions_pct: % of all sessions of the analysis set.",
        ),
    )
    write_csv(
        dose_table(analysis, quantiles),
        out["dose"],
        table_notes(
            synthetic,
            base
            + "median [Q1, Q3] (min and max published only where the study allows them); programme duration from first to last session, "
            f"months of 365.25/12 days; {QUANTILE_NOTES[quantiles]}.",
        ),
    )
    top = settings["interventions"]["top_combinations"]
    write_csv(
        combination_table(analysis, codebook, top),
        out["combinations"],
        table_notes(
            synthetic,
            base + f"The {top} most common sets of categories received per patient (ties kept), "
            "n (% of N); the last line gathers the rest.",
        ),
    )
    matrix = cooccurrence_matrix(analysis, codebook)
    write_csv(
        matrix,
        out["cooccurrence"],
        table_notes(
            synthetic,
            base
            + "Patients who received both categories; the diagonal is who received the category.",
        ),
    )
