"""Rule groups: see cohort.stages.groups.groups_stage."""

from cohort.runlog import rule_log
from cohort.stages.groups import groups_stage

with rule_log(snakemake.log[0], "groups"):  # noqa: F821 (snakemake is injected)
    groups_stage(
        snakemake.input.patients,  # noqa: F821
        snakemake.input.classified,  # noqa: F821
        snakemake.params.settings,  # noqa: F821
        dict(snakemake.output.items()),  # noqa: F821
    )
