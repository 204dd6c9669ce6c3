"""Outcome statistics against closed forms, hand calculations and a second library."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.weightstats import DescrStatsW

from cohort.analysis.outcomes import (
    describe,
    friedman_tests,
    mean_ci,
    outcome_changes,
    outcome_levels,
    wilcoxon_signed_rank,
)
from cohort.core.settings import Outcome, Statistics

OCCASIONS = ["start", "end", "late"]
OUTCOMES = {"pain": Outcome("pain", "Pain", (0, 10), "lower")}


def test_describe_uses_linear_quartiles():
    stat = describe(pd.Series([1, 2, 3, 4, 10, np.nan]))
    assert stat["n"] == 5 and stat["median"] == 3
    assert (stat["q1"], stat["q3"]) == (2, 4)
    assert stat["mean"] == 4 and stat["sd"] == pytest.approx(np.std([1, 2, 3, 4, 10], ddof=1))


def test_mean_ci_closed_form_and_statsmodels():
    x = np.array([1.0, 2, 3, 4, 5])
    mean, low, high = mean_ci(x, 0.95)
    half = 2.7764451051977987 * np.sqrt(2.5) / np.sqrt(5)  # t(0.975, 4) * s / sqrt(n)
    assert (mean, low, high) == pytest.approx((3, 3 - half, 3 + half))
    assert (low, high) == pytest.approx(DescrStatsW(x).tconfint_mean(alpha=0.05))


def test_wilcoxon_exact_by_hand():
    # |d| ranks 1..6; negative rank 3 -> W- = 3, W+ = 18; two-sided exact p = 2 * P(T <= 3)
    # = 2 * #{subsets of 1..6 with sum <= 3} / 2^6 = 2 * 5 / 64.
    result = wilcoxon_signed_rank(np.array([1.0, 2, -3, 4, 5, 6]))
    assert result["method"].startswith("V = sum of positive ranks; exact")
    assert result["n_nonzero"] == 6
    assert result["statistic"] == 18 and result["p_value"] == pytest.approx(10 / 64)


def test_wilcoxon_normal_approximation_by_hand():
    d = np.array([0, 1, 1, 2, -2, 3, 3, 3, -1, 4, 5, 5, 6, -6, 7], dtype=float)
    result = wilcoxon_signed_rank(d)
    nz = d[d != 0]
    n = len(nz)
    ranks = stats.rankdata(np.abs(nz))
    w_plus = ranks[nz > 0].sum()
    _, counts = np.unique(np.abs(nz), return_counts=True)
    var = n * (n + 1) * (2 * n + 1) / 24 - (counts**3 - counts).sum() / 48
    mean = n * (n + 1) / 4
    z = (abs(w_plus - mean) - 0.5) / np.sqrt(var)
    assert "normal approximation" in result["method"]
    assert result["n_nonzero"] == 14
    assert result["statistic"] == w_plus
    assert result["p_value"] == pytest.approx(2 * stats.norm.sf(z), rel=1e-9)


R_WILCOX = [  # R 4.2.2: wilcox.test(d): V and p (zeros: normal approximation, as R decides)
    ([-2, -1, 0, 3, -4, -5, -6, 2, -7, -8, -9, -1, 0], 8.5, 0.0326816989529066),
    ([-2.5, -1.1, 3.2, -4.4, -5.3, -6.1, 2.2, -7.7, -8.9, -9.4], 6, 0.02734375),
    ([-2, -1, 1, -3, -2, -4, 2, -3, -1, -5, -2], 7.5, 0.0251279742755431),
]


@pytest.mark.parametrize(("d", "v", "p"), R_WILCOX)
def test_wilcoxon_equals_r_wilcox_test(d, v, p):
    """V and the p-value as R prints them, with zeros (R then uses the normal approximation, where
    scipy's 'auto' would give an exact p), without ties (exact) and with ties."""
    result = wilcoxon_signed_rank(np.array(d, dtype=float))
    assert result["statistic"] == v and result["p_value"] == pytest.approx(p, rel=1e-9)


def test_wilcoxon_pratt_ranks_the_zeros():
    """Pratt: zeros take the lowest ranks before they are dropped, so V counts the positive
    differences' ranks among all |d| (here 0, 0, 1, -2, 3: ranks 1.5, 1.5, 3, 4, 5; V = 3 + 5).
    Closed form (Cureton 1967): with n = 5 values of which n0 = 2 zeros, E V = (n(n+1) -
    n0(n0+1))/4 = 6, var V = (n(n+1)(2n+1) - n0(n0+1)(2n0+1))/24 = 12.5; continuity corrected."""
    d = np.array([0.0, 0, 1, -2, 3])
    result = wilcoxon_signed_rank(d, "pratt")
    assert result["statistic"] == 8 and "Pratt" in result["method"]
    z = (8 - 6 - 0.5) / np.sqrt(12.5)
    assert result["p_value"] == pytest.approx(2 * stats.norm.sf(z), rel=1e-9)


def patients_frame():
    return pd.DataFrame(
        {
            "pain_start": [8, 7, 6, 9, 5, np.nan],
            "pain_end": [5, 7, 3, 6, np.nan, 4],
            "pain_late": [4, 8, 2, 5, 6, 3],
        }
    )


def test_changes_use_complete_pairs_only():
    changes = outcome_changes(patients_frame(), OUTCOMES, OCCASIONS, Statistics()).set_index(
        "occasion"
    )
    assert changes.loc["end", "pairs_n"] == 4  # patients 5 and 6 lack one of the two
    d = np.array([-3, 0, -3, -3.0])
    assert changes.loc["end", "mean_change"] == pytest.approx(d.mean())
    assert changes.loc["end", "srm"] == pytest.approx(d.mean() / d.std(ddof=1))
    assert changes.loc["end", "median_change"] == -3
    assert changes.loc["late", "pairs_n"] == 5
    assert set(changes["N"]) == {6}


def test_friedman_by_hand_and_complete_cases():
    table = friedman_tests(patients_frame(), OUTCOMES, OCCASIONS).iloc[0]
    assert table["complete_cases_n"] == 4 and table["df"] == 2
    # Ranks within each complete patient (start, end, late): [3,2,1], [1.5,1.5,3], [3,2,1], [3,2,1]
    ranks = np.array([[3, 2, 1], [1.5, 1.5, 3], [3, 2, 1], [3, 2, 1]])
    n, k = ranks.shape
    r = ranks.sum(axis=0)
    chi2 = 12 / (n * k * (k + 1)) * (r**2).sum() - 3 * n * (k + 1)
    ties = 1 - (2**3 - 2) / (n * (k**3 - k))  # one tie of two in one block
    assert table["statistic"] == pytest.approx(chi2 / ties)
    assert table["p_value"] == pytest.approx(stats.chi2.sf(chi2 / ties, 2))


def test_levels_count_measured_patients():
    levels = outcome_levels(patients_frame(), OUTCOMES, OCCASIONS, "type7").set_index("occasion")
    assert list(levels["n"]) == [5, 5, 6]
    assert levels.loc["late", "median"] == 4.5


@pytest.mark.parametrize(
    ("values", "method", "expected"),
    [  # R 4.2.2: quantile(x, c(.25, .5, .75), type = 6 or 7)
        ([3, 7, 8, 5, 12, 14, 21, 13, 18, 1, 40], "spss", (5, 12, 18)),
        ([3, 7, 8, 5, 12, 14, 21, 13, 18, 1, 40], "type7", (6, 12, 16)),
        ([479.5, 12, 7, 100, 230, 66], "spss", (10.75, 83, 292.375)),
    ],
)
def test_quartiles_are_r_s_type_7_or_spss_type_6(values, method, expected):
    """One quartile function for every median and quartile; SPSS's definition is R's type 6."""
    from cohort.analysis.tables import quartiles

    q = quartiles(pd.Series([*values, np.nan]), method)
    assert (q["q1"], q["median"], q["q3"]) == pytest.approx(expected, rel=1e-12)
    assert describe(pd.Series(values), method)["q3"] == pytest.approx(expected[2], rel=1e-12)


def test_change_boxes_use_the_tables_quartiles():
    """With type 7 the boxes equal matplotlib's own (cbook.boxplot_stats, whis 1.5); with spss
    the box edges are the SPSS quartiles of the tables, so figure and table agree."""
    from matplotlib import cbook

    from cohort.analysis.tables import quartiles
    from cohort.publish.outcome_figures import _box_stats

    values = np.array([3.0, 7, 8, 5, 12, 14, 21, 13, 18, 1, 40, -30])
    ours, reference = _box_stats(values, "type7"), cbook.boxplot_stats(values, whis=1.5)[0]
    for key in ("med", "q1", "q3", "whislo", "whishi"):
        assert ours[key] == pytest.approx(reference[key]), key
    spss = _box_stats(values, "spss")
    q = quartiles(values, "spss")
    assert (spss["q1"], spss["med"], spss["q3"]) == (q["q1"], q["median"], q["q3"])
    assert spss["q1"] != ours["q1"]
