"""init-study's occasions (issue 31): in time order by their dates where the extract has them,
else by the time in their names, else as found (said so); labels only where the name says it;
a trial's arm proposed as a TODO."""

import pandas as pd
import pytest

from cohort.io.scaffold import (
    arm_candidates,
    drafted_arm,
    occasion_label,
    occasion_time,
    order_occasions,
)


@pytest.mark.parametrize(
    "name, days, label",
    [
        ("baseline", 0, "Baseline"),
        ("week_7", 49, "Week 7"),
        ("week_12", 84, "Week 12"),
        ("12_weeks", 84, "12 weeks"),
        ("6m", 182.64, "6 months"),
        ("1y", 365.25, "1 year"),
        ("post_op_6m", 182.64, "6 months after surgery"),
        ("followup_1y", 365.25, "1-year follow-up"),
        ("pre_op", 0, "Before surgery"),
        ("discharge", None, None),
        ("visit2", None, None),
    ],
)
def test_the_time_and_label_a_name_says(name, days, label):
    time = occasion_time(name)
    assert (time[0] if time else None) == (pytest.approx(days) if days is not None else None)
    assert occasion_label(name) == label


def assessments(occasions: list[str], dates: list[str] | None = None) -> pd.DataFrame:
    frame = pd.DataFrame({"patient_id": range(len(occasions)), "occasion": occasions})
    if dates:
        frame["date"] = dates
    return frame


def test_names_order_week_7_before_week_12_and_6m_before_1y():
    order, how = order_occasions(assessments(["baseline", "week_12", "week_7"] * 2), [])
    assert order == ["baseline", "week_7", "week_12"] and "time in their names" in how
    order, _ = order_occasions(assessments(["1y", "pre_op", "post_op_6m"]), [])
    assert order == ["pre_op", "post_op_6m", "1y"]


def test_dates_come_before_names_and_appearance_is_said_to_be_checked():
    frame = assessments(
        ["intake", "discharge", "final", "intake", "discharge", "final"],
        ["2020-01-01", "2020-03-01", "2020-02-01", "2020-01-05", "2020-03-09", "2020-02-02"],
    )
    order, how = order_occasions(frame, ["date"])
    assert order == ["intake", "final", "discharge"] and "median date" in how
    order, how = order_occasions(frame.drop(columns="date"), [])
    assert order == ["intake", "discharge", "final"] and "TODO: check the order" in how


def test_an_arm_is_two_or_three_levels_of_similar_size():
    patients = pd.DataFrame(
        {
            "arm": ["a"] * 30 + ["b"] * 28,
            "sex": ["F"] * 50 + ["M"] * 8,
            "site": ["x", "y", "z", "w"] * 14 + ["x", "y"],
        }
    )
    found = arm_candidates(patients, ["arm", "sex", "site"])
    assert found == [("arm", {"a": 30, "b": 28})]


def test_a_column_named_like_an_arm_comes_first_and_only_it_leaves_the_covariates():
    """sex split 50/50 is a candidate too, but a covariate a study keeps; group is named like an
    arm: proposed first, and the only one the draft leaves out of the covariates."""
    patients = pd.DataFrame({"sex": ["F", "M"] * 20, "group": ["a"] * 21 + ["b"] * 19})
    assert [c for c, _ in arm_candidates(patients, ["sex", "group"])] == ["group", "sex"]
    assert drafted_arm(patients, ["sex", "group"]) == "group"
    assert drafted_arm(patients[["sex"]], ["sex"]) is None
