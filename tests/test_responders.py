"""MCID responders: the classification truth table, Wilson intervals against a published worked
example and a second implementation, McNemar by hand, denominators, composites and the sweep."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportion_confint

from cohort.analysis.responders import (
    ALL_INCLUDED,
    AVAILABLE,
    classify,
    classify_all,
    composites,
    course,
    mcnemar_exact,
    responder_rates,
    subgroup_rates,
    threshold_sweep,
    wilson_interval,
)
from cohort.core.settings import Analysis, McidRule, Outcome
from cohort.io.reading import read_extract

from .conftest import ROOT, analysis_set


def spec(
    better="lower",
    absolute=2.0,
    percent=None,
    combine="either",
    low=0,
    high=10,
    strict=False,
    name="pain",
):
    return Outcome(
        name=name,
        label=name,
        range=(low, high),
        better=better,
        mcid=McidRule(absolute, percent, combine, strict, reference="test"),
    )


# (start, follow-up, rule, expected category)
TRUTH_TABLE = [
    # absolute, lower is better (NPRS-like 0-10, MCID 2)
    (7, 5, spec(), "responder"),
    (7, 6, spec(), "non_responder"),
    (7, 9, spec(), "non_responder"),
    (1, 0, spec(), "could_not_improve"),  # floor: only 1 point of room
    (2, 0, spec(), "responder"),  # exactly the room needed
    (np.nan, 3, spec(), "missing"),
    (7, np.nan, spec(), "missing"),
    # absolute, higher is better (EQ VAS-like 0-100, MCID 10)
    (50, 60, spec("higher", 10, high=100), "responder"),
    (50, 59, spec("higher", 10, high=100), "non_responder"),
    (95, 100, spec("higher", 10, high=100), "could_not_improve"),  # ceiling
    # percent only (30% of start)
    (10, 7, spec(absolute=None, percent=30), "responder"),
    (10, 8, spec(absolute=None, percent=30), "non_responder"),
    (0, 0, spec(absolute=None, percent=30), "could_not_improve"),  # no percent change from 0
    (50, 65, spec("higher", None, 30, high=100), "responder"),
    (80, 100, spec("higher", None, 30, high=100), "could_not_improve"),  # needs 104
    # either: absolute 2 or 30%
    (4, 3, spec(absolute=2, percent=20), "responder"),  # 25% >= 20%, though only 1 point
    (9, 8, spec(absolute=2, percent=20), "non_responder"),
    (1, 0, spec(absolute=2, percent=20), "responder"),  # 100%: percent reachable at the floor
    # both: absolute 2 and 30%
    (8, 6, spec(absolute=2, percent=30, combine="both"), "non_responder"),  # 25% < 30%
    (8, 5, spec(absolute=2, percent=30, combine="both"), "responder"),
    (1, 0, spec(absolute=2, percent=30, combine="both"), "could_not_improve"),
    (9, 10, spec("higher", 2, 30, "both", high=10), "could_not_improve"),  # ceiling: 1 point left
]


@pytest.mark.parametrize(("start", "follow", "rule", "expected"), TRUTH_TABLE)
def test_classification_truth_table(start, follow, rule, expected):
    result = classify(pd.Series([start]), pd.Series([follow]), rule)
    assert result["category"].iat[0] == expected


def test_higher_is_better_both_rule_with_room():
    # start 5 on 0-10, higher better: +2 -> 7 and +30% -> 6.5 are both reachable; 10 meets both.
    result = classify(pd.Series([5.0]), pd.Series([10.0]), spec("higher", 2, 30, "both"))
    assert result["category"].iat[0] == "responder"
    assert result["improvement"].iat[0] == 5 and result["percent_improvement"].iat[0] == 100


def test_floating_point_threshold_is_met():
    # A DRI of 12 items can differ from its start by 9.999999999999998 instead of 10.
    result = classify(
        pd.Series([50.0]), pd.Series([50 - (0.1 * 3 + 9.7)]), spec(absolute=10, high=100)
    )
    assert result["category"].iat[0] == "responder"


NEWCOMBE_1998 = [  # Newcombe RG. Stat Med 1998;17:857-72, Table I, method 3 (Wilson score)
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0000, 0.1611),
    (1, 29, 0.0061, 0.1718),
    (29, 29, 0.8830, 1.0000),
    (0, 10, 0.0000, 0.2775),
]


@pytest.mark.parametrize(("k", "n", "low", "high"), NEWCOMBE_1998)
def test_wilson_against_published_example_and_statsmodels(k, n, low, high):
    ours = wilson_interval(k, n, 0.95)
    assert ours == pytest.approx((low, high), abs=6e-5)
    assert ours == pytest.approx(proportion_confint(k, n, alpha=0.05, method="wilson"), abs=1e-12)


def test_wilson_coverage_by_simulation():
    """Wilson's 95% interval covers the true proportion about 95% of the time (n = 60, p = 0.45)."""
    rng = np.random.default_rng(1)
    k = rng.binomial(60, 0.45, size=4000)
    covered = [lo <= 0.45 <= hi for lo, hi in (wilson_interval(int(x), 60) for x in k)]
    assert 0.93 <= np.mean(covered) <= 0.97


