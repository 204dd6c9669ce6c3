"""End to end, runs that need no shared run of the pipeline: bad input stopping before any
output, one patient, no patient, the external study, the cluster profile, bare snakemake, the
lint. Apart from tests/test_workflow.py so that pytest-xdist runs them beside its shared runs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from cohort.io.outputs import read_csv

from .conftest import ROOT, make_extract, run_cli, run_snakemake, workflow_copy
from .test_workflow import (
    EXTERNAL,
    STUDY,
    STUDY_FILE,
    assert_stopped_before_output,
    planned_jobs,
    small_study,
)

pytestmark = [pytest.mark.workflow, pytest.mark.slow]
INDEPENDENT_RUNS = True  # each test runs its own copy: pytest-xdist may spread them (conftest)


def test_lint_warnings_are_only_the_explained_ones():
    """README, 'snakemake --lint': no conda/container (the lock file is the environment), and
    the helper functions of rules/common.smk."""
    from cohort.workflow.lint import remarks, unexplained

    result = run_snakemake(ROOT, "--lint", quiet=False)
    output = result.stdout + result.stderr
    assert remarks(output) and unexplained(output) == set(), output
    # make lint's judge: 0 here, 1 on any other remark.
    assert run_cli("lint").returncode == 0
    assert unexplained(output + "\n    * Rule has no log.:") == {"Rule has no log."}


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


def test_single_patient_gives_a_clean_result(tmp_path, contract, codebook):
    work = workflow_copy(tmp_path / "wf")
    make_extract(work / "extract", contract, codebook, n=1, seed=3, fault_rate=0)
    (work / "study.yaml").write_text(STUDY_FILE)
    result = run_snakemake(work, "--configfile", "study.yaml")
    assert result.returncode == 0, result.stderr
    lmm = read_csv(work / "results/tables/lmm.csv")
    assert "(model failed)" in set(lmm["term"])  # reported in the table, not hidden
    assert "lmm pain failed" in (work / f"logs/{STUDY}/lmm.log").read_text()
    # One patient: no count, no statistic, no estimate of them is published (issue 14).
    from .test_disclosure_workflow import small_values

    assert small_values(work, 5) == []
    flow = read_csv(work / "results/tables/flow.csv")
    assert set(flow["n"].astype(str)) == {"<5"}


def test_no_included_patient_stops_with_a_message_and_no_output(tmp_path, contract, codebook):
    work = small_study(tmp_path, contract, codebook)
    path = work / "extract/patients.csv"
    patients = pd.read_csv(path, dtype=str, keep_default_na=False).assign(included="no")
    patients.to_csv(path, index=False)
    result = run_snakemake(work, "--configfile", "study.yaml")
    assert result.returncode != 0
    assert "no patient is in the analysis set" in result.stderr
    assert not (work / "results").exists() and not any((work / "data").rglob("*.parquet"))


@pytest.mark.skipif(
    not EXTERNAL.is_file(),
    reason=f"the external trial data are not here ({EXTERNAL}); they come with ../shared",
)
def test_external_study_runs_with_one_command(tmp_path):
    """The README's two commands: import the trial, then snakemake --configfile its study file.
    No session data: the interventions stage is skipped; the group comparison runs."""
    work = workflow_copy(tmp_path / "wf")
    imported = run_cli(
        "import-vickers2006",
        "--source",
        str(EXTERNAL),
        "--out",
        str(work / "data/raw/acupuncture_headache"),
    )
    assert imported.returncode == 0, imported.stderr
    result = run_snakemake(work, "--configfile", "config/studies/acupuncture_headache.yaml")
    assert result.returncode == 0, result.stderr
    out = work / "results/acupuncture_headache"
    assert not (out / "tables/interventions.csv").exists()
    assert "no session data: rule interventions is skipped" in result.stderr
    ancova = read_csv(out / "tables/group_ancova.csv")
    primary = ancova[(ancova["outcome"] == "headache") & (ancova["occasion"] == "month_12")].iloc[0]
    assert (primary["difference"], primary["ci_low"], primary["ci_high"]) == pytest.approx(
        (-4.64, -7.08, -2.20), abs=0.01
    )
    assert int(primary["N"]) == 301
    responders = read_csv(out / "tables/group_responders.csv")
    row = responders[
        (responders["outcome"] == "headache") & (responders["occasion"] == "month_12")
    ].set_index("group")
    assert (int(row.loc["acupuncture", "responders"]), int(row.loc["acupuncture", "n"])) == (
        87,
        161,
    )
    assert not (out / "summary.md").read_text().startswith("> **SYNTHETIC")


def test_slurm_profile_plans_every_job_with_its_resources(tmp_path, contract, codebook):
    """profiles/slurm (README): a dry run with the SLURM executor plans the whole workflow, the
    imputation chains, the sweeps and the cleaning's patient shards as separate jobs, and gives
    clean its larger memory."""
    work = small_study(tmp_path, contract, codebook)
    (work / "jobs.yaml").write_text(  # more imputation jobs and cleaning shards, as on a cluster
        STUDY_FILE.replace("jobs: 2}", "jobs: 4}") + "cleaning:\n  shards: 3\n"
    )
    dry = run_snakemake(
        work, "--profile", "profiles/slurm", "--configfile", "jobs.yaml", "--dry-run", quiet=False
    )
    assert dry.returncode == 0, dry.stderr
    jobs = planned_jobs(dry)
    assert jobs["impute"] == 4 and jobs["threshold_sweep"] == 3 and jobs["predictors"] == 1
    assert jobs["split_extract"] == 1 and jobs["clean_shard"] == 3 and jobs["clean"] == 1
    plan = dry.stdout + dry.stderr
    split = plan.split("rule split_extract:")[1].split("rule ")[0]
    assert "mem_mb=16000" in split and "runtime=60" in split
    assert "mem_mb=4000" in plan.split("rule clean_shard:")[1].split("rule ")[0]


def test_each_job_declares_memory_for_the_size_of_the_extract(tmp_path, contract, codebook):
    """Every analysis rule declares mem_mb from its estimate per 10^6 patients
    (rules/common.smk) scaled to the records of patients.csv: a dry run on a patients file of
    200,000 lines (its header and ids only are read before a rule runs) plans clean at 5100 x
    0.2 MB, and a small study's jobs at the 500 MB floor (`make` gives the budget of jobs side
    by side, `--resources mem_mb`)."""
    work = small_study(tmp_path, contract, codebook)
    small = run_snakemake(work, "--configfile", "study.yaml", "--dry-run", quiet=False)
    assert small.returncode == 0, small.stderr
    plan = small.stdout + small.stderr
    assert "mem_mb=500" in plan.split("rule clean:")[1].split("rule ")[0]
    patients = work / "extract" / "patients.csv"
    lines = patients.read_text().splitlines()
    patients.write_text("\n".join([lines[0], *([lines[1]] * 200_000)]) + "\n")
    large = run_snakemake(work, "--configfile", "study.yaml", "--dry-run", quiet=False)
    assert large.returncode == 0, large.stderr
    plan = large.stdout + large.stderr
    assert "mem_mb=1020," in plan.split("rule clean:")[1].split("rule ")[0]
    assert "mem_mb=740," in plan.split("rule responders:")[1].split("rule ")[0]
    # 2200 x 0.2 = 440: the floor
    assert "mem_mb=500," in plan.split("rule predictors:")[1].split("rule ")[0]
    # publish's tables do not grow with the patients: no estimate of its own
    assert "mem_mb" not in plan.split("rule publish:")[1].split("rule ")[0]


def test_bare_snakemake_needs_no_cores_argument(tmp_path):
    """Users type `snakemake`: the workflow profile sets the cores (issue 19)."""
    work = workflow_copy(tmp_path / "wf")
    shutil.copytree(ROOT / "data/raw/synthetic", work / "data/raw/synthetic")
    snakemake = Path(sys.executable).parent / "snakemake"
    run = subprocess.run(  # rule clean only: a real run, which (unlike a dry run) needs cores
        [str(snakemake), "data/processed/patients.parquet"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert (work / "data/processed/patients.parquet").is_file()
