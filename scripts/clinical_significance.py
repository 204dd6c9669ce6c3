"""Rule clinical_significance: see cohort.workflow.stages.significance.significance_stage."""

from cohort.workflow.runlog import rule_log
from cohort.workflow.stages.significance import significance_stage

with rule_log(snakemake.log[0], "clinical_significance"):  # noqa: F821 (snakemake is injected)
    significance_stage(
        snakemake.input.patients,  # noqa: F821
        list(snakemake.input.imputations),  # noqa: F821
        snakemake.params.settings,  # noqa: F821
        dict(snakemake.output.items()),  # noqa: F821
    )
