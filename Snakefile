# cohort: the analysis pipeline. Thin by design: configuration, validation, rule modules, targets.
# Run: snakemake --cores all            (default study, config/config.yaml)
#      snakemake --cores all --configfile config/studies/<study>.yaml

from snakemake.utils import min_version

min_version("8.0")


configfile: "config/config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/clean.smk"
include: "rules/baseline.smk"


if HAS_SESSIONS:

    include: "rules/interventions.smk"


include: "rules/outcomes.smk"
include: "rules/responders.smk"
include: "rules/models.smk"
include: "rules/significance.smk"


if HAS_COMPARISON:

    include: "rules/groups.smk"


include: "rules/report.smk"


rule all:
    default_target: True
    input:
        rules.clean.output,
        rules.outcomes.output,
        rules.responders.output,
        rules.lmm.output,
        rules.missing_data.output,
        rules.predictors.output,
        rules.clinical_significance.output,
        rules.publish.output,
        rules.figures.output,
        rules.publication_tables.output,
        rules.provenance.output,
        SITE_BUNDLE,
