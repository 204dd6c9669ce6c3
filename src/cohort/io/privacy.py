"""Identifier guard: an extract must be pseudonymized before it reaches the pipeline. Swedish
personal identity numbers (personnummer and samordningsnummer, with or without century and
separator, valid date and Luhn check digit), e-mail addresses and phone numbers in any column
stop the run, with a message saying where (file, line, column, kind) but not what."""

from __future__ import annotations

import re

import pandas as pd

from cohort.core.errors import CohortError

# Separator: none, -, +, a space or a dash of any kind (en dash from word processors).
PERSONNUMMER = re.compile(
    r"(?<![\d])(\d{2})?(\d{2})(\d{2})(\d{2})[-+\s\u2010-\u2015\u2212]?(\d{4})(?![\d])"
)
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
PHONE = re.compile(r"(?<![\d\w])(?:\+46|0046|0)[\s-]?\d{1,3}(?:[\s-]?\d{2,3}){2,3}(?![\d])")
DATE_LIKE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{2}[/.]\d{2}[/.]\d{4}|\d{2}:\d{2}(:\d{2})?")
MAX_REPORTED = 10


def luhn_valid(digits: str) -> bool:
    """Luhn check of a 10-digit personal identity number (weights 2, 1, 2, ... on nine digits)."""
    total = 0
    for i, ch in enumerate(digits[:9]):
        product = int(ch) * (2 if i % 2 == 0 else 1)
        total += product // 10 + product % 10
    return (10 - total % 10) % 10 == int(digits[9])


def is_personnummer(text: str) -> bool:
    """A Luhn-valid personal (or coordination, day + 60) identity number anywhere in `text`."""
    for match in PERSONNUMMER.finditer(text):
        _, yy, mm, dd, tail = match.groups()
        month, day = int(mm), int(dd)
        if not 1 <= month <= 12 or not (1 <= day <= 31 or 61 <= day <= 91):
            continue
        if luhn_valid(f"{yy}{mm}{dd}{tail}"):
            return True
    return False


def identifier_kind(text: str) -> str | None:
    if is_personnummer(text):
        return "Swedish personal identity number"
    if EMAIL.search(text):
        return "e-mail address"
    for match in PHONE.finditer(DATE_LIKE.sub(" ", text)):  # dates and times are no phone numbers
        if 8 <= sum(ch.isdigit() for ch in match.group()) <= 13:
            return "phone number"
    return None


def candidates(values: pd.Series) -> list[str]:
    """The distinct values that could hold an identifier: an '@', or at least 8 digits (every
    personnummer and phone number has them). A vectorised filter, so that only these few reach
    the Python checks."""
    unique = pd.Series(values.dropna().unique(), dtype="string[pyarrow]")
    possible = unique.str.contains("@", regex=False) | (unique.str.count(r"\d") >= 8)
    return [v for v in unique[possible.fillna(False)].tolist() if v]


def find_identifiers(raw: dict[str, pd.DataFrame], files: dict[str, str]) -> list[str]:
    """Where direct identifiers are: 'patients.csv line 5, column exclusion_reason: e-mail
    address'. Each column is scanned on its distinct values."""
    found = []
    for name, df in raw.items():
        for position, column in enumerate(df.columns):
            if column == "source_row":
                continue
            kind = identifier_kind(str(column))
            if kind:  # a header is no place for one either (a pivoted extract)
                found.append(f"{files.get(name, name)} line 1 (header), column {position}: {kind}")
            kinds = {value: identifier_kind(value) for value in candidates(df[column])}
            hits = {value: kind for value, kind in kinds.items() if kind}
            if not hits:
                continue
            rows = df[df[column].isin(list(hits))]
            for _, row in rows.iterrows():
                found.append(
                    f"{files.get(name, name)} line {row['source_row']}, column {column}: {hits[row[column]]}"
                )
    return found


def guard_identifiers(raw: dict[str, pd.DataFrame], files: dict[str, str], allowed: bool) -> None:
    """Stop the run if any direct identifier is found (unless the config allows them)."""
    if allowed:
        return
    found = find_identifiers(raw, files)
    if found:
        shown = "\n  ".join(found[:MAX_REPORTED])
        more = f"\n  ... and {len(found) - MAX_REPORTED} more" if len(found) > MAX_REPORTED else ""
        raise CohortError(
            f"the extract holds direct identifiers ({len(found)} found); pseudonymize it first:\n  {shown}{more}\n"
            "(config key cleaning.allow_identifiers: true overrides this check, for false alarms only)"
        )
