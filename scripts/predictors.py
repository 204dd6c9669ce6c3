"""Rule predictors: see cohort.workflow.stages.models.predictors_stage."""

from cohort.workflow.runlog import rule_log
from cohort.workflow.stages.models import predictors_stage

with rule_log(snakemake.log[0], "predictors"):  # noqa: F821 (snakemake is injected)
    predictors_stage(
        snakemake.input.patients,  # noqa: F821
        list(snakemake.input.imputations),  # noqa: F821
        snakemake.params.settings,  # noqa: F821
        dict(snakemake.output.items()),  # noqa: F821
    )
