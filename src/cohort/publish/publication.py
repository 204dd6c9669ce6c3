"""Publication tables: each published table (after disclosure control) in the form a journal
prints it, as HTML for the Snakemake report (great-tables) and all of them in one Word document
for the manuscript (python-docx). Labels, p-values and counts come from cohort.core.labels; Table 2's
layout from cohort.analysis.tables.table2_lines. The CSVs stay the machine-readable record.

Both outputs are byte-reproducible: great-tables is given a fixed table id, and the Word
document's zip entries get a fixed timestamp and its core properties fixed dates."""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from cohort.analysis.tables import table2_lines
from cohort.core.labels import (
    format_count,
    format_number,
    format_p,
    level_label,
    reference_levels,
    term_label,
    term_parts,
)

# What each table shows, of which patients, with which denominator and method: its caption in
# the report, the HTML table and the Word document. The table's own notes (N, method details,
# disclosure markers) follow it as footnotes.
TABLE_CAPTIONS = {
    "flow": "Flow of patients from the raw extract to the analysis set (STROBE): patients at each stage and excluded with the reason.",
    "baseline": "Table 2. Baseline characteristics of the analysis set: n (%) of patients with a valid value, mean ± SD or median [Q1, Q3] (footnotes per row).",
    "baseline_vs_paper": "Table 2 of the published paper beside this run's figures, line by line, with the valid n of each.",
    "outcomes": "Outcomes per occasion (patients measured: median [Q1, Q3], mean (SD)) and their change from the start among patients measured at both (mean change with t-based CI, Wilcoxon signed-rank test, standardised response mean); Friedman test on complete cases.",
    "responders": "Responders (improvement of at least the minimal clinically important difference) per outcome and follow-up, under two denominators: patients measured at start and follow-up (available cases), and the whole analysis set with a missing follow-up counted as non-responder; Wilson score 95% CI (Clopper-Pearson exact at 0 or n of n).",
    "responder_course": "Course of response over the first and last follow-up among patients classified at both: sustained, lost, late, never; exact McNemar test of lost vs late.",
    "responder_directions": "Improved, unchanged and deteriorated by the responder rule applied in both directions, among patients measured at start and follow-up; Wilson score 95% CI.",
    "responder_subgroups": "Responders per level of each baseline subgroup (available cases); Wilson score 95% CI.",
    "threshold_sweep": "Share of patients (available cases) whose improvement reaches each threshold, on the absolute scale (also in SD units of the start values) and as a percent of the start value; Wilson score 95% CI.",
    "responders_vs_paper": "Responder rates published in the paper beside this run's, per outcome and follow-up.",
    "lmm": "Linear mixed models of each outcome on occasion and baseline covariates (random intercept per patient; REML; patients with the outcome measured and complete covariates): fixed effects with 95% CI and p, and the variances (the estimated means per occasion are in lmm.csv and its figure).",
    "predictors": "Predictors of response: logistic regression per outcome and follow-up, complete cases and multiple imputation (Rubin's rules); odds ratios with 95% CI and p.",
    "missingness": "Missing values per variable and occasion (of the analysis set), and baseline characteristics of patients lost to follow-up vs completers (standardised mean difference, test).",
    "missing_data_sensitivity": "Responder rates under each handling of a missing follow-up: available cases, missing = non-responder, and multiple imputation (MICE, Rubin's rules on the logit scale).",
    "clinical_significance_definitions": "Definitions of clinical significance per outcome: the threshold each gives and what it was computed from.",
    "clinical_significance_rates": "Responder rates under each definition of clinical significance: available cases, all of the analysis set (missing = not improved) with Wilson score 95% CI, and multiple imputation.",
    "site_aggregates": "The aggregates a pooling of sites reads: per outcome and occasion, n, sum and sum of squares of the values and of the change from the start (exact in the *_hex columns).",
    "tipping_point": "Delta-adjusted multiple imputation: the responder rate and the mean improvement from start with the missing follow-ups made worse by delta (SD units of the start values), and the tipping point at which each conclusion changes; Rubin's rules, 95% CI.",
    "clinical_significance_agreement": "Agreement between pairs of definitions of clinical significance among patients classified by both: both, one only, neither, % agreement and Cohen's kappa with asymptotic 95% CI.",
    "interventions": "Intervention categories received (patients with the category in at least one session, % of the analysis set), sessions per patient with the category and share of all sessions.",
    "dose": "Dose of rehabilitation per patient of the analysis set: sessions and programme duration, median [Q1, Q3].",
    "intervention_combinations": "The most frequent combinations of intervention categories received by a patient (patients of the analysis set).",
    "intervention_cooccurrence": "Patients of the analysis set who received each pair of intervention categories.",
    "group_outcomes": "Outcomes per trial arm and occasion: n measured, mean (SD), median [Q1, Q3].",
    "group_ancova": "Difference between arms at follow-up adjusted for the start value (ANCOVA), with 95% CI and p.",
    "group_responders": "Responders per trial arm (available cases and missing = non-responder), difference and odds ratio with 95% CI.",
    "group_lmm": "Linear mixed model of each outcome on arm, occasion and their interaction (random intercept per patient; REML).",
}
# The Word document leads with the tables a manuscript prints; the rest follow in the report's
# order. The threshold sweep (hundreds of rows, one per threshold) is the data of its figure and
# stays in the CSV and the report.
MANUSCRIPT_FIRST = ("baseline", "responders", "lmm", "predictors")
NOT_IN_WORD = ("threshold_sweep", "site_aggregates")
INDENT = 2  # great-tables' indent steps for a level under its variable
# The columns a journal form reads: a table without them (a study too small for any model to be
# published, no rows) is printed in the generic form, with its notes saying why.
JOURNAL_FORM_COLUMNS = {
    "baseline": ("variable", "label", "level", "statistic", "value", "valid_n", "n"),
    "responders": (
        "outcome", "occasion", "rule", "denominator", "responders", "n", "pct", "ci_low_pct",
        "ci_high_pct", "ci_method", "could_not_improve", "missing",
    ),
    "lmm": ("outcome", "term", "estimate", "se", "ci_low", "ci_high", "p_value", "patients",
            "observations", "method"),
    "group_lmm": ("outcome", "term", "estimate", "se", "ci_low", "ci_high", "p_value",
                  "patients", "observations", "method"),
    "predictors": ("outcome", "occasion", "analysis", "term", "odds_ratio", "ci_low", "ci_high",
                   "p_value", "N", "method"),
}  # fmt: skip

