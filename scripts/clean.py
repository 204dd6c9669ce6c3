"""Rule clean: see cohort.workflow.stages.clean.clean_stage."""

from pathlib import Path

from cohort.workflow.runlog import rule_log
from cohort.workflow.stages.clean import clean_stage

with rule_log(snakemake.log[0], "clean"):  # noqa: F821 (snakemake is injected)
    clean_stage(
        Path(snakemake.input.patients).parent,  # noqa: F821
        snakemake.input.contract,  # noqa: F821
        snakemake.params.settings,  # noqa: F821
        dict(snakemake.output.items()),  # noqa: F821
    )
