"""Reading the raw extract: its files (.csv or .xlsx, any encoding a clinical system writes), each
record with the line it starts on, and the file-level checks that stop a run (ContractError)
before any value is parsed.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from cohort.core.errors import ContractError
from cohort.io.cleaning import log
from cohort.io.contract import Contract


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
        sep = _separator(_first_line(text))
        df = _read_plain_csv(text, sep) if nrows is None else None
        if df is None:
            df = _read_csv_with_pandas(text, sep, path, nrows)
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


LINE_BREAK = re.compile(r"[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")  # str.splitlines' breaks


def _first_line(text: str) -> str:
    """text.splitlines()[0] without splitting the whole file (a million lines)."""
    found = LINE_BREAK.search(text)
    return text[: found.start()] if found else text


def _read_plain_csv(text: str, sep: str) -> pd.DataFrame | None:
    """pyarrow's multi-threaded reader, for the common file: no quote character, no blank line,
    line breaks \n or \r\n, distinct non-empty column names; each record is then one line, and
    the table is what pandas reads (tests/test_cleaning.py). None where any of that fails, or
    pyarrow cannot read it: pandas then reads the file, with its messages. Measured reason for
    the second reader: 4-5 times faster on a million-patient extract."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    names = _first_line(text).split(sep)
    if '"' in text or len(set(names)) != len(names) or not all(n.strip() for n in names):
        return None
    lone_cr = "\r" in text and text.count("\r") != text.count("\r\n")
    if lone_cr or "\n\n" in text or "\n\r\n" in text:
        return None
    try:
        table = pacsv.read_csv(
            pa.BufferReader(text.encode("utf-8")),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1),
            parse_options=pacsv.ParseOptions(
                delimiter=sep, quote_char=False, ignore_empty_lines=False
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid:  # e.g. a line with another number of fields: pandas' message
        return None
    records = text.count("\n") - (1 if text.endswith("\n") else 0)
    if table.num_rows != records:
        return None
    return table.to_pandas()


def _read_csv_with_pandas(text: str, sep: str, path: Path, nrows: int | None) -> pd.DataFrame:
    """pandas' reader: any file pyarrow's fast path does not take (quotes, blank lines)."""
    try:  # (keyword arguments; duplicates pairs their shape with MixedFit(...) by chance)
        return pd.read_csv(
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


def count_records(path: str | Path) -> int:
    """About how many records a raw file holds, without parsing it: a CSV's line breaks less the
    header (a quoted line break counts too), a workbook's rows of its first sheet less the
    header. What the scheduler's memory estimate of each job scales with."""
    path = Path(path)
    if path.suffix.lower() == ".xlsx":
        from openpyxl import load_workbook

        book = load_workbook(path, read_only=True)
        try:
            return max(0, (book.worksheets[0].max_row or 1) - 1)
        finally:
            book.close()
    lines, last = 0, b"\n"
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 24), b""):
            lines, last = lines + block.count(b"\n"), block[-1:]
    return max(0, lines + (last != b"\n") - 1)  # a last line without its line break counts


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
