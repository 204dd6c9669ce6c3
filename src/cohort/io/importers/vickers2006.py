"""Acupuncture for chronic headache (Vickers et al. BMJ 2004;328:744; data: Vickers, Trials
2006;7:15): the trial's one-row-per-patient file to our three-file contract.

Packs 1, 2 and 5 (baseline, 3 and 12 months) become occasions; the digit suffix of a column is its
pack. Values are copied as text, unchanged: the file's known traps (headache frequency recorded
as 0 where the diary is missing; randomisation dates in two formats) are left for cleaning to find
and log. Sex is coded 0/1 without documentation; 1 (337 of 401) is taken to be female
(ASSUMPTION, SOURCE.md).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

PACKS = {"1": "baseline", "2": "month_3", "5": "month_12"}
SCORES = ("pk", "f", "pf", "rlp", "rle", "ef", "ewb", "sf", "p", "gen", "hc")
SEX = {"1": "F", "0": "M"}  # ASSUMPTION: undocumented coding, 1 is the majority
GROUP = {"1": "acupuncture", "0": "control"}
YES_NO = {"1": "yes", "0": "no"}


def import_trial(source: str | Path) -> dict[str, pd.DataFrame]:
    """patients and assessments tables (text) in the acupuncture study's contract."""
    raw = pd.read_csv(source, dtype=str, keep_default_na=False)
    patients = pd.DataFrame(
        {
            "patient_id": "A" + raw["id"],
            "sex": raw["sex"].map(SEX).fillna(raw["sex"]),
            "age": raw["age"],
            "included": "yes",
            "exclusion_reason": "",
            "group": raw["group"].map(GROUP).fillna(raw["group"]),
            "migraine": raw["migraine"].map(YES_NO).fillna(raw["migraine"]),
            "chronicity": raw["chronicity"],
            "date_randomized": raw["date_randomized"],
            "withdrawal_reason": raw["withdrawal_reason"],
        }
    )
    frames = []
    for pack, occasion in PACKS.items():
        frame = pd.DataFrame({"patient_id": patients["patient_id"], "occasion": occasion})
        for score in SCORES:
            frame[score] = raw[f"{score}{pack}"]
        # A pack with no score at all was not returned: no assessment row.
        frames.append(frame[(frame[list(SCORES)] != "").any(axis=1)])
    assessments = pd.concat(frames).sort_values(
        ["patient_id", "occasion"],
        kind="stable",
        key=lambda s: (
            s.map({o: i for i, o in enumerate(PACKS.values())}) if s.name == "occasion" else s
        ),
    )
    return {"patients": patients, "assessments": assessments.reset_index(drop=True)}


def write_extract(tables: dict[str, pd.DataFrame], out_dir: str | Path) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        df.to_csv(out / f"{name}.csv", index=False, lineterminator="\n")