COLUMN_LABELS = {
    "n": "n",
    "N": "N",
    "pct": "%",
    "ci_low_pct": "95% CI, lower (%)",
    "ci_high_pct": "95% CI, upper (%)",
    "ci_low": "95% CI, lower",
    "ci_high": "95% CI, upper",
    "p_value": "p",
    "se": "SE",
    "df": "df",
    "sd": "SD",
    "q1": "Q1",
    "q3": "Q3",
    "srm": "SRM",
    "fmi": "FMI",
    "smd": "SMD",
    "epv": "EPV",
    "odds_ratio": "Odds ratio",
    "log_or": "log OR",
}


@dataclass(frozen=True)
class Labels:
    """What codes read as in print: outcomes, occasions, variables (Table 2 labels), levels (the
    contract's code labels) and intervention categories (the codebook)."""

    outcomes: Mapping[str, str] = field(default_factory=dict)
    occasions: Mapping[str, str] = field(default_factory=dict)
    variables: Mapping[str, str] = field(default_factory=dict)
    levels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    categories: Mapping[str, str] = field(default_factory=dict)

    def term(self, term: str, references: Mapping[str, str]) -> str:
        return term_label(term, self.variables, references, self.categories, self.levels)


@dataclass(frozen=True)
class PublicationTable:
    """One table as printed: `frame` holds display text; its first column is the row label.
    `indent` marks level rows, `group` (optional) is each row's heading, `marks` a footnote
    letter per row label; `footnotes` the letters' texts, `notes` the table's own notes."""

    name: str
    title: str
    frame: pd.DataFrame
    indent: list[bool]
    group: list[str] | None = None
    marks: list[str] | None = None
    footnotes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def publication_tables(
    tables: Mapping[str, pd.DataFrame], notes: Mapping[str, list[str]], labels: Labels
) -> list[PublicationTable]:
    """Every published table in print form: the journal forms of Table 2, the responder table
    and the model tables, the others with words for codes and formatted numbers."""
    builders = {
        "baseline": baseline_publication,
        "responders": responders_publication,
        "lmm": lmm_publication,
        "group_lmm": lmm_publication,
        "predictors": predictors_publication,
    }
    out = []
    for name, table in tables.items():
        build = builders.get(name, generic_publication)
        if not set(JOURNAL_FORM_COLUMNS.get(name, ())) <= set(table.columns) or table.empty:
            build = generic_publication  # a table with no rows (or no model) prints as it is
        out.append(build(name, table, list(notes.get(name, [])), labels))
    return out


