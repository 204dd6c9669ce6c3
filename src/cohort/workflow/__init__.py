"""Running the analysis: one function per Snakemake rule (`stages`), provenance and lineage
(`provenance`), the rule log (`runlog`), the command line (`cli`), the benchmark (`benchmark`),
the lint of the workflow (`lint`) and the generated configuration reference (`config_docs`).

May import: every other layer."""
