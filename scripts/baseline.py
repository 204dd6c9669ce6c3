"""Rule baseline: see cohort.workflow.stages.baseline.baseline_stage."""

from cohort.workflow.runlog import rule_log
from cohort.workflow.stages.baseline import baseline_stage

with rule_log(snakemake.log[0], "baseline"):  # noqa: F821 (snakemake is injected)
    baseline_stage(
        snakemake.input.patients,  # noqa: F821
        snakemake.params.settings,  # noqa: F821
        dict(snakemake.output.items()),  # noqa: F821
    )
