"""Rule publication_tables (rules/report.smk): every published table in print form, as HTML for
the report and in one Word document (cohort.publish.publication), and summary.md as HTML, the report's
first page. Reads only what rule publish wrote (after disclosure control)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from cohort.core.labels import variable_labels
from cohort.core.settings import Analysis
from cohort.io.outputs import SYNTHETIC_NOTE, markdown_html, read_csv, read_notes
from cohort.publish.publication import Labels, publication_tables, table_html, word_document

log = logging.getLogger(__name__)


def publication_stage(
    tables: dict[str, str],
    summary: str | None,
    disclosure_report: str,
    settings: dict[str, Any],
    levels: dict[str, dict[str, str]],
    out: dict[str, str],
) -> None:
    """Rule `publication_tables`: results/tables/html/<table>.html for every published table,
    results/tables/manuscript_tables.docx with all of them, results/summary.html and
    results/disclosure_report.html."""
    config = Analysis.from_config(settings)
    frames = {name: read_csv(path) for name, path in tables.items()}
    notes = {name: read_notes(path) for name, path in tables.items()}
    categories = {}
    if "interventions" in frames and len(frames["interventions"]):
        codes = frames["interventions"]
        categories = dict(zip(codes["code"].astype(str), codes["category"], strict=True))
    labels = Labels(
        outcomes={name: o.label for name, o in config.outcomes.items()},
        occasions=dict(config.occasion_labels),
        variables=variable_labels(frames.get("baseline")),
        levels={**levels, "occasion": dict(config.occasion_labels)},
        categories=categories,
    )
    printed = publication_tables(frames, notes, labels)
    html = Path(out["html"])
    if html.exists():
        shutil.rmtree(html)
    html.mkdir(parents=True)
    for table in printed:
        (html / f"{table.name}.html").write_text(table_html(table), encoding="utf-8")
    subtitle = config.study.title + (f" {SYNTHETIC_NOTE}" if config.synthetic else "")
    Path(out["word"]).write_bytes(word_document(printed, "Tables", subtitle))
    if summary is not None:
        Path(out["summary"]).write_text(
            markdown_html(Path(summary).read_text(encoding="utf-8"), "Summary"), encoding="utf-8"
        )
    Path(out["disclosure_report"]).write_text(
        markdown_html(Path(disclosure_report).read_text(encoding="utf-8"), "Output checking"),
        encoding="utf-8",
    )
    log.info("wrote %d tables as HTML and in %s", len(printed), out["word"])
