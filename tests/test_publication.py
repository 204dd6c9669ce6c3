"""Publication tables: labels and number formats (cohort.core.labels), the journal forms of Table 2,
the responder and the model tables, their HTML and the Word document (cohort.publish.publication)."""

from __future__ import annotations

import io
import re
import zipfile
from html.parser import HTMLParser

import docx
import numpy as np
import pandas as pd
import patsy
import pytest

from cohort.analysis.tables import table2_lines
from cohort.core.labels import (
    format_count,
    format_number,
    format_p,
    reference_levels,
    term_label,
    term_parts,
    variable_labels,
)
from cohort.io.contract import level_labels, load_contract
from cohort.io.outputs import read_csv, read_notes
from cohort.publish.publication import (
    NOT_IN_WORD,
    TABLE_CAPTIONS,
    Labels,
    publication_tables,
    table_html,
    word_document,
)
from cohort.workflow.provenance import provenance, sha256

from .conftest import ROOT

TABLES = ROOT / "results/tables"
FORMULA_SYNTAX = re.compile(r"C\(|\[T\.|Treatment\(|received_\d|_start\b|followup_1y|nan\b|None")
P_VALUE = re.compile(r"^(<0\.001|[01]\.\d{3}|\[s\]|\[c\]|)$")


# ---------------------------------------------------------------- labels and formats


@pytest.mark.parametrize(
    ("value", "printed"),
    [
        (3.7184e-16, "<0.001"),
        (0.00049, "<0.001"),
        (0.0006, "0.001"),
        (0.0123, "0.012"),
        (0.05, "0.050"),
        (1.0, "1.000"),
        ("[s]", "[s]"),
        (float("nan"), ""),
        (None, ""),
    ],
)
def test_p_values_print_as_journals_print_them(value, printed):
    assert format_p(value) == printed


def test_counts_print_as_integers_and_markers_as_given():
    assert format_count(244.0) == "244"
    assert format_count("39111.0") == "39111"
    assert format_count("<5") == "<5" and format_count("[c]") == "[c]"
    assert format_count(float("nan")) == ""
    assert format_number(-0.001, 2) == "0.00"  # no "-0.00"


def test_terms_read_as_comparisons_with_their_reference():
    levels = {
        "sex": {"F": "Women", "M": "Men"},
        "occasion": {"start": "Start", "discharge": "Discharge"},
        "group": {"control": "Control", "acupuncture": "Acupuncture"},
    }
    assert term_label("C(sex)[T.M]", {}, {"sex": "F"}, levels=levels) == "Men vs women"
    occasion = "C(occasion, Treatment('start'))[T.discharge]"
    assert term_label(occasion, {}, levels=levels) == "Discharge vs start"
    group = "C(group, Treatment('control'))[T.acupuncture]"
    assert term_label(group, {}, levels=levels) == "Acupuncture vs control"
    # Without level labels, the variable and the codes are named.
    assert term_label("C(sex)[T.M]", {"sex": "Sex"}, {"sex": "F"}) == "Sex: M vs F"
    assert term_label("received_2", {}, categories={"2": "Exercise"}) == "Received: Exercise"
    assert term_parts(occasion).reference == "start"
    interaction = f"{group}:{occasion}"
    assert term_label(interaction, {}, levels=levels) == (
        "Acupuncture vs control × Discharge vs start"
    )


def test_reference_level_is_the_one_patsy_leaves_out():
    """The reference our tables print is the level patsy's treatment coding drops for a
    categorical in the contract's order (the models' coding): checked against patsy itself."""
    order = ["localized", "regional", "generalized"]
    data = pd.DataFrame({"x": pd.Categorical(["regional", "generalized", "localized"] * 3, order)})
    terms = [t for t in patsy.dmatrix("C(x)", data).design_info.column_names if t != "Intercept"]
    assert reference_levels(terms, {"x": dict.fromkeys(order, "")}) == {"x": "localized"}
    # A formula that names its reference wins over the contract's order.
    named = ["C(x, Treatment('regional'))[T.localized]"]
    assert reference_levels(named, {"x": dict.fromkeys(order, "")}) == {"x": "regional"}


def test_contract_gives_every_category_its_labels_in_order(config):
    levels = level_labels(load_contract(ROOT / "config/contract.yaml", config))
    assert levels["sex"] == {"F": "Women", "M": "Men"}
    assert list(levels["main_pain_location"])[0] == "neck"
    assert levels["main_pain_location"]["no_single_region"] == "No single region"
    assert levels["eq5d_version"] == {"3L": "3L", "5L": "5L"}  # codes without labels


# ---------------------------------------------------------------- print forms


