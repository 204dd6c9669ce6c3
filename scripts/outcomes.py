"""Rule outcomes: see cohort.workflow.stages.outcomes.outcomes_stage."""

from cohort.workflow.runlog import rule_log
from cohort.workflow.stages.outcomes import outcomes_stage

with rule_log(snakemake.log[0], "outcomes"):  # noqa: F821 (snakemake is injected)
    outcomes_stage(
        snakemake.input.patients,  # noqa: F821
        snakemake.params.settings,  # noqa: F821
        dict(snakemake.output.items()),  # noqa: F821
    )
