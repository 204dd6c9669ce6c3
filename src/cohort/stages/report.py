"""Rule publish (rules/report.smk): disclosure control and what is rendered from its tables."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from cohort.outputs import read_csv, read_protected, table_notes, write_csv
from cohort.summary import summary_markdown
from cohort.tables import baseline_markdown, baseline_vs_paper

log = logging.getLogger(__name__)


def publish_stage(
    tables: dict[str, str | list[str]],
    settings: dict[str, Any],
    summary_tables: list[str],
    out: dict[str, str],
) -> None:
    """Rule `publish`: disclosure control of every table, then what is rendered from the
    protected tables: Table 2 in Markdown and beside the paper, and results/summary.md. (Rules
    that draw counts draw them from their tables protected the same way: `read_protected`.)"""
    min_cell = settings["disclosure"]["min_cell"]
    for name, paths in tables.items():
        table, notes, hidden = read_protected(paths, name, min_cell)
        if hidden is not None:
            log.info("%s: %d cells suppressed", name, hidden)
        else:
            log.info(
                "%s: published without suppression (no counts of patients by characteristic)", name
            )
        write_csv(table, out[name], notes)
        if name == "baseline":  # Table 2 is rendered from its protected form
            baseline, baseline_notes = table, notes
    Path(out["baseline_markdown"]).write_text(
        baseline_markdown(baseline, "Baseline characteristics (Table 2)", baseline_notes),
        encoding="utf-8",
    )
    write_csv(
        baseline_vs_paper(baseline, settings["baseline"]),
        out["baseline_vs_paper"],
        table_notes(
            settings,
            "paper: Trulsson Schouenborg et al. 2021, Table 2 (N = 274); this run after disclosure control.",
        ),
    )
    # The summary reads the tables back as published, as a reader of results/ would.
    summary = {name: read_csv(out[name]) for name in summary_tables}
    Path(out["summary"]).write_text(summary_markdown(summary, settings), encoding="utf-8")
    log.info("wrote %s from %s", out["summary"], ", ".join(summary_tables))
