"""Rule tipping_point: see cohort.workflow.stages.tipping.tipping_point_stage."""

from cohort.workflow.runlog import rule_log
from cohort.workflow.stages.tipping import tipping_point_stage

with rule_log(snakemake.log[0], "tipping_point"):  # noqa: F821 (snakemake is injected)
    tipping_point_stage(
        snakemake.input.patients,  # noqa: F821
        list(snakemake.input.imputations),  # noqa: F821
        snakemake.params.settings,  # noqa: F821
        snakemake.output.table,  # noqa: F821
    )
