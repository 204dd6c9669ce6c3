"""Rule responders: see cohort.workflow.stages.responders.responders_stage."""

from cohort.workflow.runlog import rule_log
from cohort.workflow.stages.responders import responders_stage

with rule_log(snakemake.log[0], "responders"):  # noqa: F821 (snakemake is injected)
    responders_stage(
        snakemake.input.patients,  # noqa: F821
        snakemake.params.settings,  # noqa: F821
        dict(snakemake.output.items()),  # noqa: F821
    )
