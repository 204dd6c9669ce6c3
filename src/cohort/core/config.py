"""Load and validate the study configuration (JSON Schema 2020-12 plus cross-reference checks)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from cohort.core.errors import ConfigError

SCHEMA_PATH = Path("config/config.schema.yaml")
# libyaml's loader when PyYAML was built with it (10x faster: Snakemake reads the config, schema
# and contract at every start); the same safe subset of YAML either way.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: str | Path) -> Any:
    """Read a YAML file, naming the file in the error if it cannot be parsed."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found.")
    try:
        with path.open(encoding="utf-8") as handle:
            return yaml.load(handle, Loader=YAML_LOADER)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None


def _key_path(error: jsonschema.ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    return ".".join(parts) if parts else "(top level)"


def _describe(error: jsonschema.ValidationError) -> str:
    """One line per schema error: the config key, the offending value and what was expected."""
    key = _key_path(error)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        hint = f"; allowed keys: {', '.join(allowed)}" if allowed else ""
        return f"config key '{key}': unknown key(s) {', '.join(map(repr, extra))}{hint}"
    if error.validator == "oneOf" and error.context:
        best = min(error.context, key=lambda e: len(list(e.absolute_path)))
        return f"config key '{key}': {best.message}"
    return f"config key '{key}': {error.message}"


def validate_config(config: dict[str, Any], schema: dict[str, Any]) -> None:
    """Check `config` against the JSON Schema, then the cross-references the schema cannot see."""
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = [_describe(e) for e in errors]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines))
    problems = _cross_reference_problems(config)
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))


def _cross_reference_problems(config: dict[str, Any]) -> list[str]:
    """Checks that need more than one key: ranges, thresholds, names that must be declared."""
    problems = []
    names = [o["name"] for o in config["occasions"]]
    if len(set(names)) != len(names):
        problems.append(f"config key 'occasions': occasion names must be unique, got {names}")
    for name, outcome in config["outcomes"].items():
        low, high = outcome["range"]
        if not low < high:
            problems.append(f"config key 'outcomes.{name}.range': lower bound must be below upper")
        mcid = outcome["mcid"]
        if mcid["absolute"] is None and mcid["percent"] is None:
            problems.append(
                f"config key 'outcomes.{name}.mcid': give an absolute and/or a percent threshold"
            )
        if mcid["absolute"] is not None and mcid["absolute"] > high - low:
            problems.append(
                f"config key 'outcomes.{name}.mcid.absolute': {mcid['absolute']} exceeds the "
                f"range of the scale ({low}-{high})"
            )
        source = outcome["source"]
        if "items" in source and source["min_answered"] > len(source["items"]):
            problems.append(
                f"config key 'outcomes.{name}.source.min_answered': {source['min_answered']} "
                f"is more than the {len(source['items'])} items"
            )
    disclosure = config["disclosure"]
    if disclosure["min_cell"] < 5 and not disclosure.get("acknowledge_min_cell_below_5", False):
        problems.append(
            f"config key 'disclosure.min_cell': {disclosure['min_cell']} is below 5; set "
            "'disclosure.acknowledge_min_cell_below_5: true' to publish counts that small"
        )
    for occasion, figures in config.get("responders", {}).get("paper", {}).items():
        if occasion not in names[1:]:
            problems.append(
                f"config key 'responders.paper.{occasion}': not a declared follow-up occasion "
                f"({', '.join(names[1:])})"
            )
        for outcome in figures:
            if outcome not in config["outcomes"]:
                problems.append(
                    f"config key 'responders.paper.{occasion}.{outcome}': outcome '{outcome}' is "
                    "referenced but not declared under 'outcomes'"
                )
    first, last = config["cleaning"].get("date_range", ["1900-01-01", "2100-12-31"])
    try:
        if not datetime.strptime(first, "%Y-%m-%d") < datetime.strptime(last, "%Y-%m-%d"):
            problems.append("config key 'cleaning.date_range': the first date must come first")
    except ValueError:
        problems.append(f"config key 'cleaning.date_range': {first} or {last} is not a date")
    lmm = config["models"].get("lmm", {})
    if config.get("cluster") and (
        lmm.get("df") == "kenward_roger" or lmm.get("covariance") == "observed_information"
    ):
        problems.append(
            "config key 'models.lmm': with a cluster the mixed models use the model-based "
            "covariance with Satterthwaite or normal df (Kenward-Roger and the observed "
            "information are implemented for one random intercept only)"
        )
    for row in config["baseline"]:
        if (
            row["statistic"] == "n_pct"
            and "level" not in row
            and "levels" not in row.get("paper", {"levels": None})
        ):
            problems.append(
                f"config key 'baseline' row '{row['variable']}': an n_pct row lists every level, "
                "so its paper figures go under paper.levels"
            )
    return problems


def load_config(path: str | Path, schema_path: str | Path = SCHEMA_PATH) -> dict[str, Any]:
    """Read and validate a study config file."""
    config = read_yaml(path)
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys")
    validate_config(config, read_yaml(schema_path))
    return config