def test_mcnemar_exact_by_hand_and_statsmodels():
    # b = 2, c = 8: p = 2 * P(X <= 2 | n = 10, 1/2) = 2 * (1 + 10 + 45) / 1024
    assert mcnemar_exact(2, 8) == pytest.approx(112 / 1024)
    assert mcnemar_exact(2, 8) == pytest.approx(mcnemar([[5, 2], [8, 5]], exact=True).pvalue)
    assert mcnemar_exact(5, 5) == 1.0 and mcnemar_exact(0, 0) == 1.0


CONFIG = {
    "occasions": [
        {"name": "start", "label": "S"},
        {"name": "end", "label": "E"},
        {"name": "late", "label": "L"},
    ],
    "outcomes": {"pain": spec(), "health": spec("higher", 10, high=100, name="health")},
}
OCCASIONS = ["start", "end", "late"]


@pytest.fixture
def patients():
    return pd.DataFrame(
        {
            "patient_id": ["a", "b", "c", "d", "e", "f"],
            "sex": pd.Categorical(["F", "F", "M", "M", "F", None], categories=["F", "M"]),
            "pain_start": [8, 6, 1, 7, 5, 9],
            "pain_end": [5, 6, 0, np.nan, 2, 8],  # R, N, CNI, missing, R, N
            "pain_late": [5, 3, 1, 4, np.nan, 9],  # R, R, CNI, R, missing, N
            "health_start": [40, 50, 95, 30, 60, 20],
            "health_end": [55, 52, 100, 40, 61, np.nan],  # R, N, CNI, R, N, missing
            "health_late": [50, 70, 96, 41, 75, 30],  # R, R, CNI, R, R, R
        }
    )


def test_rates_under_both_denominators_and_handlings(patients):
    classified = classify_all(patients, CONFIG["outcomes"], OCCASIONS)
    comp = composites(classified)
    rates = responder_rates(classified, comp, "non_responder", 6, 0.95).set_index(
        ["outcome", "occasion", "denominator"]
    )
    end = rates.loc[("pain", "end", AVAILABLE)]
    assert (end["responders"], end["n"], end["could_not_improve"], end["missing"]) == (2, 5, 1, 1)
    assert rates.loc[("pain", "end", ALL_INCLUDED), "n"] == 6
    assert (end["ci_low_pct"], end["ci_high_pct"]) == pytest.approx(
        tuple(100 * x for x in wilson_interval(2, 5))
    )
    excluded = responder_rates(classified, comp, "exclude", 6, 0.95).set_index(
        ["outcome", "occasion", "denominator"]
    )
    assert excluded.loc[("pain", "end", AVAILABLE), "n"] == 4
    assert excluded.loc[("pain", "end", ALL_INCLUDED), "n"] == 5
    # Composites at 'end': a (R, R), b (N, N), c (CNI, CNI), d (missing), e (R, N), f (N, missing)
    assert rates.loc[("any outcome", "end", AVAILABLE), "responders"] == 2  # a, e
    assert rates.loc[("any outcome", "end", AVAILABLE), "n"] == 4  # d and f lack an outcome
    assert rates.loc[("all outcomes", "end", AVAILABLE), "responders"] == 1  # a


