"""Disclosure control end to end: every file the workflow publishes passes the disclosure layer,
the attacker recovers no hidden cell (committed results, a run at min_cell 10, small generated
cohorts), no statistic of fewer than min_cell patients and no free text reaches results/."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cohort.disclosure import EXEMPTIONS, FIGURES, RENDERED_FROM, TABLE_RULES
from cohort.io.outputs import read_csv

from .conftest import ROOT, make_extract, run_snakemake, workflow_copy
from .disclosure_attack import exposed

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

QUICK = "models:\n  imputation: {m: 5, max_imputed_records: 5000000, iterations: 5, donors: 5, seed: 1, jobs: 2}\n"
FREE_TEXT = ("Anna Svensson flyttade", "Storgatan 12, Lund")


def mcid_of(config: dict) -> dict:
    return {name: spec["mcid"] for name, spec in config["outcomes"].items()}


def with_synthetic_extract(work: Path) -> Path:
    """A workflow copy with the committed synthetic extract (the default study's input)."""
    shutil.copytree(ROOT / "data/raw/synthetic", work / "data/raw/synthetic")
    return work


def published_files(work: Path, *args: str) -> list[str]:
    """The files under results/ that the workflow's targets write (snakemake --summary)."""
    summary = run_snakemake(work, *args, "--summary", quiet=False)
    assert summary.returncode == 0, summary.stderr
    files = [line.split("\t")[0] for line in summary.stdout.splitlines()[1:] if "\t" in line]
    return [f for f in files if f.startswith("results/")]


def test_every_published_file_passes_the_disclosure_layer(tmp_path):
    """Derived from the workflow's real targets, not from a list: each table has a rule or is
    rendered from protected tables or is an exemption with its reason; each figure is declared
    with how it is protected."""
    work = with_synthetic_extract(workflow_copy(tmp_path / "wf"))
    files = published_files(work)
    assert "results/disclosure_report.md" in files and len(files) > 20
    for path in files:
        name = Path(path).stem
        if path.endswith((".png", ".pdf")):
            assert name in FIGURES, f"{path}: a figure without a declared protection"
        elif path.startswith("results/tables/") and path.endswith(".csv"):
            assert name in TABLE_RULES or name in RENDERED_FROM, f"{path}: no disclosure rule"
        else:
            assert Path(path).name in RENDERED_FROM or Path(path).name in EXEMPTIONS, path
    for reason in EXEMPTIONS.values():
        assert len(reason) > 20  # documented


def test_committed_results_pass_the_attacker(config):
    results = ROOT / "results"
    assert exposed(results, config["disclosure"]["min_cell"], mcid_of(config)) == []
    report = (results / "disclosure_report.md").read_text()
    assert "| `tables/responders.csv` |" in report and "For the output checker" in report


# What a reader could take as a count, and the statistics of each group, per table: written
# here, apart from the rules of cohort.disclosure, to check them.
COUNTS = {
    "flow": ["n"],
    "baseline": ["count", "valid_n"],
    "outcomes": ["n", "pairs_n", "wilcoxon_n_nonzero", "complete_cases_n"],
    "responders": ["responders", "non_responders", "could_not_improve", "missing", "n"],
    "responders_vs_paper": ["responders", "n"],
    "missing_data_sensitivity": ["responders", "n"],
    "responder_subgroups": ["responders", "non_responders", "could_not_improve", "missing", "n", "patients_in_level"],
    "responder_course": ["N", "n", "not_classified_at_both", "sustained", "lost", "late", "never"],
    "clinical_significance_rates": ["responders", "non_responders", "could_not_improve", "missing", "n"],
    "clinical_significance_agreement": ["n", "both", "first_only", "second_only", "neither"],
    "clinical_significance_definitions": ["baseline_n", "anchor_n", "anchor_minimal_n", "anchor_improved_n", "anchor_not_improved_n"],
    "threshold_sweep": ["reaching", "n"],
    "interventions": ["patients_n"],
    "intervention_combinations": ["n"],
    "missingness": ["missing", "completers_n", "lost_n"],
    "predictors": ["N", "events"],
    "lmm": ["patients", "observations", "observed_n"],
    "dose": ["n"],
}  # fmt: skip
GROUP_STATS = {
    "baseline": ("valid_n", ["mean", "sd", "median", "q1", "q3", "value"]),
    "outcomes": ("n", ["median", "q1", "q3", "mean", "sd"]),
    "dose": ("n", ["median", "q1", "q3"]),
    "lmm": ("patients", ["estimate", "ci_low", "ci_high", "estimated_mean"]),
    "predictors": ("events", ["odds_ratio", "ci_low", "ci_high"]),
    "responder_subgroups": ("patients_in_level", ["pct", "ci_low_pct", "ci_high_pct"]),
    "missing_data_sensitivity": ("n", ["pct", "ci_low_pct", "ci_high_pct"]),
    "clinical_significance_rates": ("n", ["pct", "ci_low_pct", "ci_high_pct"]),
    "clinical_significance_definitions": ("baseline_n", ["baseline_mean", "baseline_sd", "sem"]),
}


def numeric(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values, errors="coerce")


def small_values(work: Path, min_cell: int) -> list[str]:
    """Published counts between 0 and min_cell, statistics of groups below min_cell (read from
    the unprotected tables), min or max columns, and values derived from a hidden count."""
    problems = []
    tables = work / "results/tables"
    for name, columns in COUNTS.items():
        path = tables / f"{name}.csv"
        if not path.is_file():
            continue
        table = read_csv(path)
        for column in columns:
            if column in table:
                values = numeric(table[column])
                bad = values[(values > 0) & (values < min_cell)]
                problems += [f"{name}.csv row {i + 1} {column} = {v:g}" for i, v in bad.items()]
        if {"min", "max"} & set(table.columns):
            problems.append(f"{name}.csv publishes min/max")
    for name, (size, stats) in GROUP_STATS.items():
        unprotected = work / f"data/processed/tables/{name}.csv"
        if not unprotected.is_file():
            continue
        before, after = read_csv(unprotected), read_csv(tables / f"{name}.csv")
        small = numeric(before[size]) < min_cell
        for column in [c for c in stats if c in after]:
            shown = (
                numeric(after[column]).notna()
                if column != "value"
                else ~after[column].astype(str).isin(["[s]", "[c]", f"<{min_cell}", "", "nan"])
            )
            leaked = small & shown.to_numpy()
            problems += [
                f"{name}.csv row {i + 1} {column}: a statistic of {before.at[i, size]} patients"
                for i in np.flatnonzero(leaked)
            ]
    return problems


def default_study(tmp_path: Path, study: str) -> Path:
    work = with_synthetic_extract(workflow_copy(tmp_path / "wf"))
    (work / "study.yaml").write_text(study)
    return work


def test_default_study_at_min_cell_10_passes_the_attacker(default_run, tmp_path, config):
    """The issue's case: at min_cell 10 the health could-not-improve count (9) was recoverable
    from n - responders - non-responders of two other tables. Only the rules that read the
    disclosure settings rerun: publish, outcomes (no box of the change figure below min_cell),
    figures and provenance."""
    work = tmp_path / "wf"
    shutil.copytree(default_run, work, symlinks=True)
    (work / "study.yaml").write_text("disclosure: {min_cell: 10}\n")
    result = run_snakemake(work, "--configfile", "study.yaml", quiet=False)
    assert result.returncode == 0, result.stderr
    ran = set(re.findall(r"rule (\w+):", result.stdout + result.stderr))
    assert ran - {"all"} == {
        "publish",
        "site_bundle",
        "outcomes",
        "figures",
        "publication_tables",
        "provenance",
    }, ran
    assert exposed(work / "results", 10, mcid_of(config)) == []
    assert small_values(work, 10) == []
    rates = read_csv(work / "results/tables/responders.csv")
    assert (rates["could_not_improve"].astype(str) == "<10").any()  # something is hidden
    summary = (work / "results/summary.md").read_text()
    assert "min_cell = 10" in summary


@pytest.mark.parametrize("base, method", [(6, "midpoint")])
def test_default_study_with_rounding_passes_an_attacker_who_knows_the_bins(
    default_run, tmp_path, config, base, method
):
    """With rounding (OpenSAFELY's midpoint 6) an attacker knows each published count only to
    its bin, and still solves every relation: no hidden count is pinned or shown to be small.
    The same counts are hidden as without rounding (suppression comes first), every other count
    prints rounded, and rates are recomputed from the rounded counts."""
    from cohort.disclosure.protect import round_count

    work = tmp_path / "wf"
    shutil.copytree(default_run, work, symlinks=True)
    (work / "study.yaml").write_text(
        f"disclosure: {{rounding: {base}, rounding_method: {method}}}\n"
    )
    result = run_snakemake(work, "--configfile", "study.yaml")
    assert result.returncode == 0, result.stderr
    min_cell = config["disclosure"]["min_cell"]
    assert exposed(work / "results", min_cell, mcid_of(config), rounding=(base, method)) == []
    exact = read_csv(default_run / "results/tables/responders.csv")
    rounded = read_csv(work / "results/tables/responders.csv")
    for column in ("responders", "n"):
        for a, b in zip(exact[column], rounded[column], strict=True):
            if str(a).startswith(("<", "[")):
                assert str(b) == str(a)  # hidden either way
            elif str(a) not in ("", "nan"):
                assert float(b) == round_count(float(a), base, method)
    row = rounded[pd.to_numeric(rounded["n"], errors="coerce") > 0].iloc[0]
    assert float(row["pct"]) == pytest.approx(100 * float(row["responders"]) / float(row["n"]))
    report = (work / "results/disclosure_report.md").read_text()
    assert "Residual risk" in report and "midpoint" in report


DECISIONS = """\
reviewer: A. Steward
outputs:
  tables/threshold_sweep.csv: {decision: reject, comment: steps too fine for release}
  figures/outcome_changes.png: {decision: reject, comment: quartiles of small groups}
  tables/responders.csv: {decision: approve, comment: checked}
"""


def test_rejected_outputs_are_absent_and_named_in_the_report(default_run, tmp_path):
    """A steward's rejection: the table, its HTML page and the figure drawn from it are not
    written (the copies of the earlier run are removed), the Word document leaves it out, and
    the report, the release request and provenance.json record the decisions."""
    work = tmp_path / "wf"
    shutil.copytree(default_run, work, symlinks=True)
    results = work / "results"
    assert (results / "tables/threshold_sweep.csv").is_file()  # the run before the review
    (work / "config/decisions.yaml").write_text(DECISIONS)
    (work / "study.yaml").write_text("disclosure: {decisions: config/decisions.yaml}\n")
    result = run_snakemake(work, "--configfile", "study.yaml", quiet=False)
    assert result.returncode == 0, result.stderr
    withheld = [
        "tables/threshold_sweep.csv",
        "tables/html/threshold_sweep.html",
        "figures/threshold_sweep.png",
        "figures/threshold_sweep.pdf",
        "figures/outcome_changes.png",
        "figures/outcome_changes.pdf",
    ]
    for rel in withheld:
        assert not (results / rel).exists(), rel
    assert (results / "tables/responders.csv").is_file()
    assert (results / "figures/flow.png").is_file()
    report = (results / "disclosure_report.md").read_text()
    assert "`tables/threshold_sweep.csv`: **reject** (steps too fine for release)" in report
    assert "`tables/threshold_sweep.csv` (withheld)" in report
    for rel in withheld:
        assert f"- `{rel}`: " in report, rel
    legends = (results / "figures/legends.md").read_text()
    assert "threshold_sweep.png" not in legends and "outcome_changes.png" not in legends
    from docx import Document

    from cohort.publish.publication import caption

    text = "\n".join(p.text for p in Document(results / "tables/manuscript_tables.docx").paragraphs)
    assert caption("responders")[:40] in text
    assert caption("threshold_sweep")[:40] not in text
    request = json.loads((results / "results.json").read_text())
    assert "threshold_sweep" not in request["results"]  # not written: no record, as acro's remove
    sweep = request["withheld"]["tables/threshold_sweep.csv"]
    assert sweep[0].startswith("reject (A. Steward")
    assert request["results"]["responders"]["comments"][0].startswith("approve (A. Steward")
    provenance = json.loads((results / "provenance.json").read_text())
    assert provenance["release_decisions"]["withheld"].keys() == set(withheld)
    assert not any(o.startswith(tuple(withheld)) for o in provenance["outputs"])
    # No published file is left without a rule or an owner (the disclosure layer's check).
    for path in results.rglob("*"):
        assert os.path.relpath(path, results) not in withheld


def test_a_decision_on_no_output_stops_before_any_rule(default_run, tmp_path):
    work = tmp_path / "wf"
    shutil.copytree(default_run, work, symlinks=True)
    (work / "config/decisions.yaml").write_text(
        "reviewer: A\noutputs:\n  tables/group_ancova.csv: {decision: approve}\n"
    )
    (work / "study.yaml").write_text("disclosure: {decisions: config/decisions.yaml}\n")
    result = run_snakemake(work, "--configfile", "study.yaml", "--dry-run", quiet=False)
    assert result.returncode != 0
    assert (
        "config/decisions.yaml: outputs.tables/group_ancova.csv: not an output of this study"
        in result.stderr
    )
    assert "Traceback" not in result.stderr


def skewed_extract(
    folder: Path, contract, codebook, n: int, seed: int, level_of_4: bool, lost: bool
) -> None:
    """A generated extract; optionally one subgroup level of exactly 4 patients, all follow-up
    missing, and free text (a name, an address) as exclusion reasons."""
    make_extract(folder, contract, codebook, n=n, seed=seed, fault_rate=0)
    patients = pd.read_csv(folder / "patients.csv", dtype=str, keep_default_na=False)
    rng = np.random.default_rng(seed)
    if level_of_4 and n > 8:
        included = np.flatnonzero(patients["included"].to_numpy() == "yes")
        four = rng.choice(included, 4, replace=False)
        patients["pain_distribution"] = np.where(
            patients["pain_distribution"] == "generalized",
            "regional",
            patients["pain_distribution"],
        )
        patients.loc[four, "pain_distribution"] = "generalized"
    extra = patients.iloc[[0, 0]].copy()
    extra["patient_id"] = [f"X{seed}A", f"X{seed}B"]
    extra["included"] = "no"
    extra["exclusion_reason"] = list(FREE_TEXT)
    pd.concat([patients, extra]).to_csv(folder / "patients.csv", index=False)
    if lost:
        assessments = pd.read_csv(folder / "assessments.csv", dtype=str, keep_default_na=False)
        first = assessments["occasion"].iat[0]
        assessments[assessments["occasion"] == first].to_csv(
            folder / "assessments.csv", index=False
        )


@settings(max_examples=1, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(
    n=st.integers(1, 30),
    seed=st.integers(1, 10_000),
    min_cell=st.sampled_from([5, 10]),
    level_of_4=st.booleans(),
    lost=st.booleans(),
)
@example(n=24, seed=11, min_cell=5, level_of_4=True, lost=True)
def test_small_cohorts_publish_nothing_of_fewer_than_min_cell(
    tmp_path_factory, contract, codebook, config, n, seed, min_cell, level_of_4, lost
):
    """Generated cohorts of 1 to 30 patients, a subgroup level of 4, all follow-up missing,
    free text in the exclusion reasons: the whole workflow runs, and the published files hold
    no count or statistic of fewer than min_cell patients, nothing the attacker recovers, and
    no free text. (One patient: tests/test_workflow.py::test_single_patient_gives_a_clean_result.)"""
    work = default_study(
        tmp_path_factory.mktemp("small"),
        QUICK + f"extract: {{dir: extract}}\ndisclosure: {{min_cell: {min_cell}}}\n",
    )
    skewed_extract(work / "extract", contract, codebook, n, seed, level_of_4, lost)
    result = run_snakemake(work, "--configfile", "study.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    assert small_values(work, min_cell) == []
    assert exposed(work / "results", min_cell, mcid_of(config)) == []
    for path in (work / "results").rglob("*"):
        if path.suffix in (".csv", ".md", ".json", ".html"):
            text = path.read_text()
            assert not [t for t in FREE_TEXT if t.split()[0] in text], f"free text in {path.name}"
    if level_of_4 and n > 8:
        sub = read_csv(work / "results/tables/responder_subgroups.csv")
        rows = sub[(sub["subgroup"] == "pain_distribution") & (sub["level"] == "generalized")]
        assert len(rows) and not numeric(rows["patients_in_level"]).notna().any()
        assert not numeric(rows["responders"]).between(1, min_cell - 1).any()
        assert not numeric(rows["pct"]).notna().any()
    flow = read_csv(work / "results/tables/flow.csv")
    assert not flow["label"].str.contains("Svensson|Storgatan").any()
    if n < min_cell:  # a study below the threshold publishes no count at all
        assert not numeric(flow["n"]).gt(0).any()
        assert math.isnan(numeric(read_csv(work / "results/tables/baseline.csv")["mean"]).max())


def test_no_safe_pattern_that_keeps_table_2_hides_fewer_counts(default_run, config, monkeypatch):
    """The published pattern is of least loss for its weights, and also of least count among
    the safe patterns that publish Table 2 (each hidden level costing 1000, so that at most the
    one level a missing value needs is hidden): the same program with every other count costing
    1, solved to optimality, hides no fewer. Its rows are necessary conditions of safety and its
    cuts valid, so its optimum bounds every such pattern from below: on this register no
    pattern keeping Table 2 hides fewer counts (81 on the default study; 77 if two levels of
    pain distribution may go, so the issue's hoped-for 70 needs the study to publish less).
    The greedy heuristic, the fallback, hides more (178)."""
    from cohort.core.settings import Analysis
    from cohort.disclosure import DisclosureSettings, optimal, protect_tables
    from cohort.workflow.stages.publish import disclosure_context

    tables = {
        p.stem: read_csv(p) for p in sorted((default_run / "data/processed/tables").glob("*.csv"))
    }
    sweep = sorted((default_run / "data/processed/tables/threshold_sweep").glob("*.csv"))
    tables["threshold_sweep"] = pd.concat([read_csv(p) for p in sweep], ignore_index=True)
    flow = tables["flow"]
    n = int(flow.loc[flow["key"] == "analysis_set", "n"].iat[0])
    ctx = disclosure_context(Analysis.from_config(config), config["baseline"], n)
    settings = DisclosureSettings.from_config(config["disclosure"])

    def protective(pattern) -> int:
        return sum(why == "secondary" for why in pattern.hidden.values())

    def table_2_levels(pattern) -> list:
        return [k for k in pattern.hidden if k[0] == "count"]

    _, _, weighted = protect_tables(tables, settings, ctx)
    _, _, greedy = protect_tables(tables, dataclasses.replace(settings, method="greedy"), ctx)
    assert greedy.method == "greedy" and protective(greedy) > protective(weighted)
    monkeypatch.setattr(
        optimal, "loss_weight", lambda key, cells: 1000.0 if key[0] == "count" else 1.0
    )
    _, _, fewest = protect_tables(tables, settings, ctx)
    assert weighted.method == fewest.method == "optimal"
    assert len(table_2_levels(weighted)) == len(table_2_levels(fewest)) <= 1
    assert protective(weighted) == protective(fewest)
