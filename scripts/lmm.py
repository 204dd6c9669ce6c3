"""Rule lmm: see cohort.workflow.stages.models.lmm_stage."""

from cohort.workflow.runlog import rule_log
from cohort.workflow.stages.models import lmm_stage

with rule_log(snakemake.log[0], "lmm"):  # noqa: F821 (snakemake is injected)
    lmm_stage(
        snakemake.input.patients,  # noqa: F821
        snakemake.params.settings,  # noqa: F821
        dict(snakemake.output.items()),  # noqa: F821
    )