def test_rate_checks_its_n(patients):
    classified = classify_all(patients, CONFIG["outcomes"], OCCASIONS)
    with pytest.raises(AssertionError, match="analysis set has 7"):
        responder_rates(classified, composites(classified), "non_responder", 7, 0.95)


def test_course_counts(patients):
    table = course(
        classify_all(patients, CONFIG["outcomes"], OCCASIONS), "end", "late", "exclude", 0.95
    ).set_index("outcome")
    pain = table.loc["pain"]  # classified at both: a (R, R), b (N, R), f (N, N)
    assert (pain["n"], pain["sustained"], pain["lost"], pain["late"], pain["never"]) == (
        3,
        1,
        0,
        1,
        1,
    )
    assert pain["N"] == len(patients) and pain["not_classified_at_both"] == len(patients) - 3
    assert pain["mcnemar_p"] == 1.0  # lost 0 vs late 1
    # Wilson interval of 1 of 3 (Newcombe 1998, method 3): 6.15% to 79.2%
    assert pain["sustained_pct"] == pytest.approx(100 / 3)
    assert (pain["sustained_ci_low_pct"], pain["sustained_ci_high_pct"]) == pytest.approx(
        (6.149, 79.23), abs=0.01
    )


def test_subgroups_partition_the_cohort(patients):
    classified = classify_all(patients, CONFIG["outcomes"], OCCASIONS)
    table = subgroup_rates(patients, classified, ["sex"], "non_responder", 0.95)
    pain_end = table[(table["outcome"] == "pain") & (table["occasion"] == "end")].set_index("level")
    assert list(pain_end.index) == ["F", "M", "(missing)"]
    assert pain_end["patients_in_level"].sum() == 6
    assert (pain_end.loc["F", "responders"], pain_end.loc["F", "n"]) == (2, 3)  # a, e of a, b, e


def test_sweep_at_the_configured_threshold_equals_the_rate(patients):
    classified = classify_all(patients, CONFIG["outcomes"], OCCASIONS)
    sweep = pd.concat(
        threshold_sweep(patients, CONFIG["outcomes"][o], OCCASIONS, 11, 0.95)
        for o in CONFIG["outcomes"]
    )
    at_mcid = sweep[
        (sweep["outcome"] == "pain") & (sweep["occasion"] == "end") & (sweep["threshold"] == 2)
    ].iloc[0]
    rates = responder_rates(classified, composites(classified), "non_responder", 6, 0.95)
    rate = rates[
        (rates["outcome"] == "pain")
        & (rates["occasion"] == "end")
        & (rates["denominator"] == AVAILABLE)
    ].iloc[0]
    assert (at_mcid["reaching"], at_mcid["n"]) == (rate["responders"], rate["n"])
    for scale in ("absolute", "percent"):
        curve = sweep[
            (sweep["outcome"] == "health")
            & (sweep["occasion"] == "late")
            & (sweep["scale"] == scale)
        ]["pct"].to_numpy()
        assert (np.diff(curve) <= 0).all()  # reaching a higher threshold is never more common


def test_default_extract_discharge_rates_match_the_paper(contract, config, codebook):
    """Available-case rates at discharge within 3 SE of the abstract's 45%, 61% and 50% (n about
    240: 3 SE is about 9.5 percentage points)."""
    analysis = analysis_set(
        read_extract(ROOT / "data/raw/synthetic", contract), contract, config, codebook
    )
    typed = Analysis.from_config(config)
    classified = classify_all(analysis, typed.outcomes, typed.occasion_names)
    rates = responder_rates(
        classified,
        composites(classified),
        config["responders"]["could_not_improve"],
        len(analysis),
        0.95,
    )
    for outcome, paper in config["responders"]["paper"]["discharge"].items():
        row = rates[
            (rates["outcome"] == outcome)
            & (rates["occasion"] == "discharge")
            & (rates["denominator"] == AVAILABLE)
        ].iloc[0]
        p = paper / 100
        assert abs(row["pct"] / 100 - p) <= 3 * np.sqrt(p * (1 - p) / row["n"]), (
            outcome,
            row["pct"],
        )


