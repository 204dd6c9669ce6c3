"""What the programme consisted of: intervention categories per patient and per session, dose
(sessions, programme months) and the combinations of categories that patients received.

Denominators: patients = the analysis set (N); sessions = all sessions of the analysis set.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cohort.analysis.tables import format_stat, percent, quartiles
from cohort.core.frames import is_in
from cohort.core.labels import DERIVED_LABELS


def _quartiles(values: pd.Series, quantiles: str) -> dict[str, float]:
    """Median, Q1, Q3 (tables.quartiles), min and max of the non-missing values."""
    v = values.dropna().astype(float)
    return {
        **quartiles(v, quantiles),
        "min": v.min() if len(v) else np.nan,
        "max": v.max() if len(v) else np.nan,
    }


def category_table(
    patients: pd.DataFrame,
    sessions: pd.DataFrame,
    codebook: dict[str, dict[str, Any]],
    quantiles: str = "type7",
) -> pd.DataFrame:
    """Per category: patients who received it at least once, n (% of N); among them, sessions in
    which it was used, median [Q1, Q3]; and its share of all sessions of the analysis set."""
    n_patients = len(patients)
    s = sessions[is_in(sessions["patient_id"], patients["patient_id"])]
    n_sessions = len(s)
    rows = []
    for code, entry in codebook.items():
        flag = f"intervention_{code}"
        received = int(patients[f"received_{code}"].sum())
        per_patient = s.groupby("patient_id", observed=True)[flag].sum()
        per_patient = per_patient[per_patient > 0]
        if len(per_patient) != received:
            raise AssertionError(
                f"category {code}: {len(per_patient)} patients with sessions vs {received} received"
            )
        q = _quartiles(per_patient, quantiles)
        used = int(s[flag].sum())
        rows.append(
            {
                "code": code,
                "category": entry["label"],
                "patients_n": received,
                "patients_pct": percent(received, n_patients),
                "N": n_patients,
                "patients": format_stat(
                    {"n": received, "pct": percent(received, n_patients)}, "n_pct"
                ),
                "sessions_with_category_median": q["median"],
                "sessions_with_category_q1": q["q1"],
                "sessions_with_category_q3": q["q3"],
                "sessions_with_category": format_stat(q, "median_iqr") if received else "",
                "sessions_n": used,
                "sessions_total": n_sessions,
                "share_of_sessions_pct": percent(used, n_sessions),
            }
        )
    return pd.DataFrame(rows)


def dose_table(patients: pd.DataFrame, quantiles: str = "type7") -> pd.DataFrame:
    """Sessions per patient and programme duration (months from first to last session):
    n, median [Q1, Q3], and min and max (published only where a study allows them)."""
    rows = []
    for variable, label, decimals in (
        ("n_sessions", DERIVED_LABELS["n_sessions"], 0),
        ("programme_months", DERIVED_LABELS["programme_months"], 1),
    ):
        values = patients[variable]
        q = _quartiles(values, quantiles)
        rows.append(
            {
                "variable": variable,
                "label": label,
                "n": int(values.notna().sum()),
                "N": len(patients),
                **q,
                "value": format_stat(q, "median_iqr", decimals),
            }
        )
    return pd.DataFrame(rows)


def combination_table(
    patients: pd.DataFrame, codebook: dict[str, dict[str, Any]], top: int
) -> pd.DataFrame:
    """The `top` most common sets of categories received by a patient, n (% of N); ties at
    the cut-off are all kept, and the remainder is one line so that the counts add up to N."""
    codes = list(codebook)
    received = patients[[f"received_{c}" for c in codes]].to_numpy(dtype=bool)
    keys = np.array(
        [";".join(c for c, r in zip(codes, row, strict=True) if r) for row in received],
        dtype=object,
    )
    counts = pd.Series(keys).value_counts()
    counts = counts.rename_axis("codes").reset_index(name="n")
    counts["n_categories"] = counts["codes"].map(lambda k: len(k.split(";")) if k else 0)
    counts = counts.sort_values(
        ["n", "n_categories", "codes"], ascending=[False, True, True], kind="stable"
    )
    if len(counts) > top:
        cutoff = counts["n"].iat[top - 1]
        shown, rest = counts[counts["n"] >= cutoff], counts[counts["n"] < cutoff]
    else:
        shown, rest = counts, counts.iloc[0:0]
    n = len(patients)
    table = shown.assign(
        rank=np.arange(1, len(shown) + 1),
        combination=shown["codes"].map(
            lambda k: " + ".join(codebook[c]["label"] for c in k.split(";")) if k else "(none)"
        ),
    )
    if len(rest):
        table = pd.concat(
            [
                table,
                pd.DataFrame(
                    [
                        {
                            "rank": np.nan,
                            "codes": "",
                            "combination": f"Other combinations ({len(rest)})",
                            "n": int(rest["n"].sum()),
                            "n_categories": np.nan,
                        }
                    ]
                ),
            ],
            ignore_index=True,
        )
    table["pct"] = table["n"].map(lambda k: percent(int(k), n))
    table["N"] = n
    if int(table["n"].sum()) != n:
        raise AssertionError("combinations do not add up to the analysis set")
    return table[["rank", "combination", "codes", "n_categories", "n", "pct", "N"]]


def cooccurrence_matrix(
    patients: pd.DataFrame, codebook: dict[str, dict[str, Any]]
) -> pd.DataFrame:
    """Patients who received both categories (diagonal: who received the category)."""
    codes = list(codebook)
    received = patients[[f"received_{c}" for c in codes]].to_numpy(dtype=int)
    both = received.T @ received
    matrix = pd.DataFrame(both, index=codes, columns=codes)
    matrix.index.name = "code"
    return matrix.reset_index().assign(category=[codebook[c]["label"] for c in codes])[
        ["code", "category", *codes]
    ]
