"""The data contract of the raw extract: one declaration (config/contract.yaml) read by the
validator, the synthetic generator and the data dictionary."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cohort.core.config import occasion_names, read_yaml
from cohort.core.errors import ConfigError

COLUMN_TYPES = ("id", "category", "integer", "number", "date", "code_list", "text")
TABLE_ORDER = ("patients", "sessions", "assessments")


@dataclass(frozen=True)
class Column:
    """One column of a raw table, with its type, range or codes."""

    name: str
    type: str
    description: str = ""
    required: bool = False
    not_null: bool = False
    codes: tuple[str, ...] | None = None
    labels: dict[str, str] | None = None  # code -> label, where the contract gives labels
    other_code: str | None = None  # a value that is not a code becomes this code (free text)
    min: float | None = None
    max: float | None = None
    unit: str | None = None
    references: str | None = None
    zero_missing_with: str | None = None  # a 0 here means missing when this other column is
    missing_codes: tuple[str, ...] = ()  # values that mean "not answered" (9, 999, *): missing


@dataclass(frozen=True)
class Table:
    """One raw file of the extract."""

    name: str
    description: str
    required: bool
    key: tuple[str, ...]
    columns: dict[str, Column] = field(default_factory=dict)
    sheet: str | None = None  # the sheet of an .xlsx file to read (needed when several hold data)

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns.values() if c.required]


@dataclass(frozen=True)
class Contract:
    """All tables of the extract, codes resolved against the study config."""

    tables: dict[str, Table]

    def table(self, name: str) -> Table:
        return self.tables[name]


def level_labels(contract: Contract) -> dict[str, dict[str, str]]:
    """Each category column's codes in the contract's order, with the label the contract gives
    (a code without one stands for itself): what tables and figures print for a level."""
    labels: dict[str, dict[str, str]] = {}
    for table in contract.tables.values():
        for name, column in table.columns.items():
            if column.type == "category" and column.codes:
                names = column.labels or {}
                labels.setdefault(name, {code: names.get(code, code) for code in column.codes})
    return labels


def load_codebook(path: str | Path) -> dict[str, dict[str, Any]]:
    """Intervention codebook: code (as text) -> {label, description, synthetic_pct}."""
    data = read_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("categories"), dict):
        raise ConfigError(f"{path}: expected a mapping 'categories: {{code: {{label: ...}}}}'")
    codebook = {}
    for code, entry in data["categories"].items():
        if not isinstance(entry, dict) or "label" not in entry:
            raise ConfigError(f"{path}: category {code} needs a 'label'")
        codebook[str(code)] = entry
    return codebook


def load_contract(path: str | Path, config: dict[str, Any]) -> Contract:
    """Read the contract and resolve `codes_from` (occasions, interventions) from the config."""
    raw = read_yaml(path)
    if not isinstance(raw, dict) or "tables" not in raw:
        raise ConfigError(f"{path}: expected a top-level 'tables' mapping")
    code_sources: dict[str, tuple[str, ...]] = {"occasions": tuple(occasion_names(config))}
    if "interventions" in config:
        code_sources["interventions"] = tuple(load_codebook(config["interventions"]["codebook"]))
    tables = {}
    for table_name, spec in raw["tables"].items():
        columns = {}
        for col_name, col in spec["columns"].items():
            if col.get("type") not in COLUMN_TYPES:
                raise ConfigError(
                    f"{path}: tables.{table_name}.columns.{col_name}.type must be one of "
                    f"{', '.join(COLUMN_TYPES)}, got {col.get('type')!r}"
                )
            codes = col.get("codes")
            labels = {str(k): str(v) for k, v in codes.items()} if isinstance(codes, dict) else None
            other = col.get("other_code")
            if other is not None and (codes is None or str(other) not in {str(c) for c in codes}):
                raise ConfigError(
                    f"{path}: tables.{table_name}.columns.{col_name}.other_code: '{other}' is not "
                    "one of its codes"
                )
            if "codes_from" in col:
                source = col["codes_from"]
                if source not in code_sources:
                    raise ConfigError(
                        f"{path}: tables.{table_name}.columns.{col_name}.codes_from: "
                        f"'{source}' is not declared in the study config"
                    )
                codes = code_sources[source]
            columns[col_name] = Column(
                name=col_name,
                type=col["type"],
                description=col.get("description", ""),
                required=bool(col.get("required", False)),
                not_null=bool(col.get("not_null", False)),
                codes=tuple(str(c) for c in codes) if codes is not None else None,
                labels=labels,
                other_code=str(other) if other is not None else None,
                min=col.get("min"),
                max=col.get("max"),
                unit=col.get("unit"),
                references=col.get("references"),
                zero_missing_with=col.get("zero_missing_with"),
                missing_codes=tuple(str(c).strip() for c in col.get("missing_codes", ())),
            )
        tables[table_name] = Table(
            name=table_name,
            description=spec.get("description", ""),
            required=bool(spec.get("required", True)),
            key=tuple(spec.get("key", [])),
            columns=columns,
            sheet=spec.get("sheet"),
        )
    for needed in ("patients", "assessments"):
        if needed not in tables:
            raise ConfigError(f"{path}: the contract must declare a '{needed}' table")
    contract = Contract(tables=tables)
    problems = config_contract_problems(config, contract)
    if problems:
        raise ConfigError(
            "configuration does not fit the data contract:\n  " + "\n  ".join(problems)
        )
    return contract


NUMERIC, CATEGORICAL, BOOLEAN, DATE, TEXT = "numeric", "categorical", "boolean", "date", "text"
KIND_OF_TYPE = {
    "integer": NUMERIC,
    "number": NUMERIC,
    "category": CATEGORICAL,
    "date": DATE,
    "id": TEXT,
    "text": TEXT,
    "code_list": TEXT,
}


def patient_columns(
    config: dict[str, Any], contract: Contract, has_sessions: bool | None = None
) -> dict[str, tuple[str, int]]:
    """The columns of the derived patient table that config keys may name, with their kind
    (numeric, categorical, boolean, date, text) and number of levels (0 where not categorical).
    Mirrors cohort.analysis.derivations.patient_table (a test keeps the two equal): it is known before
    any rule runs, so that a key naming an absent column stops the run at once. `has_sessions`:
    whether the extract holds the (optional) sessions file; None = as the contract declares."""
    columns: dict[str, tuple[str, int]] = {}
    for col in contract.table("patients").columns.values():
        levels = len(col.codes) if col.codes else 0
        columns[col.name] = (KIND_OF_TYPE[col.type], levels)
    if "pain_duration_days" in columns:
        columns["pain_duration_years"] = (NUMERIC, 0)
    derived = config.get("derived", {})
    for name in ("low_ability_to_reduce_pain", "anxious_depressed"):
        if name in derived:
            columns[name] = (BOOLEAN, 2)
    for occasion in occasion_names(config):
        columns[f"assessed_{occasion}"] = (BOOLEAN, 2)
        for outcome in config["outcomes"]:
            columns[f"{outcome}_{occasion}"] = (NUMERIC, 0)
        if "assessed_on" in contract.table("assessments").columns:
            columns[f"date_{occasion}"] = (DATE, 0)
        if "anchor" in derived:
            columns[f"anchor_{occasion}"] = (NUMERIC, 0)
    if has_sessions is None:
        has_sessions = "sessions" in contract.tables
    if has_sessions and "interventions" in config:
        for name in SESSION_COLUMNS:
            columns[name] = (DATE, 0) if name.endswith("_session") else (NUMERIC, 0)
        for code in load_codebook(config["interventions"]["codebook"]):
            columns[f"received_{code}"] = (BOOLEAN, 2)
    return columns


SESSION_COLUMNS = (
    "n_sessions",
    "programme_months",
    "n_categories",
    "first_session",
    "last_session",
)


def _unknown(key: str, name: str, columns: dict[str, tuple[str, int]], where: str) -> str:
    """'config key X: column Y is not ...; did you mean ...?' with the closest column names."""
    close = difflib.get_close_matches(name, list(columns), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    if name in SESSION_COLUMNS or name.startswith("received_"):
        hint = (
            " (it is derived from session data with intervention categories: this study has none)"
        )
    return f"config key '{key}': '{name}' is not a column of {where}{hint}"


def _source_problems(config: dict[str, Any], contract: Contract) -> list[str]:
    """The assessments columns the outcomes and derived variables read: each exists, and an
    outcome's is numeric."""
    problems = []
    assessment_cols = contract.table("assessments").columns
    for name, outcome in config["outcomes"].items():
        source = outcome["source"]
        for column in source.get("items", [source.get("column")]):
            if column not in assessment_cols:
                problems.append(
                    _unknown(
                        f"outcomes.{name}.source",
                        column,
                        {c: (NUMERIC, 0) for c in assessment_cols},
                        "the contract's assessments table",
                    )
                )
            elif assessment_cols[column].type not in ("integer", "number"):
                problems.append(
                    f"config key 'outcomes.{name}.source': column '{column}' is "
                    f"{assessment_cols[column].type} in the contract; an outcome needs numbers"
                )
    derived = config.get("derived", {})
    if (
        "anxious_depressed" in derived
        and derived["anxious_depressed"]["column"] not in assessment_cols
    ):
        problems.append(
            "config key 'derived.anxious_depressed.column': not a column of the assessments table"
        )
    anchor = derived.get("anchor")
    if anchor and anchor["column"] not in assessment_cols:
        problems.append(
            _unknown(
                "derived.anchor.column",
                anchor["column"],
                {c: (NUMERIC, 0) for c in assessment_cols},
                "the contract's assessments table",
            )
        )
    return problems


