"""Cleaning in patient shards (config cleaning.shards, cohort.io.sharding) gives the tables, log
and flow one job gives: the same frames for any number of shards, on extracts with every fault
class, on a real trial's extract, with a note that only the whole table can make, and in the
workflow the same bytes as rule clean in one job."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cohort.core.config import merge_study, read_yaml
from cohort.core.errors import ContractError
from cohort.io.contract import load_contract
from cohort.io.reading import read_extract
from cohort.io.sharding import gather_log, gather_table, patient_shard, split_extract
from cohort.workflow.stages.clean import (
    clean_and_derive,
    read_raw_shard,
    write_raw_shard,
)

from .conftest import ROOT, make_extract, run_snakemake

TRIAL = ROOT.parent / "shared/external/vickers_acupuncture_headache/acupuncture_trial_data.csv"


def one_job(raw, contract, config):
    cleaned, patients, sessions, assessments = clean_and_derive(raw, contract, config)
    return patients, sessions, assessments, cleaned.log


def sharded(raw, contract, config, shards, tmp_path=None):
    """Split, clean each shard apart (through the parquet files rule split_extract writes when
    `tmp_path` is given), gather."""
    parts = split_extract(raw, shards)
    if tmp_path is not None:
        for i, part in enumerate(parts):
            for name, df in part.items():
                path = tmp_path / f"{i}_{name}.parquet"
                write_raw_shard(df, str(path))
                parts[i][name] = read_raw_shard(str(path))
    done = [clean_and_derive(part, contract, config) for part in parts]
    sessions = [d[2] for d in done]
    return (
        gather_table([d[1] for d in done]),
        None if sessions[0] is None else gather_table(sessions),
        gather_table([d[3] for d in done]),
        gather_log(
            [d[0].log for d in done],
            [d[0].date_formats for d in done],
            config["cleaning"]["date_formats"],
        ),
    )


def assert_same(got, expected):
    for g, e in zip(got, expected, strict=True):
        if e is None:
            assert g is None
        else:
            pd.testing.assert_frame_equal(g, e, check_exact=True)


@pytest.mark.parametrize("shards", [2, 3, 7])
def test_any_number_of_shards_gives_one_jobs_tables_and_log(
    tmp_path, contract, config, codebook, shards
):
    """Every fault class at 3% (duplicates of both kinds, unknown patients, occasion dates out
    of order, ...)."""
    folder = make_extract(tmp_path / "raw", contract, codebook, n=150, seed=11, fault_rate=0.03)
    raw = read_extract(folder, contract)
    expected = one_job(raw, contract, config)
    assert len(expected[3]) > 50  # the log holds every kind of fault, so the test has teeth
    assert {"exact_duplicate", "conflicting_duplicate", "unknown_patient", "date_order"} <= set(
        expected[3]["rule"]
    )
    assert_same(sharded(raw, contract, config, shards, tmp_path if shards == 3 else None), expected)


def test_shards_without_patients_add_nothing(tmp_path, contract, config, codebook):
    """30 shards for 12 patients: most shards are empty, whose columns' types differ."""
    raw = read_extract(make_extract(tmp_path, contract, codebook, n=12, seed=2), contract)
    assert sum(len(part["patients"]) == 0 for part in split_extract(raw, 30)) >= 15
    assert_same(sharded(raw, contract, config, 30), one_job(raw, contract, config))


@pytest.mark.parametrize("table", ["sessions", "assessments"])
def test_a_shard_whose_patients_have_no_rows_in_a_table(
    tmp_path, contract, config, codebook, table
):
    """The first shard's patients have no sessions (or no assessments) at all: its derived
    columns come from empty groups, and the gathered tables are still one job's."""
    raw = read_extract(make_extract(tmp_path, contract, codebook, n=40, seed=4), contract)
    rows = raw[table]
    raw[table] = rows[patient_shard(rows["patient_id"], 2) == 1].reset_index(drop=True)
    parts = split_extract(raw, 2)
    assert len(parts[0]["patients"]) > 0 and len(parts[0][table]) == 0
    assert_same(sharded(raw, contract, config, 2), one_job(raw, contract, config))


