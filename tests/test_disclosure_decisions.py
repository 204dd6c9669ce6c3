"""The steward's decisions on the release request (cohort.disclosure.decisions): what a file
may say, and what a rejection withholds. The run that honours them: test_disclosure_workflow."""

import pytest

from cohort.disclosure import FIGURES, TABLE_RULES
from cohort.disclosure.decisions import (
    ReleaseDecisions,
    decidable_outputs,
    parse_decisions,
)
from cohort.disclosure.rules import FIGURE_TABLES
from cohort.disclosure.settings import DisclosureError

DECIDABLE = decidable_outputs(TABLE_RULES, FIGURES)


def decide(outputs: dict, reviewer: str = "A. Steward") -> ReleaseDecisions:
    return parse_decisions({"reviewer": reviewer, "outputs": outputs}, "decisions.yaml", DECIDABLE)


def test_every_figure_names_the_tables_it_is_drawn_from():
    assert set(FIGURE_TABLES) == set(FIGURES)
    for figure, tables in FIGURE_TABLES.items():
        assert set(tables) <= set(TABLE_RULES), figure


def test_a_rejected_table_withholds_its_page_and_figure_and_an_approval_nothing():
    release = decide(
        {
            "tables/threshold_sweep.csv": {"decision": "reject", "comment": "steps of 5 only"},
            "tables/lmm.csv": {"decision": "approve"},
        }
    )
    assert release.rejected() == ["tables/threshold_sweep.csv"]
    assert set(release.withheld) == {
        "tables/threshold_sweep.csv",
        "tables/html/threshold_sweep.html",
        "figures/threshold_sweep.png",
        "figures/threshold_sweep.pdf",
    }
    assert release.withheld["tables/threshold_sweep.csv"] == "rejected: steps of 5 only"
    assert (
        "drawn from tables/threshold_sweep.csv" in release.withheld["figures/threshold_sweep.png"]
    )


def test_rejecting_a_table_the_summary_reads_withholds_the_summary():
    release = decide({"tables/responders.csv": {"decision": "reject", "comment": "c"}})
    assert {"summary.md", "summary.html", "tables/html/responders.html"} <= set(release.withheld)
    baseline = decide({"tables/baseline.csv": {"decision": "reject", "comment": "c"}})
    assert {
        "tables/baseline.md",
        "tables/baseline_vs_paper.csv",
        "tables/html/baseline_vs_paper.html",
        "summary.md",
    } <= set(baseline.withheld)
    figure = decide({"figures/outcome_changes.png": {"decision": "reject", "comment": "c"}})
    assert set(figure.withheld) == {"figures/outcome_changes.png", "figures/outcome_changes.pdf"}


def test_the_record_round_trips():
    release = decide({"tables/flow.csv": {"decision": "reject", "comment": "c"}})
    assert ReleaseDecisions.from_record(release.record()) == release
    assert ReleaseDecisions.from_record(None) == ReleaseDecisions()


@pytest.mark.parametrize(
    "data, says",
    [
        ({"outputs": {}}, "`reviewer` is missing"),
        ({"reviewer": "A"}, "needs `reviewer` and `outputs`"),
        ({"reviewer": "A", "outputs": {}, "status": 1}, "unknown key(s) status"),
        (
            {"reviewer": "A", "outputs": {"tables/nothing.csv": {"decision": "approve"}}},
            "outputs.tables/nothing.csv: not an output of this study",
        ),
        (
            {"reviewer": "A", "outputs": {"results.json": {"decision": "reject", "comment": "x"}}},
            "outputs.results.json: the checker's own record",
        ),
        (
            {"reviewer": "A", "outputs": {"tables/flow.csv": {"decision": "maybe"}}},
            "outputs.tables/flow.csv: decision must be one of approve, reject",
        ),
        (
            {"reviewer": "A", "outputs": {"tables/flow.csv": {"decision": "reject"}}},
            "outputs.tables/flow.csv: a rejection needs the reviewer's comment",
        ),
    ],
)
def test_a_bad_decisions_file_is_named_with_the_output(data, says):
    with pytest.raises(DisclosureError) as error:
        parse_decisions(data, "config/decisions.yaml", DECIDABLE)
    assert str(error.value).startswith("config/decisions.yaml")
    assert says in str(error.value)


def test_the_example_decisions_file_parses():
    from cohort.core.config import read_yaml

    path = "config/release_decisions.example.yaml"
    release = parse_decisions(read_yaml(path), path, DECIDABLE)
    assert release.rejected() and release.reviewer