def _significance_problems(config: dict[str, Any]) -> list[str]:
    """Config clinical_significance: its anchor is read at a follow-up, and what its
    definitions, reliabilities and norms name are outcomes."""
    problems = []
    derived = config.get("derived", {})
    anchor = derived.get("anchor")
    significance = config.get("clinical_significance") or {}
    follow_ups = occasion_names(config)[1:]
    read_at = (significance.get("anchor") or {}).get("occasion")
    if read_at is not None and read_at not in follow_ups:
        problems.append(
            f"config key 'clinical_significance.anchor.occasion': '{read_at}' is not a follow-up "
            f"occasion ({', '.join(follow_ups) or 'none'})"
        )
    if significance.get("anchor") and not anchor:
        problems.append(
            "config key 'clinical_significance.anchor': set derived.anchor.column too (the "
            "assessments column of the anchor)"
        )
    for key in ("reliability", "norms"):
        for name in significance.get(key) or {}:
            if name not in config["outcomes"]:
                problems.append(
                    f"config key 'clinical_significance.{key}.{name}': not an outcome "
                    f"({', '.join(config['outcomes'])})"
                )
    for name, spec in (significance.get("definitions") or {}).items():
        method = spec["method"]
        needs = {"absolute": "absolute", "percent": "percent", "clinically_significant": "cutoff"}
        if method in needs and spec.get(needs[method]) is None:
            problems.append(
                f"config key 'clinical_significance.definitions.{name}': method {method} needs "
                f"'{needs[method]}'"
            )
        for outcome in spec.get("absolute") or {}:
            if outcome not in config["outcomes"]:
                problems.append(
                    f"config key 'clinical_significance.definitions.{name}.absolute.{outcome}': "
                    "not an outcome"
                )
    return problems


