"""Benchmark harness (`make bench`): generate synthetic cohorts of several sizes, run the
pipeline on each in a temporary copy of the workflow, and report wall time and peak memory per
rule (from each rule's Snakemake `benchmark:` file), the total with the peak memory of the whole
run (all concurrent jobs), a no-op rerun and a rerun after one MCID change; the same for the
default study, a few times. Speed is measured here, never in tests."""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

from cohort.io.contract import Contract
from cohort.io.synthetic import synthesize, write_extract

log = logging.getLogger(__name__)
WORKFLOW_PARTS = (
    "Snakefile",
    "pool.smk",
    "rules",
    "scripts",
    "config",
    "src",
    "report",
    "profiles",
    "requirements.lock",
)


def copy_workflow(root: Path, dest: Path) -> Path:
    """A runnable copy of the workflow (not the data) in `dest`, for benchmarks and tests."""
    dest.mkdir(parents=True, exist_ok=True)
    for part in WORKFLOW_PARTS:
        source = root / part
        if source.is_dir():
            shutil.copytree(
                source,
                dest / part,
                dirs_exist_ok=True,
                ignore=shutil.ignore_patterns("__pycache__"),
            )
        else:
            shutil.copy2(source, dest / part)
    return dest


STUDY = "schouenborg2021"
DEFAULT_EXTRACT = "data/raw/synthetic"  # the committed synthetic extract (config/config.yaml)
DEFAULT_STUDY_PATIENTS = 274


def _tree_rss_mb(process: psutil.Process) -> float:
    """Resident memory of a process and all its descendants, in MB."""
    total = 0
    for p in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):  # ended between listing and reading
            total += p.memory_info().rss
    return total / 2**20


def job_script(cmdline: list[str]) -> str | None:
    """The rule script a job's process runs: Snakemake runs a copy of scripts/<name>.py as
    .snakemake/scripts/tmp<random>.<name>.py; None for any other process."""
    for part in cmdline:
        name = Path(part).name
        if Path(part).parent.name == "scripts" and name.startswith("tmp") and name.count(".") >= 2:
            return name.split(".")[-2]
    return None


def _job_peaks(watched: psutil.Process, peaks: dict[str, float]) -> None:
    """Each running job's resident memory (its process and children), kept per rule script as
    the largest sample so far."""
    for process in watched.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            script = job_script(process.cmdline())
            if script is not None:
                peaks[script] = max(peaks.get(script, 0.0), _tree_rss_mb(process))


def _snakemake(
    work: Path, cores: int, *args: str, memory_mb: int | None = None
) -> tuple[float, float, dict[str, float]]:
    """Run snakemake in `work` (with `memory_mb`, the budget of jobs side by side, as `make`
    gives it); return the wall time in seconds, the peak resident memory of the whole run
    (Snakemake and every job running at the same time) and each rule script's peak per job, in
    MB, all sampled every 0.2 s. Snakemake's own benchmark samples a job every 0.5 s for 30 s,
    then every 30 s, and misses the peaks of long jobs (responders at 10^6: 2.9 GB recorded,
    5.4 GB reached). Raises on failure."""
    budget = ["--resources", f"mem_mb={memory_mb}"] if memory_mb else []
    snakemake = Path(sys.executable).parent / "snakemake"
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(
            [str(snakemake), "--cores", str(cores), *budget, "--quiet", *args],
            cwd=work,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
        )
        watched, peak, jobs = psutil.Process(process.pid), 0.0, {}
        while process.poll() is None:
            peak = max(peak, _tree_rss_mb(watched))
            _job_peaks(watched, jobs)
            time.sleep(0.2)
        seconds = time.perf_counter() - start
        if process.returncode != 0:
            stderr.seek(0)
            raise RuntimeError(f"snakemake failed in {work}:\n{stderr.read()[-3000:]}")
    return seconds, peak, jobs