def caption(name: str) -> str:
    """The table's caption (TABLE_CAPTIONS), or its name in words for a table without one."""
    return TABLE_CAPTIONS.get(name, name.replace("_", " ").capitalize() + ".")


def baseline_publication(
    name: str, table: pd.DataFrame, notes: list[str], labels: Labels
) -> PublicationTable:
    """Table 2: one line per statistic, levels indented by their labels, a footnote letter per
    statistic, the valid n where it is below N."""
    lines = table2_lines(table, dict(labels.levels))
    statistics = list(dict.fromkeys(s for s in lines["statistic"] if s))
    letters = {s: chr(ord("a") + i) for i, s in enumerate(statistics)}
    text = [
        c + (f" (valid n {v})" if v else "")
        for c, v in zip(lines["characteristic"], lines["valid_n"], strict=True)
    ]
    n_shown = format_count(table["n"].iat[0]) if len(table) else "0"
    frame = pd.DataFrame({"Characteristic": text, f"N = {n_shown}": list(lines["value"])})
    return PublicationTable(
        name,
        caption(name),
        frame,
        indent=list(lines["level"].astype(bool)),
        marks=[letters.get(s, "") for s in lines["statistic"]],
        footnotes=[f"{letters[s]} {_statistic_words(s)}" for s in statistics],
        notes=notes,
    )


def responders_publication(
    name: str, table: pd.DataFrame, notes: list[str], labels: Labels
) -> PublicationTable:
    """The responder table: one heading per outcome with its rule in words, one line per
    follow-up, n/N (%) [95% CI] under each denominator."""
    rows, groups = [], []
    denominators = list(dict.fromkeys(table["denominator"]))
    for (outcome, occasion), part in table.groupby(["outcome", "occasion"], sort=False):
        first = part.iloc[0]
        name_of = labels.outcomes.get(outcome, outcome)
        groups.append(f"{name_of[:1].upper()}{name_of[1:]}: {first['rule']}")
        cells = {"Follow-up": labels.occasions.get(occasion, occasion)}
        by_denominator = {r["denominator"]: r for _, r in part.iterrows()}
        for denominator in denominators:
            r = by_denominator.get(denominator)
            cells[_denominator_header(denominator)] = "" if r is None else _rate(r)
        cells["Could not improve"] = format_count(first["could_not_improve"])
        cells["Missing"] = format_count(first["missing"])
        rows.append(cells)
    frame = pd.DataFrame(rows)
    method = ", ".join(dict.fromkeys(table["ci_method"].astype(str))) if len(table) else ""
    return PublicationTable(
        name,
        caption(name),
        frame,
        indent=[False] * len(frame),
        group=groups,
        footnotes=[f"Responders n/N (%) [{method} CI]."] if method else [],
        notes=notes,
    )


def lmm_publication(
    name: str, table: pd.DataFrame, notes: list[str], labels: Labels
) -> PublicationTable:
    """A mixed-model table: per outcome, each fixed effect in words with its reference level on
    a line of its own, estimate (95% CI) and p; then the variances; estimated means follow in
    the CSV and the report's figure."""
    effects = table[table.get("section", pd.Series("", index=table.index)) != "estimated mean"]
    rows, groups, indent = [], [], []
    for outcome, part in effects.groupby("outcome", sort=False):
        heading = f"{labels.outcomes.get(outcome, outcome)} (N = {format_count(part['patients'].iat[0])} patients, {format_count(part['observations'].iat[0])} observations)"
        lines = _term_lines(part, labels, _estimate_cells, {"Estimate (95% CI)": "Reference"})
        for label, is_level, cells in lines:
            rows.append({"Term": label, **cells})
            groups.append(heading)
            indent.append(is_level)
    frame = pd.DataFrame(rows, columns=["Term", "Estimate (95% CI)", "p"]).fillna("")
    method = ", ".join(dict.fromkeys(effects["method"].astype(str))) if len(effects) else ""
    return PublicationTable(
        name, caption(name), frame, indent, group=groups, footnotes=[method], notes=notes
    )


