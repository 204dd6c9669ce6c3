"""The counts of the clinical-significance tables and how they relate: each definition's threshold
with the patients it came from, each definition's responder breakdown (as responders.csv's) and the
agreement cells of each pair of definitions.
"""

from __future__ import annotations

import math

import pandas as pd

from cohort.core.settings import PRIMARY as PRIMARY_DEFINITION
from cohort.disclosure.counts import AVAILABLE, _breakdown, _num
from cohort.disclosure.register import Register
from cohort.disclosure.settings import N_KEY, Context, Key


def _definition_prefix(definition: str, outcome: str, occasion: str) -> Key:
    """The responder counts of a definition of clinical significance: under the primary one
    (mcid), those of responders.csv."""
    if definition == PRIMARY_DEFINITION:
        return ("responders of", outcome, occasion)
    return ("responders under", definition, outcome, occasion)


def _significance_definitions(table: pd.DataFrame, name: str, reg: Register, ctx: Context) -> None:
    """The start values' n (outcomes.csv's n at the first occasion), the HLM model's patients
    (and those it was not fitted on, adding up to N) and the anchor's groups:
    improved and not improved add up to the patients with the anchor, the 'a little better'
    level and the rest too."""
    for i, row in table.reset_index(drop=True).iterrows():
        outcome = str(row["outcome"])
        if ctx.occasions:
            reg.cell(
                name, i, "baseline_n", ("measured", outcome, ctx.occasions[0]), row["baseline_n"]
            )
        if math.isfinite(_num(row.get("slope_n"))):  # the HLM index's model: its patients
            fitted = ("slope model", outcome, "fitted")
            reg.cell(name, i, "slope_n", fitted, row["slope_n"])
            reg.implied(
                ("slope model", outcome, "not fitted"), ctx.n_analysis - _num(row["slope_n"])
            )
            reg.equation([fitted, ("slope model", outcome, "not fitted")], N_KEY)
        occasion = row.get("anchor_occasion")
        if not isinstance(occasion, str) or not occasion:
            continue
        prefix = ("anchor", outcome, occasion)
        reg.cell(name, i, "anchor_n", (*prefix, "n"), row["anchor_n"])
        for column, part, rest in (
            ("anchor_improved_n", "improved", "not improved"),
            ("anchor_minimal_n", "a little better", "not a little better"),
        ):
            reg.cell(name, i, column, (*prefix, part), row[column])
            if part == "improved":
                reg.cell(
                    name, i, "anchor_not_improved_n", (*prefix, rest), row["anchor_not_improved_n"]
                )
            else:
                reg.implied((*prefix, rest), _num(row["anchor_n"]) - _num(row[column]))
            reg.equation([(*prefix, part), (*prefix, rest)], (*prefix, "n"))
        measured = ("measured both", outcome, occasion)
        if measured in reg.values:
            reg.implied((*prefix, "without"), reg.values[measured] - _num(row["anchor_n"]))
            reg.equation([(*prefix, "n"), (*prefix, "without")], measured)


def _significance_rates(table: pd.DataFrame, name: str, reg: Register, ctx: Context) -> None:
    """Each definition's responder breakdown (as responders.csv, whose counts the primary one
    shares): responders, non-responders and could-not-improve add up to the measured, with
    missing to N; multiple imputation: N."""
    for i, row in table.reset_index(drop=True).iterrows():
        outcome, occasion = str(row["outcome"]), str(row["occasion"])
        analysis = row["analysis"]
        if analysis == "multiple imputation":
            if ctx.handling != "exclude":
                reg.cell(name, i, "n", N_KEY, row["n"])
            reg.cell(name, i, "N", N_KEY, row["N"])
            continue
        if analysis not in (AVAILABLE, "all in analysis set, missing = non-responder"):
            reg.cell(name, i, "N", N_KEY, row["N"])
            continue  # a definition not defined for the outcome: no counts
        reg.cell(name, i, "N", N_KEY, row["N"])
        _breakdown(
            reg, name, i, row, _definition_prefix(str(row["definition"]), outcome, occasion),
            ("measured both", outcome, occasion), N_KEY, ctx, "n",
            AVAILABLE if analysis == AVAILABLE else "all",
            missing=("responders of", outcome, occasion, "missing"),  # whatever the definition
        )  # fmt: skip


AGREEMENT_CELLS = ("both", "first_only", "second_only", "neither")


def _significance_agreement(table: pd.DataFrame, name: str, reg: Register, ctx: Context) -> None:
    """n is the measured (responders.csv's); the four cells are published afterwards only where
    both definitions' responders and n are published and no cell is small
    (publish_agreement): they then relate only to published counts, and no hidden count can
    be recovered through them."""
    for i, row in table.reset_index(drop=True).iterrows():
        measured = ("measured both", str(row["outcome"]), str(row["occasion"]))
        reg.cell(name, i, "n", measured, row["n"])
