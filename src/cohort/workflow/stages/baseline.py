"""Rule baseline: Table 2."""

from __future__ import annotations

import logging
from typing import Any

from cohort.analysis.tables import QUANTILE_NOTES, baseline_table
from cohort.core.settings import Statistics, Study
from cohort.io.outputs import table_notes, write_csv
from cohort.workflow.stages import analysis_set

log = logging.getLogger(__name__)


def baseline_stage(patients_path: str, settings: dict[str, Any], out: dict[str, str]) -> None:
    """Rule `baseline`: Table 2 of the paper (before disclosure control)."""
    analysis = analysis_set(patients_path)
    quantiles = Statistics.from_config(settings["statistics"]).quantiles
    table = baseline_table(analysis, settings["baseline"], quantiles)
    notes = table_notes(
        Study.from_config(settings["study"]).synthetic,
        f"N = {len(analysis)} (analysis set). n (%) of valid values; valid n given where below N. "
        f"{QUANTILE_NOTES[quantiles].capitalize()}; SD with n - 1.",
    )
    write_csv(table, out["table"], notes)
