"""The register of every count the tables publish, by key, with the linear relations between
them (`Register`), and the shape of a table's rule (`TableRule`)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from cohort.disclosure.settings import Context, DisclosureSettings, Key


@dataclass
class Register:
    """Every count of the tables to publish, by key, with the linear relations between them."""

    values: dict[Key, int] = field(default_factory=dict)
    cells: dict[str, list[tuple[int, str, Key]]] = field(default_factory=lambda: defaultdict(list))
    equations: list[tuple[tuple[Key, ...], Key]] = field(default_factory=list)
    published: set[Key] = field(default_factory=set)
    fixed: set[Key] = field(default_factory=set)  # never suppressed (the analysis set N)
    origin: dict[Key, str] = field(default_factory=dict)
    tables_of: dict[Key, set[str]] = field(default_factory=lambda: defaultdict(set))

    def value(self, key: Key, value: Any, where: str) -> bool:
        """Record a count (False if it is missing); the same key must carry the same value."""
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return False
        try:
            number = float(value)
        except (TypeError, ValueError):
            return False
        if not math.isfinite(number):
            return False
        count = int(round(number))
        if key in self.values and self.values[key] != count:
            raise AssertionError(
                f"disclosure: {key} is {self.values[key]} in {self.origin[key]} but {count} in {where}"
            )
        self.values.setdefault(key, count)
        self.origin.setdefault(key, where)
        return True

    def cell(self, table: str, row: int, column: str, key: Key, value: Any) -> None:
        """A count published in `table` at (row, column)."""
        if self.value(key, value, f"{table}.csv row {row + 1}, column {column}"):
            self.cells[table].append((row, column, key))
            self.published.add(key)
            self.tables_of[key].add(table)

    def implied(self, key: Key, value: Any) -> None:
        """A count not published but implied by the relations (its value, where known)."""
        self.value(key, value, "implied")

    def equation(self, parts: Iterable[Key], total: Key) -> None:
        """sum(parts) == total."""
        self.equations.append((tuple(parts), total))


# --- Table rules: which counts a table publishes and how they relate -----------------------------
Builder = Callable[[pd.DataFrame, str, Register, Context], None]


@dataclass(frozen=True)
class TableRule:
    """How one published table is protected. `describe` says it in words (disclosure report)."""

    describe: str
    counts: Builder | None = None
    derived: dict[str, tuple[str, ...]] = field(default_factory=dict)  # column -> its counts
    group_stats: dict[str, tuple[str, ...]] = field(default_factory=dict)  # group n -> its stats
    # Dominance evidence (tables.dominance_shares, by its column prefix) -> the means and what
    # is computed from them, hidden where the mean is dominated; the evidence is never published.
    dominance: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Rows whose means add up to a published whole (the arms of one outcome and occasion),
    # named by these columns: a dominated one hides them all, or it could be recovered.
    dominance_together: tuple[str, ...] = ()
    rates: tuple[tuple[str, str, str, str | None, str | None], ...] = ()  # pct, num, den, lo, hi
    min_max: tuple[str, ...] = ()  # single patients' values: dropped unless allowed
    # The table as it is offered for publication, coarser than the analysis wrote it where a
    # detail would cost more cells than it adds (with what was done, for the report).
    prepare: Callable[[pd.DataFrame, Context], tuple[pd.DataFrame, dict[str, int]]] | None = None
    finish: (
        Callable[
            [pd.DataFrame, pd.DataFrame, DisclosureSettings, Context],
            tuple[pd.DataFrame, dict[str, int]],
        ]
        | None
    ) = None