def _script_of(rule: str, scripts: dict[str, float]) -> str | None:
    """The script a rule's benchmark file (its name, wildcards joined by _) was run by: the
    longest script name that is the rule's or starts it (impute_part0: impute)."""
    matches = [s for s in scripts if rule == s or rule.startswith(f"{s}_")]
    return max(matches, key=len) if matches else None


def _rule_rows(work: Path, label: dict, job_peaks: dict[str, float] | None = None) -> list[dict]:
    """One row per rule of the last run: its wall time (its benchmark file) and peak memory,
    the larger of its benchmark file's and the harness's samples of its script's jobs."""
    job_peaks = job_peaks or {}
    rows = []
    for tsv in sorted((work / "benchmarks" / STUDY).glob("*.tsv")):
        bench = pd.read_csv(tsv, sep="\t")
        script = _script_of(tsv.stem, job_peaks)
        recorded = float(bench["max_rss"].iat[-1])
        sampled = job_peaks[script] if script else float("nan")
        rows.append(
            {
                **label,
                "step": f"rule {tsv.stem}",
                "seconds": float(bench["s"].iat[-1]),
                "peak_memory_mb": float(np.fmax(recorded, sampled)),  # NA in either: the other
            }
        )
    return rows


def published_digests(results: Path) -> dict[str, str]:
    """sha256 of every published file under `results` but provenance.json (which records the
    config, and so the number of shards)."""
    from cohort.workflow.provenance import sha256

    return {
        p.relative_to(results).as_posix(): sha256(p)
        for p in sorted(results.rglob("*"))
        if p.is_file() and p.name != "provenance.json"
    }


def differing_files(one: dict[str, str], other: dict[str, str]) -> list[str]:
    """The files in either digest set that the other lacks or holds with other bytes."""
    return sorted(p for p in one.keys() | other.keys() if one.get(p) != other.get(p))


def sharded_run(
    work: Path,
    cores: int,
    study_files: list[str],
    shards: int,
    label: dict,
    memory_mb: int | None = None,
) -> pd.DataFrame:
    """After `measure_runs` in `work`: the same extract and config (the MCID change included)
    from scratch with `cleaning.shards: shards`, per rule and in total, and whether every
    published file is the same bytes as the one-job run's."""
    one_job = published_digests(work / "results")
    for folder in ("data/processed", "results", f"benchmarks/{STUDY}"):
        shutil.rmtree(work / folder, ignore_errors=True)
    (work / "sharded.yaml").write_text(f"cleaning:\n  shards: {shards}\n")
    label = {**label, "shards": shards}
    files = ["--configfile", *study_files, "threshold.yaml", "sharded.yaml"]
    total, peak, jobs = _snakemake(work, cores, *files, memory_mb=memory_mb)
    differ = differing_files(one_job, published_digests(work / "results"))
    log.info("%s: %d published files, %d differ from one job's", label, len(one_job), len(differ))
    same = f"{len(one_job) - len(differ)} of {len(one_job)} published files the same bytes"
    return pd.DataFrame(
        [
            *_rule_rows(work, label, jobs),
            {**label, "step": "pipeline, from scratch", "seconds": total, "peak_memory_mb": peak},
            {
                **label,
                "step": "published files as one job's",
                "note": same + (f"; differ: {', '.join(differ[:5])}" if differ else ""),
            },
        ]
    )


