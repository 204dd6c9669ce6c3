"""Rule summary: see cohort.stages.report.summary_stage."""

from cohort.runlog import rule_log
from cohort.stages.report import summary_stage

with rule_log(snakemake.log[0], "summary"):  # noqa: F821 (snakemake is injected)
    summary_stage(
        {name: snakemake.input[name] for name in snakemake.params.tables},  # noqa: F821
        snakemake.params.settings,  # noqa: F821
        snakemake.output[0],  # noqa: F821
    )
