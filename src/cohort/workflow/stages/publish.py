"""Rule publish (rules/report.smk): disclosure control of every table under one pattern, and
what is rendered from the protected tables (Table 2 in Markdown, summary.md, the output-checking
report). The figures drawn from the published tables are rule figures' (cohort.workflow.stages.figures),
so that editing a figure reruns that rule and not this one."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cohort.analysis.tables import baseline_markdown, baseline_vs_paper
from cohort.core.cache import OutputCache
from cohort.core.settings import Analysis
from cohort.disclosure import Context, DisclosureSettings, Pattern, protect_tables
from cohort.disclosure.decisions import ReleaseDecisions
from cohort.disclosure.release import TableLoss, release_request, table_loss
from cohort.io.outputs import read_csv, read_notes, table_notes, write_csv
from cohort.publish.summary import summary_markdown

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


def disclosure_context(
    config: Analysis, baseline_rows: list[dict[str, Any]], n_analysis: int
) -> Context:
    """What the disclosure rules need to know of the study (from its config sections)."""
    return Context(
        n_analysis=n_analysis,
        handling=config.could_not_improve,
        mcid={name: outcome.rule for name, outcome in config.outcomes.items()},
        shown_level={r["variable"]: str(r["level"]) for r in baseline_rows if "level" in r},
        occasions=tuple(config.occasion_names),
        confidence_level=config.statistics.confidence_level,
    )


def publish_stage(
    tables: dict[str, str | list[str]],
    settings: dict[str, Any],
    summary_tables: list[str],
    levels: dict[str, dict[str, str]],
    out: dict[str, str],
    release: dict[str, Any] | None = None,
    cache: str | None = None,
) -> None:
    """Rule `publish`: every table protected under one suppression pattern over all their counts
        (`cohort.disclosure.protect_tables`), then Table 2 in Markdown and beside the paper,
        results/summary.md and results/disclosure_report.md, all from the protected tables; levels
        by the contract's labels (`levels`). An output the steward's decisions withhold (`release`,
        `ReleaseDecisions.record()`) is not in `out` and is not written; the tables are protected
        together all the same, as the pattern must hold for what was released before. `cache`: the
    folder of kept outputs (cohort.core.cache), where the least-loss pattern of the same counts is
    taken from instead of solved again."""
    import pandas as pd

    config = Analysis.from_config(settings)
    disclosure = DisclosureSettings.from_config(settings["disclosure"])
    decisions = ReleaseDecisions.from_record(release)
    results = Path(out["disclosure_report"]).parent
    for path in decisions.withheld:  # a copy from before the decision: no rule owns it now
        if (results / path).is_file():
            (results / path).unlink()
            log.info("removed %s: withheld by the release decisions", results / path)
    raw, notes = {}, {}
    for name, paths in tables.items():
        paths = [paths] if isinstance(paths, str) else list(paths)
        raw[name] = pd.concat([read_csv(p) for p in paths], ignore_index=True)
        notes[name] = read_notes(paths[0])
    flow = raw["flow"]
    n_analysis = int(flow.loc[flow["key"] == "analysis_set", "n"].iat[0])
    kept = OutputCache(cache)
    protected, reports, pattern = protect_tables(
        raw, disclosure, disclosure_context(config, settings["baseline"], n_analysis), kept
    )
    log.info("suppression pattern: %s", kept.summary())
    footer = disclosure.footer()
    _write_tables(protected, reports, notes, footer, out)
    _write_table_2(
        protected["baseline"], notes["baseline"], footer, config, settings["baseline"], levels, out
    )
    # The summary reads the tables back as published, as a reader of results/ would.
    if "summary" in out:
        summary = {name: read_csv(out[name]) for name in summary_tables}
        Path(out["summary"]).write_text(
            summary_markdown(summary, config, disclosure), encoding="utf-8"
        )
        log.info("wrote %s from %s", out["summary"], ", ".join(summary_tables))
    losses = {name: table_loss(table, disclosure) for name, table in protected.items()}
    Path(out["disclosure_report"]).write_text(
        disclosure_report(reports, pattern, disclosure, losses, decisions), encoding="utf-8"
    )
    request = release_request(
        protected,
        {name: r.rule for name, r in reports.items()},
        pattern.detail,
        disclosure,
        decisions,
    )
    Path(out["release_request"]).write_text(
        json.dumps(request, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    log.info("wrote %s: %d outputs for release", out["release_request"], len(request["results"]))


def _write_tables(
    protected: dict[str, pd.DataFrame],
    reports: dict[str, Any],
    notes: dict[str, list[str]],
    footer: str,
    out: dict[str, str],
) -> None:
    """Each protected table with its notes and footer, and what it hid in the log; a table the
    release decisions withhold is not written."""
    for name, table in protected.items():
        report = reports[name]
        extra = [f"{k}: {v}" for k, v in report.other.items() if v]
        log.info(
            "%s: %d primary, %d secondary, %d derived, %d small-group statistics hidden%s",
            name, report.primary, report.secondary, report.derived, report.small_groups,
            "; " + "; ".join(extra) if extra else "",
        )  # fmt: skip
        if name not in out:
            log.info("tables/%s.csv withheld by the release decisions: not written", name)
            continue
        write_csv(
            table, out[name], [*notes[name], footer + (f" {'; '.join(extra)}." if extra else "")]
        )


def _write_table_2(
    baseline: pd.DataFrame,
    notes: list[str],
    footer: str,
    config: Analysis,
    rows: list[dict[str, Any]],
    levels: dict[str, dict[str, str]],
    out: dict[str, str],
) -> None:
    """Table 2 as published, in Markdown and beside the paper's figures (`rows`: config
    baseline)."""
    baseline_notes = [*notes, footer]
    if "baseline_markdown" in out:
        Path(out["baseline_markdown"]).write_text(
            baseline_markdown(
                baseline, "Baseline characteristics (Table 2)", baseline_notes, levels
            ),
            encoding="utf-8",
        )
    paper = config.study.paper
    if "baseline_vs_paper" in out:
        write_csv(
            baseline_vs_paper(baseline, rows, levels),
            out["baseline_vs_paper"],
            table_notes(
                config.synthetic,
                f"paper: {paper}; this run after disclosure control (the paper's min-max is the paper's figure only)."
                if paper
                else "paper: the figures given in the study file; this run after disclosure control."
                if any("paper" in row for row in rows)
                else "Empty: the study file gives no published Table 2 figures (baseline rows' paper).",
                footer,
            ),
        )


def disclosure_report(
    reports: dict[str, Any],
    pattern: Pattern,
    settings: DisclosureSettings,
    losses: dict[str, TableLoss],
    decisions: ReleaseDecisions | None = None,
) -> str:
    """results/disclosure_report.md: the pattern's method, per published file the rule, how many
    cells it hid and the share of the table lost; the rendered files, figures and exemptions
    with their reasons. No hidden value."""
    from cohort.disclosure import EXEMPTIONS, FIGURES, MIN_RESIDUAL_DF, RENDERED_FROM

    hidden = pattern.hidden
    primary = sum(1 for why in hidden.values() if why == "primary")
    cells = sum(loss.cells for loss in losses.values())
    lost = sum(loss.hidden for loss in losses.values())
    lines = [
        "# Output-checking report",
        "",
        f"- Threshold: counts below **{settings.min_cell}** are not published (`disclosure.min_cell`).",
        f"- Rounding of published counts: {settings.rounding_words() if settings.rounding else 'none'} (`disclosure.rounding`, `disclosure.rounding_method`). Residual risk: {settings.residual_risk()}",
        f"- Zero counts disclosive: {'yes' if settings.zeros_disclosive else 'no'} (`disclosure.zeros_disclosive`).",
        f"- Min and max: {'published (disclosure.allow_min_max: true)' if settings.allow_min_max else 'not published'}.",
        f"- Dominance (`disclosure.dominance`, as ACRO checks it): {settings.dominance_words()}; `[d]` marks it. Medians and quartiles are published for groups of at least min_cell patients (each is one patient's value or between two, as ACRO treats them: threshold only).",
        f"- Models: not published with fewer than {settings.min_cell} patients (or events, or non-events) or fewer than {MIN_RESIDUAL_DF} residual degrees of freedom.",
        f"- One suppression pattern over all tables: {len(hidden)} distinct counts hidden "
        f"({primary} below the threshold, {len(hidden) - primary} to protect them), each possibly printed in several tables.",
        f"- Secondary suppression: {pattern.detail} (`disclosure.method: {settings.method}`).",
        f"- Information lost: {lost} of {cells} published cells ({100 * lost / cells if cells else 0:.1f}%) show a marker instead of a value.",
        "- Release request: `results.json` (ACRO's results format: one record per table with its status, checks and hidden cells).",
        "",
        "## Tables",
        "",
        "| file | cells below min_cell | cells hidden to protect others | values derived from hidden counts | small-group statistics | cells lost (of the table's) | other | rule |",
        "|---|---|---|---|---|---|---|---|",
    ]
    withheld = (decisions or ReleaseDecisions()).withheld
    for name, r in reports.items():
        other = "; ".join(f"{k}: {v}" for k, v in r.other.items()) or ""
        loss = losses[name]
        mark = " (withheld)" if f"tables/{name}.csv" in withheld else ""
        lines.append(
            f"| `tables/{name}.csv`{mark} | {r.primary} | {r.secondary} | {r.derived} | {r.small_groups} | {loss.hidden} of {loss.cells} ({100 * loss.share:.1f}%) | {other} | {r.rule} |"
        )
    lines += ["", "## Rendered from the protected tables", ""]
    lines += [f"- `{name}`: from {', '.join(sources)}" for name, sources in RENDERED_FROM.items()]
    lines += ["", "## Figures", ""]
    lines += [f"- `figures/{name}.png`: {how}" for name, how in FIGURES.items()]
    lines += decisions_section(decisions or ReleaseDecisions())
    lines += ["", "## Exemptions", ""]
    lines += [f"- `{name}`: {why}" for name, why in EXEMPTIONS.items()]
    lines += [
        "",
        "## For the output checker to look at by hand",
        "",
        "- Dominance of means of changes (values of both signs, where the NK and p% rules are not defined: counted per table under 'other'), and of sums no table publishes as such.",
        "- Relations the rules do not know: a study-specific derived variable that is a sum of published counts, or outputs made outside this workflow.",
        "- Figures: their numbers are the protected tables'; check that labels and captions add nothing.",
        "- The flow's stage totals are published (STROBE); a stage may be hidden where an exclusion below the threshold would otherwise follow from two stages.",
        "",
    ]
    return "\n".join(lines)


def decisions_section(decisions: ReleaseDecisions) -> list[str]:
    """The report's section on the steward's decisions: each decision with its comment, and
    every output withheld because of them (not written to results/)."""
    lines = ["", "## The steward's decisions", ""]
    if not decisions.decisions:
        return [
            *lines,
            "None yet (`disclosure.decisions`): every output above is offered for release.",
        ]
    lines.append(f"From `{decisions.source}`, by {decisions.reviewer}:")
    lines.append("")
    lines += [
        f"- `{d.output}`: **{d.decision}**" + (f" ({d.comment})" if d.comment else "")
        for d in decisions.decisions.values()
    ]
    if decisions.withheld:
        lines += ["", "Withheld (not written to results/):", ""]
        lines += [f"- `{path}`: {why}" for path, why in decisions.withheld.items()]
    return lines
