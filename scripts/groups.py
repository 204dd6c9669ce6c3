"""Rule groups: see cohort.workflow.stages.groups.groups_stage."""

from cohort.workflow.runlog import rule_log
from cohort.workflow.stages.groups import groups_stage

with rule_log(snakemake.log[0], "groups"):  # noqa: F821 (snakemake is injected)
    groups_stage(
        snakemake.input.patients,  # noqa: F821
        snakemake.input.classified,  # noqa: F821
        snakemake.params.settings,  # noqa: F821
        dict(snakemake.output.items()),  # noqa: F821
    )