def _patient_column_problems(
    config: dict[str, Any], contract: Contract, has_sessions: bool | None
) -> list[str]:
    """The patient-table columns of covariates, subgroups, model terms, Table 2, comparison and
    cluster: each exists and has a type its role can use."""
    problems = []
    patient_cols = contract.table("patients").columns
    derived = config.get("derived", {})
    low_ability = derived.get("low_ability_to_reduce_pain")
    if low_ability and low_ability["column"] not in patient_cols:
        problems.append(
            "config key 'derived.low_ability_to_reduce_pain.column': not a patients column"
        )
    columns = patient_columns(config, contract, has_sessions)
    where = "the patient table (the contract's patients columns and the derived ones)"
    usable = (NUMERIC, CATEGORICAL, BOOLEAN)

    def check(key: str, name: str, kinds: tuple[str, ...], need: str) -> None:
        if name not in columns:
            problems.append(_unknown(key, name, columns, where))
        elif columns[name][0] not in kinds:
            problems.append(f"config key '{key}': '{name}' is {columns[name][0]}; {need}")

    for i, name in enumerate(config.get("covariates", [])):
        check(f"covariates[{i}]", name, usable, "a covariate must be numeric or categorical")
    max_levels = config.get("responders", {}).get("subgroup_max_levels", 12)
    for i, name in enumerate(config.get("subgroups", [])):
        check(
            f"subgroups[{i}]",
            name,
            (CATEGORICAL, BOOLEAN),
            "a subgroup must be categorical (declare it as a category with codes, or bands)",
        )
        if name in columns and columns[name][1] > max_levels:
            problems.append(
                f"config key 'subgroups[{i}]': '{name}' has {columns[name][1]} levels, more than "
                f"responders.subgroup_max_levels = {max_levels}"
            )
    models = config.get("models", {})
    if models.get("dose"):
        check("models.dose", models["dose"], (NUMERIC,), "the dose must be numeric")
    for i, code in enumerate(models.get("categories", [])):
        if f"received_{code}" not in columns:
            problems.append(
                f"config key 'models.categories[{i}]': no intervention category '{code}' "
                + (
                    "in the codebook"
                    if "sessions" in contract.tables
                    and "interventions" in config
                    and has_sessions is not False
                    else "(this study has no session data with intervention categories; set "
                    "models.categories: [])"
                )
            )
    for i, row in enumerate(config.get("baseline", [])):
        key = f"baseline[{i}].variable"
        if row["statistic"] == "n_pct":
            check(key, row["variable"], (CATEGORICAL, BOOLEAN), "n_pct needs a categorical column")
        else:
            check(key, row["variable"], (NUMERIC,), f"{row['statistic']} needs a numeric column")
    comparison = config.get("comparison")
    if comparison:
        check(
            "comparison.variable",
            comparison["variable"],
            (CATEGORICAL, BOOLEAN),
            "groups must be categorical",
        )
        column = patient_cols.get(comparison["variable"])
        if column and column.codes and str(comparison["reference"]) not in column.codes:
            problems.append(
                f"config key 'comparison.reference': '{comparison['reference']}' is not a code "
                f"of '{comparison['variable']}' ({', '.join(column.codes)})"
            )
    if config.get("cluster"):
        check("cluster", config["cluster"], (CATEGORICAL, TEXT, NUMERIC), "")
    return problems


