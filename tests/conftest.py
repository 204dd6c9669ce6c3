"""Shared fixtures: the default study's config and contract, and small generated extracts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from cohort.core.config import load_config
from cohort.io.contract import load_codebook, load_contract
from cohort.io.synthetic import synthesize, write_extract
from cohort.workflow.benchmark import copy_workflow
from cohort.workflow.stages.clean import clean, derive

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def _repo_cwd():
    """Config paths (contract, codebook, schema) are relative to the repository root."""
    import os

    old = os.getcwd()
    os.chdir(ROOT)
    yield
    os.chdir(old)


@pytest.fixture(scope="session")
def config() -> dict:
    return load_config(ROOT / "config/config.yaml", ROOT / "config/config.schema.yaml")


@pytest.fixture(scope="session")
def contract(config):
    return load_contract(ROOT / "config/contract.yaml", config)


@pytest.fixture(scope="session")
def codebook(config):
    return load_codebook(ROOT / config["interventions"]["codebook"])


def make_extract(tmp: Path, contract, codebook, n=60, seed=7, **kwargs) -> Path:
    """Write a generated extract to `tmp` and return the folder."""
    extract = synthesize(n, seed, contract, codebook, **kwargs)
    write_extract(extract, tmp)
    return tmp


def workflow_copy(tmp: Path) -> Path:
    """A copy of the workflow (Snakefile, rules, scripts, config, src, ...) in a temporary folder."""
    return copy_workflow(ROOT, tmp)


@pytest.fixture(scope="session")
def default_run(tmp_path_factory) -> Path:
    """The default study (committed synthetic extract, config/config.yaml) run once in a copy of
    the workflow; tests that need another run of it copy this folder and rerun what changes."""
    import shutil

    work = workflow_copy(tmp_path_factory.mktemp("default") / "wf")
    shutil.copytree(ROOT / "data/raw/synthetic", work / "data/raw/synthetic")
    result = run_snakemake(work)
    assert result.returncode == 0, result.stderr
    return work


def run_snakemake(workdir: Path, *args: str, quiet: bool = True) -> subprocess.CompletedProcess:
    """Run snakemake in `workdir` with the test interpreter's environment."""
    snakemake = Path(sys.executable).parent / "snakemake"
    return subprocess.run(
        [str(snakemake), "--cores", "2", *(["--quiet"] if quiet else []), *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
    )


def read_raw(folder: Path) -> dict[str, pd.DataFrame]:
    return {
        name: pd.read_csv(folder / f"{name}.csv", dtype=str, keep_default_na=False)
        for name in ("patients", "sessions", "assessments")
    }


def analysis_set(raw: dict[str, pd.DataFrame], contract, config, codebook) -> pd.DataFrame:
    """Clean and derive as the clean rule does; return the patients of the analysis set."""
    cleaned = clean(raw, contract, config)
    patients, _, _ = derive(cleaned.tables, config, list(codebook))
    return patients[patients["analysis_set"]]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """`python -m cohort ...` from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "cohort", *args], cwd=ROOT, capture_output=True, text=True
    )


# Counts of the bad-input corpus, reported at the end of the test run.
BAD_INPUTS = {"hand-written": 0, "generated": 0}


def pytest_terminal_summary(terminalreporter):
    if any(BAD_INPUTS.values()):
        terminalreporter.write_line(
            f"bad-input corpus: {BAD_INPUTS['hand-written']} hand-written and "
            f"{BAD_INPUTS['generated']} generated inputs tried"
        )


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """With pytest-xdist (`make test` runs two workers, --dist loadgroup), the workflow tests
    of one file run on one worker, one after the other: they share that file's session
    fixtures (a run of the default study, of a small study), computed once per worker, and
    each snakemake run uses both cores already. First among the hooks: xdist reads the
    xdist_group markers in its own hook (adding the group to each test's id), and a marker
    added after it is ignored: the groups were, and each worker made its own runs."""
    for item in items:
        # The tests on the run of the default study share one worker, whatever their file, so
        # that the run (default_run, a session fixture) is made once.
        if "default_run" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("default_run"))
        # A module whose runs share no fixture (INDEPENDENT_RUNS) is spread over both workers.
        elif item.get_closest_marker("workflow") and not getattr(
            item.module, "INDEPENDENT_RUNS", False
        ):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
