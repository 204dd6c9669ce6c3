"""Rule interventions: see cohort.stages.interventions.interventions_stage."""

from cohort.runlog import rule_log
from cohort.stages.interventions import interventions_stage

with rule_log(snakemake.log[0], "interventions"):  # noqa: F821 (snakemake is injected)
    interventions_stage(
        snakemake.input.patients,  # noqa: F821
        snakemake.input.sessions,  # noqa: F821
        snakemake.input.codebook,  # noqa: F821
        snakemake.params.settings,  # noqa: F821
        dict(snakemake.output.items()),  # noqa: F821
    )
