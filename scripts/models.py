"""Rule models: see cohort.stages.models_stage."""

from cohort.runlog import rule_log
from cohort.stages import models_stage

with rule_log(snakemake.log[0], "models"):  # noqa: F821 (snakemake is injected)
    models_stage(
        snakemake.input.patients,  # noqa: F821
        snakemake.input.classified,  # noqa: F821
        snakemake.params.settings,  # noqa: F821
        dict(snakemake.output.items()),  # noqa: F821
    )
