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

import csv
import io
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cohort.contract import TABLE_ORDER, Column, Contract, Table
from cohort.errors import ContractError
from cohort.frames import is_in
from cohort.settings import CleaningSettings

log = logging.getLogger(__name__)

LOG_COLUMNS = ["table", "patient_id", "source_row", "column", "value", "rule", "action", "detail"]
MISSING = ""
DROPPED = "dropped_row"


@dataclass
class CleaningLog:
    """Collects cleaning actions as whole-column frames; `frame()` gives the sorted log."""

    parts: list[pd.DataFrame] = field(default_factory=list)

    def add(
        self,
        table: str,
        rows: pd.DataFrame,
        column: str,
        values: pd.Series | str,
        rule: str,
        action: str,
        detail: pd.Series | str = "",
    ) -> None:
        """Log one action for each row of `rows` (which carries patient_id and source_row)."""
        if len(rows) == 0:
            return
        patient = rows["patient_id"] if "patient_id" in rows else pd.Series("", index=rows.index)
        self.parts.append(
            pd.DataFrame(
                {
                    "table": table,
                    "patient_id": patient.astype("string").fillna("").to_numpy(),
                    "source_row": rows["source_row"].to_numpy(),
                    "column": column,
                    "value": _as_text(values, rows.index),
                    "rule": rule,
                    "action": action,
                    "detail": _as_text(detail, rows.index),
                }
            )
        )

    def add_cells(
        self,
        table: str,
        rows: pd.DataFrame,
        mask: pd.Series,
        column: str,
        raw: pd.Series,
        rule: str,
        action: str = "set_missing",
        detail: pd.Series | str = "",
    ) -> None:
        """Log one value-level action (by default: set missing) for each cell of `column` where
        `mask` holds."""
        if not mask.any():
            return
        self.add(table, rows[mask], column, raw[mask], rule, action, detail)

    def add_note(self, table: str, column: str, rule: str, action: str, detail: str) -> None:
        """A table-level action (an unknown or missing column): no row, no patient."""
        self.parts.append(
            pd.DataFrame(
                [
                    {
                        "table": table,
                        "patient_id": "",
                        "source_row": pd.NA,
                        "column": column,
                        "value": "",
                        "rule": rule,
                        "action": action,
                        "detail": detail,
                    }
                ]
            )
        )

    def frame(self) -> pd.DataFrame:
        if not self.parts:
            return pd.DataFrame({c: pd.Series(dtype="string") for c in LOG_COLUMNS}).astype(
                {"source_row": "Int64"}
            )
        out = pd.concat(self.parts, ignore_index=True)
        out["source_row"] = out["source_row"].astype("Int64")
        order = {name: i for i, name in enumerate(TABLE_ORDER)}
        out["_t"] = out["table"].map(order).fillna(len(order))
        out["_i"] = np.arange(len(out))
        out = out.sort_values(["_t", "source_row", "_i"], kind="stable", na_position="first")
        return out.drop(columns=["_t", "_i"]).reset_index(drop=True)


def _as_text(values: pd.Series | str, index: pd.Index) -> np.ndarray:
    if isinstance(values, str):
        return np.full(len(index), values, dtype=object)
    return values.reindex(index).astype("string").fillna("").to_numpy(dtype=object)


@dataclass(frozen=True)
class CleanedExtract:
    """Typed tables (each row keeps its source_row), the cleaning log and raw row counts."""

    tables: dict[str, pd.DataFrame]
    log: pd.DataFrame
    raw_rows: dict[str, int]


# --- Reading -------------------------------------------------------------------------------------
def find_table_file(extract_dir: str | Path, name: str) -> Path | None:
    """The file of table `name` in the extract folder: name.csv, else name.xlsx."""
    for suffix in (".csv", ".xlsx"):
        path = Path(extract_dir) / f"{name}{suffix}"
        if path.is_file():
            return path
    return None


