"""Rule clean_shard: see cohort.workflow.stages.clean.clean_shard_stage."""

from cohort.workflow.runlog import rule_log
from cohort.workflow.stages.clean import clean_shard_stage

with rule_log(snakemake.log[0], "clean_shard"):  # noqa: F821 (snakemake is injected)
    clean_shard_stage(
        {table: snakemake.input[table] for table in snakemake.params.tables},  # noqa: F821
        snakemake.input.contract,  # noqa: F821
        snakemake.params.settings,  # noqa: F821
        dict(snakemake.output.items()),  # noqa: F821
    )