def config_contract_problems(
    config: dict[str, Any], contract: Contract, has_sessions: bool | None = None
) -> list[str]:
    """Every column a config key names, checked against the contract and the derived patient
    table (patient_columns) before any rule runs: outcome sources, derived inputs, covariates,
    subgroups, model terms, Table 2 rows, comparison and cluster; each exists and has a type
    the analysis can use. Messages name the key and suggest the closest column names.
    `has_sessions`: whether the extract holds its optional sessions file (None: as declared)."""
    return (
        _source_problems(config, contract)
        + _significance_problems(config)
        + _patient_column_problems(config, contract, has_sessions)
        + role_conflicts(config)
    )


def variable_roles(config: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Every patient-level variable the config gives a role, as (role, key, variable): each
    covariate and subgroup, the comparison's arm, the cluster, the dose, and the baseline score
    of each outcome (which every model of response and the ANCOVA adjust for by themselves)."""
    roles = [
        ("covariate", f"covariates[{i}]", v) for i, v in enumerate(config.get("covariates", []))
    ]
    roles += [("subgroup", f"subgroups[{i}]", v) for i, v in enumerate(config.get("subgroups", []))]
    if config.get("comparison"):
        roles.append(("comparison", "comparison.variable", config["comparison"]["variable"]))
    if config.get("cluster"):
        roles.append(("cluster", "cluster", config["cluster"]))
    if (config.get("models") or {}).get("dose"):
        roles.append(("dose", "models.dose", config["models"]["dose"]))
    occasions = occasion_names(config) if config.get("occasions") else []
    if occasions:
        roles += [
            ("outcome", f"outcomes.{name}", f"{name}_{occasions[0]}")
            for name in config.get("outcomes", {})
        ]
    return roles


# Roles one variable cannot have together, with why; any pair not named is compatible (an arm
# or a cluster as a subgroup too: the arm's rows are the group tables', the subgroup table
# leaves it out; a clinic's responder rates are a subgroup's).
INCOMPATIBLE_ROLES = {
    frozenset({"covariate", "comparison"}): "the group comparison adjusts for the arm itself",
    frozenset(
        {"covariate", "cluster"}
    ): "the cluster enters the models as a random effect, not as a covariate",
    frozenset(
        {"covariate", "outcome"}
    ): "every model of response adjusts for the outcome's baseline score itself",
    frozenset({"covariate", "dose"}): "the dose is its own term of the models of response",
    frozenset(
        {"comparison", "cluster"}
    ): "an arm cannot be its own cluster (every cluster would hold one arm)",
    frozenset({"comparison", "outcome"}): "the arm cannot be an outcome's baseline score",
    frozenset({"comparison", "dose"}): "the arm cannot be the dose",
    frozenset({"cluster", "dose"}): "the cluster cannot be the dose",
    frozenset({"cluster", "outcome"}): "the cluster cannot be an outcome's baseline score",
    frozenset({"dose", "outcome"}): "the dose cannot be an outcome's baseline score",
    frozenset({"covariate"}): "a covariate named twice",
    frozenset({"subgroup"}): "a subgroup named twice",
}


def role_conflicts(config: dict[str, Any]) -> list[str]:
    """A variable given two roles the analysis cannot combine, with both keys named."""
    problems = []
    roles = variable_roles(config)
    for i, (role_a, key_a, variable) in enumerate(roles):
        for role_b, key_b, other in roles[i + 1 :]:
            why = INCOMPATIBLE_ROLES.get(frozenset({role_a, role_b}))
            if other == variable and why:
                problems.append(
                    f"config keys '{key_a}' and '{key_b}' both name '{variable}': {why}; "
                    f"remove it from one of them"
                )
    return problems


def extract_problems(config: dict[str, Any], contract: Contract, files: dict[str, Any]) -> None:
    """config_contract_problems once the extract's files are known (`files`, from
    cohort.io.reading.check_extract): a study whose optional sessions file is absent cannot name
    the columns derived from it."""
    problems = config_contract_problems(config, contract, has_sessions="sessions" in files)
    if problems:
        raise ConfigError("configuration does not fit the extract:\n  " + "\n  ".join(problems))


def data_dictionary_markdown(contract: Contract, contract_path: str) -> str:
    """The data dictionary of the raw extract, generated from the contract (data/raw/README.md)."""
    lines = [
        "# Raw extract: data dictionary",
        "",
        f"Generated from `{contract_path}` by `python -m cohort dictionary`; do not edit by hand.",
        "",
        "One folder per study holds `patients`, `sessions` and `assessments` as `.csv` (UTF-8,",
        "comma- or semicolon-separated) or `.xlsx`. A blank cell is a missing value. Values that break",
        "the contract are set missing (or their row dropped) and logged in",
        "`data/processed/cleaning_log.csv`; a missing file or required column stops the run.",
        "`data/raw/synthetic/` holds the synthetic extract of the default study (regenerate: `make",
        "synthetic`); real extracts are never committed.",
        "",
    ]
    for name in [t for t in TABLE_ORDER if t in contract.tables] + sorted(
        set(contract.tables) - set(TABLE_ORDER)
    ):
        table = contract.tables[name]
        status = "required" if table.required else "optional"
        lines += [f"## `{name}.csv` ({status})", "", table.description, ""]
        if table.key:
            lines += [f"Unique key: {', '.join(f'`{k}`' for k in table.key)}.", ""]
        lines += [
            "| column | type | allowed values | required | description |",
            "|---|---|---|---|---|",
        ]
        for col in table.columns.values():
            lines.append(
                f"| `{col.name}` | {col.type} | {_allowed(col)} | "
                f"{'yes' if col.required else 'no'}{', never blank' if col.not_null else ''} | "
                f"{col.description} |"
            )
        lines.append("")
    return "\n".join(lines)


def _allowed(col: Column) -> str:
    text = _allowed_values(col)
    if col.missing_codes:
        codes = ", ".join(f"`{c}`" for c in col.missing_codes)
        text += f"{'; ' if text else ''}missing-value code(s) {codes}"
    return text


def _allowed_values(col: Column) -> str:
    if col.codes is not None:
        codes = ", ".join(f"`{c}` ({col.labels[c]})" if col.labels else f"`{c}`" for c in col.codes)
        return codes + (f"; any other value counts as `{col.other_code}`" if col.other_code else "")
    if col.min is not None or col.max is not None:
        unit = f" {col.unit}" if col.unit else ""
        return f"{_num(col.min)} to {_num(col.max)}{unit}"
    if col.references:
        return f"a `patient_id` of `{col.references}`"
    return ""


def _num(value: float | None) -> str:
    if value is None:
        return "any"
    return f"{value:g}"
