"""Rule publication_tables (rules/report.smk): every published table in print form, as HTML for
the report and in one Word document (cohort.publish.publication), and summary.md as HTML, the report's
first page. Reads only what rule publish wrote (after disclosure control)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from cohort.core.cache import OutputCache, content_key, package_version
from cohort.core.labels import variable_labels
from cohort.core.settings import Analysis
from cohort.io.outputs import SYNTHETIC_NOTE, markdown_html, read_csv, read_notes
from cohort.publish.publication import (
    Labels,
    PublicationTable,
    publication_tables,
    table_html,
    word_document,
)

log = logging.getLogger(__name__)


def publication_stage(
    tables: dict[str, str],
    summary: str | None,
    disclosure_report: str,
    settings: dict[str, Any],
    levels: dict[str, dict[str, str]],
    out: dict[str, str],
    cache: str | None = None,
) -> None:
    """Rule `publication_tables`: results/tables/html/<table>.html for every published table,
    results/tables/manuscript_tables.docx with all of them, results/summary.html and
    results/disclosure_report.html. A table's HTML (and the Word document) whose print form is
    as when it was last written is taken from `cache` (cohort.core.cache): great-tables takes
    most of this rule's time."""
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
    kept, version = OutputCache(cache), package_version() if cache else ""
    keys = {table.name: printed_key(table, version) for table in printed}
    for table in printed:
        page = kept.get(f"html-{table.name}", keys[table.name])
        if page is None:
            page = [table_html(table).encode("utf-8")]
            kept.put(f"html-{table.name}", keys[table.name], page)
        (html / f"{table.name}.html").write_bytes(page[0])
    subtitle = config.study.title + (f" {SYNTHETIC_NOTE}" if config.synthetic else "")
    word_key = content_key(version, subtitle, *keys.values())
    word = kept.get("word", word_key)
    if word is None:
        word = [word_document(printed, "Tables", subtitle)]
        kept.put("word", word_key, word)
    Path(out["word"]).write_bytes(word[0])
    if summary is not None:
        Path(out["summary"]).write_text(
            markdown_html(Path(summary).read_text(encoding="utf-8"), "Summary"), encoding="utf-8"
        )
    Path(out["disclosure_report"]).write_text(
        markdown_html(Path(disclosure_report).read_text(encoding="utf-8"), "Output checking"),
        encoding="utf-8",
    )
    log.info("wrote %d tables as HTML and in %s", len(printed), out["word"])
    if cache:
        log.info(kept.summary())


def printed_key(table: PublicationTable, version: str) -> str:
    """The content key of a table's print form: everything table_html and word_document read."""
    return content_key(
        version,
        json.dumps([table.name, table.title, table.indent, table.group, table.marks]),
        json.dumps([table.footnotes, table.notes]),
        table.frame.to_json(orient="split", default_handler=str),
    )
