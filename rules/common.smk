# Helper Python shared by the rule modules: config validation at start, paths, input discovery.
import os
import sys
from pathlib import Path

from cohort.core.config import (
    apply_replaces,
    output_path_problems,
    read_yaml,
    study_file_problems,
    subgroup_variables,
    validate_config,
)
from cohort.core.errors import CohortError, ConfigError
from cohort.io.reading import check_extract, count_records, find_table_file
from cohort.io.contract import extract_problems, level_labels, load_contract
from cohort.disclosure.decisions import (
    ReleaseDecisions,
    decidable_outputs,
    parse_decisions,
)
from cohort.disclosure.rules import TABLE_RULES, FIGURES
from cohort.workflow.provenance import imported_modules
from cohort.publish.publication import caption as table_caption


def _stop(message):
    """Stop before any rule runs, with one readable message and no traceback."""
    print(f"cohort: {message}", file=sys.stderr)
    sys.exit(1)


# A study file (--configfile) replaces whole the top-level keys it lists under `replaces`
# (Snakemake itself merges mappings key by key).
try:
    for _study_file in workflow.config_settings.configfiles:
        _study = read_yaml(_study_file) or {}
        for _problem in study_file_problems(_study_file, _study):
            raise ConfigError(_problem)
        apply_replaces(config, _study)
    validate_config(
        config, read_yaml(workflow.source_path("../config/config.schema.yaml"))
    )
    for _problem in output_path_problems(
        config["output"],
        Path(workflow.basedir),
        config["output"].get("allow_outside", False),
    ):
        raise ConfigError(_problem)
    # File-level faults of the extract (missing file or column) stop the run before any rule.
    CONTRACT = load_contract(config["extract"]["contract"], config)
    EXTRACT_FILES = check_extract(config["extract"]["dir"], CONTRACT)
    extract_problems(config, CONTRACT, EXTRACT_FILES)
    # A steward's decisions on the release request: the outputs they withhold are no rule's
    # output (rule report checks that each decision names an output of this study).
    RELEASE = ReleaseDecisions()
    if config["disclosure"].get("decisions"):
        RELEASE = parse_decisions(
            read_yaml(config["disclosure"]["decisions"]),
            config["disclosure"]["decisions"],
            decidable_outputs(TABLE_RULES, FIGURES),
        )
except CohortError as exc:
    _stop(exc)

# Stages that need what not every study has: session data, a between-group comparison.
HAS_SESSIONS = "sessions" in EXTRACT_FILES and "interventions" in config
HAS_COMPARISON = "comparison" in config
# Each category column's codes with the contract's labels: what tables and figures print.
LEVEL_LABELS = level_labels(CONTRACT)
if not HAS_SESSIONS:
    print(
        "cohort: this study has no session data: rule interventions is skipped",
        file=sys.stderr,
    )
if HAS_COMPARISON and config["comparison"]["variable"] in config.get("subgroups", []):
    print(
        f"cohort: subgroups: '{config['comparison']['variable']}' is the comparison's arm; its "
        "responder breakdown is group_responders.csv's, not repeated in responder_subgroups.csv",
        file=sys.stderr,
    )
if not HAS_COMPARISON:
    print(
        "cohort: this study declares no comparison: rule groups is skipped",
        file=sys.stderr,
    )

# Each job's memory for the scheduler (resources: mem_mb): the rule's peak at 10^6 patients in
# docs/performance.md's runs (sampled by make bench every 0.2 s) plus a margin, scaled to this
# extract's patients, at least 500 MB. Snakemake runs jobs side by side only while their
# estimates fit in the budget it is given (make: --resources mem_mb=$(MEMORY_MB); a bare
# snakemake has none); on a cluster each job asks for its own.
PATIENTS = count_records(EXTRACT_FILES["patients"])
MEMORY_MB_PER_MILLION = {
    "clean": 5100,
    "split_extract": 2800,
    "clean_shard": 4700,  # of the patients in the shard
    "gather_shards": 2800,  # rule clean of a sharded study
    "predictors": 2200,
    "clinical_significance": 2350,
    "tipping_point": 1450,
    "responders": 3700,  # 2.9 GB by Snakemake's sparse samples; 3.4 GB reached
    "impute": 2600,  # two chains side by side fit in 5.5 GB at 10^6 (2.4 GB reached)
    "interventions": 1700,
    "lmm": 1700,
    "outcomes": 1200,
    "baseline": 1000,
    "missing_data": 1000,
    "threshold_sweep": 1000,
    "groups": 1500,
}


def memory_mb(rule, share=1.0):
    """The scheduler's memory estimate of a job of `rule` (MB), for `share` of the patients."""
    return max(500, round(MEMORY_MB_PER_MILLION.get(rule, 0) * PATIENTS * share / 1e6))


STUDY = config["study"]["name"]
RESULTS = config["output"]["results"]
PROCESSED = config["output"]["processed"]
TABLES = f"{PROCESSED}/tables"  # tables before disclosure control (rule publish)
# Outputs kept by the content they are made from (cohort.core.cache): rules publish, figures
# and publication_tables remake only what their own inputs changed. Safe to delete at any time.
CACHE = f"{PROCESSED}/cache"
LOGS = f"logs/{STUDY}"
BENCHMARKS = f"benchmarks/{STUDY}"
EXTRACT = config["extract"]["dir"]


def extract_file(table):
    """The raw file of a table (name.csv or name.xlsx), or no input if an optional one is absent
    (required files were checked above)."""
    path = find_table_file(EXTRACT, table)
    return str(path) if path else []


# A rule's code input is the package modules its script imports, to the end (imports inside
# functions included): editing a module reruns the rules that run it and what depends on their
# outputs, no other (Snakemake tracks a rule's script, not the modules the script imports).
# Rule provenance hashes all of them (CODE).
CODE = sorted(
    os.path.relpath(p)
    for p in (Path(workflow.basedir) / "src" / "cohort").rglob("*.py")
)


WORKFLOW_FILES = sorted(
    os.path.relpath(p)
    for pattern in ("Snakefile", "rules/*.smk", "scripts/*.py", "report/*.rst")
    for p in Path(workflow.basedir).glob(pattern)
)


def code_of(script):
    """The package modules that scripts/<script>.py imports (cohort.workflow.provenance.imported_modules)."""
    base = Path(workflow.basedir)
    return [
        os.path.relpath(p)
        for p in imported_modules(
            base / "scripts" / f"{script}.py", base / "src" / "cohort"
        )
    ]


def released(outputs):
    """A rule's outputs less those the steward's decisions withhold (cohort.disclosure.decisions)."""
    return {
        name: path
        for name, path in outputs.items()
        if os.path.relpath(str(path), RESULTS) not in RELEASE.withheld
    }


def settings(*keys, **overrides):
    """The config sections a rule uses, passed as params so that editing them reruns the rule."""
    return {**{key: config[key] for key in keys if key in config}, **overrides}


def model_settings(*keys):
    """The parts of `models` a rule reads: editing the mixed-model inference does not rerun the
    imputations, nor editing the imputation the mixed models."""
    return {key: config["models"][key] for key in keys if key in config["models"]}


def outcome_definitions():
    """The outcomes without their MCID rules: what the rules before `responders` need, so that
    editing a threshold reruns `responders` and what follows, nothing upstream."""
    return {
        name: {k: v for k, v in spec.items() if k != "mcid"}
        for name, spec in config["outcomes"].items()
    }
