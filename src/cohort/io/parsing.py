"""Column parsers of the cleaning: numbers, dates, categories and code lists, each parsed on the
distinct values of a column (a million rows hold a few thousand distinct dates) and each fault
logged with its row and column.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from cohort.io.cleaning_log import MISSING, CleaningLog
from cohort.io.contract import Column


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
    clog.add_date_formats(name, col.name, used[used != ""].value_counts().to_dict(), formats)
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
