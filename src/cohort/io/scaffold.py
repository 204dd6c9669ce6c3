"""`python -m cohort init-study`: a study file and a data-contract draft from an extract's files.

It reads the files as the pipeline does (cohort.io.reading.read_raw_table: encodings, separators,
.xlsx), infers each column's type from its values, and writes two drafts in which every choice
is commented and every value only the researcher can know reads TODO. `python -m cohort check`
(and snakemake) refuse a study file that still holds a TODO, naming each key, so the draft
either runs or says exactly what is left to fill in.

What it writes is local (config/studies/), never published: the category codes and observed
ranges it reads are a column's distinct values, not rows; a column whose values look like
identity numbers, e-mail addresses or phone numbers gets no values at all.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd

from cohort.core.errors import CohortError
from cohort.io.contract import TABLE_ORDER
from cohort.io.privacy import identifier_kind
from cohort.io.reading import find_table_file, read_raw_table

TODO = "TODO"
MAX_CODES = 12  # more distinct values than this: free text, not a category
MISSING_CODE_CANDIDATES = (9, 99, 999, 9999, -9, -99, -1)
ITEM_NAME = re.compile(r"^(?P<stem>[A-Za-z_]*[A-Za-z])_?(?P<number>\d+)$")


def _quote(value: object) -> str:
    """A YAML scalar that reads back as the same string ('yes' stays a string)."""
    text = str(value).replace("'", "''")
    return f"'{text}'"


def _numbers(values: pd.Series) -> pd.Series | None:
    """The values as numbers (a decimal comma accepted), or None when any is not a number."""
    numbers = pd.to_numeric(values.str.replace(",", ".", regex=False), errors="coerce")
    return None if numbers.isna().any() else numbers


def _missing_codes(numbers: pd.Series) -> list[float]:
    """Values that look like missing-value codes: 9, 99, 999 ... standing far above (or, for
    negative codes, below) every other value of the column."""
    distinct = sorted(set(numbers))
    codes = []
    for code in MISSING_CODE_CANDIDATES:
        others = [v for v in distinct if v != code and v not in codes]
        far_above = code > 0 and others and code > 2 * max(others) and max(others) >= 0
        below = code < 0 and others and min(others) >= 0
        if code in distinct and (far_above or below):
            codes.append(code)
    return codes


def column_draft(name: str, raw: pd.Series) -> tuple[str, str]:
    """(contract entry, comment) for one column, from its non-blank values."""
    values = raw[raw.str.strip() != ""].str.strip()
    if name == "patient_id":
        return "{type: id, required: true, not_null: true}", "pseudonymous patient identifier"
    if name == "included":
        return (
            "{type: category, codes: ['yes', 'no'], required: true}",
            "included in the cohort (without this column every patient is)",
        )
    if values.empty:
        return "{type: text}", f"{TODO}: every value is blank; declare its type or drop it"
    if any(identifier_kind(v) for v in set(values)):
        return (
            "{type: text}",
            "values look like direct identifiers (identity numbers, e-mail, phone): remove this "
            "column from the extract, the run stops on it",
        )
    numbers = _numbers(values)
    if numbers is not None:
        codes = _missing_codes(numbers)
        kept = numbers[~numbers.isin(codes)]
        whole = bool((kept % 1 == 0).all())
        low, high = (kept.min(), kept.max()) if len(kept) else (math.nan, math.nan)
        entry = f"{{type: {'integer' if whole else 'number'}, min: {low:g}, max: {high:g}"
        if codes:
            entry += f", missing_codes: [{', '.join(f'{c:g}' for c in codes)}]"
        comment = f"{TODO}: min and max are the observed range; give the scale's"
        if codes:
            comment += f"; {', '.join(f'{c:g}' for c in codes)} taken as missing-value code(s)"
        return entry + "}", comment
    if pd.to_datetime(values, format="%Y-%m-%d", errors="coerce").notna().all():
        return "{type: date}", "dates in ISO form (other forms: config cleaning.date_formats)"
    distinct = sorted(set(values))
    if len(distinct) <= MAX_CODES:
        codes = ", ".join(_quote(v) for v in distinct)
        return (
            f"{{type: category, codes: [{codes}]}}",
            "the codes found; a mapping code: label prints labels",
        )
    return "{type: text}", "free text (more than 12 distinct values): never published"


# Occasion names: a baseline, or a time after it (a number and a unit, either order).
BASELINE_NAMES = {
    "baseline",
    "start",
    "pre",
    "preop",
    "pre_op",
    "screening",
    "intake",
    "t0",
    "entry",
}
UNIT_DAYS = {"d": 1, "day": 1, "w": 7, "wk": 7, "week": 7, "m": 30.44, "mo": 30.44,
             "month": 30.44, "y": 365.25, "yr": 365.25, "year": 365.25}  # fmt: skip
UNIT_WORDS = {1: "day", 7: "week", 30.44: "month", 365.25: "year"}
_UNIT = r"(?P<unit>days?|d|weeks?|wk|w|months?|mo|m|years?|yr|y)"
NUMBER_THEN_UNIT = re.compile(rf"(?<![a-z])(?P<n>\d+(?:\.\d+)?)_?{_UNIT}(?![a-z])")
UNIT_THEN_NUMBER = re.compile(rf"(?<![a-z]){_UNIT}_?(?P<n>\d+(?:\.\d+)?)(?![a-z\d])")
AFTER_WHAT = {"post_op": "after surgery", "postop": "after surgery", "followup": "follow-up",
              "follow_up": "follow-up", "fu": "follow-up"}  # fmt: skip


def occasion_time(name: str) -> tuple[float, str, str] | None:
    """(days after the start, unit, number) that an occasion's name says, or None: week_7 is
    49 days, 6m or post_op_6m 183, followup_1y 365; a baseline name is 0 days."""
    code = name.strip().lower()
    if code in BASELINE_NAMES:
        return 0.0, "", ""
    match = NUMBER_THEN_UNIT.search(code) or UNIT_THEN_NUMBER.search(code)
    if not match:
        return None
    unit = match.group("unit")
    days = UNIT_DAYS[unit[:-1] if unit.endswith("s") else unit]  # weeks -> week
    return float(match.group("n")) * days, UNIT_WORDS[days], match.group("n")


def occasion_label(name: str) -> str | None:
    """A readable label where the name says it (Week 7, 6 months after surgery, 1-year
    follow-up, Baseline), else None (the draft keeps the code, with a TODO)."""
    code = name.strip().lower()
    time = occasion_time(name)
    if time is None:
        return None
    days, unit, number = time
    if days == 0 and not unit:
        return (
            code.replace("_", " ").capitalize()
            if code not in ("pre_op", "preop")
            else "Before surgery"
        )
    rest = (
        NUMBER_THEN_UNIT.sub("", code)
        if NUMBER_THEN_UNIT.search(code)
        else UNIT_THEN_NUMBER.sub("", code)
    ).strip("_")
    plural = "" if number in ("1", "1.0") else "s"
    if not rest:
        return (
            f"{unit.capitalize()} {number}"
            if UNIT_THEN_NUMBER.fullmatch(code)
            else f"{number} {unit}{plural}"
        )
    if rest in AFTER_WHAT:
        what = AFTER_WHAT[rest]
        return (
            f"{number}-{unit} {what}" if what == "follow-up" else f"{number} {unit}{plural} {what}"
        )
    return None


def order_occasions(assessments: pd.DataFrame, date_columns: list[str]) -> tuple[list[str], str]:
    """The occasions of the assessments in time order, and how it was found: by the median date
    of each occasion where the extract has a date column, else by the time in their names
    (week_7 before week_12, 6m before 1y), else in order of appearance (said, to be checked)."""
    found = list(dict.fromkeys(assessments["occasion"].astype(str).str.strip()))
    for column in date_columns:
        dates = pd.to_datetime(assessments[column], errors="coerce", format="mixed", dayfirst=False)
        median = dates.groupby(assessments["occasion"].astype(str).str.strip()).median()
        if median.notna().all() and median.nunique() == len(found):
            order = sorted(found, key=lambda o: median[o])
            return (
                order,
                f"ordered by the median date of each occasion (assessments column {column})",
            )
    times = {o: occasion_time(o) for o in found}
    if all(t is not None for t in times.values()):
        order = sorted(found, key=lambda o: times[o][0])
        return order, "ordered by the time in their names (no dates in the extract)"
    return found, (
        f"in order of appearance ({TODO}: check the order; the names say no time and the "
        "extract has no dates)"
    )


ARM_NAME = re.compile(r"arm|group|treat|allocat|randomi[sz]|condition|intervention", re.IGNORECASE)


def arm_candidates(patients: pd.DataFrame, categorical: list[str]) -> list[tuple[str, dict]]:
    """Patients columns that look like a trial's arm: two or three levels of similar size (the
    smallest at least half the largest), those named like an arm (group, arm, treatment ...)
    first. A draft proposes them as a TODO, never as a choice."""
    out = []
    for column in categorical:
        counts = patients[column].astype(str).str.strip().replace("", pd.NA).dropna().value_counts()
        if 2 <= len(counts) <= 3 and counts.min() >= 0.5 * counts.max():
            out.append((column, counts.sort_index().to_dict()))
    return sorted(out, key=lambda c: not ARM_NAME.search(c[0]))


def drafted_arm(patients: pd.DataFrame, categorical: list[str]) -> str | None:
    """The column the draft's commented comparison names when it is named like an arm: left out
    of the drafted covariates, so that uncommenting the comparison is the only edit."""
    candidates = arm_candidates(patients, categorical)
    return candidates[0][0] if candidates and ARM_NAME.search(candidates[0][0]) else None


def _item_groups(columns: list[str]) -> dict[str, list[str]]:
    """Columns named stem + number (q01, q02 ... or dri_1, dri_2 ...), three or more per stem:
    the items of a questionnaire score."""
    groups: dict[str, list[str]] = {}
    for column in columns:
        match = ITEM_NAME.match(column)
        if match:
            groups.setdefault(match["stem"].lower().rstrip("_"), []).append(column)
    return {stem: items for stem, items in groups.items() if len(items) >= 3}


def _read_extract_for_draft(extract_dir: Path) -> dict[str, pd.DataFrame]:
    """The extract's tables as the pipeline reads them, with what a draft needs checked: the
    patients and assessments files, a patient_id in each table, an occasion column."""
    files = {t: find_table_file(extract_dir, t) for t in TABLE_ORDER}
    for table in ("patients", "assessments"):
        if files[table] is None:
            raise CohortError(f"{extract_dir}: no {table}.csv or {table}.xlsx")
    tables = {t: read_raw_table(p) for t, p in files.items() if p is not None}
    for table, frame in tables.items():
        if "patient_id" not in frame.columns:
            raise CohortError(f"{files[table]}: no patient_id column (rename the identifier)")
    if "occasion" not in tables["assessments"].columns:
        raise CohortError(
            f"{files['assessments']}: no occasion column (one row per patient and occasion, the "
            "occasion named in a column 'occasion')"
        )
    return tables


def _contract_draft(
    name: str, extract_dir: Path, tables: dict[str, pd.DataFrame]
) -> tuple[list[str], dict[str, dict[str, str]]]:
    """The contract's lines, and each table's column entries (what the study draft reads)."""
    contract = [
        f"# Data contract of study {name}, drafted by `python -m cohort init-study` from {extract_dir}.",
        "# Types inferred from the values; check every line, fill in each TODO (ranges: the",
        "# scale's, not the observed). Column types are explained in config/contract.yaml.",
        "tables:",
    ]
    described: dict[str, dict[str, str]] = {}
    for table, frame in tables.items():
        contract += [
            f"  {table}:",
            f"    required: {'true' if table != 'sessions' else 'false'}",
            f"    key: [{'patient_id, occasion' if table == 'assessments' else 'patient_id' if table == 'patients' else ''}]",
            "    columns:",
        ]
        for column in [c for c in frame.columns if c != "source_row"]:
            if table == "assessments" and column == "occasion":
                entry, comment = (
                    "{type: category, codes_from: occasions, required: true, not_null: true}",
                    "the occasions of the study file",
                )
            else:
                entry, comment = column_draft(column, frame[column])
                if table != "patients" and column == "patient_id":
                    entry = entry[:-1] + ", references: patients}"
            described.setdefault(table, {})[column] = entry
            contract.append(f"      {column}: {entry}  # {comment}")
    return contract, described


def _occasion_lines(occasions: list[str]) -> list[str]:
    """The study file's occasions, labelled where the name says it, else a TODO."""
    lines = []
    for o in occasions:
        label = occasion_label(o)
        lines.append(
            f"  - {{name: {o}, label: {label}}}"
            if label
            else f"  - {{name: {o}, label: {o}}}  # {TODO}: the occasion in words"
        )
    return lines


