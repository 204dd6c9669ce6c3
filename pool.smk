# The coordinator's workflow: several sites' bundles (each site's site_bundle.json, written by
# the Snakefile's rule site_bundle on its own extract) pooled into one analysis.
# Run: snakemake -s pool.smk --configfile config/studies/<pooling file>.yaml
# The pooling file names the bundles (key pooling, cohort.workflow.stages.pooling.pooling_settings).

import sys
from pathlib import Path

from cohort.workflow.provenance import imported_modules
from cohort.workflow.stages.pooling import pooled_outputs, pooling_settings

try:
    POOL = pooling_settings(config, "the pooling file (--configfile)")
except ValueError as exc:
    print(f"cohort: {exc}", file=sys.stderr)
    sys.exit(1)
OUTPUTS = {k: str(p) for k, p in pooled_outputs(POOL.results, POOL.case_mix).items()}
CODE = [
    str(p.relative_to(Path(workflow.basedir)))
    for p in imported_modules(
        Path(workflow.basedir) / "scripts/pool.py",
        Path(workflow.basedir) / "src/cohort",
    )
]


rule all:
    default_target: True
    input:
        OUTPUTS.values(),


rule pool:
    input:
        bundles=list(POOL.sites.values()),
        code=CODE,
    output:
        **OUTPUTS,
    log:
        f"logs/{POOL.name}/pool.log",
    benchmark:
        f"benchmarks/{POOL.name}/pool.tsv"
    params:
        level=POOL.level,
        case_mix=list(POOL.case_mix),
        sites=list(POOL.sites),
    script:
        "scripts/pool.py"