def predictors_publication(
    name: str, table: pd.DataFrame, notes: list[str], labels: Labels
) -> PublicationTable:
    """Predictors of response: per outcome and follow-up, each term in words with its reference
    line, odds ratio (95% CI) and p of the complete-case and the multiple-imputation analysis
    side by side."""
    analyses = list(dict.fromkeys(table["analysis"]))
    rows, groups, indent = [], [], []
    for (outcome, occasion), part in table.groupby(["outcome", "occasion"], sort=False):
        heading = (
            f"{labels.outcomes.get(outcome, outcome)}, {labels.occasions.get(occasion, occasion)}"
        )
        columns: dict[str, dict[str, dict[str, str]]] = {}
        order: list[tuple[str, bool]] = []
        for analysis in analyses:
            fits = part[part["analysis"] == analysis]
            reference = {"Odds ratio (95% CI)": "1 (reference)"}
            for label, is_level, cells in _term_lines(fits, labels, _odds_ratio_cells, reference):
                if (label, is_level) not in order:
                    order.append((label, is_level))
                columns.setdefault(label, {})[analysis] = cells
            if len(fits):
                events = format_count(fits["events"].iat[0]) if "events" in fits else ""
                n = format_count(fits["N"].iat[0])
                heading_n = f"{analysis}: N = {n}" + (f", {events} responders" if events else "")
                heading += f"; {heading_n}"
        for label, is_level in order:
            cells = {"Term": label}
            for analysis in analyses:
                got = columns[label].get(analysis, {})
                cells[f"OR (95% CI), {analysis}"] = got.get("Odds ratio (95% CI)", "")
                cells[f"p, {analysis}"] = got.get("p", "")
            rows.append(cells)
            groups.append(heading)
            indent.append(is_level)
    frame = pd.DataFrame(rows).fillna("")
    methods = [f"{a}: {m}" for a, m in _methods(table).items()]
    return PublicationTable(
        name, caption(name), frame, indent, group=groups, footnotes=methods, notes=notes
    )


def generic_publication(
    name: str, table: pd.DataFrame, notes: list[str], labels: Labels
) -> PublicationTable:
    """Any other table: codes in words (outcomes, occasions, variables, levels), counts as
    integers, p-values as journals print them, columns named in words; a column empty in every
    row (a statistic this table's rows do not have) is left out."""
    shown = pd.DataFrame(index=table.index)
    for column in table.columns:
        cells = _display_column(table, column, labels)
        if any(cell != "" for cell in cells):
            shown[_column_label(column)] = cells
    if shown.columns.empty:  # no rows, or none with a value: the table's header as it is
        shown = pd.DataFrame(
            {_column_label(c): [""] * len(table) for c in table.columns} or {"": []}
        )
    return PublicationTable(
        name, caption(name), shown.reset_index(drop=True), [False] * len(shown), notes=notes
    )


def table_html(table: PublicationTable) -> str:
    """The table as a self-contained HTML page (great-tables, fixed id: byte-reproducible)."""
    import great_tables as gt
    from great_tables import loc, style

    frame = table.frame.copy()
    stub = frame.columns[0]
    if table.marks:
        frame[stub] = [
            _escape(text) + (f"<sup>{mark}</sup>" if mark else "")
            for text, mark in zip(frame[stub], table.marks, strict=True)
        ]
    else:
        frame[stub] = [_escape(text) for text in frame[stub]]
    group_column = None
    if table.group is not None:
        group_column = "\u200bgroup"
        frame[group_column] = table.group
    gt_table = gt.GT(frame, id=f"table-{table.name}", rowname_col=stub, groupname_col=group_column)
    gt_table = gt_table.tab_header(title=table.title).fmt_markdown(columns=stub)
    gt_table = gt_table.tab_stubhead(label=stub)
    levels = [i for i, is_level in enumerate(table.indent) if is_level]
    if levels:
        gt_table = gt_table.tab_stub_indent(rows=levels, indent=INDENT)
    if table.group is not None:
        gt_table = gt_table.tab_style(style.text(weight="bold"), loc.row_groups())
    for note in [*table.footnotes, *table.notes]:
        gt_table = gt_table.tab_source_note(note)
    gt_table = gt_table.tab_options(table_font_size="13px", source_notes_font_size="11px")
    body = gt_table.as_raw_html()
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_escape(table.title)}</title>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def word_document(tables: list[PublicationTable], title: str, subtitle: str = "") -> bytes:
    """All tables in one Word document (python-docx): the manuscript's tables first
    (MANUSCRIPT_FIRST), each with its title, headings, indented levels, footnote letters and
    notes; byte-reproducible (fixed zip timestamps and document dates)."""
    import datetime as dt

    import docx
    from docx.enum.section import WD_ORIENT
    from docx.shared import Mm, Pt

    document = docx.Document()
    section = document.sections[0]
    section.orientation = WD_ORIENT.LANDSCAPE
    section.page_width, section.page_height = Mm(297), Mm(210)
    for side in ("left_margin", "right_margin", "top_margin", "bottom_margin"):
        setattr(section, side, Mm(15))
    normal = document.styles["Normal"]
    normal.font.name, normal.font.size = "Arial", Pt(9)
    properties = document.core_properties
    properties.title, properties.author, properties.comments = title, "cohort", ""
    properties.created = properties.modified = dt.datetime(2000, 1, 1)
    properties.last_modified_by, properties.revision = "cohort", 1
    document.add_heading(title, level=1)
    if subtitle:
        document.add_paragraph(subtitle)
    order = {name: i for i, name in enumerate(MANUSCRIPT_FIRST)}
    chosen = [t for t in tables if t.name not in NOT_IN_WORD]
    chosen.sort(key=lambda t: order.get(t.name, len(order)))
    for table in chosen:
        _word_table(document, table)
    buffer = io.BytesIO()
    document.save(buffer)
    return _fixed_zip(buffer.getvalue())


