"""Derived variables: outcome scores per assessment, and one analysis row per patient (dose,
categories received, baseline items, outcomes at each occasion, and the patient flow status)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from cohort.core.frames import is_in
from cohort.core.settings import Occasion, Outcome

log = logging.getLogger(__name__)

DAYS_PER_YEAR = 365.25
DAYS_PER_MONTH = DAYS_PER_YEAR / 12

# Flow status of a referred patient, in the order of the flow diagram.
NOT_INCLUDED = "not included"
INCLUSION_UNKNOWN = "inclusion status unknown"
NO_SESSION = "no treatment session recorded"
NO_START = "no start assessment"
ANALYSIS_SET = "analysis set"


def outcome_scores(assessments: pd.DataFrame, outcomes: Mapping[str, Outcome]) -> pd.DataFrame:
    """Add one column per declared outcome: its source column, or, when at least `min_answered`
    items are answered (else missing), the mean of the answered items or their prorated sum
    (that mean times the number of items: the sum when all are answered)."""
    out = assessments.copy()
    for name, outcome in outcomes.items():
        if outcome.column is not None:
            out[name] = out[outcome.column].astype("Float64").astype(float)
        else:
            items = out[list(outcome.items)].astype("Float64").astype(float)
            answered = items.notna().sum(axis=1)
            score = items.mean(axis=1, skipna=True)
            if outcome.score == "sum":
                score = score * len(outcome.items)
                n_items, least = len(outcome.items), outcome.min_answered
                prorated = int(((answered >= least) & (answered < n_items)).sum())
                if prorated:
                    log.info(
                        "%s: %d assessments with %d to %d of %d items answered: sum prorated",
                        name, prorated, least, n_items - 1, n_items,
                    )  # fmt: skip
            out[name] = score.where(answered >= outcome.min_answered)
            too_few = int(((answered > 0) & (answered < outcome.min_answered)).sum())
            if too_few:
                log.info(
                    "%s: %d assessments with fewer than %d of %d items answered -> missing",
                    name,
                    too_few,
                    outcome.min_answered,
                    len(outcome.items),
                )
    return out


def intervention_flags(sessions: pd.DataFrame, codes: list[str]) -> pd.DataFrame:
    """One boolean column per category (`intervention_<code>`): was it used in the session."""
    out = sessions.copy()
    padded = ";" + out["interventions"].fillna("") + ";"
    for code in codes:
        out[f"intervention_{code}"] = padded.str.contains(f";{code};", regex=False).astype(bool)
    return out


def _take(values: pd.Series, position: np.ndarray, index: pd.Index) -> pd.Series:
    """values.reindex(index) from a precomputed position (-1 = absent -> missing): one string
    lookup serves every column of the same source (reindex would hash the ids each time)."""
    return pd.Series(values.array.take(position, allow_fill=True), index=index, name=values.name)


def patient_table(
    patients: pd.DataFrame,
    sessions: pd.DataFrame | None,
    assessments: pd.DataFrame,
    outcomes: Sequence[str],
    occasions: Sequence[str],
    derived: Mapping[str, Any],
    codes: list[str],
) -> pd.DataFrame:
    """One row per referred patient with every derived variable (config `derived`) and the flow
    status; outcomes at each occasion as `<outcome>_<occasion>`.

    `assessments` must carry the outcome columns (outcome_scores); `sessions` the
    intervention flags (intervention_flags), or be None for a study without session data.
    """
    out = patients.copy().set_index("patient_id")
    if "pain_duration_days" in out:
        out["pain_duration_years"] = (
            out["pain_duration_days"].astype("Float64").astype(float) / DAYS_PER_YEAR
        )
    if "low_ability_to_reduce_pain" in derived:
        spec = derived["low_ability_to_reduce_pain"]
        value = out[spec["column"]].astype("Float64")
        out["low_ability_to_reduce_pain"] = (value <= spec["max_value"]).astype("boolean")

    outcomes = list(outcomes)
    baseline = occasions[0]
    a = assessments.assign(occasion=assessments["occasion"].astype(str))
    measured = a[outcomes].notna().any(axis=1)
    for occasion in occasions:
        at = a[a["occasion"] == occasion]
        rows = at.set_index("patient_id")
        position = rows.index.get_indexer(out.index)  # once per occasion, not per column
        # Assessed = an assessment row with at least one outcome measured.
        out[f"assessed_{occasion}"] = is_in(out.index, at.loc[measured.loc[at.index], "patient_id"])
        for outcome in outcomes:
            out[f"{outcome}_{occasion}"] = _take(rows[outcome], position, out.index)
        if "assessed_on" in rows:  # a study may not record assessment dates
            out[f"date_{occasion}"] = _take(rows["assessed_on"], position, out.index)
        if "anchor" in derived:  # e.g. a global impression of change, per occasion
            anchor = rows[derived["anchor"]["column"]].astype("Float64").astype(float)
            out[f"anchor_{occasion}"] = _take(anchor, position, out.index)
    if "anxious_depressed" in derived:
        spec = derived["anxious_depressed"]
        level = (
            a[a["occasion"] == baseline].set_index("patient_id")[spec["column"]].reindex(out.index)
        )
        out["anxious_depressed"] = (level.astype("Float64") >= spec["min_level"]).astype("boolean")

    if sessions is not None:
        out = _with_session_variables(out, sessions, codes)

    status = pd.Series(ANALYSIS_SET, index=out.index, dtype=object)
    if "included" not in out:  # an extract of treated patients only: all are in the cohort
        log.info("no 'included' column: every patient of the extract counts as included")
        out["included"] = pd.Series("yes", index=out.index, dtype="string")
    included = out["included"].astype(str)
    status[out[f"assessed_{baseline}"].eq(False)] = NO_START
    if sessions is not None:
        status[out["n_sessions"] == 0] = NO_SESSION
    status[out["included"].isna()] = INCLUSION_UNKNOWN
    status[included == "no"] = NOT_INCLUDED
    out["flow_status"] = status.astype(str)  # the dtype a parquet round trip gives
    out["analysis_set"] = status == ANALYSIS_SET
    return out.reset_index()


def _with_session_variables(
    out: pd.DataFrame, sessions: pd.DataFrame, codes: list[str]
) -> pd.DataFrame:
    """The dose (sessions, first and last session, programme months) and the intervention
    categories each patient received, from the sessions."""
    by_patient = sessions.groupby("patient_id", observed=True)
    size = by_patient.size()
    position = size.index.get_indexer(out.index)
    out["n_sessions"] = _take(size, position, out.index).fillna(0).astype(int)
    out["first_session"] = _take(by_patient["session_date"].min(), position, out.index)
    out["last_session"] = _take(by_patient["session_date"].max(), position, out.index)
    out["programme_months"] = (out["last_session"] - out["first_session"]).dt.days / DAYS_PER_MONTH
    flags = [f"intervention_{c}" for c in codes]
    received = by_patient[flags].any()
    received = pd.DataFrame(
        {f: _take(received[f], position, out.index) for f in flags}, index=out.index
    )
    received = received.fillna(False).astype(bool)
    received.columns = [f"received_{c}" for c in codes]
    out = out.join(received)
    out["n_categories"] = received.sum(axis=1)
    return out


def patient_flow(
    patients: pd.DataFrame,
    occasions: Sequence[Occasion],
    has_sessions: bool,
    reason_labels: dict[str, str] | None = None,
) -> pd.DataFrame:
    """STROBE-style flow counts: stages with n, and each exclusion with its reason and n. Reasons
    are the contract's coded labels (`reason_labels`); without a codebook the not-included are
    one row: a free-text reason never reaches a published table."""
    rows: list[dict[str, Any]] = []

    def stage(key: str, label: str, n: int) -> None:
        rows.append({"kind": "stage", "key": key, "label": label, "n": n})

    def excluded(key: str, label: str, n: int) -> None:
        rows.append({"kind": "excluded", "key": key, "label": label, "n": n})

    status = patients["flow_status"]
    stage("referred", "Referred patients in the extract", len(patients))
    not_included = patients[status == NOT_INCLUDED]
    if reason_labels:
        reasons = (
            not_included["exclusion_reason"]
            .astype("string")
            .map(reason_labels)
            .fillna("reason not recorded")
        )
        for reason, n in sorted(reasons.value_counts().items(), key=lambda kv: (-kv[1], kv[0])):
            excluded("not_included", f"Not included: {reason}", int(n))
    elif len(not_included):
        excluded("not_included", "Not included (reason not coded)", len(not_included))
    excluded(
        "inclusion_unknown", "Inclusion status unknown", int((status == INCLUSION_UNKNOWN).sum())
    )
    remaining = len(patients) - len(not_included) - int((status == INCLUSION_UNKNOWN).sum())
    stage("included", "Included in the cohort", remaining)
    if has_sessions:
        n = int((status == NO_SESSION).sum())
        excluded("no_session", "No treatment session recorded", n)
        remaining -= n
        stage("with_sessions", "With at least one treatment session", remaining)
    n = int((status == NO_START).sum())
    excluded("no_start", f"No {occasions[0].label.lower()} assessment", n)
    analysis = patients[patients["analysis_set"]]
    stage("analysis_set", f"Analysis set (assessed at {occasions[0].label.lower()})", len(analysis))
    for occ in occasions[1:]:
        n = int(analysis[f"assessed_{occ.name}"].sum())
        stage(f"assessed_{occ.name}", f"Assessed at {occ.label.lower()}", n)
        excluded(f"missing_{occ.name}", f"Not assessed at {occ.label.lower()}", len(analysis) - n)
    flow = pd.DataFrame(rows)
    flow.insert(0, "order", np.arange(1, len(flow) + 1))
    if int(flow.loc[flow["key"] == "analysis_set", "n"].iat[0]) != int(
        patients["analysis_set"].sum()
    ):
        raise AssertionError("flow: analysis set count does not match the patient table")
    return flow


def derive_tables(
    tables: dict[str, pd.DataFrame],
    outcomes: Mapping[str, Outcome],
    occasions: Sequence[str],
    derived: Mapping[str, Any],
    codes: list[str],
) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame]:
    """From the cleaned tables: (patient table, sessions with category flags or None,
    assessments with outcome scores)."""
    assessments = outcome_scores(tables["assessments"], outcomes)
    sessions = tables.get("sessions")
    if sessions is not None:
        sessions = intervention_flags(sessions, codes)
    patients = patient_table(
        tables["patients"], sessions, assessments, list(outcomes), occasions, derived, codes
    )
    return patients, sessions, assessments
