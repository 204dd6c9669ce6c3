"""Intervention tabulation on a hand-built cohort whose answers are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cohort.analysis.derivations import intervention_flags
from cohort.analysis.interventions import (
    category_table,
    combination_table,
    cooccurrence_matrix,
    dose_table,
)

CODEBOOK = {"1": {"label": "Education"}, "2": {"label": "Sensorimotor"}, "3": {"label": "Advice"}}

# Four patients; P4 is not in the analysis set and must not count.
SESSIONS = pd.DataFrame(
    {
        "patient_id": ["P1", "P1", "P1", "P2", "P2", "P3", "P4"],
        "session_date": pd.to_datetime(
            [
                "2015-01-01",
                "2015-02-01",
                "2015-04-01",
                "2016-01-01",
                "2016-01-15",
                "2017-03-03",
                "2017-01-01",
            ]
        ),
        "interventions": ["1;2", "1", "2;3", "1", "1;3", "2", "1;2;3"],
    }
)


@pytest.fixture
def cohort():
    sessions = intervention_flags(SESSIONS, list(CODEBOOK))
    received = sessions.groupby("patient_id")[[f"intervention_{c}" for c in CODEBOOK]].any()
    received.columns = [f"received_{c}" for c in CODEBOOK]
    by = sessions.groupby("patient_id")["session_date"]
    patients = received.assign(
        n_sessions=sessions.groupby("patient_id").size(),
        programme_months=(by.max() - by.min()).dt.days / (365.25 / 12),
    ).reset_index()
    return patients[patients["patient_id"] != "P4"].reset_index(drop=True), sessions


def test_category_table_by_hand(cohort):
    patients, sessions = cohort
    table = category_table(patients, sessions, CODEBOOK).set_index("code")
    # Education: P1 (2 sessions), P2 (2 sessions) -> 2 of 3 patients; 4 of 6 sessions.
    assert table.loc["1", "patients_n"] == 2 and table.loc["1", "patients"] == "2 (67%)"
    assert table.loc["1", "sessions_with_category_median"] == 2
    assert table.loc["1", "sessions_n"] == 4 and table.loc["1", "sessions_total"] == 6
    assert table.loc["1", "share_of_sessions_pct"] == pytest.approx(100 * 4 / 6)
    # Sensorimotor: P1 (2 sessions), P3 (1) -> median 1.5 [1.25, 1.75].
    assert table.loc["2", "patients_n"] == 2
    assert (
        table.loc["2", "sessions_with_category_q1"],
        table.loc["2", "sessions_with_category_median"],
        table.loc["2", "sessions_with_category_q3"],
    ) == (1.25, 1.5, 1.75)
    # Advice: P1 and P2, one session each.
    assert table.loc["3", "sessions_n"] == 2 and set(table["N"]) == {3}


def test_dose_table_by_hand(cohort):
    patients, _ = cohort
    dose = dose_table(patients).set_index("variable")
    assert dose.loc["n_sessions", "median"] == 2  # sessions 3, 2, 1
    assert (dose.loc["n_sessions", "min"], dose.loc["n_sessions", "max"]) == (1, 3)
    months = np.array([90, 14, 0]) / (365.25 / 12)
    assert dose.loc["programme_months", "median"] == pytest.approx(np.median(months))
    assert dose.loc["n_sessions", "value"] == "2 [2, 2] (1-3)" or dose.loc[
        "n_sessions", "value"
    ].startswith("2 [")


def test_combinations_add_up_and_keep_ties(cohort):
    patients, _ = cohort
    # P1 {1,2,3}, P2 {1,3}, P3 {2}: three different sets, each n = 1; top 1 keeps all ties.
    table = combination_table(patients, CODEBOOK, top=1)
    assert list(table["n"]) == [1, 1, 1] and table["n"].sum() == 3
    assert table["combination"].iat[0] == "Sensorimotor"  # fewest categories first among ties
    bigger = pd.concat([patients] * 3 + [patients.iloc[[0]]], ignore_index=True)
    table = combination_table(bigger, CODEBOOK, top=1)
    assert table["codes"].iat[0] == "1;2;3" and table["n"].iat[0] == 4
    assert table["combination"].iat[-1] == "Other combinations (2)" and table["n"].sum() == len(
        bigger
    )


def test_cooccurrence_is_symmetric_with_received_on_diagonal(cohort):
    patients, _ = cohort
    matrix = cooccurrence_matrix(patients, CODEBOOK).set_index("code")[list(CODEBOOK)]
    values = matrix.to_numpy()
    assert (values == values.T).all()
    assert list(np.diag(values)) == [int(patients[f"received_{c}"].sum()) for c in CODEBOOK]
    assert matrix.loc["1", "3"] == 2 and matrix.loc["2", "3"] == 1
