"""Words for what the models and tables name by code: a model term (`C(sex)[T.M]`,
`received_2`, `pain_start`) as a reader says it ("Men vs women", "Received: Exercise", "Pain at
start"), a level by its contract label, a p-value and a count as a journal prints them. The one
owner of these labels and formats: figures, publication tables and the summary call it."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# C(variable) or C(variable, Treatment('reference')) followed by [T.level]; or variable[T.level]
CATEGORICAL_TERM = re.compile(
    r"^(?:C\((?P<var>\w+)(?:,\s*Treatment\((?:reference=)?['\"](?P<ref>[^'\"]+)['\"]\))?\)|(?P<plain>\w+))"
    r"\[T\.(?P<level>[^\]]+)\]$"
)
RECEIVED = "received_"  # the model term of an intervention category: received_<code>
# Variables the pipeline derives (cohort.analysis.derivations), by their printed names.
DERIVED_LABELS = {
    "pain_duration_years": "Pain duration, years",
    "n_sessions": "Sessions per patient",
    "programme_months": "Programme duration, months (first to last session)",
    "n_categories": "Intervention categories per patient",
}


@dataclass(frozen=True)
class TermParts:
    """A model term taken apart: the variable, and for a categorical term its level and the
    reference level the formula names (None where the formula leaves it to the data)."""

    variable: str
    level: str | None = None
    reference: str | None = None


def term_parts(term: str) -> TermParts:
    """`C(sex)[T.M]` -> (sex, M, None); `C(occasion, Treatment('start'))[T.discharge]` ->
    (occasion, discharge, start); `age` -> (age, None, None)."""
    match = CATEGORICAL_TERM.match(term)
    if not match:
        return TermParts(term)
    return TermParts(match["var"] or match["plain"], match["level"], match["ref"])


def reference_levels(terms: list[str], levels: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """The reference level of each categorical variable among `terms`: the one the formula names,
    else the first level in the contract's order (`levels`, as the models order categories) that
    has no term of its own."""
    shown: dict[str, list[str]] = {}
    named: dict[str, str] = {}
    for term in terms:
        parts = term_parts(term)
        if parts.level is None:
            continue
        shown.setdefault(parts.variable, []).append(parts.level)
        if parts.reference:
            named[parts.variable] = parts.reference
    references = dict(named)
    for variable, have in shown.items():
        if variable not in references:
            rest = [code for code in levels.get(variable, {}) if code not in have]
            if rest:
                references[variable] = rest[0]
    return references


def term_label(
    term: str,
    variables: Mapping[str, str],
    references: Mapping[str, str] | None = None,
    categories: Mapping[str, str] | None = None,
    levels: Mapping[str, Mapping[str, str]] | None = None,
) -> str:
    """A model term in words. `variables`: variable -> label; `references`: variable -> its
    reference level (where the term does not name it); `categories`: intervention code ->
    label (terms received_<code>); `levels`: variable -> level -> label. A level with a label
    reads "Men vs women"; one without "Sex: M vs F". A name without a label is written as
    words."""
    references, categories, levels = references or {}, categories or {}, levels or {}
    if ":" in term and all(CATEGORICAL_TERM.match(part) for part in term.split(":")):
        # an interaction of categorical terms: "Acupuncture vs control × Month 3 vs baseline"
        return " × ".join(
            term_label(part, variables, references, categories, levels) for part in term.split(":")
        )
    parts = term_parts(term)
    if parts.level is not None:
        names = levels.get(parts.variable, {})
        reference = parts.reference or references.get(parts.variable)
        if parts.level in names and (reference is None or reference in names):
            versus = f" vs {_lower_first(names[reference])}" if reference else ""
            return f"{names[parts.level]}{versus}"
        versus = f" vs {names.get(reference, reference)}" if reference else ""
        variable = variables.get(parts.variable, _words(parts.variable))
        return f"{variable}: {names.get(parts.level, parts.level)}{versus}"
    if term.startswith(RECEIVED) and term[len(RECEIVED) :] in categories:
        return f"Received: {categories[term[len(RECEIVED) :]]}"
    return variables.get(term, _words(term))


def level_label(variable: str, level: Any, levels: Mapping[str, Mapping[str, str]]) -> str:
    """A level by its contract label (`levels`: variable -> code -> label), else as written."""
    text = "" if level is None or (isinstance(level, float) and math.isnan(level)) else str(level)
    return levels.get(variable, {}).get(text, text)


def format_p(value: Any) -> str:
    """A p-value as journals print it: '<0.001', else three decimals; a disclosure marker or
    text as given; missing as ''."""
    number = _number(value)
    if number is None:
        return "" if _missing(value) else str(value)
    return "<0.001" if number < 0.0005 else f"{number:.3f}"


def format_count(value: Any) -> str:
    """A count as an integer ('244', not '244.0'); a disclosure marker as given."""
    number = _number(value)
    if number is None:
        return "" if _missing(value) else str(value)
    return f"{number:.0f}" if float(number).is_integer() else f"{number:g}"


def format_number(value: Any, decimals: int = 2) -> str:
    """An estimate with fixed decimals; a disclosure marker as given; missing as ''."""
    number = _number(value)
    if number is None:
        return "" if _missing(value) else str(value)
    text = f"{number:.{decimals}f}"
    return "0" + text[2:] if text.startswith("-0") and float(text) == 0 else text


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def _lower_first(text: str) -> str:
    """'Women' -> 'women' for 'Men vs women'; an acronym ('EQ-5D') keeps its case."""
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        return text[0].lower() + text[1:]
    return text


def _words(name: str) -> str:
    """A column name as words: 'pain_duration_years' -> 'Pain duration years'."""
    return name.replace("_", " ").capitalize()


def variable_labels(baseline: Any) -> dict[str, str]:
    """Each Table 2 variable's label (baseline.csv: variable, label, level, statistic), where it
    names the variable: a one-level n (%) line's label names its level ('Women'), not the
    variable, and is left out (the variable reads as words); the derived variables'
    (DERIVED_LABELS) besides."""
    labels: dict[str, str] = dict(DERIVED_LABELS)
    if baseline is None or len(baseline) == 0:
        return labels
    for variable, rows in baseline.groupby("variable", sort=False):
        has_levels = rows["level"].fillna("").astype(str).str.strip().ne("").all()
        if has_levels or rows["statistic"].iat[0] != "n (%)":
            labels[str(variable)] = str(rows["label"].iat[0])
    return labels