def measure_runs(
    work: Path, cores: int, study_files: list[str], label: dict, memory_mb: int | None = None
) -> pd.DataFrame:
    """In a workflow copy with its extract in place: the run from scratch (per rule from the
    rules' benchmark files, in total with the whole run's peak memory), a no-op rerun and a
    rerun after one MCID change (pain: 3 points). `study_files`: config files merged over
    config/config.yaml; `label`: columns identifying the cohort in every row. A rule's peak
    memory is NaN where it ended before Snakemake's first memory sample (written NA)."""
    study = ["--configfile", *study_files] if study_files else []
    total, peak, jobs = _snakemake(work, cores, *study, memory_mb=memory_mb)
    rows = _rule_rows(work, label, jobs)  # before a rerun overwrites the benchmark files
    noop, *_ = _snakemake(work, cores, *study, memory_mb=memory_mb)
    (work / "threshold.yaml").write_text(
        "outcomes:\n  pain:\n    mcid:\n      absolute: 3\n"  # merged over the study's config
    )
    # One --configfile with both files: a second --configfile would replace the first.
    threshold, *_ = _snakemake(
        work, cores, "--configfile", *study_files, "threshold.yaml", memory_mb=memory_mb
    )
    rows += [
        # the whole run: every job at the same time
        {**label, "step": "pipeline, from scratch", "seconds": total, "peak_memory_mb": peak},
        {**label, "step": "rerun, nothing changed", "seconds": noop},
        {**label, "step": "rerun after an MCID change", "seconds": threshold},
    ]
    log.info(
        "%s: pipeline %.1f s, no-op %.1f s, threshold change %.1f s", label, total, noop, threshold
    )
    return pd.DataFrame(rows)


def benchmark_size(
    n: int,
    root: Path,
    workdir: Path,
    contract: Contract,
    codebook: dict,
    cores: int,
    seed: int = 1,
    settings: str = "",
    shards: int = 1,
    memory_mb: int | None = None,
) -> pd.DataFrame:
    """One cohort size: generate the extract, then `measure_runs`, then with `shards` > 1 the
    `sharded_run`. `settings`: YAML added to the study file (the tests use fewer imputations;
    `make bench` measures the defaults)."""
    work = copy_workflow(root, workdir / f"n{n}")
    start = time.perf_counter()
    write_extract(synthesize(n, seed, contract, codebook, fault_rate=0.01), work / "extract")
    generate = time.perf_counter() - start
    log.info("n = %d: extract generated in %.1f s", n, generate)
    (work / "study.yaml").write_text("extract:\n  dir: extract\n" + settings)
    label = {"cohort": f"generated (seed {seed}, 1% faults)", "patients": n}
    runs = measure_runs(work, cores, ["study.yaml"], label, memory_mb)
    lme4 = _lme4_rows(work, root, label)
    sharded = (
        sharded_run(work, cores, ["study.yaml"], shards, label, memory_mb) if shards > 1 else None
    )
    return pd.concat(
        [
            pd.DataFrame([{**label, "step": "generate extract", "seconds": generate}]),
            runs,
            lme4,
            sharded,
        ],
        ignore_index=True,
    )


def _lme4_rows(work: Path, root: Path, label: dict) -> pd.DataFrame:
    """lmm_against_lme4 on the run's analysis set, pain, with the default study's covariates."""
    from cohort.core.config import read_yaml
    from cohort.workflow.stages import analysis_set

    config = read_yaml(root / "config" / "config.yaml")
    occasions = [o["name"] for o in config["occasions"]]
    patients = analysis_set(str(work / "data" / "processed" / "patients.parquet"))
    return lmm_against_lme4(patients, "pain", occasions, list(config["covariates"]), label)


def benchmark_default_study(
    root: Path, workdir: Path, cores: int, repeat: int, memory_mb: int | None = None
) -> pd.DataFrame:
    """The default study (config/config.yaml, the committed extract) from a fresh copy:
    `measure_runs`, the `repeat`-th time (the targets for small studies are set on it)."""
    work = copy_workflow(root, workdir / f"default{repeat}")
    shutil.copytree(root / DEFAULT_EXTRACT, work / DEFAULT_EXTRACT)
    label = {"cohort": f"default study, run {repeat}", "patients": DEFAULT_STUDY_PATIENTS}
    return measure_runs(work, cores, [], label, memory_mb)


# --- Against the previous reference and against lme4 ---------------------------------------------
REFERENCE = Path("docs/performance_reference.csv")  # the last reference run (docs/performance.md)


