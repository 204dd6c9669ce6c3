"""One function per Snakemake rule: read the rule's inputs, call the pure functions of the
package, write the rule's outputs. Scripts in scripts/ only pass snakemake's input, output and
params to these. One module per stage (as rules/*.smk), each importing only what its rules need:
a job's start-up is a large part of a small study's run time."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from cohort.core.settings import Analysis

log = logging.getLogger(__name__)


def cluster_column(cluster: str | None, analysis: pd.DataFrame) -> str | None:
    """Config `cluster`, checked against the analysis set: a message naming the key, not a
    KeyError, when the column is not there."""
    if cluster and cluster not in analysis.columns:
        raise ValueError(
            f"config key 'cluster': '{cluster}' is not a column of the patient table (declare it "
            "in the contract's patients file, or set cluster: null)"
        )
    return cluster


def analysis_set(patients_path: str) -> pd.DataFrame:
    """The patients of the analysis set, read from the processed patient table."""
    from cohort.io.outputs import read_parquet  # here: rule provenance imports it without pandas

    patients = read_parquet(patients_path)
    analysis = patients[patients["analysis_set"]].reset_index(drop=True)
    log.info(
        "read %s: %d patients, analysis set n = %d", patients_path, len(patients), len(analysis)
    )
    return analysis


def stage_inputs(patients_path: str, settings: dict) -> tuple[Analysis, pd.DataFrame]:
    """What an analysis stage starts from: its rule's config sections as typed settings
    (cohort.core.settings.Analysis), and the analysis set."""
    from cohort.core.settings import Analysis

    return Analysis.from_config(settings), analysis_set(patients_path)