def test_a_note_only_the_whole_table_can_make(tmp_path, contract, config, codebook):
    """One shard reads its assessment dates in two formats, the other in one, the whole table in
    two: the gathered log has the one note of mixed date formats, with the whole table's counts
    (not the first shard's)."""
    folder = make_extract(tmp_path, contract, codebook, n=80, seed=3)
    raw = read_extract(folder, contract)
    a = raw["assessments"]
    in_first = patient_shard(a["patient_id"], 2) == 0
    dates = pd.to_datetime(a["assessed_on"], format="%Y-%m-%d", errors="coerce")
    odd = np.arange(len(a)) % 2 == 1
    rewrite = (~in_first | odd) & dates.notna().to_numpy()
    a.loc[rewrite, "assessed_on"] = dates[rewrite].dt.strftime("%d/%m/%Y")
    expected = one_job(raw, contract, config)
    note = expected[3][expected[3]["rule"] == "mixed_date_formats"]
    assert len(note) == 1  # (a rewritten row that cleaning drops, e.g. a duplicate, is not read)
    assert re.match(r"\d+ as %d/%m/%Y; \d+ as %Y-%m-%d\. Day and month", note["detail"].iat[0])
    notes = [  # the shards' own notes: partial counts in the first, none in the second
        one_job(part, contract, config)[3].query("rule == 'mixed_date_formats'")["detail"]
        for part in split_extract(raw, 2)
    ]
    assert len(notes[0]) == 1 and len(notes[1]) == 0
    assert notes[0].iat[0] != note["detail"].iat[0]
    assert_same(sharded(raw, contract, config, 2), expected)


def test_a_workbooks_formula_notes_are_kept_once(tmp_path, contract, config, codebook):
    """A formula cell without a value is a table-level note that every shard makes; the
    gathered log keeps it once, as one job does, also through the shard files."""
    folder = make_extract(tmp_path / "raw", contract, codebook, n=40, seed=5)
    raw = read_extract(folder, contract)
    raw["patients"].attrs["formulas_without_value"] = [(3, "age"), (7, "bmi")]
    expected = one_job(raw, contract, config)
    assert (expected[3]["rule"] == "formula_without_value").sum() == 2
    assert_same(sharded(raw, contract, config, 3, tmp_path), expected)


def test_the_same_patient_lands_in_one_shard_whatever_its_whitespace():
    ids = pd.Series([f"P{i:05d}" for i in range(2000)])
    shard = patient_shard(ids, 4)
    assert np.array_equal(shard, patient_shard(" " + ids + "  ", 4))
    assert set(np.bincount(shard)) and np.bincount(shard, minlength=4).min() > 400  # spread


def test_a_table_without_patient_id_cannot_be_sharded():
    raw = {"sites": pd.DataFrame({"source_row": [2], "site": ["a"]})}
    with pytest.raises(ContractError, match="sites has no patient_id column.*shards: 1"):
        split_extract(raw, 2)


@pytest.mark.skipif(not TRIAL.is_file(), reason=f"the external trial is not here ({TRIAL})")
def test_a_real_trials_extract_sharded(tmp_path):
    """The acupuncture trial's extract (mixed date formats, zeros where a measure is missing)."""
    from cohort.io.importers.vickers2006 import import_trial, write_extract

    config = merge_study(
        read_yaml(ROOT / "config/config.yaml"),
        read_yaml(ROOT / "config/studies/acupuncture_headache.yaml"),
    )
    contract = load_contract(ROOT / config["extract"]["contract"], config)
    write_extract(import_trial(TRIAL), tmp_path)
    raw = read_extract(tmp_path, contract)
    expected = one_job(raw, contract, config)
    assert (expected[3]["rule"] == "mixed_date_formats").sum() == 1
    assert_same(sharded(raw, contract, config, 4), expected)


@pytest.mark.workflow
def test_the_sharded_rules_write_rule_cleans_bytes(default_run, tmp_path):
    """The workflow with cleaning.shards: 3 (rules split_extract, clean_shard x 3, clean) writes
    the same bytes as the default run's rule clean; every later rule reads only these files."""
    work = tmp_path / "wf"
    shutil.copytree(default_run, work, symlinks=True, ignore=shutil.ignore_patterns(".snakemake"))
    study = tmp_path / "sharded.yaml"
    study.write_text("cleaning:\n  shards: 3\n")
    outputs = [
        "data/processed/patients.parquet",
        "data/processed/sessions.parquet",
        "data/processed/assessments.parquet",
        "data/processed/cleaning_log.csv",
        "data/processed/tables/flow.csv",
    ]
    for path in outputs:
        (work / path).unlink()
    result = run_snakemake(work, f"--configfile={study}", *outputs)
    assert result.returncode == 0, result.stderr
    for i in range(3):
        assert Path(work / f"logs/schouenborg2021/clean_shard{i}.log").is_file()
    for path in outputs:
        assert (work / path).read_bytes() == (default_run / path).read_bytes(), path
