"""A new user's own extract, run by following the README alone: `init-study`, fill in the TODOs,
`check`, `snakemake`. The extract is what public cohorts look like and the default study is not:
two occasions, a 0-48 sum score of twelve 0-4 items with 9 as missing code, an EQ VAS with 999
as missing, age in bands, no dates, no session data."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cohort.io.outputs import read_csv, read_notes

from .conftest import ROOT, workflow_copy

ITEMS = [f"q{i:02d}" for i in range(1, 13)]


def registry_extract(folder: Path, n: int = 90, seed: int = 3) -> Path:
    """Patients with sex and an age band; assessments at baseline and follow-up (a quarter lost)
    of twelve 0-4 items (5% coded 9 = not answered) and an EQ VAS (3% coded 999)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    ids = [f"R{i:04d}" for i in range(n)]
    pd.DataFrame(
        {
            "patient_id": ids,
            "sex": rng.choice(["F", "M"], n),
            "age_band": rng.choice(["18-39", "40-64", "65+"], n),
        }
    ).to_csv(folder / "patients.csv", index=False)
    rows = []
    level = rng.normal(2.2, 0.6, n)
    for occasion, shift in (("baseline", 0.0), ("followup", -0.5)):
        for i, pid in enumerate(ids):
            if occasion == "followup" and rng.random() < 0.25:
                continue
            items = np.clip(np.round(level[i] + shift + rng.normal(0, 0.7, 12)), 0, 4).astype(int)
            answers = np.where(rng.random(12) < 0.05, 9, items)
            vas = int(np.clip(60 - 8 * (level[i] + shift) + rng.normal(0, 12), 0, 100))
            rows.append(
                {
                    "patient_id": pid,
                    "occasion": occasion,
                    **dict(zip(ITEMS, answers.tolist(), strict=True)),
                    "eqvas": 999 if rng.random() < 0.03 else vas,
                }
            )
    pd.DataFrame(rows).to_csv(folder / "assessments.csv", index=False)
    return folder


