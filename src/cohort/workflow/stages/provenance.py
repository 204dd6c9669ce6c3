"""Rule provenance (rules/report.smk): results/provenance.json, after every other output.

Its own module, without pandas or matplotlib, because it reruns after every change.
"""

from __future__ import annotations

import logging
from typing import Any

from cohort.workflow.provenance import provenance, write_provenance

log = logging.getLogger(__name__)


def provenance_stage(
    inputs: dict[str, list[str]],
    outputs: list[str],
    config: dict[str, Any],
    lineage: dict[str, dict[str, list[str]]],
    out: str,
    release: dict[str, Any] | None = None,
) -> None:
    """Rule `provenance`: hash the inputs, outputs and each rule's files into
    results/provenance.json, with the steward's decisions on the release request (`release`:
    `cohort.disclosure.decisions.ReleaseDecisions.record()`, or None before any review) and
    the outputs they withheld."""
    record = provenance(inputs, outputs, config, lineage)
    record["release_decisions"] = release or None
    log.info(
        "hashed %d input files, %d outputs, %d rules; code sha256 %s",
        sum(len(v) for v in record["inputs"].values()),
        len(record["outputs"]),
        len(record["rules"]),
        record["code_sha256"],
    )
    write_provenance(record, out)
