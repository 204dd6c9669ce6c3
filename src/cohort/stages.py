"""One function per Snakemake rule: read the rule's inputs, call the pure functions of the
package, write the rule's outputs. Scripts in scripts/ only pass snakemake's input, output and
params to these."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from cohort.cleaning import clean_extract, read_extract, unaccounted_rows
from cohort.contract import load_codebook, load_contract
from cohort.derivations import derive_tables, patient_flow
from cohort.figures import flow_diagram, save_figure
from cohort.outputs import table_notes, write_csv
from cohort.tables import baseline_markdown, baseline_table, baseline_vs_paper

log = logging.getLogger(__name__)


def clean_stage(
    extract_dir: str, contract_path: str, settings: dict[str, Any], out: dict[str, str]
) -> None:
    """Rule `clean`: raw extract -> typed tables, cleaning log, derived patient table, flow."""
    contract = load_contract(contract_path, settings)
    raw = read_extract(extract_dir, contract)
    for name, df in raw.items():
        log.info("read %s: %d rows, %d columns", name, len(df), df.shape[1] - 1)
    cleaned = clean_extract(raw, contract, settings)
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
    patients, sessions, assessments = derive_tables(cleaned.tables, settings, codes)
    flow = patient_flow(patients, settings, has_sessions=sessions is not None)
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
        settings,
        "Flow of patients from the raw extract to the analysis set; "
        "assessed = at least one outcome measured at that occasion.",
    )
    write_csv(flow, out["flow"], notes)
    save_figure(flow_diagram(flow, " ".join(notes)), out["flow_figure"])


def baseline_stage(patients_path: str, settings: dict[str, Any], out: dict[str, str]) -> None:
    """Rule `baseline`: Table 2 of the paper and its comparison with the published figures."""
    patients = pd.read_parquet(patients_path)
    analysis = patients[patients["analysis_set"]].reset_index(drop=True)
    log.info("baseline: analysis set n = %d", len(analysis))
    table = baseline_table(analysis, settings["baseline"])
    notes = table_notes(
        settings,
        f"N = {len(analysis)} (analysis set). n (%) of valid values; valid n given where below N. "
        "Quartiles by linear interpolation (Hyndman-Fan type 7); SD with n - 1.",
    )
    write_csv(table, out["table"], notes)
    Path(out["markdown"]).write_text(
        baseline_markdown(table, "Baseline characteristics (Table 2)", notes), encoding="utf-8"
    )
    write_csv(
        baseline_vs_paper(table, settings["baseline"]),
        out["vs_paper"],
        table_notes(settings, "paper: Trulsson Schouenborg et al. 2021, Table 2 (N = 274)."),
    )
