"""The release request: one record per published table in ACRO's results format
(`results/results.json`, as `acro.record.Records.finalise_json` writes it and
`acro.record.load_records` reads it), so that a data steward's tools (acro, SACRO-Viewer) open
it: each output's status (pass: nothing hidden; review: cells hidden, for the checker to
confirm), the checks with the cells they hid, the information lost, and the method of the
pattern. Written here rather than through acro, which builds its records while it runs the
analysis (crosstabs and models it wraps) and has no way to take a table checked elsewhere."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cohort.disclosure.decisions import ReleaseDecisions
from cohort.disclosure.settings import DOMINATED, SECONDARY, SMALL_GROUP, DisclosureSettings

ACRO_FORMAT_VERSION = "1.0.2"  # acro's load_records accepts its own version only


@dataclass(frozen=True)
class TableLoss:
    """What disclosure control took from one published table."""

    cells: int  # every cell of the table as published
    below_threshold: int  # counts below min_cell
    protective: int  # hidden so that another cannot be recovered, or computed from such a cell
    small_group: int  # statistics of fewer than min_cell patients
    dominated: int = 0  # means dominated by their largest values (NK, p%)

    @property
    def hidden(self) -> int:
        return self.below_threshold + self.protective + self.small_group + self.dominated

    @property
    def share(self) -> float:
        return self.hidden / self.cells if self.cells else 0.0


def check_masks(table: pd.DataFrame, settings: DisclosureSettings) -> dict[str, pd.DataFrame]:
    """Which cells of a published table each check hid, read from its markers. (The cells'
    text in numpy: pandas' string methods took a second of rule publish over its 66 calls.)"""
    text = np.array(
        [[str(v).strip() for v in row] for row in table.to_numpy(dtype=object)], dtype=object
    ).reshape(table.shape)
    markers = {
        "threshold": settings.primary,
        "secondary": SECONDARY,
        "small group": SMALL_GROUP,
        "dominance": DOMINATED,
    }
    return {
        name: pd.DataFrame(text == marker, index=table.index, columns=table.columns)
        for name, marker in markers.items()
    }


def table_loss(table: pd.DataFrame, settings: DisclosureSettings) -> TableLoss:
    masks = check_masks(table, settings)
    return TableLoss(
        cells=int(table.size),
        below_threshold=int(masks["threshold"].to_numpy().sum()),
        protective=int(masks["secondary"].to_numpy().sum()),
        small_group=int(masks["small group"].to_numpy().sum()),
        dominated=int(masks["dominance"].to_numpy().sum()),
    )


def _record(
    uid: str,
    path: str,
    table: pd.DataFrame,
    rule: str,
    method: str,
    settings: DisclosureSettings,
) -> dict[str, Any]:
    masks = check_masks(table, settings)
    loss = table_loss(table, settings)
    status = "review" if loss.hidden else "pass"
    outcome = pd.DataFrame("", index=table.index, columns=table.columns, dtype=object)
    for name, mask in masks.items():
        outcome = outcome.mask(mask, outcome + f"{name}; ")
    outcome.index = outcome.index.astype(str)
    sdc = {
        "summary": {
            "suppressed": bool(loss.hidden),
            "threshold": loss.below_threshold,
            "secondary": loss.protective,
            "small group": loss.small_group,
            "dominance": loss.dominated,
        },
        "cells": {
            name: [[int(r), int(c)] for r, c in zip(*mask.to_numpy().nonzero(), strict=True)]
            for name, mask in masks.items()
        },
    }
    return {
        "uid": uid,
        "status": status,
        "type": "table",
        "properties": {"method": method, "min_cell": settings.min_cell, "rule": rule},
        "files": [{"name": path, "sdc": sdc}],
        "outcome": {c: dict(outcome[c].items()) for c in outcome.columns},
        "command": "rule publish: cohort.disclosure.protect_tables",
        "summary": (
            f"{status} - {loss.below_threshold} cells below min_cell {settings.min_cell}, "
            f"{loss.protective} hidden to protect them, {loss.small_group} statistics of small "
            f"groups, {loss.dominated} dominated means; {loss.hidden} of {loss.cells} cells ({100 * loss.share:.1f}%) hidden"
        ),
        "timestamp": "",  # none: the same input gives the same bytes
        "comments": [],
        "exception": "",
        "fair": {},
    }


def release_request(
    tables: dict[str, pd.DataFrame],
    rules: dict[str, str],
    method: str,
    settings: DisclosureSettings,
    decisions: ReleaseDecisions | None = None,
) -> dict[str, Any]:
    """The release request of the published tables: one record per table, its uid the table's
    name (ACRO writes `<uid>_<i>.csv` when it finalises: no folder in it) and its file
    `tables/<name>.csv`, relative to results/. A table the steward decided on carries the
    decision in its comments; a rejected one is not written, so it has no record (as ACRO's
    `Records.remove`) and is listed under `withheld` with the decision, which ACRO's loader
    leaves alone."""
    decisions = decisions or ReleaseDecisions()
    results, withheld = {}, {}
    for name, table in tables.items():
        path = f"tables/{name}.csv"
        record = _record(name, path, table, rules[name], method, settings)
        decision = decisions.decisions.get(path)
        if decision is not None:
            record["comments"] = [
                f"{decision.decision} ({decisions.reviewer}, {decisions.source})"
                + (f": {decision.comment}" if decision.comment else "")
            ]
        if path in decisions.withheld:
            withheld[path] = [*record["comments"], decisions.withheld[path]]
            continue
        results[name] = record
    request = {
        "version": ACRO_FORMAT_VERSION,
        "tool": {"@type": "SoftwareApplication", "name": "cohort (rule publish)"},
        "results": results,
    }
    if withheld:
        request["withheld"] = withheld
    return request
