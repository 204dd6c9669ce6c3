"""Rule pool (pool.smk): see cohort.workflow.stages.pooling.pool_stage."""

from pathlib import Path

from cohort.workflow.runlog import rule_log
from cohort.workflow.stages.pooling import pool_stage

with rule_log(snakemake.log[0], "pool"):  # noqa: F821 (snakemake is injected)
    pool_stage(
        [str(p) for p in snakemake.input.bundles],  # noqa: F821
        str(Path(snakemake.output.record).parent),  # noqa: F821 (the pooling's results folder)
        snakemake.params.level,  # noqa: F821
        tuple(snakemake.params.case_mix),  # noqa: F821
        snakemake.params.sites,  # noqa: F821
    )
