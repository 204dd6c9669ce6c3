"""Rule impute: see cohort.stages.models.impute_stage."""

from cohort.runlog import rule_log
from cohort.stages.models import impute_stage

with rule_log(snakemake.log[0], "impute"):  # noqa: F821 (snakemake is injected)
    impute_stage(
        snakemake.input.patients,  # noqa: F821
        snakemake.params.part,  # noqa: F821
        snakemake.params.parts,  # noqa: F821
        snakemake.params.settings,  # noqa: F821
        snakemake.output.part,  # noqa: F821
    )
