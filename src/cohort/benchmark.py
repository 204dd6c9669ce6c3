"""Benchmark harness (`make bench`): generate synthetic cohorts of several sizes, run the
pipeline on each in a temporary copy of the workflow, and report wall time and peak memory per
rule (from each rule's Snakemake `benchmark:` file), the total with the peak memory of the whole
run (all concurrent jobs), a no-op rerun and a rerun after one MCID change. Speed is measured
here, never in tests."""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import psutil

from cohort.contract import Contract
from cohort.synthetic import synthesize, write_extract

log = logging.getLogger(__name__)
WORKFLOW_PARTS = (
    "Snakefile",
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


def _tree_rss_mb(process: psutil.Process) -> float:
    """Resident memory of a process and all its descendants, in MB."""
    total = 0
    for p in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):  # ended between listing and reading
            total += p.memory_info().rss
    return total / 2**20


def _snakemake(work: Path, cores: int, *args: str) -> tuple[float, float]:
    """Run snakemake in `work`; return the wall time in seconds and the peak resident memory of
    the whole run (Snakemake and every job running at the same time, sampled every 0.2 s), in MB.
    Raises on failure."""
    snakemake = Path(sys.executable).parent / "snakemake"
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(
            [str(snakemake), "--cores", str(cores), "--quiet", *args],
            cwd=work,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
        )
        watched, peak = psutil.Process(process.pid), 0.0
        while process.poll() is None:
            peak = max(peak, _tree_rss_mb(watched))
            time.sleep(0.2)
        seconds = time.perf_counter() - start
        if process.returncode != 0:
            stderr.seek(0)
            raise RuntimeError(f"snakemake failed in {work}:\n{stderr.read()[-3000:]}")
    return seconds, peak


def benchmark_size(
    n: int, root: Path, workdir: Path, contract: Contract, codebook: dict, cores: int, seed: int = 1
) -> pd.DataFrame:
    """One cohort size: per-rule seconds and peak RSS, total, no-op rerun, threshold rerun."""
    work = copy_workflow(root, workdir / f"n{n}")
    start = time.perf_counter()
    write_extract(synthesize(n, seed, contract, codebook, fault_rate=0.01), work / "extract")
    generate = time.perf_counter() - start
    log.info("n = %d: extract generated in %.1f s", n, generate)
    (work / "study.yaml").write_text("extract:\n  dir: extract\n")
    total, peak = _snakemake(work, cores, "--configfile", "study.yaml")
    rows = []  # per rule, from the from-scratch run (a rerun overwrites the benchmark files)
    for tsv in sorted((work / "benchmarks" / STUDY).glob("*.tsv")):
        bench = pd.read_csv(tsv, sep="\t")
        rows.append(
            {
                "patients": n,
                "step": f"rule {tsv.stem}",
                "seconds": float(bench["s"].iat[-1]),
                "peak_memory_mb": float(bench["max_rss"].iat[-1]),
            }
        )
    noop, _ = _snakemake(work, cores, "--configfile", "study.yaml")
    (work / "threshold.yaml").write_text(
        "extract:\n  dir: extract\noutcomes:\n  pain:\n    mcid:\n      absolute: 3\n"
    )
    threshold, _ = _snakemake(work, cores, "--configfile", "threshold.yaml")
    rows += [
        {"patients": n, "step": "generate extract", "seconds": generate},
        {
            "patients": n,
            "step": "pipeline, from scratch",
            "seconds": total,
            "peak_memory_mb": peak,  # the whole run: every job at the same time
        },
        {"patients": n, "step": "rerun, nothing changed", "seconds": noop},
        {"patients": n, "step": "rerun after an MCID change", "seconds": threshold},
    ]
    log.info(
        "n = %d: pipeline %.1f s, no-op %.1f s, threshold change %.1f s", n, total, noop, threshold
    )
    return pd.DataFrame(rows)