def _outcome_drafts(assessments: dict[str, str]) -> list[str]:
    """Candidate outcomes: items named stem + number as one score, each other numeric column."""
    numeric_items = [c for c, e in assessments.items() if "integer" in e or "number" in e]
    groups = _item_groups(numeric_items)
    grouped = {c for items in groups.values() for c in items}
    outcomes = [
        "outcomes:",
        "  # Candidates: each numeric assessments column, and items named stem + number as one score.",
        f"  # Keep the outcomes, delete the rest; fill in every {TODO} (the MCID with its literature",
        "  # source; better: lower or higher).",
    ]
    for stem, items in groups.items():
        least = math.ceil(0.75 * len(items))
        outcomes += [
            f"  {stem}:",
            f"    label: {TODO}  # the score in words, with its instrument and scale",
            f"    source: {{items: [{', '.join(items)}], min_answered: {least}, score: {TODO}}}"
            "  # score: sum (prorated) or mean; min_answered: 75% of the items",
            f"    range: {TODO}  # [lowest, highest] of the score (a sum: the items' ranges added)",
            f"    better: {TODO}",
            f"    mcid: {{absolute: {TODO}, percent: null, combine: either, reference: {TODO}}}",
        ]
    for column in [c for c in numeric_items if c not in grouped]:
        outcomes += [
            f"  {column}:",
            f"    label: {TODO}",
            f"    source: {{column: {column}}}",
            f"    range: {TODO}  # [lowest, highest] of the scale",
            f"    better: {TODO}",
            f"    mcid: {{absolute: {TODO}, percent: null, combine: either, reference: {TODO}}}",
        ]
    return outcomes


