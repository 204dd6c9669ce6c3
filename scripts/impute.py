"""Rule impute: see cohort.workflow.stages.models.impute_stage."""

from cohort.workflow.runlog import rule_log
from cohort.workflow.stages.models import impute_stage

with rule_log(snakemake.log[0], "impute"):  # noqa: F821 (snakemake is injected)
    impute_stage(
        snakemake.input.patients,  # noqa: F821
        snakemake.params.part,  # noqa: F821
        snakemake.params.parts,  # noqa: F821
        snakemake.params.settings,  # noqa: F821
        snakemake.output.part,  # noqa: F821
    )