DEFAULT_CONFIG = Path("config/config.yaml")


def study_file_problems(path: str | Path, study: Any) -> list[str]:
    """What makes a study file unusable before it is merged: not a mapping, or YTE templating
    (`__use_yte__`), which Snakemake evaluates as Python when it loads the file. cohort refuses
    it: a study file is data (a reviewer reads it), not code."""
    if not isinstance(study, dict):
        return [f"{path}: expected a mapping of config keys"]
    if "__use_yte__" in study:
        return [
            f"{path}: uses YTE templating (__use_yte__), which runs code when Snakemake loads the "
            "file; cohort refuses templated study files: write the values out"
        ]
    todo = todo_keys(study)
    if todo:
        return [f"{path}: fill in the TODO of {', '.join(todo)}"]
    return []


def todo_keys(value: Any, path: str = "") -> list[str]:
    """The keys whose value is still TODO (a draft of `cohort init-study`), in file order."""
    if isinstance(value, dict):
        return [k for key, v in value.items() for k in todo_keys(v, f"{path}.{key}".lstrip("."))]
    if isinstance(value, list):
        return [k for i, v in enumerate(value) for k in todo_keys(v, f"{path}[{i}]")]
    return [path] if isinstance(value, str) and value.strip().upper().startswith("TODO") else []


def load_study(path: str | Path, default: str | Path = DEFAULT_CONFIG) -> dict[str, Any]:
    """A study file merged over the default config as `snakemake --configfile` merges it
    (merge_study), then validated; the default config itself is loaded as it is."""
    path, default = Path(path), Path(default)
    if path.resolve() == default.resolve():
        return load_config(path, default.parent / SCHEMA_PATH.name)
    study = read_yaml(path)
    problems = study_file_problems(path, study)
    if problems:
        raise ConfigError(problems[0])
    config = merge_study(read_yaml(default), study)
    validate_config(config, read_yaml(default.parent / SCHEMA_PATH.name))
    return config


def output_path_problems(output: dict[str, str], root: Path, allow_outside: bool) -> list[str]:
    """Patient-level outputs (output.processed) may not lie inside the published folder
    (output.results), nor the other way round; an output folder outside the project folder
    needs output.allow_outside: true (a typo in an absolute path should not write elsewhere)."""
    problems = []
    results = (root / output["results"]).resolve()
    processed = (root / output["processed"]).resolve()
    if processed == results or processed.is_relative_to(results):
        problems.append(
            f"config key 'output.processed': {output['processed']} lies inside output.results "
            f"({output['results']}): patient-level files would be published"
        )
    elif results.is_relative_to(processed):
        problems.append(
            f"config key 'output.results': {output['results']} lies inside output.processed"
        )
    if not allow_outside:
        for key in ("results", "processed"):
            if not (root / output[key]).resolve().is_relative_to(root.resolve()):
                problems.append(
                    f"config key 'output.{key}': {output[key]} is outside the project folder; "
                    "set output.allow_outside: true to write there"
                )
    return problems


def subgroup_variables(config: dict[str, Any]) -> list[str]:
    """The subgroups of the subgroup responder table: the configured ones less the comparison's
    arm, whose responder breakdown is the group tables' (group_responders.csv) and would
    otherwise be printed twice under two keys of disclosure control."""
    arm = (config.get("comparison") or {}).get("variable")
    return [s for s in config.get("subgroups", []) if s != arm]


def occasion_names(config: dict[str, Any]) -> list[str]:
    """Declared occasion names, in time order; the first is the baseline."""
    return [o["name"] for o in config["occasions"]]


def merge_study(config: dict[str, Any], study: dict[str, Any]) -> dict[str, Any]:
    """A study file over the default config: mappings merge key by key (as Snakemake's
    --configfile does), except the top-level keys the study lists under `replaces`, which it
    replaces whole (its own outcomes, occasions, baseline rows ...)."""

    def merge(base: Any, over: Any) -> Any:
        if isinstance(base, dict) and isinstance(over, dict):
            return {**base, **{k: merge(base.get(k), v) for k, v in over.items()}}
        return over

    merged = merge(config, study)
    apply_replaces(merged, study)
    return merged


def apply_replaces(config: dict[str, Any], study: dict[str, Any]) -> None:
    """Replace whole, in the merged `config`, the top-level keys a study file lists under
    `replaces` (rules/common.smk calls this after Snakemake's own key-by-key merge). A file
    that names a study (`study:`) is another study: its `study` section is its own whole, and
    it compares with no publication but the one it names (responders.paper, paper_source are
    not inherited from the default study)."""
    if "study" in study:
        config["study"] = study["study"]
        given = study.get("responders") or {}
        if "responders" in config:  # a new dict: the merged config may share the default's
            config["responders"] = {
                k: v
                for k, v in config["responders"].items()
                if k not in ("paper", "paper_source") or k in given
            }
    for key in study.get("replaces", []):
        if key in study:
            config[key] = study[key]
        else:  # replaced by nothing: the study has none (e.g. no interventions, no comparison)
            config.pop(key, None)
