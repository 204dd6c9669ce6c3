"""End to end: Snakemake runs the pipeline in a temporary copy of the workflow."""

from __future__ import annotations

import filecmp
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import jupytext
import pandas as pd
import pytest

from cohort.io.outputs import read_csv

from .conftest import ROOT, make_extract, run_snakemake, workflow_copy

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

STUDY = "schouenborg2021"
RULES = (
    "clean",
    "baseline",
    "interventions",
    "outcomes",
    "responders",
    "lmm",
    "missing_data",
    "impute_part0",  # rule impute, one log and benchmark per job
    "impute_part1",
    "predictors",
    "tipping_point",
    "clinical_significance",
    "publish",
    "site_bundle",
    "figures",
    "publication_tables",
    "provenance",
)
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
    "results/tables/responder_course.csv",
    "results/figures/responder_course.png",
    "results/tables/responder_directions.csv",
    "results/figures/responder_directions.png",
    "results/tables/clinical_significance_definitions.csv",
    "results/tables/clinical_significance_rates.csv",
    "results/tables/clinical_significance_agreement.csv",
    "results/figures/clinical_significance.png",
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
    "results/tables/tipping_point.csv",
    "results/figures/tipping_point.png",
    "results/summary.md",
    "results/summary.html",
    "results/disclosure_report.md",
    "results/disclosure_report.html",
    "results/tables/html/baseline.html",
    "results/tables/html/responders.html",
    "results/tables/html/lmm.html",
    "results/tables/html/predictors.html",
    "results/tables/manuscript_tables.docx",
    "results/figures/legends.html",
    "results/provenance.json",
    "data/processed/tables/responders.csv",
    "data/processed/patients.parquet",
    "data/processed/sessions.parquet",
    "data/processed/assessments.parquet",
    "data/processed/cleaning_log.csv",
]


STUDY_FILE = "extract:\n  dir: extract\nmodels:\n  imputation: {m: 5, max_imputed_records: 5000000, iterations: 5, donors: 5, seed: 1, jobs: 2}\n"


def small_study(tmp_path: Path, contract, codebook, **kwargs) -> Path:
    """A workflow copy with a 40-patient extract (5 imputations, to keep the suite quick)."""
    work = workflow_copy(tmp_path / "wf")
    make_extract(work / "extract", contract, codebook, n=40, seed=5, **kwargs)
    (work / "study.yaml").write_text(STUDY_FILE)
    return work


def test_default_study_reproduces_committed_results(default_run):
    """A fresh run on the committed synthetic extract gives the committed results/, byte for
    byte, provenance.json included (it records a content hash of the code, not a commit)."""
    work = default_run
    tracked = (
        "tables",
        "figures",
        "summary.md",
        "summary.html",
        "disclosure_report.md",
        "disclosure_report.html",
        "results.json",
        "site_bundle.json",
        "provenance.json",
    )  # results/<other study>/ is not ours
    committed = sorted(
        p.relative_to(ROOT)
        for p in (ROOT / "results").rglob("*")
        if p.is_file()
        and p.relative_to(ROOT / "results").parts[0] in tracked
        and p.name != ".snakemake_timestamp"  # Snakemake's marker in a directory output
    )
    fresh = sorted(
        p.relative_to(work)
        for p in (work / "results").rglob("*")
        if p.is_file() and p.name != ".snakemake_timestamp"
    )
    assert fresh == committed
    for rel in committed:
        if rel.name == "provenance.json" and not same_python(ROOT / rel):
            # Another supported Python: everything but the interpreter's version must agree.
            ours, theirs = (json.loads(p.read_text()) for p in (ROOT / rel, work / rel))
            ours["software"].pop("python"), theirs["software"].pop("python")
            assert ours == theirs
            continue
        assert filecmp.cmp(ROOT / rel, work / rel, shallow=False), f"{rel} differs from a fresh run"


def same_python(provenance: Path) -> bool:
    """Whether the committed provenance.json was made by this Python (major.minor.micro)."""
    import platform

    return json.loads(provenance.read_text())["software"]["python"] == platform.python_version()


