"""Rule split_extract: see cohort.workflow.stages.clean.split_stage."""

from pathlib import Path

from cohort.workflow.runlog import rule_log
from cohort.workflow.stages.clean import split_stage

with rule_log(snakemake.log[0], "split_extract"):  # noqa: F821 (snakemake is injected)
    split_stage(
        Path(snakemake.input.patients).parent,  # noqa: F821
        snakemake.input.contract,  # noqa: F821
        snakemake.params.settings,  # noqa: F821
        snakemake.params.shards,  # noqa: F821
        {name: list(paths) for name, paths in snakemake.output.items()},  # noqa: F821
    )