def _word_table(document: Any, table: PublicationTable) -> None:
    """One table in the document: its title, a header row, a bold heading row per group, the
    lines (levels indented, footnote letters as superscript), its footnotes and notes."""
    from docx.shared import Pt

    heading = document.add_paragraph()
    heading.add_run(table.title).bold = True
    columns = list(table.frame.columns)
    lines: list[tuple[str, Any, int]] = [("header", columns, -1)]
    previous_group = None
    for i, values in enumerate(table.frame.itertuples(index=False)):
        if table.group is not None and table.group[i] != previous_group:
            previous_group = table.group[i]
            lines.append(("group", previous_group, i))
        lines.append(("line", list(values), i))
    grid = document.add_table(rows=len(lines), cols=len(columns))
    grid.style = "Table Grid"
    # All cells at once: python-docx's row.cells walks the whole table on every call.
    cells = grid._cells
    width = len(columns)
    merges = []
    for r, (kind, values, i) in enumerate(lines):
        row = cells[r * width : (r + 1) * width]
        if kind == "group":
            row[0].paragraphs[0].add_run(values).bold = True
            merges.append((row[0], row[-1]))
            continue
        for j, (cell, text) in enumerate(zip(row, values, strict=True)):
            run = cell.paragraphs[0].add_run("" if _is_missing(text) else str(text))
            if kind == "header":
                run.bold = True
            elif j == 0:
                if table.marks and table.marks[i]:
                    cell.paragraphs[0].add_run(table.marks[i]).font.superscript = True
                if table.indent[i]:
                    cell.paragraphs[0].paragraph_format.left_indent = Pt(12)
    for first, last in merges:
        first.merge(last)
    for note in [*table.footnotes, *table.notes]:
        run = document.add_paragraph().add_run(note)
        run.font.size = Pt(8)
    document.add_paragraph()


