"""The counts of a study with a comparison (arms): the outcomes and responder breakdowns of each
arm, adding up to the whole, and the patients of each ANCOVA and Welch row.
"""

from __future__ import annotations

from collections import defaultdict

import pandas as pd

from cohort.disclosure.counts import (
    AVAILABLE,
    RESPONDER_COUNTS,
    _breakdown,
    _sum_to_responder_totals,
)
from cohort.disclosure.register import Register
from cohort.disclosure.settings import Context, Key


def _group_outcomes(table: pd.DataFrame, name: str, reg: Register, ctx: Context) -> None:
    """n per arm and occasion: the arms add up to those measured at the occasion."""
    arms: dict[Key, list[Key]] = defaultdict(list)
    for i, row in table.reset_index(drop=True).iterrows():
        outcome, occasion = str(row["outcome"]), str(row["occasion"])
        key = ("measured in arm", str(row["group"]), outcome, occasion)
        reg.cell(name, i, "n", key, row["n"])
        arms[("measured", outcome, occasion)].append(key)
    for total, keys in arms.items():
        reg.equation(keys, total)


def _group_responders(table: pd.DataFrame, name: str, reg: Register, ctx: Context) -> None:
    """Each arm's breakdown (as responders.csv); the arms add up to the whole, part by part."""
    whole: dict[tuple, dict[str, list[Key]]] = defaultdict(lambda: defaultdict(list))
    for i, row in table.reset_index(drop=True).iterrows():
        arm, outcome, occasion = str(row["group"]), str(row["outcome"]), str(row["occasion"])
        size = ("arm size", arm)
        if "N" in row.index:
            reg.cell(name, i, "N", size, row["N"])
        prefix = ("responders in arm", arm, outcome, occasion)
        _breakdown(reg, name, i, row, prefix, (*prefix, "measured"), size, ctx, "n", AVAILABLE)
        for part in (*RESPONDER_COUNTS, "measured"):
            whole[(outcome, occasion)][part].append((*prefix, part))
    for (outcome, occasion), parts in whole.items():
        _sum_to_responder_totals(reg, outcome, occasion, parts)


def _ancova(table: pd.DataFrame, name: str, reg: Register, ctx: Context) -> None:
    """ANCOVA rows: their N; Welch rows: the patients measured at both occasions in each group,
    which add up to the row's N."""
    for i, row in table.reset_index(drop=True).iterrows():
        outcome, occasion = str(row["outcome"]), str(row["occasion"])
        if str(row.get("analysis", "ANCOVA")) == "ANCOVA":
            reg.cell(name, i, "N", ("ancova", outcome, occasion), row["N"])
            continue
        group, reference = str(row["term"]).split(" vs ", 1)
        parts = [("change pairs", outcome, occasion, g) for g in (group, reference)]
        reg.cell(name, i, "n_group", parts[0], row["n_group"])
        reg.cell(name, i, "n_reference", parts[1], row["n_reference"])
        total = ("change pairs", outcome, occasion, group, reference)
        reg.cell(name, i, "N", total, row["N"])
        reg.equation(parts, total)
