"""Rule provenance: see cohort.workflow.stages.provenance.provenance_stage."""

from cohort.workflow.runlog import rule_log
from cohort.workflow.stages.provenance import provenance_stage

with rule_log(snakemake.log[0], "provenance"):  # noqa: F821 (snakemake is injected)
    provenance_stage(
        {
            "extract": list(snakemake.input.extract),  # noqa: F821
            "config": list(snakemake.input.config),  # noqa: F821
            "code": list(snakemake.input.code),  # noqa: F821
            "workflow": list(snakemake.input.workflow),  # noqa: F821
        },
        list(snakemake.input.outputs),  # noqa: F821
        dict(snakemake.params.config),  # noqa: F821
        dict(snakemake.params.lineage),  # noqa: F821
        snakemake.output[0],  # noqa: F821
        snakemake.params.release,  # noqa: F821
    )