@pytest.fixture(scope="module")
def labels(config) -> Labels:
    baseline = read_csv(TABLES / "baseline.csv")
    levels = level_labels(load_contract(ROOT / "config/contract.yaml", config))
    codes = read_csv(TABLES / "interventions.csv")
    return Labels(
        outcomes={name: o["label"] for name, o in config["outcomes"].items()},
        occasions={o["name"]: o["label"] for o in config["occasions"]},
        variables=variable_labels(baseline),
        levels={**levels, "occasion": {o["name"]: o["label"] for o in config["occasions"]}},
        categories=dict(zip(codes["code"].astype(str), codes["category"], strict=True)),
    )


@pytest.fixture(scope="module")
def printed(labels) -> dict:
    names = [p.stem for p in sorted(TABLES.glob("*.csv"))]
    frames = {name: read_csv(TABLES / f"{name}.csv") for name in names}
    notes = {name: read_notes(TABLES / f"{name}.csv") for name in names}
    return {t.name: t for t in publication_tables(frames, notes, labels)}


def test_table2_has_one_line_per_statistic_and_labelled_indented_levels(printed):
    baseline = read_csv(TABLES / "baseline.csv")
    table = printed["baseline"]
    lines = table.frame
    variables_with_levels = baseline.loc[baseline["level"].notna(), "variable"].nunique()
    assert len(lines) == len(baseline) + variables_with_levels  # a heading per levelled variable
    assert sum(table.indent) == baseline["level"].notna().sum()
    text = lines.to_string()
    assert "no_single_region" not in text and "nan" not in text
    assert "No single region" in text and "Lower limb (hip, knee, ankle, foot)" in text
    # One footnote letter per statistic, on the line that names the variable.
    statistics = list(dict.fromkeys(baseline["statistic"]))
    assert len(table.footnotes) == len(statistics)
    assert {m for m in table.marks if m} == {chr(ord("a") + i) for i in range(len(statistics))}
    assert all(not mark for mark, level in zip(table.marks, table.indent, strict=True) if level)
    assert lines.columns[1] == f"N = {format_count(baseline['n'].iat[0])}"


def test_table2_lines_mark_a_valid_n_below_n_and_a_hidden_one():
    table = pd.DataFrame(
        {
            "variable": ["age", "sex", "sex"],
            "label": ["Age", "Sex", "Sex"],
            "level": [np.nan, "F", "M"],
            "statistic": ["mean ± SD", "n (%)", "n (%)"],
            "value": ["40 ± 10", "30 (60%)", "20 (40%)"],
            "valid_n": [48, 50, 50],
            "n": [50, 50, 50],
        }
    )
    lines = table2_lines(table, {"sex": {"F": "Women", "M": "Men"}})
    assert list(lines["characteristic"]) == ["Age", "Sex", "Women", "Men"]
    assert list(lines["valid_n"]) == ["48", "", "", ""]
    assert list(lines["level"]) == [False, False, True, True]
    hidden = table2_lines(table.assign(valid_n=["[c]", 50, 50]), {})
    assert hidden["valid_n"].iat[0] == "[c]"


def test_responder_table_prints_each_rate_from_the_published_counts(printed):
    rates = read_csv(TABLES / "responders.csv")
    table = printed["responders"]
    row = rates.iloc[0]
    expected = (
        f"{int(row['responders'])}/{int(row['n'])} ({row['pct']:.1f}) "
        f"[{row['ci_low_pct']:.1f}, {row['ci_high_pct']:.1f}]"
    )
    assert table.frame.iloc[0, 1] == expected
    assert table.group[0].endswith(row["rule"])  # the rule in words, one renderer
    assert len(table.frame) == rates.groupby(["outcome", "occasion"]).ngroups
    assert not FORMULA_SYNTAX.search(table.frame.to_string() + " ".join(table.group))


@pytest.mark.parametrize("name", ["lmm", "predictors"])
def test_model_tables_have_words_reference_rows_and_journal_p_values(printed, name):
    table = printed[name]
    text = table.frame.to_string() + " ".join(table.group)
    assert not FORMULA_SYNTAX.search(text), FORMULA_SYNTAX.search(text)
    assert "Men" in text and "Women" in text and "Localized" in text
    p_columns = [c for c in table.frame.columns if c == "p" or c.startswith("p, ")]
    for column in p_columns:
        bad = [p for p in table.frame[column] if not P_VALUE.match(p)]
        assert not bad, bad
    # Every categorical variable has its reference level on a line of its own.
    reference = "1 (reference)" if name == "predictors" else "Reference"
    frame = table.frame.reset_index(drop=True)
    for i, label in enumerate(frame.iloc[:, 0]):
        if label in ("Sex", "Pain distribution"):
            assert reference in frame.iloc[i + 1].tolist(), (label, frame.iloc[i + 1].tolist())


