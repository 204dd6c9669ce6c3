"""Rule clean: raw extract -> typed tables, cleaning log, derived patient table, flow."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cohort.analysis.derivations import derive_tables, patient_flow
from cohort.core.errors import CohortError
from cohort.core.settings import Analysis, CleaningSettings
from cohort.io.cleaning import clean_extract, unaccounted_rows
from cohort.io.cleaning_log import CleanedExtract
from cohort.io.contract import Contract, load_codebook, load_contract
from cohort.io.outputs import read_parquet, table_notes, write_csv
from cohort.io.privacy import guard_identifiers
from cohort.io.reading import check_extract, read_extract
from cohort.io.sharding import gather_log, gather_table, split_extract

log = logging.getLogger(__name__)


def clean(
    raw: dict[str, pd.DataFrame], contract: Contract, settings: dict[str, Any]
) -> CleanedExtract:
    """`clean_extract` with the rule's config sections (occasions, cleaning)."""
    return clean_extract(
        raw,
        contract,
        [o["name"] for o in settings["occasions"]],
        CleaningSettings.from_config(settings["cleaning"]),
    )


def derive(
    tables: dict[str, pd.DataFrame], settings: dict[str, Any], codes: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame]:
    """`derive_tables` with the rule's config sections (outcomes, occasions, derived)."""
    config = Analysis.from_config(settings)
    return derive_tables(
        tables, config.outcomes, config.occasion_names, config.derived or {}, codes
    )


def read_guarded_extract(
    extract_dir: str, contract: Contract, settings: dict[str, Any]
) -> dict[str, pd.DataFrame]:
    """The raw extract's tables, read as text, once no column holds a direct identifier."""
    files = check_extract(extract_dir, contract)
    raw = read_extract(extract_dir, contract)
    for name, df in raw.items():
        log.info("read %s: %d rows, %d columns", files[name], len(df), df.shape[1] - 1)
    guard_identifiers(
        raw,
        {name: str(path) for name, path in files.items()},
        CleaningSettings.from_config(settings["cleaning"]).allow_identifiers,
    )
    return raw


def clean_and_derive(
    raw: dict[str, pd.DataFrame], contract: Contract, settings: dict[str, Any]
) -> tuple[CleanedExtract, pd.DataFrame, pd.DataFrame | None, pd.DataFrame]:
    """Cleaned extract (every raw row accounted for, checked), then the derived patient,
    session and assessment tables."""
    cleaned = clean(raw, contract, settings)
    problems = unaccounted_rows(raw, cleaned)
    if problems:  # the invariant: a bug, never a user fault
        raise AssertionError(f"raw rows neither kept nor logged: {problems}")
    for (rule, action), n in cleaned.log.groupby(["rule", "action"]).size().items():
        log.info("cleaning: %s -> %s: %d", rule, action, n)
    codes = (
        list(load_codebook(settings["interventions"]["codebook"]))
        if "interventions" in settings
        else []
    )
    patients, sessions, assessments = derive(cleaned.tables, settings, codes)
    return cleaned, patients, sessions, assessments


def write_clean_outputs(
    patients: pd.DataFrame,
    sessions: pd.DataFrame | None,
    assessments: pd.DataFrame,
    cleaning_log: pd.DataFrame,
    contract: Contract,
    settings: dict[str, Any],
    out: dict[str, str],
) -> None:
    """Rule `clean`'s outputs: the derived tables, the cleaning log and the flow of patients
    (stopping if no patient is in the analysis set)."""
    config = Analysis.from_config(settings)
    reason = contract.table("patients").columns.get("exclusion_reason")
    flow = patient_flow(
        patients,
        config.occasions,
        has_sessions=sessions is not None,
        reason_labels=(reason.labels or {c: c for c in reason.codes or ()})
        if reason and reason.type == "category"
        else None,
    )
    if not patients["analysis_set"].any():
        raise CohortError(
            "no patient is in the analysis set (included, with a session and a start assessment): "
            + "; ".join(f"{r['label']}: {r['n']}" for _, r in flow.iterrows())
        )
    log.info(
        "analysis set: %d of %d referred patients",
        int(patients["analysis_set"].sum()),
        len(patients),
    )
    Path(out["patients"]).parent.mkdir(parents=True, exist_ok=True)
    patients.to_parquet(out["patients"], index=False)
    (sessions if sessions is not None else pd.DataFrame()).to_parquet(out["sessions"], index=False)
    assessments.to_parquet(out["assessments"], index=False)
    write_csv(cleaning_log, out["cleaning_log"])
    notes = table_notes(
        config.synthetic,
        "Flow of patients from the raw extract to the analysis set; "
        "assessed = at least one outcome measured at that occasion.",
    )
    write_csv(flow, out["flow"], notes)


