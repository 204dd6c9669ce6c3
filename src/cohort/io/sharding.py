"""Patient shards of a raw extract, cleaned apart and gathered into the tables one job makes.

A study too large for one job (10^7 patients on a cluster, config `cleaning.shards`) is cleaned
in shards: each raw row goes to the shard of its patient, a stable hash of the trimmed
patient_id, so every check that compares rows (exact and key duplicates, unknown patients, the
order of a patient's occasions, sessions after the last one) sees all the rows it compares, and
every derived variable is a patient's own. Gathering puts the rows back in file order and makes
the one note counted over a whole column (mixed date formats) from the shards' counts; tables
and log equal one job's (tests/test_sharding.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from cohort.core.errors import ContractError
from cohort.io.cleaning_log import (
    LOG_COLUMNS,
    MIXED_DATE_FORMATS,
    NOTE_ORDER,
    CleaningLog,
    mixed_formats_detail,
)
from cohort.io.contract import TABLE_ORDER


def patient_shard(ids: pd.Series, shards: int) -> np.ndarray:
    """The shard (0 .. shards - 1) of each raw patient_id: pandas' stable hash of the id with
    its surrounding whitespace removed (as the cleaning compares ids), so the same patient lands
    in the same shard in every table, on every machine and in every run."""
    codes, uniques = pd.factorize(ids, use_na_sentinel=False)  # a patient's rows share an id
    trimmed = pd.Series(uniques, dtype=str).str.strip()
    hashed = pd.util.hash_pandas_object(trimmed, index=False).to_numpy()
    return (hashed % np.uint64(shards)).astype(np.int64)[codes]


def split_extract(raw: dict[str, pd.DataFrame], shards: int) -> list[dict[str, pd.DataFrame]]:
    """Each shard's raw tables: the rows of its patients, in file order, with their source_row
    (a workbook's formula notes go to every shard: a gathered log keeps one copy)."""
    if shards < 1:
        raise ValueError(f"shards must be at least 1, got {shards}")
    out: list[dict[str, pd.DataFrame]] = [{} for _ in range(shards)]
    for name, df in raw.items():
        if "patient_id" not in df.columns:
            raise ContractError(
                f"table {name} has no patient_id column: it cannot be split into patient shards "
                "(set cleaning.shards: 1)"
            )
        shard = patient_shard(df["patient_id"], shards)
        order = np.argsort(shard, kind="stable")  # by shard, file order within: one pass
        grouped = df.take(order)
        ends = np.searchsorted(shard[order], np.arange(shards), side="right")
        for i in range(shards):
            part = grouped.iloc[(ends[i - 1] if i else 0) : ends[i]].reset_index(drop=True)
            part.attrs = dict(df.attrs)
            out[i][name] = part
    return out


def gather_table(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """One table from its shards: the rows in file order (source_row, as one job keeps them);
    a shard without rows adds none (its empty columns may have another dtype)."""
    rows = [p for p in parts if len(p)]
    if not rows:
        return parts[0].reset_index(drop=True)
    dtypes = rows[0].dtypes
    for part in rows[1:]:
        if not part.dtypes.equals(dtypes):
            raise AssertionError(f"shards differ in column types: {part.dtypes.to_dict()}")
    out = pd.concat(rows, ignore_index=True)
    return out.sort_values("source_row", kind="stable").reset_index(drop=True)


def _table_rank(tables: pd.Series) -> pd.Series:
    order = {name: i for i, name in enumerate(TABLE_ORDER)}
    return tables.map(order).fillna(len(order))


def gather_log(
    logs: Sequence[pd.DataFrame], date_formats: Sequence[pd.DataFrame], formats: Sequence[str]
) -> pd.DataFrame:
    """One cleaning log from the shards' logs, as one job writes it (CleaningLog.frame): per
    table, its notes, then its rows by source_row. Each shard makes the same table-level notes
    (checked) but for mixed date formats, which is made again from the summed counts."""
    logs = [log for log in logs if len(log)]  # an empty log's columns have another dtype
    if not logs:
        return CleaningLog().frame()
    notes = [log[log["source_row"].isna() & (log["rule"] != MIXED_DATE_FORMATS)] for log in logs]
    first = notes[0].reset_index(drop=True)
    for other in notes[1:]:  # a shard with no row of a table still makes its notes
        if other.astype(str).to_numpy().tolist() != first.astype(str).to_numpy().tolist():
            raise AssertionError("shards made different table-level notes")
    counts = pd.concat(date_formats, ignore_index=True) if date_formats else None
    mixed = CleaningLog()
    if counts is not None and len(counts):
        summed = counts.groupby(["table", "column", "format"], sort=False)["n"].sum()
        for (table, column), by_format in summed.groupby(level=[0, 1], sort=False):
            detail = mixed_formats_detail(by_format.droplevel([0, 1]).to_dict(), formats)
            if detail:
                mixed.add_note(table, column, MIXED_DATE_FORMATS, "flagged", detail)
    all_notes = pd.concat([first, *([mixed.frame()] if mixed.parts else [])], ignore_index=True)
    rank = {rule: i for i, rule in enumerate(NOTE_ORDER)}
    all_notes = all_notes.assign(
        _t=_table_rank(all_notes["table"]), _r=all_notes["rule"].map(rank).fillna(len(rank))
    ).sort_values(["_t", "_r"], kind="stable")
    rows = pd.concat([log[log["source_row"].notna()] for log in logs], ignore_index=True)
    rows = rows.assign(_t=_table_rank(rows["table"]))
    out = pd.concat([all_notes.drop(columns="_r"), rows], ignore_index=True)
    out["_row"] = out["source_row"].notna()  # a table's notes first, in the order above
    out = out.sort_values(["_t", "_row", "source_row"], kind="stable", na_position="first")
    out = out.drop(columns=["_t", "_row"]).reset_index(drop=True)
    out["source_row"] = out["source_row"].astype("Int64")
    return out[LOG_COLUMNS]
