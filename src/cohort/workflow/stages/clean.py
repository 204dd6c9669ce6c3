"""Rule clean: raw extract -> typed tables, cleaning log, derived patient table, flow."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from cohort.analysis.derivations import derive_tables, patient_flow
from cohort.core.errors import CohortError
from cohort.core.settings import Analysis, CleaningSettings
from cohort.io.cleaning import clean_extract, unaccounted_rows
from cohort.io.cleaning_log import CleanedExtract
from cohort.io.contract import Contract, load_codebook, load_contract
from cohort.io.outputs import table_notes, write_csv
from cohort.io.privacy import guard_identifiers
from cohort.io.reading import check_extract, read_extract

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


def clean_stage(
    extract_dir: str, contract_path: str, settings: dict[str, Any], out: dict[str, str]
) -> None:
    """Rule `clean`: raw extract -> typed tables, cleaning log, derived patient table, flow."""
    config = Analysis.from_config(settings)
    cleaning = CleaningSettings.from_config(settings["cleaning"])
    contract = load_contract(contract_path, settings)
    files = check_extract(extract_dir, contract)
    raw = read_extract(extract_dir, contract)
    for name, df in raw.items():
        log.info("read %s: %d rows, %d columns", files[name], len(df), df.shape[1] - 1)
    guard_identifiers(
        raw,
        {name: str(path) for name, path in files.items()},
        cleaning.allow_identifiers,
    )
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
    write_csv(cleaned.log, out["cleaning_log"])
    notes = table_notes(
        config.synthetic,
        "Flow of patients from the raw extract to the analysis set; "
        "assessed = at least one outcome measured at that occasion.",
    )
    write_csv(flow, out["flow"], notes)