def with_reference(summary: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """`summary` with the reference run's seconds for the same step and cohort size and the
    ratio (this run / reference; below 1 is faster). Default-study runs are compared with the
    reference's mean over its default-study runs; a step the reference lacks gets NaN."""

    def key(table: pd.DataFrame) -> pd.Series:
        default = table["cohort"].astype(str).str.startswith("default study")
        shards = table["shards"] if "shards" in table else pd.Series(float("nan"), table.index)
        return (
            table["patients"].astype(str)
            + default.map({True: " default", False: ""})
            + shards.map(lambda k: f" shards {int(k)}" if pd.notna(k) else "")
        )

    ref = reference.assign(_key=key(reference)).groupby(["_key", "step"], as_index=False)["seconds"].mean()  # fmt: skip
    ref = ref.rename(columns={"seconds": "reference_seconds"})
    out = summary.assign(_key=key(summary)).merge(ref, on=["_key", "step"], how="left")
    out["ratio"] = out["seconds"] / out["reference_seconds"]
    return out.drop(columns="_key")


LME4_SCRIPT = """
suppressMessages(library(lme4))
d <- read.csv(commandArgs(TRUE)[1], stringsAsFactors = TRUE)
d$occasion <- factor(d$occasion, levels = strsplit(commandArgs(TRUE)[2], ",")[[1]])
f <- as.formula(commandArgs(TRUE)[3])
invisible(lmer(f, data = d, REML = TRUE))  # warm-up: lme4's first call loads its code
t <- system.time(fit <- lmer(f, data = d, REML = TRUE))[["elapsed"]]
cat(sprintf("%.6f %.10g\\n", t, REMLcrit(fit)))
"""


def lmm_against_lme4(
    patients: pd.DataFrame, outcome: str, occasions: list[str], covariates: list[str], label: dict
) -> pd.DataFrame:
    """Wall time of one random-intercept REML fit (value ~ occasion + covariates + (1 |
    patient)) by cohort.models.lmm.fit_lmm and, where Rscript with lme4 is installed, by lme4's lmer
    on the same rows, with the ratio lme4 / ours (the REML criteria printed in the log agree)."""
    from cohort.models.lmm import fit_lmm, lmm_data

    long = lmm_data(patients, outcome, occasions, covariates)
    start = time.perf_counter()
    fit = fit_lmm(long, covariates, occasions)
    ours = time.perf_counter() - start
    rows = [{**label, "step": f"lmm fit ({outcome}): cohort", "seconds": ours, "reml_criterion": -2 * fit.llf}]  # fmt: skip
    rscript = shutil.which("Rscript")
    if rscript is None:
        log.info("lme4 comparison skipped: no Rscript on this machine")
        return pd.DataFrame(rows)
    with tempfile.TemporaryDirectory(prefix="cohort-lme4-") as tmp:
        data = Path(tmp) / "long.csv"
        long[["patient_id", "occasion", "value", *covariates]].to_csv(data, index=False)
        formula = f"value ~ {' + '.join(['occasion', *covariates])} + (1 | patient_id)"
        done = subprocess.run(
            [rscript, "-e", LME4_SCRIPT, str(data), ",".join(occasions), formula],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    if done.returncode != 0:
        log.info("lme4 comparison skipped: %s", done.stderr.strip().splitlines()[-1:] or "R failed")
        return pd.DataFrame(rows)
    seconds, criterion = (float(v) for v in done.stdout.split())
    log.info(
        "lme4 %s: %.3f s (REML criterion %.6f); cohort %.3f s", outcome, seconds, criterion, ours
    )
    rows.append({**label, "step": f"lmm fit ({outcome}): lme4 (R)", "seconds": seconds,
                 "reml_criterion": criterion, "ratio_to_cohort": seconds / ours})  # fmt: skip
    return pd.DataFrame(rows)