# Session scope: the worker that runs this file may run the default study's tests (another
# xdist group, tests/conftest.py) in between; a module fixture would be torn down and remade.
@pytest.fixture(scope="session")
def small_run(tmp_path_factory, contract, codebook):
    work = small_study(tmp_path_factory.mktemp("run"), contract, codebook)
    result = run_snakemake(work, "--configfile", "study.yaml")
    assert result.returncode == 0, result.stderr
    return work


def test_small_extract_end_to_end(small_run):
    work = small_run
    for rel in OUTPUTS:
        assert (work / rel).is_file(), rel
    for rule in RULES:
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
    again = run_snakemake(work, "--configfile", "study.yaml", "--dry-run", quiet=False)
    assert "Nothing to be done" in again.stdout + again.stderr


def test_nothing_patient_level_reaches_results(small_run):
    """No patient id and no session or assessment date of the extract appears in results/."""
    work = small_run
    extract = {
        name: pd.read_csv(work / f"extract/{name}.csv", dtype=str, keep_default_na=False)
        for name in ("patients", "sessions", "assessments")
    }
    ids = set(extract["patients"]["patient_id"]) | set(extract["sessions"]["patient_id"])
    dates = set(extract["sessions"]["session_date"]) | set(extract["assessments"]["assessed_on"])
    dates = {d for d in dates if len(d) == 10}
    needles = sorted(ids | dates)
    for path in (work / "results").rglob("*"):
        if path.suffix in (".csv", ".md", ".json", ".html"):
            text = path.read_text()
        elif path.suffix == ".docx":  # the Word document's text is in its XML parts
            with zipfile.ZipFile(path) as document:
                text = "".join(
                    document.read(n).decode() for n in document.namelist() if n.endswith(".xml")
                )
        else:
            continue
        found = [needle for needle in needles if needle in text]
        assert not found, f"{path.name} holds {found[:5]}"