def _decode(data: bytes, path: Path) -> str:
    """UTF-8 (with or without BOM); UTF-16 with its BOM (Excel's "Unicode text"), with a warning;
    else Windows-1252, the Swedish Excel default, with a warning. NUL bytes without a BOM: not
    a text file."""
    if not data.strip():
        raise ContractError(
            f"{path}: the file is empty; expected a header line with the column names."
        )
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        log.warning("%s: UTF-16 text; read as such. Save as UTF-8 to silence.", path)
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise ContractError(f"{path}: starts as UTF-16 but cannot be decoded as it") from None
    if b"\x00" in data[:4096]:
        raise ContractError(
            f"{path}: holds NUL bytes: UTF-16 without a byte-order mark, or not a text file. "
            "Save it as CSV UTF-8."
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        log.warning(
            "%s: not UTF-8; read as Windows-1252 (Latin-1). Save as UTF-8 to silence.", path
        )
        return data.decode("cp1252", errors="replace")


def _separator(header: str) -> str:
    """The delimiter of a CSV: whichever of comma, semicolon or tab the header holds most."""
    return max([",", ";", "\t"], key=header.count)


def workbook_sheet(path: Path, sheet: str | None) -> tuple[str, list[tuple[int, str]]]:
    """The sheet of a workbook to read, and its formula cells without a cached value (row,
    column letter): Excel stores a formula's last result, a file written by another program
    may not, and such a cell would read as blank. Every sheet is accounted for: with no sheet
    declared, exactly one may hold data."""
    import openpyxl  # only .xlsx extracts need it

    try:
        values = openpyxl.load_workbook(path, read_only=True, data_only=True)
        holding = [
            ws.title
            for ws in values.worksheets
            if any(v not in (None, "") for row in ws.iter_rows(values_only=True) for v in row)
        ]
        names = values.sheetnames
        if sheet is None and len(holding) > 1:
            raise ContractError(
                f"{path}: {len(holding)} sheets hold data ({', '.join(holding)}); declare the one "
                "to read as the table's `sheet:` in the contract (the others are not read)"
            )
        if sheet is not None and sheet not in names:
            raise ContractError(
                f"{path}: no sheet {sheet!r} (the contract's `sheet:`); sheets: {', '.join(names)}"
            )
        chosen = sheet or (holding[0] if holding else names[0])
        cached = values[chosen]
        formulas = openpyxl.load_workbook(path, read_only=True, data_only=False)[chosen]
        uncached = [
            (cell.row, cell.column_letter)
            for row, cached_row in zip(formulas.iter_rows(), cached.iter_rows(), strict=False)
            for cell, value in zip(row, cached_row, strict=False)
            if cell.data_type == "f" and value.value is None
        ]
    except ContractError:
        raise
    except Exception as exc:  # openpyxl raises many types for a damaged workbook
        raise ContractError(f"{path}: cannot be read as an Excel workbook ({exc}).") from None
    return chosen, uncached


def read_raw_table(
    path: str | Path, nrows: int | None = None, sheet: str | None = None
) -> pd.DataFrame:
    """Read one raw file as text (blank = ""), with `source_row` = line in the file (the sheet
    row of a workbook); a workbook's formula cells without a value are listed in
    `df.attrs["formulas_without_value"]` as (row, column name) for the cleaning log."""
    path = Path(path)
    uncached: list[tuple[int, str]] = []
    if path.suffix.lower() == ".xlsx":
        chosen, uncached = workbook_sheet(path, sheet)
        try:
            df = pd.read_excel(
                path,
                sheet_name=chosen,
                dtype=str,
                keep_default_na=False,
                na_filter=False,
                nrows=nrows,
            )
        except Exception as exc:  # openpyxl raises many types for a damaged workbook
            raise ContractError(f"{path}: cannot be read as an Excel workbook ({exc}).") from None
    else:
        text = _decode(path.read_bytes(), path)
        sep = _separator(text.splitlines()[0])
        try:  # (keyword arguments; duplicates pairs their shape with MixedFit(...) by chance)
            df = pd.read_csv(
                io.StringIO(text),
                sep=sep,
                dtype=str,
                keep_default_na=False,
                na_filter=False,
                skip_blank_lines=False,
                nrows=nrows,
            )
        except pd.errors.ParserError as exc:
            raise ContractError(
                f"{path}: cannot be parsed as a {sep!r}-separated file ({exc}). "
                "Check that every line has the same number of fields."
            ) from None
    df.columns = [str(c).strip().lower() for c in df.columns]
    df = df.astype(str)
    if path.suffix.lower() != ".xlsx" and '"' in text:
        lines = _record_lines(text, sep, len(df))  # quoted line breaks shift the file lines
    else:
        lines = np.arange(len(df), dtype=np.int64) + 2
    df.insert(0, "source_row", lines)
    if uncached:
        from openpyxl.utils import column_index_from_string

        names = list(df.columns)
        df.attrs["formulas_without_value"] = [
            (row, names[column_index_from_string(letter)])  # names[0] is source_row
            for row, letter in uncached
            if row > 1 and column_index_from_string(letter) < len(names)
        ]
    return df


def _record_lines(text: str, sep: str, n_records: int) -> np.ndarray:
    """The file line each record starts on (header = line 1): a quoted field may hold line
    breaks, and then record k is not on line k + 1. Blank lines count as records, as pandas
    reads them here (skip_blank_lines=False)."""
    reader = csv.reader(io.StringIO(text), delimiter=sep)
    next(reader, None)
    starts, previous_end = [], reader.line_num
    for _ in reader:
        starts.append(previous_end + 1)
        previous_end = reader.line_num
    if len(starts) != n_records:  # a disagreement between the two parsers: fall back
        return np.arange(n_records, dtype=np.int64) + 2
    return np.asarray(starts, dtype=np.int64)


def read_header(path: str | Path, sheet: str | None = None) -> list[str]:
    """Column names of a raw file, read from its first line (or sheet row) only."""
    path = Path(path)
    if path.suffix.lower() == ".xlsx":
        return [c for c in read_raw_table(path, 0, sheet).columns if c != "source_row"]
    with path.open("rb") as handle:
        header = _decode(handle.readline(), path).rstrip("\r\n")
    return [c.strip().strip('"').strip().lower() for c in header.split(_separator(header))]


COLUMN_NAME = re.compile(r"[a-z_][a-z0-9_ .()/-]{0,63}")


def _found(columns: list[str]) -> str:
    """The columns found, when they read as column names; else (a file without a header row,
    whose first line is data) their number only: a message never shows a value."""
    if all(COLUMN_NAME.fullmatch(c) for c in columns):
        return f"Found: {', '.join(columns)}."
    return (
        f"Its first line ({len(columns)} fields) does not read as column names: a file without "
        "a header row? (its values are not shown)."
    )


def check_extract(extract_dir: str | Path, contract: Contract) -> dict[str, Path]:
    """File-level checks (folder, files, required columns) from the headers alone, so that a run
    stops before any rule starts; returns the file of each table present."""
    extract_dir = Path(extract_dir)
    if not extract_dir.is_dir():
        raise ContractError(
            f"{extract_dir}: extract folder not found. Set extract.dir in the config."
        )
    problems, files = [], {}
    for name, table in contract.tables.items():
        path = find_table_file(extract_dir, name)
        if path is None:
            if table.required:
                problems.append(
                    f"{extract_dir / (name + '.csv')}: required file not found "
                    f"(expected {name}.csv or {name}.xlsx with columns {', '.join(table.required_columns)})."
                )
            continue
        try:
            columns = read_header(path, table.sheet)
        except ContractError as exc:
            problems.append(str(exc))
            continue
        missing = [c for c in table.required_columns if c not in columns]
        if missing:
            problems.append(
                f"{path}: required column(s) missing: {', '.join(missing)}. "
                f"{_found(columns)} Rename or add the columns (see data/raw/README.md)."
            )
        files[name] = path
    if problems:
        raise ContractError(
            "the raw extract does not meet the data contract:\n  " + "\n  ".join(problems)
        )
    return files


def read_extract(extract_dir: str | Path, contract: Contract) -> dict[str, pd.DataFrame]:
    """Read every table of the contract; stop with one message on any file-level fault."""
    return {
        name: read_raw_table(path, sheet=contract.table(name).sheet)
        for name, path in check_extract(extract_dir, contract).items()
    }


# --- Column parsers (on distinct values) ---------------------------------------------------------
def _on_uniques(s: pd.Series, parse: Callable[[pd.Index], Any]) -> np.ndarray:
    """Apply `parse` to the distinct values of `s` only, then spread back to every row."""
    codes, uniques = pd.factorize(s, sort=False)
    parsed = np.asarray(parse(pd.Index(uniques)))
    return parsed[codes]


def _parse_number(
    s: pd.Series, col: Column, name: str, rows: pd.DataFrame, clog: CleaningLog
) -> pd.Series:
    present = s != MISSING
    comma = present & s.str.fullmatch(r"[+-]?\d+,\d+")
    clog.add_cells(
        name,
        rows,
        comma,
        col.name,
        s,
        "decimal_comma",
        "normalized",
        "decimal comma read as point",
    )
    text = s.where(~comma, s.str.replace(",", ".", regex=False))
    values = pd.Series(
        _on_uniques(
            text,
            lambda u: pd.to_numeric(pd.Series(u, dtype=object), errors="coerce").to_numpy(float),
        ),
        index=s.index,
    )
    bad = present & ~np.isfinite(values)
    clog.add_cells(name, rows, bad, col.name, s, "unparseable_number", detail="not a finite number")
    values[bad] = np.nan
    ok = present & ~bad
    if col.type == "integer":
        frac = ok & (values % 1 != 0)
        clog.add_cells(
            name, rows, frac, col.name, s, "not_integer", detail="a whole number is required"
        )
        values[frac] = np.nan
        ok &= ~frac
    low = -np.inf if col.min is None else col.min
    high = np.inf if col.max is None else col.max
    out = ok & ((values < low) | (values > high))
    clog.add_cells(
        name, rows, out, col.name, s, "out_of_range", detail=f"allowed {low:g} to {high:g}"
    )
    values[out] = np.nan
    return values.astype("Int64") if col.type == "integer" else values


DATE_RANGE = (datetime(1900, 1, 1), datetime(2100, 12, 31))  # plausible dates of a clinical record


EXCEL_EPOCH = datetime(1899, 12, 30)  # day 0 of Excel's 1900 date system (Windows)
EXCEL_SERIAL = "excel_serial"  # date format token: a whole number of days since EXCEL_EPOCH


def _parse_one_date(
    text: str, formats: list[str], date_range: tuple[datetime, datetime] = DATE_RANGE
) -> tuple[datetime | None, str, str]:
    """(date, fault, format used) for one text; the first format that reads it wins."""
    if text == MISSING:
        return None, "", ""
    for fmt in formats:
        if fmt == EXCEL_SERIAL:
            if not text.isdigit() or not 10000 <= int(text) <= 80000:  # 1927-2119
                continue
            value = EXCEL_EPOCH + timedelta(days=int(text))
        else:
            try:
                value = datetime.strptime(text, fmt)
            except ValueError:
                continue
        in_range = date_range[0] <= value <= date_range[1]
        return (value, "", fmt) if in_range else (None, "out_of_range", fmt)
    return None, "unparseable_date", ""


def _parse_date(
    s: pd.Series,
    col: Column,
    name: str,
    rows: pd.DataFrame,
    clog: CleaningLog,
    formats: list[str],
    date_range: tuple[datetime, datetime] = DATE_RANGE,
) -> pd.Series:
    parsed = _on_uniques(
        s,
        lambda u: np.array(
            [_parse_one_date(v, formats, date_range) for v in u], dtype=object
        ).reshape(len(u), 3),
    )
    values = pd.Series(
        pd.to_datetime(pd.Series(parsed[:, 0], dtype=object)).to_numpy(), index=s.index
    )
    values = values.astype("datetime64[ns]")
    used = pd.Series(parsed[:, 2], index=s.index)
    counts = used[used != ""].value_counts()
    if len(counts) > 1:  # e.g. a dd/mm file opened in a US-locale spreadsheet
        clog.add_note(
            name,
            col.name,
            "mixed_date_formats",
            "flagged",
            "; ".join(f"{n} as {fmt}" for fmt, n in counts.items())
            + ". Day and month may be swapped in one form: check at the source.",
        )
    other = (used != "") & (used != formats[0]) & values.notna()
    clog.add_cells(
        name,
        rows,
        other,
        col.name,
        s,
        "date_format",
        "normalized",
        "read as " + used.str.replace(EXCEL_SERIAL, "Excel serial day number", regex=False),
    )
    fault = pd.Series(parsed[:, 1], index=s.index)
    bad = fault == "unparseable_date"
    clog.add_cells(
        name,
        rows,
        bad,
        col.name,
        s,
        "unparseable_date",
        detail=f"not a date in the format(s) {', '.join(formats)}",
    )
    out = fault == "out_of_range"
    clog.add_cells(
        name,
        rows,
        out,
        col.name,
        s,
        "out_of_range",
        detail=f"dates from {date_range[0]:%Y-%m-%d} to {date_range[1]:%Y-%m-%d} "
        "(config cleaning.date_range)",
    )
    return values


def _parse_category(
    s: pd.Series, col: Column, name: str, rows: pd.DataFrame, clog: CleaningLog
) -> pd.Series:
    canonical = {str(c).lower(): str(c) for c in col.codes or ()}
    canonical.update({label.lower(): code for code, label in (col.labels or {}).items()})
    mapped = pd.Series(
        _on_uniques(s, lambda u: [canonical.get(v.lower()) for v in u]), index=s.index
    )
    present = s != MISSING
    unknown = present & mapped.isna()
    if col.other_code is not None:  # free text: counted as the 'other' code, never published
        clog.add_cells(
            name,
            rows,
            unknown,
            col.name,
            s,
            "uncoded_text",
            f"recoded_{col.other_code}",
            f"not a code or label of the contract: counted as {col.other_code} (free text is never published)",
        )
        mapped = mapped.where(~unknown, col.other_code)
        unknown = unknown & False
    else:
        clog.add_cells(
            name,
            rows,
            unknown,
            col.name,
            s,
            "unknown_code",
            "set_missing",
            f"allowed: {', '.join(col.codes or ())}",
        )
    same_text = mapped.astype("string").str.lower().eq(s.astype("string").str.lower()).fillna(False)
    recased = present & ~unknown & (mapped != s) & same_text
    clog.add_cells(
        name,
        rows,
        recased,
        col.name,
        s,
        "whitespace_or_case",
        "normalized",
        "case changed to " + mapped[recased].astype(str),
    )
    return pd.Series(pd.Categorical(mapped, categories=list(col.codes or ())), index=s.index)


def _parse_code_list(
    s: pd.Series, col: Column, name: str, rows: pd.DataFrame, clog: CleaningLog
) -> pd.Series:
    codes = list(col.codes or ())
    rank = {c: i for i, c in enumerate(codes)}

    def split(uniques: pd.Index) -> list[tuple[str, str]]:
        out = []
        for value in uniques:
            parts = [p.strip() for p in value.split(";") if p.strip()]
            good = sorted({p for p in parts if p in rank}, key=rank.get)
            bad = [p for p in parts if p not in rank]
            out.append((";".join(good), ";".join(bad)))
        return out

    parsed = _on_uniques(s, lambda u: np.array(split(u), dtype=object).reshape(len(u), 2))
    clean = pd.Series(parsed[:, 0], index=s.index, dtype=object)
    bad = pd.Series(parsed[:, 1], index=s.index, dtype=object)
    has_bad = bad != ""
    clog.add_cells(
        name,
        rows,
        has_bad,
        col.name,
        s,
        "unknown_code",
        "dropped_code",
        "dropped code(s) " + bad[has_bad] + f"; allowed: {', '.join(codes)}",
    )
    return clean.astype("string").replace("", pd.NA)


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


def clean_table(
    raw: pd.DataFrame,
    table: Table,
    clog: CleaningLog,
    date_formats: list[str],
    date_range: tuple[datetime, datetime] = DATE_RANGE,
) -> pd.DataFrame:
    """Normalize, de-duplicate and type one raw table; every action goes to `clog`."""
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

    # Row level: blank lines, whitespace, exact duplicates.
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

    # Value level: declared missing-value codes, then parse each column to its type.
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
        tables=tables, log=cleaning_log, raw_rows={n: len(d) for n, d in raw.items()}
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
