# Helper Python shared by the rule modules: config validation at start, paths, input discovery.
import sys
from pathlib import Path

from cohort.config import read_yaml, validate_config
from cohort.errors import CohortError
from cohort.cleaning import find_table_file


def _stop(message):
    """Stop before any rule runs, with one readable message and no traceback."""
    print(f"cohort: {message}", file=sys.stderr)
    sys.exit(1)


try:
    validate_config(config, read_yaml(workflow.source_path("../config/config.schema.yaml")))
except CohortError as exc:
    _stop(exc)

STUDY = config["study"]["name"]
RESULTS = config["output"]["results"]
PROCESSED = config["output"]["processed"]
LOGS = f"logs/{STUDY}"
BENCHMARKS = f"benchmarks/{STUDY}"
EXTRACT = config["extract"]["dir"]


def extract_file(table, required=True):
    """The raw file of a table (name.csv or name.xlsx); stops the run if a required one is missing."""
    path = find_table_file(EXTRACT, table)
    if path is None:
        if required:
            _stop(
                f"{Path(EXTRACT) / (table + '.csv')}: required file of the raw extract not found "
                f"(expected {table}.csv or {table}.xlsx; set extract.dir in the config)."
            )
        return []
    return str(path)


# The package source is an input of every rule: editing the code behind a number reruns the rules
# that compute it (Snakemake tracks a rule's script, not the modules the script imports).
CODE = sorted(str(p) for p in Path(workflow.source_path("../src/cohort/__init__.py")).parent.glob("*.py"))


def settings(*keys):
    """The config sections a rule uses, passed as params so that editing them reruns the rule."""
    return {key: config[key] for key in keys if key in config}