def test_provenance_records_inputs_software_and_no_time(small_run):
    record = json.loads((small_run / "results/provenance.json").read_text())
    extract = record["inputs"]["extract"]
    assert (
        extract["extract/patients.csv"]
        == hashlib.sha256((small_run / "extract/patients.csv").read_bytes()).hexdigest()
    )
    assert record["outputs"]["results/summary.md"]["rule"] == "publish"
    assert record["outputs"]["results/figures/flow.png"]["rule"] == "figures"
    assert record["software"]["snakemake"] and record["software"]["statsmodels"]
    assert record["config"]["extract"]["dir"] == "extract"
    text = json.dumps(record)
    assert not re.search(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", text)  # no timestamps


def test_provenance_lineage_walks_from_an_output_to_the_extract(small_run):
    """Lineage: a published table -> the rule that wrote it -> its inputs with their sha256 ->
    the rules that wrote those, back to the raw extract; every hash is the file's."""
    record = json.loads((small_run / "results/provenance.json").read_text())
    rules = record["rules"]
    writer = {p: rule for rule, files in rules.items() for p in files["outputs"]}
    path, seen = "results/tables/predictors.csv", []
    frontier = [path]
    while frontier:
        current = frontier.pop()
        rule = writer.get(current)
        if rule is None or rule in seen:
            continue
        seen.append(rule)
        for source, digest in rules[rule]["inputs"].items():
            assert digest == hashlib.sha256((small_run / source).read_bytes()).hexdigest()
            frontier.append(source)
    assert {"publish", "predictors", "impute", "clean"} <= set(seen)
    assert "extract/patients.csv" in rules["clean"]["inputs"]
    assert "figures" not in seen  # a figure is not on a table's path


def test_provenance_is_the_same_for_the_same_tree(small_run, tmp_path):
    """The same code, config and extract give the same provenance.json wherever the tree sits
    (a copy is not a git checkout; no commit is recorded), and its code hash changes with an
    edit of a module."""

    from cohort.workflow.provenance import content_hash

    work = tmp_path / "wf"
    shutil.copytree(small_run, work, symlinks=True)
    (work / "results/provenance.json").unlink()
    assert run_snakemake(work, "--configfile", "study.yaml").returncode == 0
    assert (work / "results/provenance.json").read_bytes() == (
        small_run / "results/provenance.json"
    ).read_bytes()
    record = json.loads((work / "results/provenance.json").read_text())
    code = {
        **record["inputs"]["code"],
        **record["inputs"]["workflow"],
        **record["inputs"]["config"],
    }
    assert record["code_sha256"] == content_hash(code)
    assert (
        content_hash({**code, "src/cohort/publish/figures.py": "0" * 64}) != record["code_sha256"]
    )


# What the report's view button does for a result (snakemake's ButtonViewManager), then wait
# until the page shows it: an image loaded with its pixels, a table's page in the frame.
SHOW_RESULT = """
(async (path) => {
  const entry = results[path];
  const kind = {"image/png": "img", "text/html": "html"}[entry.mime_type];
  if (!kind) return {path, kind: "download", shown: false, caption: entry.caption};
  app.showResultInfo(path);
  app.setView({content: kind, contentPath: entry.data_uri, resultPath: path});
  for (let i = 0; i < 200; i++) {
    await new Promise(resolve => setTimeout(resolve, 50));
    const tag = kind === "img" ? "img" : "iframe";
    const shown = [...document.querySelectorAll(tag)].find(
      e => e.getAttribute("src") === entry.data_uri);
    if (shown && (kind === "html" || (shown.complete && shown.naturalWidth > 0))) {
      return {path, kind, shown: true, caption: entry.caption, uri: entry.data_uri};
    }
  }
  return {path, kind, shown: false, caption: entry.caption};
})
"""


def test_html_report_shows_every_table_and_figure_in_chromium(small_run):
    """The report opened as a person would, in headless Chromium: no console error; the
    summary on the first page; every table shown inline (an HTML page with a table, its own
    caption) and every figure displayed; each table's page renders a table with rows."""
    from .browser import Browser, ensure_chromium

    result = run_snakemake(small_run, "--configfile", "study.yaml", "--report", "report.html")
    assert result.returncode == 0, result.stderr
    html = (small_run / "report.html").read_text(errors="replace")
    assert "SYNTHETIC DATA" in html and "Disclosure control" in html
    chromium, why = ensure_chromium()
    if chromium is None:
        pytest.skip(why)
    tables = sorted(p.stem for p in (small_run / "results/tables/html").glob("*.html"))
    figures = sorted(p.name for p in (small_run / "results/figures").glob("*.png"))
    with Browser(chromium) as browser:
        browser.open((small_run / "report.html").as_uri())
        first_page = browser.evaluate("document.body.innerText")
        assert "Analysis set" in first_page or "analysis set" in first_page
        assert browser.evaluate("document.querySelector('.cohort-summary') !== null")
        paths = browser.evaluate("Object.keys(results)")
        shown = {p: browser.evaluate(SHOW_RESULT + f"({json.dumps(p)})") for p in paths}
        assert {f"results/tables/html/{t}.html" for t in tables} <= set(paths)
        assert {f"results/figures/{f}" for f in figures} <= set(paths)
        not_shown = [p for p, r in shown.items() if not r["shown"] and not p.endswith(".docx")]
        assert not not_shown, not_shown
        table_captions = [shown[f"results/tables/html/{t}.html"]["caption"] for t in tables]
        assert len(set(table_captions)) == len(tables)  # each its own
        for t in tables:  # the page the frame shows, opened on its own
            browser.open(shown[f"results/tables/html/{t}.html"]["uri"])
            rows = browser.evaluate("document.querySelectorAll('table tbody tr').length")
            assert rows > 0, t
        assert browser.errors == []


def test_summary_has_banner_headline_and_assumptions(small_run):
    text = (small_run / "results/summary.md").read_text()
    assert text.startswith("> **SYNTHETIC DATA")
    for heading in (
        "## Patients",
        "## Headline",
        "## Responder rates",
        "## Sensitivity to the definition of clinical significance",
        "## Mixed models",
        "## Assumptions in force",
    ):
        assert heading in text
    assert "ASSUMPTION" in text
    assert "| pain |" not in text and "followup_1y |" not in text  # labels, not raw names


def test_notebook_runs_headless_on_a_run(small_run):
    env = {**os.environ, "COHORT_ROOT": str(small_run), "MPLBACKEND": "Agg"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "notebooks/explore.py")],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "Patient P" in result.stdout
    notebook = jupytext.read(ROOT / "notebooks/explore.py")
    assert sum(cell.cell_type == "code" for cell in notebook.cells) >= 4


