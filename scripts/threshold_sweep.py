"""Rule threshold_sweep: see cohort.workflow.stages.responders.threshold_sweep_stage."""

from cohort.workflow.runlog import rule_log
from cohort.workflow.stages.responders import threshold_sweep_stage

with rule_log(snakemake.log[0], "threshold_sweep"):  # noqa: F821 (snakemake is injected)
    threshold_sweep_stage(
        snakemake.input.patients,  # noqa: F821
        snakemake.wildcards.outcome,  # noqa: F821
        snakemake.params.settings,  # noqa: F821
        snakemake.output[0],  # noqa: F821
    )
