"""Delta-adjusted multiple imputation and its tipping point (cohort.analysis.tipping), against closed
forms on crafted completed data sets: at delta 0 the MI estimate of the pipeline's own pooling,
the mean improvement falling by exactly delta x (missing / N), the shift towards worse whichever
way the scale runs, and the tipping point where the CI first reaches the null."""

import numpy as np
import pandas as pd
import pytest

from cohort.analysis.imputation import pooled_proportion
from cohort.analysis.responders import CATEGORIES, RESPONDER, category_codes, in_population
from cohort.analysis.tipping import TippingSettings, delta_adjusted, shifted_follow_up
from cohort.core.settings import McidRule, Outcome

PAIN = Outcome("pain", "Pain", (0, 10), "lower", mcid=McidRule(2.0, None, reference="t"))
HEALTH = Outcome("health", "Health", (0, 100), "higher", mcid=McidRule(10.0, None, reference="t"))
OCCASIONS = ["start", "end"]


def crafted(n: int = 200, m: int = 6, seed: int = 2) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    """An analysis set with a third of the follow-ups missing completely at random, and m
    completed sets whose imputed values vary (as imputations do), all away from the scale's ends."""
    rng = np.random.default_rng(seed)
    start = rng.integers(4, 8, n).astype(float)
    follow = np.clip(start - rng.integers(0, 4, n), 2, 8).astype(float)
    observed = pd.DataFrame({"pain_start": start, "pain_end": follow})
    missing = rng.random(n) < 1 / 3
    observed.loc[missing, "pain_end"] = np.nan
    completed = []
    for _ in range(m):
        data = observed.copy()
        data.loc[missing, "pain_end"] = rng.integers(2, 8, int(missing.sum())).astype(float)
        completed.append(data)
    return observed, completed


def test_at_delta_0_the_rate_is_the_mi_estimate_and_the_improvement_falls_by_delta_times_the_missing_share():
    observed, completed = crafted()
    settings = TippingSettings(deltas_sd=(0.0, 0.2, 0.4), rate_margin_pct=25)
    table = delta_adjusted(
        completed, observed, {"pain": PAIN}, OCCASIONS, "non_responder", settings
    )
    rows = table[table["section"] == "delta"].set_index("delta_sd")
    # delta 0: the pooling of the MI rows of missing_data_sensitivity.csv (rate per set, logit Rubin)
    rates = []
    for data in completed:
        codes = category_codes(data["pain_start"], data["pain_end"], PAIN)
        counted = in_population(codes, "non_responder")
        rates.append((codes[counted] == CATEGORIES.index(RESPONDER)).mean())
    estimate, low, high, _ = pooled_proportion(np.array(rates), len(observed))
    assert rows.loc[0.0, "rate_pct"] == pytest.approx(100 * estimate)
    assert rows.loc[0.0, "rate_ci_low_pct"] == pytest.approx(100 * low)
    # the improvement: each set's mean falls by delta x (missing / N), no value near the ends
    share = observed["pain_end"].isna().mean()
    sd = observed["pain_start"].std(ddof=1)
    for k in (0.2, 0.4):
        assert rows.loc[k, "delta"] == pytest.approx(k * sd)
        assert rows.loc[0.0, "improvement"] - rows.loc[k, "improvement"] == pytest.approx(
            k * sd * share
        )
    assert (rows["missing_shifted"] == observed["pain_end"].isna().sum()).all()
    assert rows["rate_pct"].is_monotonic_decreasing


def test_the_shift_is_towards_worse_within_the_scale():
    follow = np.array([1.0, 9.5, 50.0, 98.0])
    missing = np.array([True, True, False, True])
    assert list(shifted_follow_up(follow, missing, 1.0, PAIN)) == [2.0, 10.0, 50.0, 10.0]
    assert list(shifted_follow_up(follow, missing, 5.0, HEALTH)) == [0.0, 4.5, 50.0, 93.0]


def test_the_tipping_point_is_the_first_delta_whose_ci_reaches_the_null():
    observed, completed = crafted()
    grid = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)
    table = delta_adjusted(
        completed, observed, {"pain": PAIN}, OCCASIONS, "non_responder", TippingSettings(grid, 25)
    )
    curve = table[table["section"] == "delta"].set_index("delta_sd")
    tipping = table[table["section"] == "tipping point"]
    tipping = tipping.set_index(tipping["method"].str.split(":").str[0])
    first = next(k for k in grid if curve.loc[k, "improvement_ci_low"] <= 0)
    assert tipping.loc["mean improvement", "delta_sd"] == first
    assert curve.loc[grid[grid.index(first) - 1], "improvement_ci_low"] > 0
    rate_first = next((k for k in grid if curve.loc[k, "rate_ci_low_pct"] <= 25), None)
    if rate_first is None:
        assert "beyond the grid" in tipping.loc["responder rate", "method"]
    else:
        assert tipping.loc["responder rate", "delta_sd"] == rate_first


def test_a_follow_up_nobody_missed_does_not_move():
    observed, completed = crafted()
    observed = completed[0].copy()  # nothing missing
    table = delta_adjusted(
        [observed] * 3, observed, {"pain": PAIN}, OCCASIONS, "non_responder",
        TippingSettings((0.0, 1.0), 25),
    )  # fmt: skip
    rows = table[table["section"] == "delta"]
    assert rows["improvement"].nunique() == 1
    assert rows["method"].str.contains("the imputations do not differ").all()  # named, not pooled
