"""Calibration: the committed synthetic extract (274 patients), cleaned and derived by the
pipeline's own functions, reproduces Table 2 of the paper and the abstract's responder rates.

Tolerance: 3 standard errors of a sample of this run's size (n = valid n, about 274), the
two-sided 99.7% band of sampling error. The extract is a single fixed draw, so each check either
always passes or always fails; 3 SE says "a real sample of 274 from the paper's population could
look like this". Standard errors: proportion sqrt(p(1-p)/n); mean SD/sqrt(n); SD
SD/sqrt(2(n-1)) (normal theory); a quartile is checked distribution-free, by asking whether the
paper's quartile value sits at a sample cumulative share within 3 sqrt(q(1-q)/n) of q.
"""

from __future__ import annotations

import numpy as np
import pytest

from cohort.core.config import load_config
from cohort.io.reading import read_extract
from cohort.io.synthetic import RESPONDER_TARGETS

from .conftest import ROOT, analysis_set

K = 3.0
CONFIG = load_config(ROOT / "config/config.yaml", ROOT / "config/config.schema.yaml")


@pytest.fixture(scope="module")
def analysis(contract, config, codebook):
    return analysis_set(
        read_extract(ROOT / "data/raw/synthetic", contract), contract, config, codebook
    )


def check_proportion(share: float, p: float, n: int, what: str) -> None:
    se = np.sqrt(p * (1 - p) / n)
    assert abs(share - p) <= K * se, (
        f"{what}: {share:.3f} vs paper {p:.3f} (3 SE = {K * se:.3f}, n = {n})"
    )


def test_analysis_set_is_274(analysis):
    assert len(analysis) == 274


@pytest.mark.parametrize("row", CONFIG["baseline"], ids=[r["variable"] for r in CONFIG["baseline"]])
def test_table2_row_within_sampling_error(analysis, row):
    values = analysis[row["variable"]].dropna()
    n = len(values)
    paper = row["paper"]
    if "valid_n" in paper:  # the share missing is itself a calibration target
        check_proportion(
            1 - n / len(analysis), 1 - paper["valid_n"] / 274, len(analysis), "missing share"
        )
    if row["statistic"] == "mean_sd":
        x = values.astype(float)
        sd = paper["sd"]
        assert abs(x.mean() - paper["mean"]) <= K * sd / np.sqrt(n), (x.mean(), paper["mean"])
        assert abs(x.std(ddof=1) - sd) <= K * sd / np.sqrt(2 * (n - 1)), (x.std(ddof=1), sd)
        if "min" in paper:
            assert x.min() >= paper["min"] and x.max() <= paper["max"]
    elif row["statistic"] == "median_iqr":
        x = values.astype(float).to_numpy()
        for q, key in ((0.25, "q1"), (0.5, "median"), (0.75, "q3")):
            below, at_or_below = np.mean(x < paper[key]), np.mean(x <= paper[key])
            tol = K * np.sqrt(q * (1 - q) / n)
            assert below - tol <= q <= at_or_below + tol, (key, paper[key], below, at_or_below)
    else:
        levels = paper["levels"] if "levels" in paper else {row["level"]: paper}
        total = paper.get("valid_n", 274)
        for level, figure in levels.items():
            if isinstance(level, bool):
                share = values.astype(bool).eq(level).mean()
            else:
                share = values.astype(str).eq(str(level)).mean()
            check_proportion(share, figure["n"] / total, n, f"{row['variable']}={level}")


def test_discharge_responder_rates_within_sampling_error(analysis):
    """Abstract: 45% pain, 61% disability, 50% health improved at discharge (default MCIDs)."""
    signs = {"pain": 1, "disability": 1, "health": -1}
    mcid = {"pain": 2, "disability": 10, "health": 10}
    for outcome, target in RESPONDER_TARGETS["discharge"].items():
        change = (
            signs[outcome] * (analysis[f"{outcome}_start"] - analysis[f"{outcome}_discharge"])
        ).dropna()
        check_proportion(float((change >= mcid[outcome]).mean()), target, len(change), outcome)


def test_dose_and_most_frequent_categories(analysis, codebook):
    """Abstract: median 9 sessions over a median of 5 months; the four most frequent categories
    are education, sensorimotor training, physical activity advice, structures and functions."""
    sessions = analysis["n_sessions"].to_numpy()
    tol = K * np.sqrt(0.25 / len(sessions))
    assert np.mean(sessions < 9) - tol <= 0.5 <= np.mean(sessions <= 9) + tol
    months = analysis["programme_months"].dropna().to_numpy()
    assert np.mean(months < 5) - tol <= 0.5 <= np.mean(months <= 5) + tol
    shares = {code: analysis[f"received_{code}"].mean() for code in codebook}
    top4 = sorted(shares, key=shares.get, reverse=True)[:4]
    assert set(top4) == {"1", "2", "3", "4"}
