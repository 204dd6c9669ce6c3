"""The cleaning log (one row per action on a value or a row, with the file's line) and the
cleaned extract it accounts for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cohort.io.contract import TABLE_ORDER

LOG_COLUMNS = ["table", "patient_id", "source_row", "column", "value", "rule", "action", "detail"]
MISSING = ""
DROPPED = "dropped_row"
MIXED_DATE_FORMATS = "mixed_date_formats"
# The table-level notes (no row) in the order the cleaning makes them within a table: the order a
# log gathered from patient shards puts them back in (cohort.io.sharding).
NOTE_ORDER = (
    "formula_without_value",
    "unknown_column",
    "missing_optional_column",
    MIXED_DATE_FORMATS,
    "no_assessment_dates",
)
DATE_FORMAT_COLUMNS = ["table", "column", "format", "n"]


def mixed_formats_detail(counts: Mapping[str, int], formats: Sequence[str]) -> str | None:
    """The note on a date column read in more than one format (e.g. a dd/mm file opened in a
    US-locale spreadsheet), formats by count then by their order in `formats`; None for one."""
    used = [(fmt, int(n)) for fmt, n in counts.items() if n]
    if len(used) < 2:
        return None
    rank = {fmt: i for i, fmt in enumerate(formats)}
    used.sort(key=lambda kv: (-kv[1], rank.get(kv[0], len(rank)), kv[0]))
    return (
        "; ".join(f"{n} as {fmt}" for fmt, n in used)
        + ". Day and month may be swapped in one form: check at the source."
    )


@dataclass
class CleaningLog:
    """Collects cleaning actions as whole-column frames; `frame()` gives the sorted log."""

    parts: list[pd.DataFrame] = field(default_factory=list)
    # (table, column, format, number of dates it read): what a gathered log's note is made from
    date_formats: list[tuple[str, str, str, int]] = field(default_factory=list)

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

    def add_date_formats(
        self, table: str, column: str, counts: Mapping[str, int], formats: Sequence[str]
    ) -> None:
        """Record how many dates of a column each format read; a column read in more than one
        format gets a note (mixed_formats_detail)."""
        self.date_formats.extend((table, column, fmt, int(n)) for fmt, n in counts.items())
        detail = mixed_formats_detail(counts, formats)
        if detail:
            self.add_note(table, column, MIXED_DATE_FORMATS, "flagged", detail)

    def date_format_counts(self) -> pd.DataFrame:
        """The recorded format counts, one row per table, column and format."""
        return pd.DataFrame(self.date_formats, columns=DATE_FORMAT_COLUMNS).astype({"n": "int64"})

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
    # how many dates of each column each format read (CleaningLog.date_format_counts)
    date_formats: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=DATE_FORMAT_COLUMNS)
    )