def test_notebook_executes_as_a_notebook_and_shows_its_figure(small_run, monkeypatch):
    """notebooks/explore.py (jupytext) run as a notebook by nbclient in a Jupyter kernel: every
    cell runs without error and the figure cell displays a PNG (the inline backend, not Agg)."""
    import nbclient

    monkeypatch.setenv("COHORT_ROOT", str(small_run))
    monkeypatch.delenv("MPLBACKEND", raising=False)
    notebook = jupytext.read(ROOT / "notebooks/explore.py")
    nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)


def assert_stopped_before_output(result, work: Path, *fragments: str) -> None:
    assert result.returncode != 0
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not (work / "results").exists() and not any((work / "data").rglob("*.parquet"))


def planned_jobs(result) -> dict[str, int]:
    """Job counts per rule from the 'Job stats' table of a dry run."""
    jobs = {}
    for line in (result.stdout + result.stderr).splitlines():
        match = re.fullmatch(r"\s*([A-Za-z_]\w*)\s+(\d+)\s*", line)
        if match and match.group(1) != "total":
            jobs[match.group(1)] = int(match.group(2))
    return jobs


def test_threshold_change_reruns_only_responders_and_downstream(small_run):
    work = small_run
    (work / "threshold.yaml").write_text(
        STUDY_FILE + "outcomes:\n  pain:\n    mcid:\n      absolute: 3\n"
    )
    dry = run_snakemake(work, "--configfile", "threshold.yaml", "--dry-run", quiet=False)
    assert dry.returncode == 0, dry.stderr
    jobs = planned_jobs(dry)
    # Response models use the classes; publish (one suppression pattern over all tables), the
    # figures drawn from its tables and provenance follow. Nothing else: the mixed models,
    # missing-data tables, imputations and threshold sweeps do not depend on the MCID.
    assert set(jobs) - {"all"} == {
        "responders",
        "predictors",
        "clinical_significance",  # the MCID is the primary definition, compared with the others
        "tipping_point",  # the responder rate under delta-adjusted imputation
        "publish",
        "site_bundle",  # reads the published site_aggregates and responders
        "figures",
        "publication_tables",
        "provenance",
    }, jobs
    # responders and predictors do not wait for each other (they run side by side).
    order = (dry.stdout + dry.stderr).split("rule predictors:")[1].split("rule ")[0]
    assert "responders.parquet" not in order


@pytest.mark.parametrize(
    "edit",
    [
        "clinical_significance:\n  definitions:\n    half_sd: {method: half_sd, reference: x}\n",
        "clinical_significance:\n  reliability:\n    pain: {r: 0.7, reference: x}\n",
    ],
)
def test_editing_a_definition_reruns_only_the_rule_that_classifies_by_it(small_run, edit):
    """A definition, a reliability: only rule clinical_significance reads them, so it reruns
    with publishing and what follows, not responders, the models or the imputations."""
    (small_run / "definition.yaml").write_text(STUDY_FILE + edit)
    dry = run_snakemake(small_run, "--configfile", "definition.yaml", "--dry-run", quiet=False)
    assert dry.returncode == 0, dry.stderr
    assert set(planned_jobs(dry)) - {"all"} == {
        "clinical_significance",
        "publish",
        "site_bundle",  # reads the published site_aggregates and responders
        "figures",
        "publication_tables",
        "provenance",
    }


