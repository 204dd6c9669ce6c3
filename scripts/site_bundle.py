"""Rule site_bundle: see cohort.workflow.stages.pooling.site_bundle_stage."""

from cohort.workflow.runlog import rule_log
from cohort.workflow.stages.pooling import site_bundle_stage

with rule_log(snakemake.log[0], "site_bundle"):  # noqa: F821 (snakemake is injected)
    site_bundle_stage(
        snakemake.input.aggregates,  # noqa: F821
        snakemake.input.responders,  # noqa: F821
        snakemake.input.contract,  # noqa: F821
        snakemake.params.settings,  # noqa: F821
        snakemake.output.bundle,  # noqa: F821
        snakemake.input.get("lmm"),  # noqa: F821 (absent where the steward withholds lmm.csv)
        snakemake.input.get("responder_subgroups"),  # noqa: F821 (the same)
    )
