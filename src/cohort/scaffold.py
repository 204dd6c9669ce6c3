"""`python -m cohort init-study`: a study file and a data-contract draft from an extract's files.

It reads the files as the pipeline does (cohort.cleaning.read_raw_table: encodings, separators,
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

from cohort.cleaning import find_table_file, read_raw_table
from cohort.contract import TABLE_ORDER
from cohort.errors import CohortError
from cohort.privacy import identifier_kind

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


def _item_groups(columns: list[str]) -> dict[str, list[str]]:
    """Columns named stem + number (q01, q02 ... or dri_1, dri_2 ...), three or more per stem:
    the items of a questionnaire score."""
    groups: dict[str, list[str]] = {}
    for column in columns:
        match = ITEM_NAME.match(column)
        if match:
            groups.setdefault(match["stem"].lower().rstrip("_"), []).append(column)
    return {stem: items for stem, items in groups.items() if len(items) >= 3}


def draft_study(extract_dir: Path, name: str, contract_path: str) -> tuple[str, str]:
    """(study file, contract) drafts for the extract in `extract_dir`."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise CohortError(
            f"--name {name!r}: use lower-case letters, digits and _ (e.g. clinic2024)"
        )
    files = {t: find_table_file(extract_dir, t) for t in TABLE_ORDER}
    for table in ("patients", "assessments"):
        if files[table] is None:
            raise CohortError(f"{extract_dir}: no {table}.csv or {table}.xlsx")
    tables = {t: read_raw_table(p) for t, p in files.items() if p is not None}
    for table, frame in tables.items():
        if "patient_id" not in frame.columns:
            raise CohortError(f"{files[table]}: no patient_id column (rename the identifier)")
    assessments = tables["assessments"]
    if "occasion" not in assessments.columns:
        raise CohortError(
            f"{files['assessments']}: no occasion column (one row per patient and occasion, the "
            "occasion named in a column 'occasion')"
        )
    occasions = list(dict.fromkeys(assessments["occasion"].str.strip()))
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
    patients = described["patients"]
    numeric_items = [
        c for c, e in described["assessments"].items() if "integer" in e or "number" in e
    ]
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
    categorical = [
        c for c, e in patients.items()
        if "category" in e and c not in ("included", "exclusion_reason")
    ]  # fmt: skip
    numeric = [c for c, e in patients.items() if "integer" in e or "number" in e]
    baseline = [f"  - {{variable: {c}, label: {c}, statistic: n_pct}}" for c in categorical] + [
        f"  - {{variable: {c}, label: {c}, statistic: median_iqr}}" for c in numeric
    ]
    has_sessions = "sessions" in tables
    replaced = [
        "occasions", "outcomes", "derived", "covariates", "subgroups", "baseline", "models",
        "responders", "comparison", "clinical_significance",
        *([] if has_sessions else ["interventions"]),
    ]  # fmt: skip
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
        "# The occasions found in assessments, in order of appearance; the first is the baseline.",
        "occasions:",
        *(f"  - {{name: {o}, label: {o}}}" for o in occasions),
        *outcomes,
        "derived: {}",
        "# Covariates of the models and subgroups of the responder rates (patients columns).",
        f"covariates: [{', '.join(categorical + numeric)}]",
        f"subgroups: [{', '.join(categorical)}]",
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
        "# Table 2: one row per variable (outcomes at the first occasion: <outcome>_"
        f"{occasions[0] if occasions else 'start'}).",
        "baseline:",
        *baseline,
        "# comparison: {variable: <patients column>, reference: <its reference group>}  # a trial arm",
        *_date_range_draft(tables, described),
    ]
    return "\n".join(study) + "\n", "\n".join(contract) + "\n"


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