def clean_stage(
    extract_dir: str, contract_path: str, settings: dict[str, Any], out: dict[str, str]
) -> None:
    """Rule `clean`: raw extract -> typed tables, cleaning log, derived patient table, flow."""
    contract = load_contract(contract_path, settings)
    raw = read_guarded_extract(extract_dir, contract, settings)
    cleaned, patients, sessions, assessments = clean_and_derive(raw, contract, settings)
    write_clean_outputs(patients, sessions, assessments, cleaned.log, contract, settings, out)


# --- Patient shards (config cleaning.shards > 1; cohort.io.sharding) ----------------------------
def split_stage(
    extract_dir: str,
    contract_path: str,
    settings: dict[str, Any],
    shards: int,
    out: dict[str, list[str]],
) -> None:
    """Rule `split_extract`: the raw extract's rows by patient shard, as text with their file
    lines (`out`: table -> one file per shard)."""
    contract = load_contract(contract_path, settings)
    raw = read_guarded_extract(extract_dir, contract, settings)
    parts = split_extract(raw, shards)
    for name, paths in out.items():
        if len(paths) != shards:
            raise AssertionError(f"{name}: {len(paths)} shard files for {shards} shards")
        for i, path in enumerate(paths):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            write_raw_shard(parts[i][name], path)
        sizes = [len(p[name]) for p in parts]
        if sum(sizes) != len(raw[name]):
            raise AssertionError(f"{name}: {sum(sizes)} rows in shards of {len(raw[name])}")
        log.info(
            "%s: %d rows in %d shards (%d to %d)", name, sum(sizes), shards, min(sizes), max(sizes)
        )


def write_raw_shard(df: pd.DataFrame, path: str) -> None:
    """One shard of one raw table; a workbook's formula notes travel in the parquet metadata."""
    formulas = [list(f) for f in df.attrs.get("formulas_without_value", [])]
    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = {**(table.schema.metadata or {}), b"cohort_formulas": json.dumps(formulas).encode()}
    pq.write_table(table.replace_schema_metadata(meta), path)


def read_raw_shard(path: str) -> pd.DataFrame:
    """A shard written by write_raw_shard, as read_raw_table gives a table."""
    table = pq.read_table(path)
    df = table.to_pandas()
    formulas = json.loads((table.schema.metadata or {}).get(b"cohort_formulas", b"[]"))
    df.attrs = {"formulas_without_value": [tuple(f) for f in formulas]} if formulas else {}
    return df


def clean_shard_stage(
    raw_paths: dict[str, str], contract_path: str, settings: dict[str, Any], out: dict[str, str]
) -> None:
    """Rule `clean_shard`: one shard's raw rows cleaned and derived as rule clean does, with its
    log and its date-format counts for the gathering."""
    contract = load_contract(contract_path, settings)
    raw = {name: read_raw_shard(path) for name, path in raw_paths.items()}
    for name, df in raw.items():
        log.info("%s: %d raw rows in this shard", name, len(df))
    cleaned, patients, sessions, assessments = clean_and_derive(raw, contract, settings)
    Path(out["patients"]).parent.mkdir(parents=True, exist_ok=True)
    patients.to_parquet(out["patients"], index=False)
    (sessions if sessions is not None else pd.DataFrame()).to_parquet(out["sessions"], index=False)
    assessments.to_parquet(out["assessments"], index=False)
    cleaned.log.to_parquet(out["cleaning_log"], index=False)
    cleaned.date_formats.to_parquet(out["date_formats"], index=False)


def gather_stage(
    shards: dict[str, list[str]], contract_path: str, settings: dict[str, Any], out: dict[str, str]
) -> None:
    """Rule `clean` of a sharded study: the shards' tables and logs gathered into what one job
    writes (cohort.io.sharding), then the flow of patients."""
    contract = load_contract(contract_path, settings)
    tables = {
        name: gather_table([read_parquet(p) for p in shards[name]])
        for name in ("patients", "sessions", "assessments")
    }
    cleaning_log = gather_log(
        [read_parquet(p) for p in shards["cleaning_log"]],
        [read_parquet(p) for p in shards["date_formats"]],
        CleaningSettings.from_config(settings["cleaning"]).date_formats,
    )
    sessions = tables["sessions"] if len(tables["sessions"].columns) else None
    log.info("gathered %d shards: %d patients", len(shards["patients"]), len(tables["patients"]))
    write_clean_outputs(
        tables["patients"], sessions, tables["assessments"], cleaning_log, contract, settings, out
    )
