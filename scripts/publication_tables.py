"""Rule publication_tables: see cohort.workflow.stages.publication.publication_stage."""

from cohort.workflow.runlog import rule_log
from cohort.workflow.stages.publication import publication_stage

with rule_log(snakemake.log[0], "publication_tables"):  # noqa: F821 (snakemake is injected)
    publication_stage(
        {name: snakemake.input[name] for name in snakemake.params.tables},  # noqa: F821
        snakemake.input.get("summary"),  # noqa: F821 (absent when withheld)
        snakemake.input.disclosure_report,  # noqa: F821
        snakemake.params.settings,  # noqa: F821
        snakemake.params.levels,  # noqa: F821
        dict(snakemake.output.items()),  # noqa: F821
        snakemake.params.cache,  # noqa: F821
    )
