"""Words for what the models and tables name by code: a model term (`C(sex)[T.M]`,
`received_2`, `pain_start`) as a reader says it ("Sex: M vs F", "Received: Exercise", "Pain at
start"). The one owner of these labels: figures and tables call it."""

from __future__ import annotations

import re
from collections.abc import Mapping

# C(variable) or C(variable, Treatment('reference')) followed by [T.level]; or variable[T.level]
CATEGORICAL_TERM = re.compile(
    r"^(?:C\((?P<var>\w+)(?:,\s*Treatment\((?:reference=)?['\"](?P<ref>[^'\"]+)['\"]\))?\)|(?P<plain>\w+))"
    r"\[T\.(?P<level>.+)\]$"
)


def term_label(
    term: str,
    variables: Mapping[str, str],
    references: Mapping[str, str] | None = None,
    categories: Mapping[str, str] | None = None,
    levels: Mapping[str, Mapping[str, str]] | None = None,
) -> str:
    """A model term in words. `variables`: variable -> label; `references`: variable -> its
    reference level (where the term does not name it); `categories`: intervention code ->
    label (terms received_<code>); `levels`: variable -> level -> label. A name without a label
    is written as words."""
    references, categories, levels = references or {}, categories or {}, levels or {}
    match = CATEGORICAL_TERM.match(term)
    if match:
        var = match["var"] or match["plain"]
        level_names = levels.get(var, {})
        level = level_names.get(match["level"], match["level"])
        reference = match["ref"] or references.get(var)
        versus = f" vs {level_names.get(reference, reference)}" if reference else ""
        return f"{variables.get(var, _words(var))}: {level}{versus}"
    if term.startswith("received_") and term[len("received_") :] in categories:
        return f"Received: {categories[term[len('received_') :]]}"
    return variables.get(term, _words(term))


def _words(name: str) -> str:
    """A column name as words: 'pain_duration_years' -> 'Pain duration years'."""
    return name.replace("_", " ").capitalize()
