"""Disclosure control of publishable tables: counts below `min_cell` (and the percentages and
intervals derived from them) are suppressed, and a second cell is suppressed wherever a lone
suppressed cell could be recovered from a known total (secondary suppression).

A table declares its count columns, which columns derive from each count, and the groups of
cells that add up to a published total (e.g. the levels of one variable, or responders +
non-responders + could-not-improve + missing = N). Zero counts are not suppressed: a zero
discloses no individual (the usual rule of Statistics Sweden and the Swedish National Board of
Health and Welfare). Suppressed cells read `<{min_cell}`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Disclosure:
    """How to protect one table: `derived` maps each count column to the columns computed from
    it; `groups` lists (row-grouping columns, count columns) whose cells add up to a total."""

    counts: Sequence[str]
    derived: dict[str, Sequence[str]] = field(default_factory=dict)
    row_groups: Sequence[str] | None = None  # rows with equal values here share a total
    across_columns: bool = False  # the count columns of one row add up to a total
    complement: dict[str, str] = field(default_factory=dict)  # count -> its published total
    hide_with: Sequence[str] = ()  # blanked in any row with a suppressed count (partial totals)


def _small(values: pd.Series, min_cell: int) -> pd.Series:
    numeric = pd.to_numeric(values, errors="coerce")
    return (numeric > 0) & (numeric < min_cell)


def _secondary(mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    """In one group of cells adding to a total: if exactly one cell is suppressed, suppress the
    smallest other non-zero cell too (repeat until no lone suppressed cell remains)."""
    mask = mask.copy()
    while mask.sum() == 1:
        candidates = np.where(~mask & (values > 0), values, np.inf)
        if not np.isfinite(candidates).any():
            break
        mask[int(np.argmin(candidates))] = True
    return mask


def suppress(table: pd.DataFrame, rule: Disclosure, min_cell: int) -> tuple[pd.DataFrame, int]:
    """The table with small cells and their derived values suppressed; number of cells hidden."""
    out = table.copy()
    counts = [c for c in rule.counts if c in out.columns]
    if not counts or out.empty:
        return out, 0
    numeric = out[counts].apply(pd.to_numeric, errors="coerce").fillna(0).to_numpy(dtype=float)
    mask = np.column_stack([_small(out[c], min_cell).to_numpy() for c in counts])
    for j, column in enumerate(counts):  # n of a total shown beside it discloses total - n too
        if column in rule.complement and rule.complement[column] in out.columns:
            rest = pd.to_numeric(out[rule.complement[column]], errors="coerce") - numeric[:, j]
            mask[:, j] |= _small(rest, min_cell).to_numpy()
    if rule.across_columns:
        for i in range(len(out)):
            mask[i] = _secondary(mask[i], numeric[i])
    if rule.row_groups is not None:
        keys = (
            out[list(rule.row_groups)].astype(str).agg("|".join, axis=1)
            if rule.row_groups
            else pd.Series("", index=out.index)
        )
        for j in range(len(counts)):
            for _, positions in keys.reset_index(drop=True).groupby(keys.to_numpy()).groups.items():
                idx = np.asarray(list(positions))
                mask[idx, j] = _secondary(mask[idx, j], numeric[idx, j])
    hidden = 0
    any_row = mask.any(axis=1)
    for column in rule.hide_with:
        if column in out.columns and any_row.any():
            out[column] = out[column].astype(object)
            out.loc[any_row, column] = ""
    for j, column in enumerate(counts):
        rows = mask[:, j]
        if not rows.any():
            continue
        hidden += int(rows.sum())
        out[column] = out[column].astype(object)
        out.loc[rows, column] = f"<{min_cell}"
        for derived in rule.derived.get(column, ()):
            if derived in out.columns:
                text = not pd.api.types.is_numeric_dtype(out[derived])
                out[derived] = out[derived].astype(object)
                out.loc[rows, derived] = f"<{min_cell}" if text else ""
    return out, hidden


RESPONDER_COUNTS = ("responders", "non_responders", "could_not_improve", "missing")
RATE = ("pct", "ci_low_pct", "ci_high_pct")

# How each publishable table is protected (file stem -> rule). Tables not listed are published as
# they are: model estimates (lmm, predictors) hold no cell counts; the flow of patients is
# published in full, as STROBE asks (its exclusions follow from its stage totals anyway); and
# the missing-data table counts missing answers, which Table 2's valid n already discloses.
TABLE_RULES: dict[str, Disclosure] = {
    "baseline": Disclosure(
        ["count"],
        {"count": ["pct", "value"]},
        row_groups=["variable"],
        complement={"count": "valid_n"},
    ),
    "interventions": Disclosure(
        ["patients_n"],
        {
            "patients_n": [
                "patients_pct",
                "patients",
                "sessions_with_category_median",
                "sessions_with_category_q1",
                "sessions_with_category_q3",
                "sessions_with_category",
            ]
        },
        complement={"patients_n": "N"},
    ),
    "intervention_combinations": Disclosure(["n"], {"n": ["pct"]}, row_groups=[]),
    "intervention_cooccurrence": Disclosure([str(c) for c in range(1, 100)]),
    "dose": Disclosure(["n"]),
    "outcomes": Disclosure(["n", "pairs_n", "complete_cases_n"]),
    # n (the denominator) is a partial total of the breakdown: hidden with any suppressed cell.
    "responders": Disclosure(list(RESPONDER_COUNTS), across_columns=True, hide_with=("n", *RATE)),
    "responder_subgroups": Disclosure(
        list(RESPONDER_COUNTS), across_columns=True, hide_with=("n", *RATE)
    ),
    "responder_stability": Disclosure(
        ["responder_both", "responder_first_only", "responder_second_only", "responder_neither"],
        across_columns=True,
    ),
    "threshold_sweep": Disclosure(["reaching"], {"reaching": RATE}, complement={"reaching": "n"}),
    "responders_vs_paper": Disclosure(
        ["responders"],
        {"responders": ["this_run_pct", "ci_low_pct", "ci_high_pct"]},
        complement={"responders": "n"},
    ),
    "missing_data_sensitivity": Disclosure(
        ["responders"], {"responders": RATE}, complement={"responders": "n"}
    ),
}


def protect(table: pd.DataFrame, name: str, min_cell: int) -> tuple[pd.DataFrame, int | None]:
    """The table as it may be published: suppressed by its rule in TABLE_RULES, with the number
    of cells hidden, or unchanged with None when no rule applies. Rule publish applies it to every
    table, and a rule that draws counts applies it before drawing."""
    rule = TABLE_RULES.get(name)
    if rule is None:
        return table, None
    return suppress(table, rule, min_cell)
