"""The benchmark harness (`make bench`) measures what it says: every rule's row, the run from
scratch, the no-op rerun and a rerun after a real MCID change. No timing is asserted (speed is
measured by the harness, never by tests)."""

from __future__ import annotations

import pandas as pd
import pytest

from cohort.io.outputs import read_csv
from cohort.workflow.benchmark import (
    REFERENCE,
    STUDY,
    _rule_rows,
    benchmark_size,
    differing_files,
    job_script,
    published_digests,
    with_reference,
)

from .conftest import ROOT

RERUNS = {"pipeline, from scratch", "rerun, nothing changed", "rerun after an MCID change"}


def test_harness_reports_every_rule_and_reruns_after_a_real_threshold_change(
    tmp_path, contract, codebook
):
    quick = "models:\n  imputation: {m: 5, max_imputed_records: 5000000, iterations: 5, donors: 5, seed: 1, jobs: 2}\n"
    table = benchmark_size(120, ROOT, tmp_path, contract, codebook, cores=2, settings=quick)
    assert set(table["patients"]) == {120}
    steps = set(table["step"])
    assert {"generate extract", *RERUNS} <= steps
    rules = {step.removeprefix("rule ") for step in steps if step.startswith("rule ")}
    expected = {"clean", "responders", "predictors", "publish", "provenance", "impute_part0"}
    assert expected | {"threshold_sweep_pain", "impute_part1"} <= rules
    assert (table["seconds"] > 0).all()
    per_rule = table[table["step"].str.startswith("rule ")]
    # The harness samples each job's process every 0.2 s (Snakemake: every 0.5 s, NA for a job
    # that ended before its first sample): every rule's job is a Python start of about a second.
    memory = per_rule["peak_memory_mb"]
    assert ((memory > 0) | memory.isna()).all()
    assert memory.notna().sum() >= len(memory) - 1, "every job lasts long enough to be sampled"
    whole = table.loc[table["step"] == "pipeline, from scratch", "peak_memory_mb"].iat[0]
    assert whole > 0
    # The rerun ran on the generated extract with pain's MCID at 3 points (both config files).
    rates = read_csv(tmp_path / "n120" / "results/tables/responders.csv")
    assert set(rates.loc[rates["outcome"] == "pain", "rule"]) == {"improvement ≥ 3"}
    flow = read_csv(tmp_path / "n120" / "results/tables/flow.csv")
    assert int(flow.loc[flow["key"] == "analysis_set", "n"].iat[0]) <= 120
    # The mixed model against lme4 on the same rows (where R has lme4): the same REML criterion.
    fits = table[table["step"].str.startswith("lmm fit (pain)")].set_index("step")
    assert "lmm fit (pain): cohort" in fits.index
    if "lmm fit (pain): lme4 (R)" in fits.index:
        criteria = fits["reml_criterion"]
        assert criteria.iat[1] == pytest.approx(criteria.iat[0], rel=1e-6)


def test_each_step_is_set_beside_the_reference_run():
    """`make bench` prints each step's ratio to the last reference run (docs/
    performance_reference.csv, transcribed from docs/performance.md): the same step at the same
    size, default-study runs against the reference's mean over its runs, NaN where the
    reference has no such step."""
    reference = pd.read_csv(ROOT / REFERENCE)
    assert {"pipeline, from scratch", "rule clean", "rerun after an MCID change"} <= set(reference["step"])  # fmt: skip
    summary = pd.DataFrame(
        [
            {
                "cohort": "generated (seed 1, 1% faults)",
                "patients": 1000,
                "step": "rule clean",
                "seconds": 1.3,
            },  # fmt: skip
            {
                "cohort": "default study, run 1",
                "patients": 274,
                "step": "pipeline, from scratch",
                "seconds": 42.8,
            },  # fmt: skip
            {
                "cohort": "generated (seed 1, 1% faults)",
                "patients": 1000,
                "step": "rule pool",
                "seconds": 1.0,
            },  # fmt: skip
        ]
    )
    out = with_reference(summary, reference)
    clean = reference[(reference["patients"] == 1000) & (reference["step"] == "rule clean")]
    assert out["reference_seconds"].iat[0] == clean["seconds"].iat[0]
    assert out["ratio"].iat[0] == pytest.approx(1.3 / clean["seconds"].iat[0])
    runs = reference[reference["cohort"].str.startswith("default") & (reference["step"] == "pipeline, from scratch")]  # fmt: skip
    assert len(runs) == 3 and out["reference_seconds"].iat[1] == pytest.approx(
        runs["seconds"].mean()
    )
    assert pd.isna(out["ratio"].iat[2])


