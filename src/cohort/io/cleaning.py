"""Read the raw extract and clean it against the data contract, logging every action.

File-level faults stop the run (ContractError). Value-level faults set the value missing, row-level
faults drop the row; each gets one row in the cleaning log (table, patient_id, source_row, column,
value, rule, action, detail). `source_row` is the line in the file (header = line 1; for .xlsx the
sheet row), so a reviewer can open the file at that line. Invariant: every raw row is either in a
cleaned table (with its source_row) or logged with action `dropped_row`.

Every check works on whole columns, and parsing works on the distinct values of a column (a million
rows hold a few thousand distinct dates), so cleaning stays linear and fast.
"""

from __future__ import annotations

import logging
from datetime import datetime

import numpy as np
import pandas as pd

from cohort.core.frames import is_in
from cohort.core.settings import CleaningSettings
from cohort.io.cleaning_log import DROPPED, MISSING, CleanedExtract, CleaningLog
from cohort.io.contract import Column, Contract, Table
from cohort.io.parsing import (
    DATE_RANGE,
    _parse_category,
    _parse_code_list,
    _parse_date,
    _parse_number,
)

log = logging.getLogger(__name__)


# --- Cleaning one table --------------------------------------------------------------------------
def _blank_missing_codes(
    s: pd.Series, col: Column, name: str, ids: pd.DataFrame, clog: CleaningLog
) -> pd.Series:
    """Values the contract declares as missing-value codes (`missing_codes`: 9, 999, *) become
    blank, logged as `missing_code` (an answer not given, not a data error). A numeric column
    matches them by value too (9.0 for 9)."""
    codes = set(col.missing_codes)
    hit = s.isin(codes)
    if col.type in ("integer", "number"):
        numeric_codes = pd.to_numeric(pd.Series(sorted(codes)), errors="coerce").dropna()
        values = pd.to_numeric(s.str.replace(",", ".", regex=False), errors="coerce")
        hit |= values.isin(set(numeric_codes)) & ~hit
    clog.add_cells(
        name,
        ids,
        hit,
        col.name,
        s,
        "missing_code",
        detail="declared missing-value code (contract missing_codes)",
    )
    return s.mask(hit, MISSING)


def _contract_columns(raw: pd.DataFrame, table: Table, clog: CleaningLog) -> pd.DataFrame:
    """The file's columns as the contract declares them: formula cells without a value noted,
    columns not in the contract dropped, absent optional columns added (all missing)."""
    name = table.name
    df = raw.copy()
    for row, column in raw.attrs.get("formulas_without_value", []):
        clog.add_note(
            name,
            column,
            "formula_without_value",
            "set_missing",
            f"sheet row {row}: a formula cell without a stored result reads as blank; "
            "open and save the workbook in Excel to store it",
        )
    for extra in [c for c in df.columns if c != "source_row" and c not in table.columns]:
        clog.add_note(name, extra, "unknown_column", "column_ignored", "not in the data contract")
        df = df.drop(columns=extra)
    for col in table.columns.values():
        if col.name not in df.columns:
            clog.add_note(
                name,
                col.name,
                "missing_optional_column",
                "column_added_missing",
                "optional column absent from the file; all values missing",
            )
            df[col.name] = MISSING
    columns = list(table.columns)
    df = df[["source_row", *columns]]

    return df