def readme_commands() -> list[str]:
    """The commands of the README's "Running on a real extract" block, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Running on a real extract", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.startswith(".venv/bin/")]


def run(command: str, work: Path, extract: Path) -> subprocess.CompletedProcess:
    """One README command with this interpreter's environment and the test's extract."""
    args = shlex.split(command.replace("/secure/extract", str(extract)))
    tool = Path(sys.executable).parent / Path(args[0]).name
    args = [sys.executable, *args[1:]] if args[0].endswith("/python") else [str(tool), *args[1:]]
    if Path(args[0]).name == "snakemake":
        args[1:1] = ["--cores", "2", "--quiet"]
    return subprocess.run(args, cwd=work, capture_output=True, text=True, timeout=600)


def fill_in(study_path: Path) -> None:
    """What the user writes where the draft says TODO (and m = 5 to keep the suite quick)."""
    study = yaml.safe_load(study_path.read_text())
    study["study"]["title"] = "A registry of physiotherapy, 2019-2023"
    q = study["outcomes"].pop("q")
    q.update(label="Function score (0-48)", range=[0, 48], better="lower")
    q["source"]["score"] = "sum"
    q["mcid"].update(absolute=6, reference="ASSUMPTION: 6 points, for the test")
    vas = study["outcomes"]["eqvas"]
    vas.update(label="EQ VAS (0-100)", range=[0, 100], better="higher")
    vas["mcid"].update(absolute=10, reference="ASSUMPTION: 10 points, for the test")
    study["outcomes"] = {"function": q, "eqvas": vas}
    study["models"]["imputation"]["m"] = 5
    study_path.write_text(yaml.safe_dump(study, sort_keys=False))


@pytest.mark.workflow
@pytest.mark.slow
def test_the_readme_recipe_runs_a_registry_extract(tmp_path):
    """The README's commands on a registry-like extract: the draft stops naming every TODO;
    filled in, it checks and runs with no traceback, the codes logged as missing_code, the
    sum score prorated, and every table has its header (the course table says why it is empty)."""
    work = workflow_copy(tmp_path / "wf")
    extract = registry_extract(tmp_path / "secure" / "extract")
    init, check, snakemake = readme_commands()
    result = run(init, work, extract)
    assert result.returncode == 0, result.stderr
    study = work / "config/studies/clinic2024.yaml"
    contract = (work / "config/studies/clinic2024.contract.yaml").read_text()
    assert "q01: {type: integer, min: 0, max: 4, missing_codes: [9]}" in contract
    assert "missing_codes: [999]" in contract
    result = run(check, work, extract)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "fill in the TODO of study.title, outcomes.q.label" in result.stderr
    result = run(snakemake, work, extract)  # snakemake says the same, before any rule
    assert result.returncode != 0 and "fill in the TODO of study.title" in result.stderr
    assert not (work / "results/clinic2024").exists()

    fill_in(study)
    result = run(check, work, extract)
    assert result.returncode == 0, result.stderr
    result = run(snakemake, work, extract)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    results = work / "results/clinic2024"
    tables = sorted(p.name for p in (results / "tables").glob("*.csv"))
    assert "interventions.csv" not in tables and "group_ancova.csv" not in tables
    for name in tables:  # every table has its header (README: read_csv(..., comment="#"))
        frame = pd.read_csv(results / "tables" / name, comment="#")
        assert len(frame.columns) > 1, name
    course = results / "tables/responder_course.csv"
    assert read_csv(course).empty
    assert any("one follow-up occasion" in n for n in read_notes(course))
    rates = read_csv(results / "tables/responders.csv")
    assert set(rates["outcome"]) >= {"function", "eqvas"}
    flow = read_csv(results / "tables/flow.csv").set_index("key")
    assert int(flow.loc["analysis_set", "n"]) == 90
    log = pd.read_csv(work / "data/processed/clinic2024/cleaning_log.csv", dtype=str)
    codes = log[log["rule"] == "missing_code"]
    assert set(codes["column"]) >= {"q01", "eqvas"} and "out_of_range" not in set(log["rule"])
    assert "no_assessment_dates" in set(log["rule"])
    clean_log = (work / "logs/clinic2024/clean.log").read_text()
    assert "sum prorated" in clean_log
    summary = (results / "summary.md").read_text()
    assert "Trulsson" not in summary and "A registry of physiotherapy" in summary
    assert "No published responder rates to compare with" in summary
    vs_paper = read_notes(results / "tables/responders_vs_paper.csv")
    assert any("no published responder rates" in n for n in vs_paper)
    # The HTML report of a study without derived variables, sessions or comparison.
    report = run(
        snakemake.replace("--configfile", "--report report.html --configfile"), work, extract
    )
    assert report.returncode == 0 and (work / "report.html").stat().st_size > 0, report.stderr[
        -2000:
    ]


@pytest.mark.workflow
@pytest.mark.slow
def test_the_readme_recipe_runs_a_registry_of_40000_patients(tmp_path):
    """Issue 31's registry at scale, the same recipe with only the TODOs filled: the run
    completes with no traceback and publishes its headline rates (a few small cells are
    protected by hiding a few others, not the headline)."""
    work = workflow_copy(tmp_path / "wf")
    extract = registry_extract(tmp_path / "secure" / "extract", n=40_000, seed=11)
    init, check, snakemake = readme_commands()
    assert run(init, work, extract).returncode == 0
    fill_in(work / "config/studies/clinic2024.yaml")
    assert run(check, work, extract).returncode == 0
    result = run(snakemake, work, extract)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    results = work / "results/clinic2024"
    rates = read_csv(results / "tables/responders.csv")
    headline = rates[rates["denominator"] == "available cases"]
    assert pd.to_numeric(headline["responders"], errors="coerce").notna().all()
    assert pd.to_numeric(headline["pct"], errors="coerce").notna().all()
    flow = read_csv(results / "tables/flow.csv").set_index("key")
    # every patient has a baseline row; a few answered too few items and no EQ VAS there
    assert 39_900 <= int(flow.loc["analysis_set", "n"]) <= 40_000


def trial_extract(folder: Path, n: int = 90, seed: int = 5) -> Path:
    """A two-arm trial (laser vs sham, 45 each): VAS 0-10 at baseline, week 7 and week 12, the
    occasions appearing in the file as baseline, week_12, week_7; a tenth lost per follow-up."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    ids = [f"T{i:03d}" for i in range(n)]
    arm = np.array(["laser", "sham"] * (n // 2))
    rng.shuffle(arm)
    pd.DataFrame(
        {"patient_id": ids, "group": arm, "sex": rng.choice(["F", "M"], n, p=[0.7, 0.3])}
    ).to_csv(folder / "patients.csv", index=False)
    start = rng.normal(6, 1.5, n)
    rows = []
    for occasion, effect in (("baseline", 0.0), ("week_12", 3.0), ("week_7", 2.0)):
        for i, pid in enumerate(ids):
            if occasion != "baseline" and rng.random() < 0.1:
                continue
            drop = effect if arm[i] == "laser" else 0.5
            vas = float(np.clip(np.round(start[i] - drop + rng.normal(0, 1), 1), 0, 10))
            rows.append({"patient_id": pid, "occasion": occasion, "vas": vas})
    pd.DataFrame(rows).to_csv(folder / "assessments.csv", index=False)
    return folder


@pytest.mark.workflow
@pytest.mark.slow
def test_the_readme_recipe_runs_a_trial_extract(tmp_path):
    """Issue 31's trial: the draft puts the occasions in time order with readable labels and
    proposes the arm as a TODO (leaving it out of the drafted covariates); with only the TODOs
    filled and the comparison added the study runs, the arm as a subgroup left to the group
    tables; the arm put back among the covariates gets a message naming both keys, not a
    traceback."""
    work = workflow_copy(tmp_path / "wf")
    extract = trial_extract(tmp_path / "secure" / "extract")
    init, check, snakemake = readme_commands()
    result = run(init, work, extract)
    assert result.returncode == 0, result.stderr
    study_path = work / "config/studies/clinic2024.yaml"
    text = study_path.read_text()
    assert "ordered by the time in their names" in text
    assert [o["name"] for o in yaml.safe_load(text)["occasions"]] == [
        "baseline",
        "week_7",
        "week_12",
    ]
    assert "{name: week_7, label: Week 7}" in text and "{name: week_12, label: Week 12}" in text
    assert "#   group: laser 45, sham 45" in text
    assert "# comparison: {variable: group, reference: TODO}" in text
    study = yaml.safe_load(text)
    study["study"]["title"] = "Laser vs sham for neck pain (test)"
    vas = study["outcomes"]["vas"]
    vas.update(label="Pain, VAS (0-10)", range=[0, 10], better="lower")
    vas["mcid"].update(absolute=1.5, reference="ASSUMPTION: 1.5 points, for the test")
    study["models"]["imputation"]["m"] = 5
    study["comparison"] = {"variable": "group", "reference": "sham"}
    # The draft left the candidate arm out of the covariates; put back, it gets a message
    # naming both keys, not a traceback.
    assert "group" not in study["covariates"]
    study_path.write_text(
        yaml.safe_dump({**study, "covariates": ["group", *study["covariates"]]}, sort_keys=False)
    )
    result = run(check, work, extract)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "'covariates[0]' and 'comparison.variable' both name 'group'" in result.stderr
    study_path.write_text(
        yaml.safe_dump(study, sort_keys=False)
    )  # only the TODOs and the comparison
    result = run(check, work, extract)
    assert result.returncode == 0, result.stderr
    result = run(snakemake, work, extract)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert "its responder breakdown is group_responders.csv's" in result.stderr
    results = work / "results/clinic2024"
    ancova = read_csv(results / "tables/group_ancova.csv")
    assert set(ancova["occasion"]) == {"week_7", "week_12"}
    subgroups = read_csv(results / "tables/responder_subgroups.csv")
    assert set(subgroups["subgroup"]) == {"sex"}
    outcomes = read_csv(results / "tables/outcomes.csv")
    assert list(dict.fromkeys(outcomes["occasion"].dropna())) == ["baseline", "week_7", "week_12"]
    assert "Week 12" in (results / "summary.md").read_text()


def test_the_contract_draft_writes_no_identifier_and_proposes_missing_codes(tmp_path):
    """A column of identity numbers is drafted as text with no value written; a value far above
    the rest (99 among 0-10) is proposed as a missing-value code; few distinct texts make a
    category; a study name that is not an identifier is refused with a message."""
    from cohort.core.errors import CohortError
    from cohort.io.scaffold import draft_study

    extract = tmp_path / "x"
    extract.mkdir()
    pd.DataFrame(
        {
            "patient_id": ["a", "b", "c", "d"],
            "pnr": ["121212-1212", "19121212-1212", "121212 1212", "1212121212"],
            "arm": ["control", "active", "active", "control"],
        }
    ).to_csv(extract / "patients.csv", index=False)
    pd.DataFrame(
        {"patient_id": ["a", "b", "c", "d"], "occasion": ["t0"] * 4, "nprs": [3, 10, 99, 0]}
    ).to_csv(extract / "assessments.csv", index=False)
    study, contract = draft_study(extract, "trial", "c.yaml")
    pnr_line = next(line for line in contract.splitlines() if "pnr:" in line)
    assert "{type: text}" in pnr_line and "1212" not in pnr_line and "identifiers" in pnr_line
    assert "nprs: {type: integer, min: 0, max: 10, missing_codes: [99]}" in contract
    assert "arm: {type: category, codes: ['active', 'control']}" in contract
    assert "subgroups: [arm]" in study and "  - {name: t0, label: T0}" in study
    with pytest.raises(CohortError, match="lower-case"):
        draft_study(extract, "My Study", "c.yaml")


QUICK = "models:\n  imputation: {m: 5, max_imputed_records: 5000000, iterations: 5, donors: 5, seed: 1, jobs: 2}\n"
# What a generated extract loses, and what the run must then do: finish (every analysis that
# cannot run says why in its table), or stop before any rule with one message saying this.
DROPS = {
    "nothing": None,
    "every follow-up": None,
    "exclusion reasons": None,
    "assessment dates": "required column(s) missing: assessed_on",  # the contract requires them
    "sessions file": "config key 'models.dose'",  # the default study's dose: sessions per patient
    "bmi column": "config key 'baseline[2].variable'",  # a Table 2 row names it
}


def damaged_extract(folder: Path, contract, codebook, n: int, seed: int, drop: str) -> None:
    from .conftest import make_extract

    make_extract(folder, contract, codebook, n=n, seed=seed, fault_rate=0)
    patients = pd.read_csv(folder / "patients.csv", dtype=str, keep_default_na=False)
    assessments = pd.read_csv(folder / "assessments.csv", dtype=str, keep_default_na=False)
    if drop == "assessment dates":
        assessments = assessments.drop(columns="assessed_on")
    elif drop == "every follow-up":
        assessments = assessments[assessments["occasion"] == assessments["occasion"].iat[0]]
    elif drop == "exclusion reasons":
        patients = patients.drop(columns="exclusion_reason")
    elif drop == "sessions file":
        (folder / "sessions.csv").unlink()
    elif drop == "bmi column":
        patients = patients.drop(columns="bmi")
    patients.to_csv(folder / "patients.csv", index=False)
    assessments.to_csv(folder / "assessments.csv", index=False)


@pytest.mark.workflow
@pytest.mark.slow
@settings(max_examples=1, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(n=st.integers(2, 40), seed=st.integers(1, 10_000), drop=st.sampled_from(sorted(DROPS)))
@example(n=25, seed=4, drop="every follow-up")
@example(n=30, seed=8, drop="sessions file")
def test_a_damaged_extract_ends_in_results_or_one_message(
    tmp_path_factory, contract, codebook, n, seed, drop
):
    """Generated extracts of 2 to 40 patients with a column or file dropped: the workflow
    either finishes, every published table with its header and a footer (an analysis that
    cannot run says why), or stops before any rule with one message naming the key or the
    file and column; never a traceback."""
    work = workflow_copy(tmp_path_factory.mktemp("damaged") / "wf")
    damaged_extract(work / "extract", contract, codebook, n, seed, drop)
    (work / "study.yaml").write_text(QUICK + "extract: {dir: extract}\n")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "snakemake"), "--cores", "2", "--quiet",
         "--configfile", "study.yaml"],
        cwd=work, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    logs = "".join(p.read_text() for p in (work / "logs").rglob("*.log"))
    assert "Traceback" not in result.stderr + logs, (drop, result.stderr[-2000:])
    message = DROPS[drop]
    if message:
        assert result.returncode != 0 and message in result.stderr, result.stderr[-2000:]
        assert result.stderr.count("cohort: ") == 1
        assert not (work / "results/tables").exists()
        return
    assert result.returncode == 0, result.stderr[-3000:]
    for path in sorted((work / "results/tables").glob("*.csv")):
        frame = pd.read_csv(path, comment="#")
        assert len(frame.columns) > 1 and read_notes(path), path.name
    if drop == "every follow-up":
        sensitivity = read_csv(work / "results/tables/missing_data_sensitivity.csv")
        imputed = sensitivity[sensitivity["analysis"] == "multiple imputation"]
        assert imputed["method"].str.startswith("not estimable").all()
        predictors = read_csv(work / "results/tables/predictors.csv")
        assert (predictors["term"] == "(model failed)").all()


def test_a_dated_extract_gets_a_date_range_to_fill_in(tmp_path, contract, codebook):
    """The default extract has dates: the draft asks for cleaning.date_range, giving the years
    found; its check names the TODOs, among them the date range."""
    from cohort.core.config import todo_keys
    from cohort.io.scaffold import draft_study

    from .conftest import make_extract

    extract = make_extract(tmp_path / "x", contract, codebook, n=30, seed=2, fault_rate=0)
    study, _ = draft_study(extract, "dated", "c.yaml")
    assert "date_range: [TODO, TODO]" in study and "The dates found run from 20" in study
    keys = todo_keys(yaml.safe_load(study))
    assert "cleaning.date_range[0]" in keys and "study.title" in keys
