"""Design matrices with the column names of a patsy formula (the categorical levels as
`C(x)[T.level]`), built without patsy so that they scale to registry-sized cohorts, and the
smallest level behind each term (what disclosure control and the tables report).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd


def is_categorical(series: pd.Series) -> bool:
    return (
        isinstance(series.dtype, pd.CategoricalDtype)
        or series.dtype == object
        or pd.api.types.is_string_dtype(series)
    )


def _levels(series: pd.Series) -> list:
    """Levels in patsy's order: a categorical's categories, otherwise the sorted values."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        return list(series.cat.categories)
    return sorted(series.dropna().unique())


def design_matrix(
    frame: pd.DataFrame,
    variables: list[str],
    reference: dict[str, str] | None = None,
    drop_unused_levels: bool = False,
) -> tuple[np.ndarray, list[str]]:
    """Intercept plus treatment-coded dummies per categorical variable and one column per numeric
    (or boolean, as 0/1) one, named and ordered as patsy does for
    `~ v1 + C(v2) + C(v3, Treatment('ref'))` (categorical terms first, then numeric ones, each in
    the order given). `drop_unused_levels`: categories no row has get no column (a response
    model on a subset), instead of an all-zero column that makes the design singular."""
    reference = reference or {}
    columns, names = [np.ones(len(frame))], ["Intercept"]
    categorical = [v for v in variables if is_categorical(frame[v])]
    for v in [*categorical, *(v for v in variables if v not in categorical)]:
        values = frame[v]
        if not is_categorical(values):
            columns.append(values.to_numpy(dtype=float, na_value=np.nan))
            names.append(v)
            continue
        levels = _levels(values)
        if drop_unused_levels:
            present = set(values.dropna().unique())
            levels = [level for level in levels if level in present]
        if v in reference:
            levels = [reference[v], *(level for level in levels if level != reference[v])]
            prefix = f"C({v}, Treatment('{reference[v]}'))"
        else:
            prefix = f"C({v})"
        codes = pd.Categorical(values, categories=levels).codes
        for k, level in enumerate(levels[1:], start=1):
            columns.append((codes == k).astype(float))
            names.append(f"{prefix}[T.{level}]")
    return np.column_stack(columns), names


def check_full_rank(x: np.ndarray, names: list[str]) -> None:
    """Raise ValueError naming the design's columns when X'X is singular (a constant or
    collinear column), instead of returning arbitrary estimates."""
    xtx = x.T @ x
    scale = np.sqrt(np.diag(xtx))
    if (scale == 0).any():
        raise ValueError(f"singular design: column {names[int(np.argmin(scale))]} is all zero")
    eigen = np.linalg.eigvalsh(xtx / np.outer(scale, scale))
    if eigen.min() < 1e-10 * eigen.max():
        raise ValueError(f"singular design: collinear columns among {', '.join(names)}")


# --- Model frames ---------------------------------------------------------------------------------
def formula_term(data: pd.DataFrame, variable: str) -> str:
    """The variable as a term of a statsmodels formula: C(v) for a categorical one."""
    return f"C({variable})" if is_categorical(data[variable]) else variable


def model_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """Booleans as 0/1 floats (nullable booleans included), so formulas treat them as numbers;
    categories that no row has are dropped (an empty level would make the design singular)."""
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_bool_dtype(out[column].dtype):
            out[column] = out[column].astype("Float64").astype(float)
        elif isinstance(out[column].dtype, pd.CategoricalDtype) and column != "occasion":
            out[column] = out[column].cat.remove_unused_categories()
    return out


LEVEL_TERM = re.compile(r"C\((\w+)[^\[]*\[T\.([^\]]+)\]")


def term_level_n(
    terms: list[str], frame: pd.DataFrame, patient: str | None = None
) -> dict[str, float]:
    """For each term of a categorical level (`C(var)[T.level]`), the patients in that level or
    in the reference level, whichever is fewer: the estimate compares those two groups, and
    disclosure control hides it when either is small. NaN for other terms (occasion excepted:
    its patients per occasion are the observed n)."""
    people = frame.drop_duplicates(patient) if patient else frame
    counts: dict[str, pd.Series] = {}
    in_terms: dict[str, set[str]] = {}
    for term in terms:
        for variable, level in LEVEL_TERM.findall(term):
            in_terms.setdefault(variable, set()).add(level)
    for variable in in_terms:
        if variable in people.columns and variable != "occasion":
            counts[variable] = people[variable].astype(str).value_counts()
    out = {}
    for term in terms:
        smallest = np.nan
        for variable, level in LEVEL_TERM.findall(term):
            if variable not in counts:
                continue
            present = counts[variable][counts[variable] > 0]
            reference = present[[lv not in in_terms[variable] for lv in present.index]]
            n = min(
                float(present.get(level, 0)), float(reference.min()) if len(reference) else np.inf
            )
            smallest = n if np.isnan(smallest) else min(smallest, n)
        out[term] = smallest
    return out