def _drop_blank_and_duplicate_rows(
    df: pd.DataFrame, table: Table, clog: CleaningLog
) -> pd.DataFrame:
    """Whitespace stripped; rows with every cell blank and exact duplicates dropped (logged)."""
    name, columns = table.name, list(table.columns)
    ids = df[[c for c in ("source_row", "patient_id") if c in df.columns]]  # what a log row needs
    stripped = {c: df[c].str.strip() for c in columns}
    blank = pd.Series(
        np.logical_and.reduce([(stripped[c] == MISSING).to_numpy(dtype=bool) for c in columns]),
        index=df.index,
    )
    clog.add(name, ids[blank], "", "", "empty_row", DROPPED, "every cell blank")
    for c in columns:
        changed = (stripped[c] != df[c]) & ~blank
        if changed.any():
            clog.add(
                name,
                ids[changed],
                c,
                df[c][changed],
                "whitespace_or_case",
                "normalized",
                "whitespace removed",
            )
    df = pd.DataFrame({"source_row": df["source_row"], **stripped})[~blank]
    repeated = df.duplicated(subset=columns, keep=False)  # one pass over the whole table
    dup = pd.Series(False, index=df.index)
    if repeated.any():
        involved = df[repeated]  # only these need a group
        dup[involved.index] = involved.duplicated(subset=columns, keep="first")
        first = involved.groupby(columns, sort=False, dropna=False)["source_row"].transform("min")
        clog.add(
            name,
            df[dup],
            "",
            "",
            "exact_duplicate",
            DROPPED,
            "same as row " + first[dup].astype(str),
        )
        df = df[~dup]

    return df