def _fixed_zip(data: bytes) -> bytes:
    """The same zip with every entry dated 1980-01-01 (the zip epoch): a Word file whose bytes
    depend on its content only."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            target.writestr(fixed, source.read(info.filename))
    return out.getvalue()


def _term_lines(
    part: pd.DataFrame, labels: Labels, cells_of: Any, reference: dict[str, str]
) -> list[tuple[str, bool, dict]]:
    """A model's terms as printed lines: a categorical variable as a heading, its reference
    level (cells `reference`) and each other level indented; other terms on one line."""
    terms = [str(t) for t in part["term"]]
    references = reference_levels(terms, labels.levels)
    lines: list[tuple[str, bool, dict]] = []
    seen: set[str] = set()
    for term, (_, row) in zip(terms, part.iterrows(), strict=True):
        parts = term_parts(term)
        if parts.level is None:
            lines.append((_term_words(term, labels, references), False, cells_of(row)))
            continue
        variable = parts.variable
        names = labels.levels.get(variable, {})
        if variable not in seen:
            seen.add(variable)
            lines.append((labels.variables.get(variable, _words(variable)), False, {}))
            base = parts.reference or references.get(variable)
            if base is not None:
                lines.append((names.get(base, base), True, dict(reference)))
        lines.append((names.get(parts.level, parts.level), True, cells_of(row)))
    return lines


def _estimate_cells(row: pd.Series) -> dict[str, str]:
    """Estimate (95% CI) with the decimals its standard error calls for (two significant
    digits of the SE, 2 to 4 decimals), and p."""
    decimals = _decimals_for(row.get("se"))
    estimate = format_number(row["estimate"], decimals)
    if _is_missing(row.get("ci_low")):
        return {"Estimate (95% CI)": estimate, "p": format_p(row.get("p_value"))}
    low, high = format_number(row["ci_low"], decimals), format_number(row["ci_high"], decimals)
    return {"Estimate (95% CI)": f"{estimate} ({low} to {high})", "p": format_p(row["p_value"])}


def _decimals_for(se: Any) -> int:
    try:
        se = float(se)
    except (TypeError, ValueError):
        return 2
    if not math.isfinite(se) or se <= 0:
        return 2
    return max(2, min(4, 1 - math.floor(math.log10(se))))


def _odds_ratio_cells(row: pd.Series) -> dict[str, str]:
    value = format_number(row["odds_ratio"], 2)
    if not _is_missing(row.get("ci_low")):
        value += f" ({format_number(row['ci_low'], 2)} to {format_number(row['ci_high'], 2)})"
    return {"Odds ratio (95% CI)": value, "p": format_p(row["p_value"])}


def _methods(table: pd.DataFrame) -> dict[str, str]:
    return {
        str(a): "; ".join(dict.fromkeys(part["method"].astype(str)))
        for a, part in table.groupby("analysis", sort=False)
    }


def _term_words(term: str, labels: Labels, references: Mapping[str, str]) -> str:
    """A term that is not a level: the intercept, a variance, a baseline score, an intervention
    category (cohort.core.labels.term_label) or a variable."""
    if term == "Intercept":
        return "Intercept"
    if term.startswith("variance: "):
        return "Variance, " + term[len("variance: ") :]
    for outcome, label in labels.outcomes.items():
        for occasion, when in labels.occasions.items():
            if term == f"{outcome}_{occasion}":
                return f"{label} at {when[:1].lower()}{when[1:]}"
    return labels.term(term, references)


def _display_column(table: pd.DataFrame, column: str, labels: Labels) -> list[str]:
    values = table[column]
    if column == "outcome":
        return [labels.outcomes.get(v, _text(v)) for v in values]
    if column == "occasion":
        return [labels.occasions.get(v, _text(v)) for v in values]
    if column == "level":
        owner = "subgroup" if "subgroup" in table else "variable" if "variable" in table else None
        if owner:
            return [
                level_label(str(o), v, labels.levels)
                for o, v in zip(table[owner], values, strict=True)
            ]
    if column == "term":
        return [labels.term(_text(v), {}) if _text(v) else "" for v in values]
    if column in ("variable", "subgroup"):
        return [labels.variables.get(v, _text(v)) for v in values]
    if column == "p_value" or column.endswith("_p"):
        return [format_p(v) for v in values]
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.notna().sum() == 0:
        return [_text(v) for v in values]
    if numbers.dropna().map(lambda x: float(x).is_integer()).all():
        return [format_count(v) for v in values]
    if column.endswith("pct") or column == "pct":
        return [format_number(v, 1) for v in values]
    return [_significant(v) for v in values]


def _significant(value: Any) -> str:
    """Three significant digits in fixed notation (no 1e-05): what a table prints."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return _text(value)
    if math.isnan(number):
        return ""
    if number == 0:
        return "0"
    decimals = max(0, min(4, 2 - math.floor(math.log10(abs(number)))))
    return format_number(number, decimals)


def _column_label(column: str) -> str:
    return COLUMN_LABELS.get(column, _words(column))


def _denominator_header(denominator: str) -> str:
    if denominator == "available cases":
        return "Available cases, n/N (%) [95% CI]"
    return f"{denominator[0].upper()}{denominator[1:]}, n/N (%) [95% CI]"


def _rate(row: pd.Series) -> str:
    n, responders = format_count(row["n"]), format_count(row["responders"])
    pct = format_number(row["pct"], 1)
    low, high = format_number(row["ci_low_pct"], 1), format_number(row["ci_high_pct"], 1)
    interval = f" [{low}, {high}]" if low and high else ""
    return f"{responders}/{n} ({pct}){interval}"


def _statistic_words(statistic: str) -> str:
    return {
        "mean ± SD": "Mean ± SD.",
        "n (%)": "n (%) of patients with a valid value.",
        "median [Q1, Q3]": "Median [first quartile, third quartile].",
    }.get(statistic, statistic + ".")


def _words(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _text(value: Any) -> str:
    return "" if _is_missing(value) else str(value)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def _escape(text: Any) -> str:
    """Text for HTML: the disclosure marker '<5' must print, not open a tag."""
    return _text(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
