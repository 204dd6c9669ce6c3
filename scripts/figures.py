"""Rule figures: see cohort.workflow.stages.figures.figures_stage."""

from cohort.workflow.runlog import rule_log
from cohort.workflow.stages.figures import figures_stage

with rule_log(snakemake.log[0], "figures"):  # noqa: F821 (snakemake is injected)
    figures_stage(
        {k: v for k, v in snakemake.input.items() if k != "code"},  # noqa: F821
        snakemake.params.settings,  # noqa: F821
        snakemake.params.levels,  # noqa: F821
        dict(snakemake.output.items()),  # noqa: F821
        snakemake.params.changes_published,  # noqa: F821
        snakemake.params.cache,  # noqa: F821
    )