def _patient_variables(patients: dict[str, str]) -> tuple[list[str], list[str]]:
    """The categorical and numeric columns of patients (covariates, subgroups, Table 2)."""
    categorical = [
        c for c, e in patients.items()
        if "category" in e and c not in ("included", "exclusion_reason")
    ]  # fmt: skip
    numeric = [c for c, e in patients.items() if "integer" in e or "number" in e]
    return categorical, numeric


def draft_study(extract_dir: Path, name: str, contract_path: str) -> tuple[str, str]:
    """(study file, contract) drafts for the extract in `extract_dir`."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise CohortError(
            f"--name {name!r}: use lower-case letters, digits and _ (e.g. clinic2024)"
        )
    tables = _read_extract_for_draft(extract_dir)
    contract, described = _contract_draft(name, extract_dir, tables)
    dated = [c for c, e in described["assessments"].items() if "type: date" in e]
    occasions, order_note = order_occasions(tables["assessments"], dated)
    categorical, numeric = _patient_variables(described["patients"])
    baseline = [f"  - {{variable: {c}, label: {c}, statistic: n_pct}}" for c in categorical] + [
        f"  - {{variable: {c}, label: {c}, statistic: median_iqr}}" for c in numeric
    ]
    has_sessions = "sessions" in tables
    replaced = [
        "occasions", "outcomes", "derived", "covariates", "subgroups", "baseline", "models",
        "responders", "comparison", "clinical_significance",
        *([] if has_sessions else ["interventions"]),
    ]  # fmt: skip
    arm = drafted_arm(tables["patients"], categorical)
    study = [
        f"# Study file of {name}, drafted by `python -m cohort init-study` from {extract_dir}.",
        f"# Fill in every {TODO}; `python -m cohort check --config <this file>` names what is left,",
        "# then run `snakemake --configfile <this file>`. Keys: docs/configuration.md.",
        "# The keys under replaces are this study's own: none of the default study's entries remain"
        + ("" if has_sessions else "\n# (interventions is removed: the extract has no sessions)."),
        f"replaces: [{', '.join(replaced)}]",
        "study:",
        f"  name: {name}",
        f"  title: {TODO}  # the citation printed in every footer",
        "  synthetic: false",
        "  # paper: the publication to compare with, if any (with responders.paper and the",
        "  # baseline rows' paper figures)",
        f"extract: {{dir: {extract_dir}, contract: {contract_path}}}",
        f"output: {{results: results/{name}, processed: data/processed/{name}}}",
        f"# The occasions found in assessments, {order_note}; the first is the baseline.",
        "occasions:",
        *_occasion_lines(occasions),
        *_outcome_drafts(described["assessments"]),
        "derived: {}",
        "# Covariates of the models and subgroups of the responder rates (patients columns)."
        + (
            f"\n# {arm} is left out of the covariates: the candidate arm of the comparison below"
            "\n# (add it back if it is not the arm)."
            if arm
            else ""
        ),
        f"covariates: [{', '.join(c for c in categorical + numeric if c != arm)}]",
        f"subgroups: [{', '.join(categorical)}]",
        *STUDY_DEFAULTS,
        "# Table 2: one row per variable (outcomes at the first occasion: <outcome>_"
        f"{occasions[0] if occasions else 'start'}).",
        "baseline:",
        *baseline,
        *_comparison_draft(tables["patients"], categorical),
        *_date_range_draft(tables, described),
    ]
    return "\n".join(study) + "\n", "\n".join(contract) + "\n"


# The sections of a drafted study file that need nothing from the extract.
STUDY_DEFAULTS = (
    "models:",
    "  dose: null  # e.g. n_sessions when the extract has sessions",
    "  categories: []",
    "  imputation: {m: auto, max_imputed_records: 5000000, iterations: 10, donors: 5, seed: 1, jobs: 2}",
    "responders:",
    "  could_not_improve: non_responder  # or exclude: left out of the denominators",
    "  sweep_points: 101",
    "# Definitions of clinical significance beside each outcome's mcid (docs/configuration.md):",
    "# add reliability: {<outcome>: {r: ..., reference: ...}} for sem, mdc95 and reliable change.",
    "clinical_significance:",
    "  definitions:",
    '    half_sd: {method: half_sd, label: Half an SD, reference: "Norman GR et al. Med Care 2003;41:582-92."}',
    '    reliable_change: {method: reliable_change, label: Reliable change, reference: "Jacobson NS, Truax P. J Consult Clin Psychol 1991;59:12-19."}',
)


def _comparison_draft(patients: pd.DataFrame, categorical: list[str]) -> list[str]:
    """The comparison as a comment: with a column that looks like an arm (arm_candidates), a
    TODO naming it and its levels for the user to confirm; else the general form."""
    candidates = arm_candidates(patients, categorical)
    if not candidates:
        return [
            "# comparison: {variable: <patients column>, reference: <its reference group>}  # a trial arm"
        ]
    lines = [
        f"# {TODO}: is a patients column a trial's arm? Candidates (two or three levels of similar size):",
        *(
            f"#   {column}: " + ", ".join(f"{level} {n}" for level, n in counts.items())
            for column, counts in candidates
        ),
        "# If so, uncomment and give the reference level; an arm among the covariates must leave",
        "# them (the comparison adjusts for it; `cohort check` says so).",
    ]
    column, counts = candidates[0]
    return [
        *lines,
        f"# comparison: {{variable: {column}, reference: {TODO}}}  # levels: {', '.join(counts)}",
    ]


def _date_range_draft(
    tables: dict[str, pd.DataFrame], described: dict[str, dict[str, str]]
) -> list[str]:
    """With date columns, a cleaning.date_range to fill in (the default, 2000-2030, is the
    default study's), the years found given as a hint."""
    years = [
        pd.to_datetime(tables[t][c], format="%Y-%m-%d", errors="coerce").dt.year
        for t, columns in described.items()
        for c, entry in columns.items()
        if "type: date" in entry
    ]
    found = pd.concat(years).dropna() if years else pd.Series(dtype=float)
    if found.empty:
        return []
    return [
        "cleaning:",
        f"  # The dates found run from {int(found.min())} to {int(found.max())}: give the first and last",
        "  # plausible date (YYYY-MM-DD); a date outside is set missing and logged.",
        f"  date_range: [{TODO}, {TODO}]",
    ]


def init_study(extract_dir: Path, name: str, out_dir: Path) -> tuple[Path, Path]:
    """Write config/studies/<name>.yaml and <name>.contract.yaml; never overwrite."""
    study_path, contract_path = out_dir / f"{name}.yaml", out_dir / f"{name}.contract.yaml"
    for path in (study_path, contract_path):
        if path.exists():
            raise CohortError(f"{path}: exists; choose another --name or remove it")
    study, contract = draft_study(extract_dir, name, contract_path.as_posix())
    out_dir.mkdir(parents=True, exist_ok=True)
    study_path.write_text(study, encoding="utf-8")
    contract_path.write_text(contract, encoding="utf-8")
    return study_path, contract_path
