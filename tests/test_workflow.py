"""End to end: Snakemake runs the pipeline in a temporary copy of the workflow."""

from __future__ import annotations

import filecmp
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from cohort.outputs import read_csv

from .conftest import ROOT, make_extract, run_snakemake, workflow_copy

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

STUDY = "schouenborg2021"
OUTPUTS = [
    "results/tables/flow.csv",
    "results/figures/flow.png",
    "results/tables/baseline.csv",
    "results/tables/baseline.md",
    "results/tables/baseline_vs_paper.csv",
    "results/tables/interventions.csv",
    "results/tables/dose.csv",
    "results/tables/intervention_combinations.csv",
    "results/tables/intervention_cooccurrence.csv",
    "results/figures/interventions.png",
    "results/figures/intervention_cooccurrence.png",
    "results/tables/outcomes.csv",
    "results/figures/outcome_trajectories.png",
    "results/figures/outcome_changes.png",
    "results/tables/responders.csv",
    "results/tables/responder_stability.csv",
    "results/tables/responder_subgroups.csv",
    "results/tables/threshold_sweep.csv",
    "results/figures/threshold_sweep.png",
    "results/tables/responders_vs_paper.csv",
    "data/processed/responders.parquet",
    "results/tables/lmm.csv",
    "results/figures/lmm_means.png",
    "results/tables/predictors.csv",
    "results/figures/predictors_forest.png",
    "results/tables/missingness.csv",
    "results/tables/missing_data_sensitivity.csv",
    "data/processed/patients.parquet",
    "data/processed/sessions.parquet",
    "data/processed/assessments.parquet",
    "data/processed/cleaning_log.csv",
]


def small_study(tmp_path: Path, contract, codebook, **kwargs) -> Path:
    work = workflow_copy(tmp_path / "wf")
    make_extract(work / "extract", contract, codebook, n=40, seed=5, **kwargs)
    (work / "study.yaml").write_text("extract:\n  dir: extract\n")
    return work


def test_default_study_reproduces_committed_results(tmp_path):
    """A fresh run on the committed synthetic extract gives the committed results/, byte for byte."""
    work = workflow_copy(tmp_path / "wf")
    shutil.copytree(ROOT / "data/raw/synthetic", work / "data/raw/synthetic")
    result = run_snakemake(work)
    assert result.returncode == 0, result.stderr
    committed = sorted(p.relative_to(ROOT) for p in (ROOT / "results").rglob("*") if p.is_file())
    fresh = sorted(p.relative_to(work) for p in (work / "results").rglob("*") if p.is_file())
    assert fresh == committed
    for rel in committed:
        assert filecmp.cmp(ROOT / rel, work / rel, shallow=False), f"{rel} differs from a fresh run"


def test_small_extract_end_to_end(tmp_path, contract, codebook):
    work = small_study(tmp_path, contract, codebook)
    result = run_snakemake(work, "--configfile", "study.yaml")
    assert result.returncode == 0, result.stderr
    for rel in OUTPUTS:
        assert (work / rel).is_file(), rel
    for rule in ("clean", "baseline", "interventions", "outcomes", "responders", "models"):
        assert (work / f"logs/{STUDY}/{rule}.log").read_text().strip(), rule
        assert (work / f"benchmarks/{STUDY}/{rule}.tsv").is_file(), rule
    flow = read_csv(work / "results/tables/flow.csv")
    baseline = read_csv(work / "results/tables/baseline.csv")
    analysis_n = int(flow.loc[flow["key"] == "analysis_set", "n"].iat[0])
    assert analysis_n == 40 and set(baseline["n"]) == {analysis_n}
    log = pd.read_csv(
        work / "data/processed/cleaning_log.csv", comment="#", dtype=str, keep_default_na=False
    )
    injected = pd.read_csv(work / "extract/injected_faults.csv")
    assert len(log) >= len(injected[injected["fault"] != "not_included"])
    # Nothing to do on a second run.
    again = run_snakemake(work, "--configfile", "study.yaml", "--dry-run", quiet=False)
    assert "Nothing to be done" in again.stdout + again.stderr
    # No patient id reaches results/.
    ids = set(pd.read_csv(work / "extract/patients.csv", dtype=str)["patient_id"])
    for path in (work / "results").rglob("*.csv"):
        text = path.read_text()
        assert not any(pid in text for pid in ids), path


def assert_stopped_before_output(result, work: Path, *fragments: str) -> None:
    assert result.returncode != 0
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not (work / "results").exists() and not any((work / "data").rglob("*.parquet"))


def test_missing_column_stops_before_any_output(tmp_path, contract, codebook):
    work = small_study(tmp_path, contract, codebook)
    path = work / "extract/patients.csv"
    path.write_text(path.read_text().replace("patient_id,sex,", "patient_id,gender,", 1))
    result = run_snakemake(work, "--configfile", "study.yaml")
    assert_stopped_before_output(
        result, work, "extract/patients.csv", "required column(s) missing: sex"
    )


def test_missing_file_stops_before_any_output(tmp_path, contract, codebook):
    work = small_study(tmp_path, contract, codebook)
    (work / "extract/assessments.csv").unlink()
    result = run_snakemake(work, "--configfile", "study.yaml")
    assert_stopped_before_output(result, work, "extract/assessments.csv", "required file")


def test_config_typo_stops_naming_the_key(tmp_path, contract, codebook):
    work = small_study(tmp_path, contract, codebook)
    (work / "study.yaml").write_text(
        "extract:\n  dir: extract\noutcomes:\n  pain:\n    mcid:\n      absolut: 2\n"
    )
    result = run_snakemake(work, "--configfile", "study.yaml")
    assert_stopped_before_output(result, work, "config key 'outcomes.pain.mcid'", "'absolut'")


def planned_jobs(result) -> dict[str, int]:
    """Job counts per rule from the 'Job stats' table of a dry run."""
    jobs = {}
    for line in (result.stdout + result.stderr).splitlines():
        match = re.fullmatch(r"\s*([A-Za-z_]\w*)\s+(\d+)\s*", line)
        if match and match.group(1) != "total":
            jobs[match.group(1)] = int(match.group(2))
    return jobs


def test_threshold_change_reruns_only_responders_and_downstream(tmp_path, contract, codebook):
    work = small_study(tmp_path, contract, codebook)
    assert run_snakemake(work, "--configfile", "study.yaml").returncode == 0
    (work / "study.yaml").write_text(
        "extract:\n  dir: extract\noutcomes:\n  pain:\n    mcid:\n      absolute: 3\n"
    )
    dry = run_snakemake(work, "--configfile", "study.yaml", "--dry-run", quiet=False)
    assert dry.returncode == 0, dry.stderr
    jobs = planned_jobs(dry)
    assert "responders" in jobs and "models" in jobs  # models use the classification
    assert not {"clean", "baseline", "interventions", "outcomes"} & set(jobs), jobs
