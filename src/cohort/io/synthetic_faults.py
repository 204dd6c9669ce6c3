"""Data faults injected into the synthetic extract (`synthesize(..., faults=...)`): one method per
fault class, each of the same shape on purpose (pick rows no other fault touched, corrupt them,
record them), so that a class reads on its own and a new one is added without touching the
others. The list of faults says on which file line each ended up, for the cleaning tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cohort.core.frames import csv_numbers, is_in
from cohort.io.contract import Contract

FAULT_CLASSES = (
    "out_of_range",
    "unparseable_date",
    "exact_duplicate",
    "conflicting_duplicate",
    "unknown_patient",
    "unknown_code",
    "decimal_comma",
    "whitespace_or_case",
    "date_order",
    "not_included",
)
NOT_INCLUDED_REASONS = (
    "declined",
    "not fit for physiotherapist-led rehabilitation",
    "referred elsewhere",
)
FAULT_COLUMNS = ["fault", "table", "source_row", "patient_id", "column", "value"]


class _Injector:
    """The tables being corrupted, with each row's identity (`_uid`) and place in the file
    (`_order`), the rows already touched and the faults recorded."""

    def __init__(self, rng: np.random.Generator, tables: dict[str, pd.DataFrame]) -> None:
        self.rng = rng
        self.tables = {
            name: df.assign(_uid=np.arange(len(df)), _order=np.arange(len(df), dtype=float))
            for name, df in tables.items()
        }
        self.records: list[pd.DataFrame] = []
        self.taken: dict[str, set[int]] = {name: set() for name in tables}

    def pick(self, name: str, k: int, where: np.ndarray | None = None) -> np.ndarray:
        """k distinct rows of a table not yet touched by another fault."""
        df = self.tables[name]
        ok = np.ones(len(df), dtype=bool) if where is None else where.copy()
        ok &= ~is_in(df["_uid"], self.taken[name])
        choice = self.rng.choice(np.flatnonzero(ok), size=min(k, int(ok.sum())), replace=False)
        self.taken[name].update(df["_uid"].to_numpy()[choice].tolist())
        return np.sort(choice)

    def record(self, fault: str, name: str, rows: np.ndarray, column: str, values: list) -> None:
        df = self.tables[name]
        self.records.append(
            pd.DataFrame(
                {
                    "fault": fault,
                    "table": name,
                    "_uid": df["_uid"].to_numpy()[rows],
                    "patient_id": df["patient_id"].to_numpy()[rows],
                    "column": column,
                    "value": values,
                }
            )
        )

    def add_rows(self, name: str, new: pd.DataFrame) -> np.ndarray:
        """Append rows (placed in the file by their `_order`); their positions in the table."""
        start = int(self.tables[name]["_uid"].max()) + 1
        new = new.assign(_uid=np.arange(start, start + len(new)))
        self.tables[name] = pd.concat([self.tables[name], new], ignore_index=True)
        return self.tables[name].index[-len(new) :].to_numpy()

    def replace(self, fault: str, name: str, column: str, k: int, bad: str, nonblank: bool) -> None:
        """k values of a column replaced by `bad`."""
        where = (self.tables[name][column] != "").to_numpy() if nonblank else None
        rows = self.pick(name, k, where)
        self.tables[name].loc[rows, column] = bad
        self.record(fault, name, rows, column, [bad] * len(rows))

    def rewrite(self, fault: str, name: str, column: str, k: int, how, nonblank: bool) -> None:
        """k values of a column rewritten by `how` (a function of the column's strings)."""
        where = (self.tables[name][column] != "").to_numpy() if nonblank else None
        rows = self.pick(name, k, where)
        self.tables[name].loc[rows, column] = how(self.tables[name].loc[rows, column])
        self.record(fault, name, rows, column, self.tables[name].loc[rows, column].tolist())

    def out_of_range(self, k: int) -> None:
        for name, column, bad in (
            ("patients", "age", "420"),
            ("assessments", "nprs", "11"),
            ("assessments", "eqvas", "150"),
        ):
            self.replace("out_of_range", name, column, k, bad, nonblank=True)

    def unparseable_date(self, k: int) -> None:
        for name, column, bad in (
            ("sessions", "session_date", "2016-02-30"),
            ("assessments", "assessed_on", "13/31/2016"),
        ):
            self.replace("unparseable_date", name, column, k, bad, nonblank=False)

    def unknown_code(self, k: int, codebook: dict[str, dict[str, Any]]) -> None:
        bad = "99" if "99" not in codebook else "x"
        self.rewrite("unknown_code", "sessions", "interventions", k, lambda s: s + ";" + bad, False)

    def decimal_comma(self, k: int) -> None:
        comma = lambda s: s.str.replace(".", ",", regex=False)  # noqa: E731
        self.rewrite("decimal_comma", "patients", "bmi", k, comma, nonblank=True)

    def whitespace_or_case(self, k: int) -> None:
        self.rewrite(
            "whitespace_or_case", "patients", "sex", k, lambda s: " " + s.str.lower(), False
        )
        self.rewrite(
            "whitespace_or_case", "patients", "pain_distribution", k,
            lambda s: s.str.title() + " ", nonblank=True,
        )  # fmt: skip

    def date_order(self, k: int) -> None:
        """Follow-ups dated 30 days before the patient's discharge."""
        a = self.tables["assessments"]
        discharge = a[a["occasion"] == "discharge"].set_index("patient_id")["assessed_on"]
        discharge = pd.to_datetime(discharge, format="%Y-%m-%d", errors="coerce").dropna()
        with_discharge = is_in(a["patient_id"], discharge.index)
        where = ((a["occasion"] == "followup_1y") & with_discharge).to_numpy()
        rows = self.pick("assessments", k, where)
        early = discharge.reindex(a.loc[rows, "patient_id"]) - pd.Timedelta(days=30)
        a.loc[rows, "assessed_on"] = early.dt.strftime("%Y-%m-%d").to_numpy()
        self.record("date_order", "assessments", rows, "assessed_on", a.loc[rows, "assessed_on"].tolist())  # fmt: skip

    def exact_duplicate(self, k: int) -> None:
        for name in ("patients", "sessions", "assessments"):
            rows = self.pick(name, k)
            dup = self.tables[name].iloc[rows].copy()
            dup["_order"] += 0.5
            new = self.add_rows(name, dup)
            self.record("exact_duplicate", name, new, "", [""] * len(new))

    def conflicting_duplicate(self, k: int, contract: Contract) -> None:
        """A second row of the same key with another value, within the contract's range."""
        for name, column, shift in (("patients", "bmi", 3.0), ("assessments", "nprs", 2.0)):
            values = self.tables[name][column]
            rows = self.pick(
                name, k, (values != "").to_numpy() & ~values.str.contains(",").to_numpy()
            )
            dup = self.tables[name].iloc[rows].copy()
            value = pd.to_numeric(dup[column])
            top = contract.table(name).columns[column].max
            dup[column] = csv_numbers(np.where(value + shift <= top, value + shift, value - shift), 1 if column == "bmi" else 0)  # fmt: skip
            dup["_order"] += 0.5
            new = self.add_rows(name, dup)
            self.record("conflicting_duplicate", name, new, column, dup[column].tolist())

    def unknown_patient(self, k: int) -> None:
        orphan = self.tables["sessions"].iloc[self.pick("sessions", k)].copy()
        orphan["patient_id"] = [f"Q{9000 + i}" for i in range(len(orphan))]
        orphan["_order"] += 0.5
        new = self.add_rows("sessions", orphan)
        self.record("unknown_patient", "sessions", new, "patient_id", orphan["patient_id"].tolist())

    def not_included(self, k: int) -> None:
        """Patients referred but not included, with a coded reason, after the included ones."""
        p = self.tables["patients"]
        extra = p.iloc[self.pick("patients", k)].copy()
        k = len(extra)
        width = len(p["patient_id"].iat[0]) - 1
        extra["patient_id"] = [f"P{i:0{width}d}" for i in range(len(p) + 1, len(p) + 1 + k)]
        extra["included"] = "no"
        extra["exclusion_reason"] = self.rng.choice(np.array(NOT_INCLUDED_REASONS), size=k)
        extra["_order"] = len(p) + np.arange(k, dtype=float)
        new = self.add_rows("patients", extra)
        self.record("not_included", "patients", new, "included", ["no"] * k)

    def in_file_order(self) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
        """The tables in file order and the faults with the file line each ended up on."""
        lines, tables = {}, {}
        for name, df in self.tables.items():
            df = df.sort_values("_order", kind="stable").reset_index(drop=True)
            lines[name] = pd.Series(np.arange(len(df)) + 2, index=df["_uid"].to_numpy())
            tables[name] = df.drop(columns=["_uid", "_order"])
        columns = ["fault", "table", "_uid", "patient_id", "column", "value"]
        faults = pd.concat(self.records, ignore_index=True) if self.records else pd.DataFrame(columns=columns)  # fmt: skip
        faults["source_row"] = np.zeros(len(faults), dtype=np.int64)
        for name, line in lines.items():
            here = (faults["table"] == name).to_numpy()
            faults.loc[here, "source_row"] = line.reindex(faults.loc[here, "_uid"].to_numpy()).to_numpy()  # fmt: skip
        faults = faults.drop(columns="_uid")[FAULT_COLUMNS]
        faults = faults.sort_values(["table", "source_row", "fault"], kind="stable")
        return tables, faults.reset_index(drop=True)


def inject_faults(
    rng: np.random.Generator,
    tables: dict[str, pd.DataFrame],
    counts: dict[str, int],
    contract: Contract,
    codebook: dict[str, dict[str, Any]],
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Inject `counts[fault]` faults of each class; return the tables and the list of faults with
    the file line (header = line 1) each fault ends up on. The classes run in a fixed order, so
    that a seed gives the same extract."""
    injector = _Injector(rng, tables)
    injector.out_of_range(counts.get("out_of_range", 0))
    injector.unparseable_date(counts.get("unparseable_date", 0))
    steps = (
        ("unknown_code", lambda k: injector.unknown_code(k, codebook)),
        ("decimal_comma", injector.decimal_comma),
        ("whitespace_or_case", injector.whitespace_or_case),
        ("date_order", injector.date_order),
        ("exact_duplicate", injector.exact_duplicate),
        ("conflicting_duplicate", lambda k: injector.conflicting_duplicate(k, contract)),
        ("unknown_patient", injector.unknown_patient),
        ("not_included", injector.not_included),
    )
    for fault, inject in steps:
        if counts.get(fault, 0):
            inject(counts[fault])
    return injector.in_file_order()