def test_sweep_needs_no_mcid_and_counts_the_percent_scale_by_hand(patients):
    """The sweep uses only the outcome's direction and range (rule threshold_sweep gets no MCID):
    at 50% of the start value, pain at the end is reached by c (100%) and e (60%) of five."""
    no_rule = Outcome(name="pain", label="Pain", range=(0, 10), better="lower")
    sweep = threshold_sweep(patients, no_rule, OCCASIONS, 11, 0.95)
    half = sweep[(sweep["scale"] == "percent") & (sweep["occasion"] == "end")]
    half = half[half["threshold"] == 50].iloc[0]
    # improvements of start: a 3/8 = 37.5%, b 0%, c 1/1 = 100%, e 3/5 = 60%, f 1/9 = 11%
    assert (half["reaching"], half["n"]) == (2, 5)


def test_one_population_rule_for_rates_course_and_models():
    """A could-not-improve patient is in every responder analysis as a non-responder with
    non_responder handling and in none with exclude: the rate's available denominator, the
    course table's n and the model's N move together by the same patients."""
    from cohort.analysis.predictors import patient_categories, response_frame
    from cohort.analysis.responders import in_population, rate_rows

    rows = {  # start, end, late: pain 0-10, MCID 2 (floor: start 1 cannot improve)
        "a": (7, 4, 4),
        "b": (1, 1, 0),  # could not improve at both follow-ups
        "c": (6, 6, 3),
        "d": (8, 5, np.nan),
    }
    patients = pd.DataFrame(
        {
            "patient_id": list(rows),
            "age": [40.0, 50, 60, 70],
            **{
                f"pain_{o}": [v[i] for v in rows.values()]
                for i, o in enumerate(["start", "end", "late"])
            },
        }
    )
    config = {**CONFIG, "outcomes": {"pain": CONFIG["outcomes"]["pain"]}}
    classified = classify_all(patients, config["outcomes"], OCCASIONS)
    for handling, with_b in (("non_responder", 1), ("exclude", 0)):
        at_end = patient_categories(classified, patients, "pain", "end")
        rate = rate_rows(pd.Series(at_end), handling, 4, 0.95)[0]
        assert rate["n"] == 3 + with_b and rate["responders"] == 2
        assert int(in_population(at_end, handling).sum()) == 3 + with_b
        stable = course(classified, "end", "late", handling, 0.95).set_index("outcome")
        assert stable.loc["pain", "n"] == 2 + with_b  # d is missing late
        frame = response_frame(patients, at_end, ["age"], handling)
        assert len(frame) == 3 + with_b and ("b" in set(frame["patient_id"])) == bool(with_b)


STRICT_TABLE = [  # (start, follow-up, rule, category) of a rule worded "more than"
    (20, 13, spec(absolute=None, percent=35, strict=True, high=120), "non_responder"),  # 35.0%
    (20, 12.9, spec(absolute=None, percent=35, strict=True, high=120), "responder"),
    (20, 13, spec(absolute=None, percent=35, high=120), "responder"),  # at least 35%
    (7, 5, spec(absolute=2, strict=True), "non_responder"),  # exactly 2 is not more than 2
    (2, 0, spec(absolute=2, strict=True), "could_not_improve"),  # 2 points of room: cannot exceed 2
    (3, 0, spec(absolute=2, strict=True), "responder"),
]


@pytest.mark.parametrize(("start", "follow", "rule", "expected"), STRICT_TABLE)
def test_strict_rules_need_more_than_the_threshold(start, follow, rule, expected):
    """The trialists' 'more than 35%': a patient at exactly 35% is not a responder (he is with
    'at least'); a start leaving exactly the threshold's room cannot improve by more than it."""
    assert classify(pd.Series([start]), pd.Series([follow]), rule)["category"].iat[0] == expected


def test_one_renderer_of_the_rule_in_words():
    from cohort.analysis.responders import rule_text

    assert rule_text(spec(absolute=2, percent=30).mcid) == "improvement ≥ 2 or ≥ 30% of start"
    assert rule_text(spec(absolute=None, percent=35, strict=True).mcid) == (
        "improvement > 35% of start"
    )
    assert rule_text(spec(absolute=2, percent=30, combine="both").mcid) == (
        "improvement ≥ 2 and ≥ 30% of start"
    )