def test_each_rule_has_the_modules_it_imports_as_code_input(small_run):
    """A rule's code input is what its script imports, to the end (cohort.workflow.provenance.
    imported_modules): rule predictors lists the model modules, not the figures."""
    dry = run_snakemake(
        small_run,
        "--configfile",
        "study.yaml",
        "--dry-run",
        "--forcerun",
        "predictors",
        quiet=False,
    )
    assert dry.returncode == 0, dry.stderr
    job = (dry.stdout + dry.stderr).split("rule predictors:")[1].split("rule ")[0]
    for module in (
        "analysis/predictors.py",
        "analysis/missing_data.py",
        "models/logistic.py",
        "analysis/imputation.py",
        "workflow/stages/models.py",
        "workflow/stages/__init__.py",
        "analysis/__init__.py",  # the package on the way
    ):
        assert f"src/cohort/{module}" in job, module
    assert "src/cohort/publish/figures.py" not in job
    assert "src/cohort/disclosure/__init__.py" not in job


def test_editing_the_figures_module_reruns_only_the_rules_that_draw(small_run, tmp_path):
    """Editing cohort/publish/figures.py reruns the rules that import it (outcomes, which draws the
    change figure; figures) and what depends on their outputs (publish, provenance): not
    clean, the imputations, the models or the responders."""

    work = tmp_path / "wf"
    shutil.copytree(small_run, work, symlinks=True)
    module = work / "src/cohort/publish/figures.py"
    module.write_text(module.read_text() + "\n# a caption edited\n")
    dry = run_snakemake(work, "--configfile", "study.yaml", "--dry-run", quiet=False)
    assert dry.returncode == 0, dry.stderr
    assert set(planned_jobs(dry)) - {"all"} == {
        "outcomes",
        "publish",
        "site_bundle",  # reads the published site_aggregates and responders
        "figures",
        "publication_tables",
        "provenance",
    }


def test_predictors_classify_as_responders_do(small_run):
    """Rule predictors applies the MCID rule itself (not reading responders' output): its
    complete-case responder counts are those of the responders table, outcome by occasion."""
    rates = read_csv(small_run / "data/processed/tables/responders.csv")
    sensitivity = read_csv(small_run / "data/processed/tables/missing_data_sensitivity.csv")
    complete = sensitivity[sensitivity["analysis"] == "complete case"]
    available = rates[rates["denominator"] == rates["denominator"].iat[0]]
    merged = complete.merge(available, on=["outcome", "occasion"], suffixes=("", "_rates"))
    assert len(merged) == len(complete) > 0
    assert (merged["responders"] == merged["responders_rates"]).all()
    assert (merged["n"] == merged["n_rates"]).all()


def test_interrupted_run_is_rerun_and_gives_the_same_results(
    small_run, tmp_path, contract, codebook
):
    """Kill Snakemake while the predictors rule runs: the job's outputs stay marked incomplete, the
    rerun redoes it (workflow profile: rerun-incomplete) and ends with the same results as an
    uninterrupted run."""
    import signal
    import time

    # A copy of the finished small run, with predictors forced to run again: the kill lands in
    # the same job as in a run from scratch, without redoing cleaning and the imputations.
    work = tmp_path / "wf"
    shutil.copytree(small_run, work, symlinks=True)
    marker = work / f"logs/{STUDY}/predictors.log"
    marker.unlink()
    snakemake = Path(sys.executable).parent / "snakemake"
    process = subprocess.Popen(
        [str(snakemake), "--cores", "2", "--quiet", "--configfile", "study.yaml",
         "--forcerun", "predictors"],
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert process.poll() is None, "the run ended before it could be interrupted"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (work / "data/processed/tables/predictors.csv").exists()  # removed for the job
    # A killed Snakemake leaves its lock: the user unlocks (README), then reruns: the incomplete
    # job is redone (the workflow profile's rerun-incomplete), not skipped.
    assert run_snakemake(work, "--configfile", "study.yaml", "--unlock").returncode == 0
    result = run_snakemake(work, "--configfile", "study.yaml", quiet=False)
    assert result.returncode == 0, result.stderr
    assert "rule predictors:" in result.stdout + result.stderr
    for path in sorted((small_run / "results").rglob("*")):
        if path.is_file():
            rel = path.relative_to(small_run)
            assert filecmp.cmp(path, work / rel, shallow=False), rel


EXTERNAL = ROOT.parent / "shared/external/vickers_acupuncture_headache/acupuncture_trial_data.csv"
