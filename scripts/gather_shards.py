"""Rule clean of a sharded study: see cohort.workflow.stages.clean.gather_stage."""

from cohort.workflow.runlog import rule_log
from cohort.workflow.stages.clean import gather_stage

with rule_log(snakemake.log[0], "clean"):  # noqa: F821 (snakemake is injected)
    gather_stage(
        {name: list(snakemake.input[name]) for name in snakemake.params.parts},  # noqa: F821
        snakemake.input.contract,  # noqa: F821
        snakemake.params.settings,  # noqa: F821
        dict(snakemake.output.items()),  # noqa: F821
    )
