"""Rule publish: see cohort.workflow.stages.publish.publish_stage."""

from cohort.workflow.runlog import rule_log
from cohort.workflow.stages.publish import publish_stage

with rule_log(snakemake.log[0], "publish"):  # noqa: F821 (snakemake is injected)
    publish_stage(
        {name: snakemake.input[name] for name in snakemake.params.tables},  # noqa: F821
        snakemake.params.settings,  # noqa: F821
        snakemake.params.summary_tables,  # noqa: F821
        snakemake.params.levels,  # noqa: F821
        dict(snakemake.output.items()),  # noqa: F821
        snakemake.params.release,  # noqa: F821
        snakemake.params.cache,  # noqa: F821
    )
