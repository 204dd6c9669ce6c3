"""Rule missing_data: see cohort.workflow.stages.models.missing_data_stage."""

from cohort.workflow.runlog import rule_log
from cohort.workflow.stages.models import missing_data_stage

with rule_log(snakemake.log[0], "missing_data"):  # noqa: F821 (snakemake is injected)
    missing_data_stage(
        snakemake.input.patients,  # noqa: F821
        snakemake.params.settings,  # noqa: F821
        snakemake.output.missingness,  # noqa: F821
    )