DIRECTION_TABLE = [  # (start, follow-up, rule, direction): the rule both ways
    (7, 5, spec(), "improved"),
    (7, 6, spec(), "unchanged"),
    (5, 6, spec(), "unchanged"),  # worse by 1 < 2
    (5, 7, spec(), "deteriorated"),  # worse by exactly 2: 'at least'
    (5, 7, spec(strict=True), "unchanged"),  # ... but not 'more than' 2
    (1, 4, spec(), "could_not_improve"),  # floor: the category is kept, whatever the change
    (np.nan, 4, spec(), "missing"),
    (50, 35, spec("higher", 10, high=100), "deteriorated"),  # higher is better: 15 points down
    (20, 25, spec("lower", None, 30, high=120), "unchanged"),  # 25% worse; 30% of 20 is 6 ...
    (20, 26, spec("lower", None, 30, high=120), "deteriorated"),  # ... and 6 is at least 30%
    (10, 11, spec("lower", 2, 5, "either", high=120), "deteriorated"),  # 10% worse (either)
    (10, 11, spec("lower", 2, 5, "both", high=120), "unchanged"),  # 1 point < 2 (both)
]


@pytest.mark.parametrize(("start", "follow", "rule", "expected"), DIRECTION_TABLE)
def test_three_directions_truth_table(start, follow, rule, expected):
    assert classify(pd.Series([start]), pd.Series([follow]), rule)["direction"].iat[0] == expected


def test_direction_counts_add_up_to_the_responders_table(patients):
    """improved = responders; unchanged + deteriorated = non-responders; with could-not-improve
    and missing, N; the shares are of the responder population (as the responder rate), by hand."""
    from cohort.analysis.responders import direction_rates

    classified = classify_all(patients, CONFIG["outcomes"], OCCASIONS)
    for handling in ("exclude", "non_responder"):
        rates = responder_rates(classified, composites(classified), handling, 6, 0.95)
        table = direction_rates(classified, handling, 6, 0.95)
        merged = table.merge(
            rates[rates["denominator"] == AVAILABLE],
            on=["outcome", "occasion"],
            suffixes=("", "_r"),
        )
        assert len(merged) == len(table) == 4
        assert (merged["improved"] == merged["responders"]).all()
        assert (merged["unchanged"] + merged["deteriorated"] == merged["non_responders"]).all()
        assert (merged["n"] == merged["n_r"]).all()
        assert np.allclose(merged["improved_pct"], merged["pct"], equal_nan=True)
    # pain at the end: a 8->5 R, b 6->6 unchanged, c 1->0 CNI, d missing, e 5->2 R, f 9->8 unchanged
    row = table.set_index(["outcome", "occasion"]).loc[("pain", "end")]
    assert (row["improved"], row["unchanged"], row["deteriorated"], row["n"]) == (2, 2, 0, 5)
    assert row["could_not_improve_pct"] == pytest.approx(20.0)
    low, high = wilson_interval(2, 5)
    assert (row["improved_ci_low_pct"], row["improved_ci_high_pct"]) == pytest.approx(
        (100 * low, 100 * high)
    )


def test_rates_are_those_of_the_stacked_tables_with_or_without_composites(patients):
    """responder_rates groups the classification and the composites apart (a copy of the whole
    long table per group cost 2 GB at 10^6): the rows of the stacked tables, in their order;
    a study with no composite (an empty table, no columns) gets the outcomes' rows."""
    classified = classify_all(patients, CONFIG["outcomes"], OCCASIONS)
    comp = composites(classified)
    stacked = pd.concat([classified, comp], ignore_index=True)
    expected = [
        (outcome, occasion, group["rule"].iat[0], int((group["category"] == "responder").sum()))
        for (outcome, occasion), group in stacked.groupby(["outcome", "occasion"], sort=False)
    ]
    rates = responder_rates(classified, comp, "non_responder", 6, 0.95)
    available = rates[rates["denominator"] == AVAILABLE]
    assert list(available[["outcome", "occasion", "rule", "responders"]].itertuples(index=False, name=None)) == expected  # fmt: skip
    alone = responder_rates(classified, pd.DataFrame(), "non_responder", 6, 0.95)
    pd.testing.assert_frame_equal(alone, rates[~rates["outcome"].isin(comp["outcome"])].reset_index(drop=True))  # fmt: skip