def _typed_columns(
    df: pd.DataFrame,
    table: Table,
    clog: CleaningLog,
    date_formats: list[str],
    date_range: tuple[datetime, datetime],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The table with its declared missing-value codes blanked, and each column parsed to its
    type; a 0 recorded for a measure not taken set missing (logged)."""
    name = table.name
    ids = df[[c for c in ("source_row", "patient_id") if c in df.columns]]  # what a log row needs
    for col in table.columns.values():
        if col.missing_codes:
            df[col.name] = _blank_missing_codes(df[col.name], col, name, ids, clog)
    out = pd.DataFrame({"source_row": df["source_row"].to_numpy()}, index=df.index)
    for col in table.columns.values():
        s = df[col.name]
        if col.type in ("integer", "number"):
            out[col.name] = _parse_number(s, col, name, ids, clog)
        elif col.type == "date":
            out[col.name] = _parse_date(s, col, name, ids, clog, date_formats, date_range)
        elif col.type == "category":
            out[col.name] = _parse_category(s, col, name, ids, clog)
        elif col.type == "code_list":
            out[col.name] = _parse_code_list(s, col, name, ids, clog)
        else:  # id, text
            out[col.name] = s.astype("string").replace(MISSING, pd.NA)
    for col in table.columns.values():
        if col.zero_missing_with:  # a 0 recorded for a measure that was not taken at all
            other = col.zero_missing_with
            zero = (out[col.name] == 0).fillna(False) & out[other].isna()
            clog.add_cells(
                name,
                ids,
                zero,
                col.name,
                df[col.name],
                "zero_where_missing",
                detail=f"0 recorded where {other} is missing: not measured",
            )
            out.loc[zero, col.name] = np.nan
    return df, out


def clean_table(
    raw: pd.DataFrame,
    table: Table,
    clog: CleaningLog,
    date_formats: list[str],
    date_range: tuple[datetime, datetime] = DATE_RANGE,
) -> pd.DataFrame:
    """Normalize, de-duplicate and type one raw table; every action goes to `clog`."""
    df = _contract_columns(raw, table, clog)
    df = _drop_blank_and_duplicate_rows(df, table, clog)
    df, out = _typed_columns(df, table, clog, date_formats, date_range)
    name = table.name
    for col in table.columns.values():
        if col.not_null:  # blank, or set missing above: the row cannot be used
            empty = out[col.name].isna()
            clog.add(
                name,
                df[empty],
                col.name,
                df[col.name][empty],
                "missing_key",
                DROPPED,
                f"{col.name} is blank or invalid",
            )
            out = out[~empty]
            df = df[~empty]
    if table.key:
        out = _merge_key_duplicates(out, table, clog)
    return out.reset_index(drop=True)


def _joined_distinct(rows: pd.DataFrame, key: list[str], column: str, keys: pd.Index) -> pd.Series:
    """The distinct values of `column` per key among `keys`, sorted and joined by ' | ' (what
    the log shows for a conflict); only the conflicting groups reach Python."""
    index = pd.MultiIndex.from_frame(rows[key]) if len(key) > 1 else pd.Index(rows[key[0]])
    v = rows.loc[index.isin(keys), [*key, column]].dropna(subset=[column])
    v = v.assign(**{column: v[column].astype(str)}).drop_duplicates().sort_values([*key, column])
    return v.groupby(key, sort=False, observed=True)[column].agg(" | ".join)


def _merge_key_duplicates(df: pd.DataFrame, table: Table, clog: CleaningLog) -> pd.DataFrame:
    """Rows sharing a key but differing elsewhere are merged into the first: values that agree (or
    are present in one row only) are kept, values that disagree become missing; all logged."""
    key = list(table.key)
    dup = df.duplicated(subset=key, keep=False)
    if not dup.any():
        return df
    group = df[dup].groupby(key, sort=False, observed=True, dropna=False)
    kept_row = group["source_row"].transform("min")
    later = df[dup][df[dup]["source_row"] != kept_row]
    clog.add(
        table.name,
        later,
        "",
        "",
        "conflicting_duplicate",
        DROPPED,
        "same " + "+".join(key) + "; merged into row " + kept_row[later.index].astype(str),
    )
    value_cols = [c for c in df.columns if c not in key and c != "source_row"]
    merged = group[value_cols].first()
    merged["source_row"] = group["source_row"].min()
    for c in value_cols:
        distinct = group[c].nunique(dropna=True)
        conflict = distinct[distinct > 1].index
        if len(conflict) == 0:
            continue
        values = _joined_distinct(df[dup], key, c, conflict)
        rows = merged.loc[conflict].reset_index()
        clog.add(
            table.name,
            rows,
            c,
            values.loc[conflict].reset_index(drop=True).set_axis(rows.index),
            "conflicting_duplicate",
            "set_missing",
            "values disagree between duplicate rows",
        )
        merged.loc[conflict, c] = pd.NA if not pd.api.types.is_float_dtype(merged[c]) else np.nan
    merged = merged.reset_index()
    for c in df.columns:  # keep the column dtypes of the unmerged rows
        merged[c] = merged[c].astype(df[c].dtype)
    out = pd.concat([df[~dup], merged[df.columns]])
    return out.sort_values("source_row", kind="stable")


# --- Cross-table checks --------------------------------------------------------------------------
def _drop_unknown_patients(
    df: pd.DataFrame, name: str, known: pd.Series, clog: CleaningLog
) -> pd.DataFrame:
    unknown = ~is_in(df["patient_id"], known)
    clog.add(
        name,
        df[unknown],
        "patient_id",
        df["patient_id"][unknown],
        "unknown_patient",
        DROPPED,
        "patient_id not in patients",
    )
    return df[~unknown].reset_index(drop=True)


def _check_occasion_order(
    assessments: pd.DataFrame, occasions: list[str], clog: CleaningLog
) -> pd.DataFrame:
    """An occasion dated before an earlier occasion of the same patient: its date becomes missing
    (which of the two dates is wrong cannot be known; the later occasion's is the one set aside)."""
    if assessments.empty or len(occasions) < 2:
        return assessments
    occasion = assessments["occasion"].astype(str)
    wide = assessments.assign(occasion=occasion).pivot(
        index="patient_id", columns="occasion", values="assessed_on"
    )
    wide = wide.reindex(columns=occasions).apply(pd.to_datetime)
    # Latest date among each patient's earlier occasions (ns since epoch; NaN where none).
    dates = wide.to_numpy("datetime64[ns]")
    ns = np.where(np.isnat(dates), np.nan, dates.astype("int64").astype(float))
    earlier = np.full_like(ns, np.nan)
    earlier[:, 1:] = np.fmax.accumulate(ns, axis=1)[:, :-1]
    rows = wide.index.get_indexer(assessments["patient_id"])
    cols = pd.Index(occasions).get_indexer(occasion)
    latest_earlier = pd.Series(pd.to_datetime(earlier[rows, cols]), index=assessments.index)
    bad = assessments["assessed_on"] < latest_earlier
    if not bad.any():
        return assessments
    clog.add(
        "assessments",
        assessments[bad],
        "assessed_on",
        assessments["assessed_on"][bad].dt.strftime("%Y-%m-%d"),
        "date_order",
        "set_missing",
        "dated before an earlier occasion (" + latest_earlier[bad].dt.strftime("%Y-%m-%d") + ")",
    )
    assessments = assessments.copy()
    assessments.loc[bad, "assessed_on"] = pd.NaT
    return assessments


def _flag_sessions_after_last_occasion(
    sessions: pd.DataFrame, assessments: pd.DataFrame, last: str, clog: CleaningLog
) -> None:
    """A session dated after the patient's last assessment (e.g. the 1-year follow-up) is kept,
    as it may be a new episode of care, but flagged in the log for a reviewer."""
    dated = assessments[
        (assessments["occasion"].astype(str) == last) & assessments["assessed_on"].notna()
    ]
    if sessions.empty or dated.empty:
        return
    last_date = sessions["patient_id"].map(dated.set_index("patient_id")["assessed_on"])
    after = (sessions["session_date"] > last_date).fillna(False)
    clog.add_cells(
        "sessions",
        sessions,
        after,
        "session_date",
        sessions["session_date"].where(after).dt.strftime("%Y-%m-%d"),  # only flagged rows
        "session_after_last_occasion",
        "flagged",
        f"after the patient's {last} assessment; kept",
    )


def clean_extract(
    raw: dict[str, pd.DataFrame],
    contract: Contract,
    occasions: list[str],
    settings: CleaningSettings,
) -> CleanedExtract:
    """Clean every table, then the cross-table rules (unknown patients, occasion date order),
    with config `cleaning`; `occasions` in time order."""
    clog = CleaningLog()
    formats = list(settings.date_formats)
    date_range = tuple(datetime.strptime(d, "%Y-%m-%d") for d in settings.date_range)
    tables = {
        name: clean_table(df, contract.table(name), clog, formats, date_range)
        for name, df in raw.items()
    }
    known = tables["patients"]["patient_id"]
    for name, table in contract.tables.items():
        if name in tables and any(c.references == "patients" for c in table.columns.values()):
            tables[name] = _drop_unknown_patients(tables[name], name, known, clog)
    dated = "assessed_on" in tables["assessments"].columns
    if settings.check_occasion_order and dated:
        tables["assessments"] = _check_occasion_order(tables["assessments"], occasions, clog)
    elif settings.check_occasion_order:
        clog.add_note(
            "assessments",
            "assessed_on",
            "no_assessment_dates",
            "not_checked",
            "the contract declares no assessment dates: the order of occasions is not checked",
        )
    if "sessions" in tables and len(occasions) > 1 and dated:
        _flag_sessions_after_last_occasion(
            tables["sessions"], tables["assessments"], occasions[-1], clog
        )
    cleaning_log = clog.frame()
    for name, df in tables.items():
        log.info(
            "%s: %d raw rows -> %d clean rows; %d log rows",
            name,
            len(raw[name]),
            len(df),
            int((cleaning_log["table"] == name).sum()),
        )
    return CleanedExtract(
        tables=tables,
        log=cleaning_log,
        raw_rows={n: len(d) for n, d in raw.items()},
        date_formats=clog.date_format_counts(),
    )


def unaccounted_rows(raw: dict[str, pd.DataFrame], cleaned: CleanedExtract) -> dict[str, set[int]]:
    """Raw rows neither in a cleaned table nor logged as dropped (the invariant says: none), and
    rows that are both, or either without a raw row (also violations). Counted with arrays:
    every raw row must appear exactly once among kept + dropped."""
    problems = {}
    dropped = cleaned.log[cleaned.log["action"] == DROPPED]
    for name, df in raw.items():
        raw_rows = df["source_row"].to_numpy(dtype=np.int64)
        accounted = np.concatenate(
            [
                cleaned.tables[name]["source_row"].to_numpy(dtype=np.int64),
                dropped.loc[dropped["table"] == name, "source_row"].to_numpy(dtype=np.int64),
            ]
        )
        rows, counts = np.unique(np.concatenate([raw_rows, accounted]), return_counts=True)
        in_raw = np.isin(rows, raw_rows)
        # each raw row: once in raw + exactly once among kept or dropped = 2
        bad = rows[(in_raw & (counts != 2)) | ~in_raw]
        if len(bad):
            problems[name] = {int(r) for r in bad}
    return problems