def test_a_sharded_step_is_not_set_beside_the_one_job_reference():
    """A step of the sharded run (column shards) has no reference of one job's to be a ratio of."""
    reference = pd.read_csv(ROOT / REFERENCE)
    summary = pd.DataFrame(
        [
            {"cohort": "generated", "patients": 1000, "step": "rule clean", "seconds": 1.0},
            {
                "cohort": "generated",
                "patients": 1000,
                "step": "rule clean",
                "seconds": 1.0,
                "shards": 4,
            },  # fmt: skip
        ]
    )
    out = with_reference(summary, reference)
    assert out["reference_seconds"].notna().iat[0] and out["reference_seconds"].isna().iat[1]


def test_published_files_are_compared_byte_by_byte_but_provenance(tmp_path):
    """The sharded run's check (sharded_run): a file that differs, or is missing on either
    side, is named; provenance.json (it records the config) is not compared."""
    one, other = tmp_path / "one", tmp_path / "other"
    for folder in (one, other):
        (folder / "tables").mkdir(parents=True)
        (folder / "tables/a.csv").write_text("n\n1\n")
        (folder / "summary.md").write_text("same")
    (one / "provenance.json").write_text('{"shards": 1}')
    (other / "provenance.json").write_text('{"shards": 4}')
    assert differing_files(published_digests(one), published_digests(other)) == []
    (other / "tables/a.csv").write_text("n\n2\n")
    (one / "only_here.csv").write_text("x")
    assert differing_files(published_digests(one), published_digests(other)) == [
        "only_here.csv",
        "tables/a.csv",
    ]


def test_a_failed_size_is_a_row_with_its_logs_and_the_next_size_runs(tmp_path, monkeypatch):
    """`make bench`: a run that fails keeps its logs and a row of the summary; the sizes after
    it still run; the command exits 1."""
    import cohort.workflow.benchmark as benchmark
    from cohort.workflow.cli import main

    def fake_size(n, root, workdir, **kwargs):
        if n == 5:
            (workdir / "n5" / "logs").mkdir(parents=True)
            (workdir / "n5" / "logs" / "clean.log").write_text("the reason")
            raise RuntimeError(f"snakemake failed in {workdir / 'n5'}:\nWorkflowError")
        return pd.DataFrame([{"cohort": "generated", "patients": n, "step": "rule clean", "seconds": 1.0}])  # fmt: skip

    monkeypatch.setattr(benchmark, "benchmark_size", fake_size)
    out = tmp_path / "bench" / "summary.csv"
    argv = ["bench", "--sizes", "5", "7", "--default-study-runs", "0", "--out", str(out)]
    assert main(argv) == 1
    summary = pd.read_csv(out)
    failed = summary[summary["step"] == "run failed"]
    assert list(failed["cohort"]) == ["n5"] and "snakemake failed" in failed["note"].iat[0]
    assert (tmp_path / "bench" / "failed" / "n5" / "clean.log").read_text() == "the reason"
    assert 7 in set(summary["patients"])


def test_a_job_is_known_by_the_script_snakemake_runs():
    script = "/w/.snakemake/scripts/tmpab_12x.predictors.py"
    assert job_script(["/venv/bin/python", script]) == "predictors"
    assert job_script(["/venv/bin/python", "/w/.snakemake/scripts/tmp9.clean_shard.py"]) == (
        "clean_shard"
    )
    assert job_script(["/venv/bin/snakemake", "--cores", "2"]) is None
    assert job_script(["/venv/bin/python", "/w/scripts/predictors.py"]) is None


def test_a_rule_reports_the_larger_of_snakemake_s_and_the_harness_s_memory_peak(tmp_path):
    folder = tmp_path / "benchmarks" / STUDY
    folder.mkdir(parents=True)
    header = "s\th:m:s\tmax_rss\tmax_vms\n"
    for rule, seconds, rss in [
        ("responders", 36.0, 2900.0),  # Snakemake sampled it every 30 s after its first 30 s
        ("impute_part0", 190.0, 2400.0),
        ("clean", 1.0, 130.0),
        ("clean_shard_1", 12.0, 900.0),
        ("baseline", 0.5, "NA"),
        ("outcomes", 0.6, "NA"),  # ended before Snakemake's first sample, not before ours
    ]:
        (folder / f"{rule}.tsv").write_text(header + f"{seconds}\t0:00:01\t{rss}\t1.0\n")
    sampled = {"responders": 5400.0, "impute": 2600.0, "clean": 120.0, "clean_shard": 950.0, "outcomes": 210.0}  # fmt: skip
    rows = {r["step"]: r for r in _rule_rows(tmp_path, {"patients": 1}, sampled)}
    assert rows["rule responders"]["peak_memory_mb"] == 5400.0
    assert rows["rule impute_part0"]["peak_memory_mb"] == 2600.0  # a wildcard rule: its script
    assert rows["rule clean"]["peak_memory_mb"] == 130.0  # Snakemake's sample the larger
    assert rows["rule clean_shard_1"]["peak_memory_mb"] == 950.0  # not rule clean's script
    assert pd.isna(rows["rule baseline"]["peak_memory_mb"])  # neither sampled it
    assert rows["rule outcomes"]["peak_memory_mb"] == 210.0
    assert rows["rule responders"]["seconds"] == 36.0
