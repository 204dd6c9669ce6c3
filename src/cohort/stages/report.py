"""Rules publish, summary and provenance (rules/report.smk)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from cohort.disclosure import TABLE_RULES, suppress
from cohort.outputs import read_csv, read_notes, table_notes, write_csv
from cohort.provenance import provenance, write_provenance
from cohort.summary import summary_markdown
from cohort.tables import baseline_markdown, baseline_vs_paper

log = logging.getLogger(__name__)


def publish_stage(
    tables: dict[str, str | list[str]], settings: dict[str, Any], out: dict[str, str]
) -> None:
    """Rule `publish`: disclosure control of every table, then the renderings made from the
    protected tables (Table 2 in Markdown and beside the paper, count-bearing figures)."""
    from cohort import figures  # matplotlib (0.5 s): imported only by rules that draw

    min_cell = settings["disclosure"]["min_cell"]
    protected = {}
    for name, path in tables.items():
        paths = [path] if isinstance(path, str) else list(path)  # a table made in parts
        table = pd.concat([read_csv(p) for p in paths], ignore_index=True)
        notes = read_notes(paths[0])
        rule = TABLE_RULES.get(name)
        if rule is not None:
            table, hidden = suppress(table, rule, min_cell)
            notes.append(
                f"Disclosure control: counts below {min_cell} (and the values derived from them) shown as "
                f"<{min_cell} or blank, with secondary suppression; {hidden} cells suppressed."
            )
            log.info("%s: %d cells suppressed", name, hidden)
        else:
            log.info(
                "%s: published without suppression (no counts of patients by characteristic)", name
            )
        write_csv(table, out[name], notes)
        protected[name] = (table, notes)
    baseline, notes = protected["baseline"]
    (Path(out["baseline_markdown"])).write_text(
        baseline_markdown(baseline, "Baseline characteristics (Table 2)", notes), encoding="utf-8"
    )
    write_csv(
        baseline_vs_paper(baseline, settings["baseline"]),
        out["baseline_vs_paper"],
        table_notes(
            settings,
            "paper: Trulsson Schouenborg et al. 2021, Table 2 (N = 274); this run after disclosure control.",
        ),
    )
    sweep, notes = protected["threshold_sweep"]
    shares = ["pct", "ci_low_pct", "ci_high_pct", "n"]  # suppressed cells ("<5", blank) not drawn
    sweep = sweep.assign(**{c: pd.to_numeric(sweep[c], errors="coerce") for c in shares})
    figures.save_figure(
        figures.threshold_sweep_figure(
            sweep,
            {name: spec["label"] for name, spec in settings["outcomes"].items()},
            {o["name"]: o["label"] for o in settings["occasions"]},
            {name: spec["mcid"]["absolute"] for name, spec in settings["outcomes"].items()},
            " ".join([*notes, "Dashed: configured MCID."]),
        ),
        out["sweep_figure"],
    )
    if "interventions" not in protected:
        log.info("no session data: no intervention figures")
        return
    categories, _ = protected["interventions"]
    n = int(categories["N"].iat[0])
    caption = " ".join(
        table_notes(
            settings,
            f"N = {n} (analysis set). Categories coded from the medical records; "
            f"counts below {min_cell} suppressed.",
        )
    )
    figures.save_figure(figures.category_bars(categories, caption), out["interventions_figure"])
    figures.save_figure(
        figures.cooccurrence_heatmap(protected["intervention_cooccurrence"][0], n, caption),
        out["cooccurrence_figure"],
    )


def summary_stage(tables: dict[str, str], settings: dict[str, Any], out: str) -> None:
    """Rule `summary`: results/summary.md from the published tables."""
    read = {name: read_csv(path) for name, path in tables.items()}
    for name, table in read.items():
        log.info("read %s: %d rows", tables[name], len(table))
    Path(out).write_text(summary_markdown(read, settings), encoding="utf-8")
    log.info("wrote %s", out)


def provenance_stage(
    inputs: dict[str, list[str]], outputs: list[str], config: dict[str, Any], repo: str, out: str
) -> None:
    """Rule `provenance`: results/provenance.json."""
    record = provenance(inputs, outputs, config, repo)
    log.info(
        "hashed %d input files and %d outputs; git: %s",
        sum(len(v) for v in record["inputs"].values()),
        len(record["outputs"]),
        record["git"],
    )
    write_provenance(record, out)
