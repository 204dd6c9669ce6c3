"""Rule interventions: see cohort.workflow.stages.interventions.interventions_stage."""

from cohort.workflow.runlog import rule_log
from cohort.workflow.stages.interventions import interventions_stage

with rule_log(snakemake.log[0], "interventions"):  # noqa: F821 (snakemake is injected)
    interventions_stage(
        snakemake.input.patients,  # noqa: F821
        snakemake.input.sessions,  # noqa: F821
        snakemake.input.codebook,  # noqa: F821
        snakemake.params.settings,  # noqa: F821
        dict(snakemake.output.items()),  # noqa: F821
    )