def test_model_table_estimate_is_the_published_estimate(printed):
    """The 'Men' line of the first model is C(sex)[T.M] of lmm.csv, formatted."""
    lmm = read_csv(TABLES / "lmm.csv")
    first = lmm[(lmm["outcome"] == lmm["outcome"].iat[0]) & (lmm["term"] == "C(sex)[T.M]")].iloc[0]
    table = printed["lmm"].frame
    men = table[table["Term"] == "Men"].iloc[0]
    assert men["Estimate (95% CI)"].startswith(
        f"{first['estimate']:.2f} ({first['ci_low']:.2f} to "
    )
    assert men["p"] == format_p(first["p_value"])


def test_every_table_has_its_own_caption(printed):
    captions = [t.title for t in printed.values()]
    assert len(set(captions)) == len(captions)
    assert all(name in TABLE_CAPTIONS for name in printed)


def test_generic_tables_print_counts_as_integers(printed):
    dose = printed["dose"].frame
    assert set(dose["N"]) == {format_count(read_csv(TABLES / "dose.csv")["N"].iat[0])}
    flow = printed["flow"].frame
    assert not any(str(v).endswith(".0") for v in flow["n"])
    assert set(flow["Order"]) == {str(i) for i in range(1, len(flow) + 1)}


def test_an_empty_table_prints_its_header_and_notes(labels):
    empty = pd.DataFrame({"outcome": [], "responders": []})
    (table,) = publication_tables({"group_ancova": empty}, {"group_ancova": ["Empty: why"]}, labels)
    assert list(table.frame.columns) == ["Outcome", "Responders"] and table.frame.empty
    html = table_html(table)
    assert "Empty: why" in html and "Outcome" in html
    (lmm,) = publication_tables({"lmm": pd.DataFrame({"outcome": []})}, {}, labels)
    assert lmm.frame.columns.tolist() == ["Outcome"]  # no model: the generic form
    assert word_document([table, lmm], "T")


class _Rows(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows = 0

    def handle_starttag(self, tag, attrs) -> None:
        self.rows += tag == "tr"


def test_html_table_is_complete_escaped_and_reproducible(printed):
    table = printed["responders"]
    html = table_html(table)
    assert html == table_html(table)  # no random id
    parser = _Rows()
    parser.feed(html)
    groups = len(dict.fromkeys(table.group))
    # title + column headings + one per group heading + one per line + source notes
    assert parser.rows >= len(table.frame) + groups + 2
    flow = table_html(printed["flow"])
    if "<5" in printed["flow"].frame.to_string():
        assert "&lt;5" in flow


def test_word_document_holds_every_table_and_is_byte_reproducible(printed):
    tables = list(printed.values())
    data = word_document(tables, "Tables", "subtitle")
    assert data == word_document(tables, "Tables", "subtitle")
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        assert {i.date_time for i in package.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        core = package.read("docProps/core.xml").decode()
    assert "2000-01-01" in core and "python-docx" not in core
    document = docx.Document(io.BytesIO(data))
    assert len(document.tables) == len([t for t in tables if t.name not in NOT_IN_WORD])
    first = document.tables[0]
    assert first.cell(0, 0).text == "Characteristic"  # Table 2 leads
    superscripts = [
        run.text for p in first.columns[0].cells for run in p.paragraphs[0].runs
        if run.font.superscript
    ]  # fmt: skip
    assert set(superscripts) == {"a", "b", "c"}
    text = "\n".join(c.text for t in document.tables for row in t.rows for c in row.cells)
    assert "No single region" in text and "Men" in text and "1 (reference)" in text
    assert not re.search(r"C\(|\[T\.", text)


# ---------------------------------------------------------------- provenance of a directory


def test_a_directory_output_is_hashed_and_published_file_by_file(tmp_path):
    folder = tmp_path / "html"
    folder.mkdir()
    (folder / "a.html").write_text("a")
    (folder / "b.html").write_text("b")
    before = sha256(folder)
    (folder / "b.html").write_text("B")
    assert sha256(folder) != before
    record = provenance(
        {}, [str(folder)], {}, {"publication_tables": {"inputs": [], "outputs": [str(folder)]}}
    )
    assert set(record["outputs"]) == {str(folder / "a.html"), str(folder / "b.html")}
    assert {o["rule"] for o in record["outputs"].values()} == {"publication_tables"}


def test_readme_shows_table2_as_committed():
    """The README's Table 2 is results/tables/baseline.md below its title, as committed."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = readme.split("<!-- baseline.md -->\n")[1].split("<!-- /baseline.md -->")[0].strip()
    committed = (TABLES / "baseline.md").read_text(encoding="utf-8").split("\n", 2)[2].strip()
    assert shown == committed
    assert "](results/figures/" in readme  # and one figure
