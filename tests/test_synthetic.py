"""The synthetic generator: byte-for-byte regeneration of the committed extract, determinism,
calibration of its population values, and the correlations it promises."""

from __future__ import annotations

import filecmp

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cohort.io.synthetic import RESPONDER_TARGETS, synthesize
from cohort.io.synthetic_faults import FAULT_CLASSES

from .conftest import ROOT, analysis_set, run_cli

COMMITTED = ROOT / "data/raw/synthetic"
FILES = ("patients.csv", "sessions.csv", "assessments.csv", "injected_faults.csv")


def test_command_regenerates_committed_extract_byte_for_byte(tmp_path):
    """`make synthetic` is `python -m cohort synthesize --n 274 --seed 20211022 --out ...`."""
    makefile = (ROOT / "Makefile").read_text()
    assert "synthesize --n 274 --seed 20211022 --out data/raw/synthetic" in makefile
    result = run_cli("synthesize", "--n", "274", "--seed", "20211022", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    for name in FILES:
        assert filecmp.cmp(tmp_path / name, COMMITTED / name, shallow=False), name


def test_same_seed_same_extract_other_seed_other(contract, codebook):
    a = synthesize(50, 11, contract, codebook)
    b = synthesize(50, 11, contract, codebook)
    c = synthesize(50, 12, contract, codebook)
    pd.testing.assert_frame_equal(a.assessments, b.assessments)
    assert not a.assessments.equals(c.assessments)


def test_every_fault_class_is_in_the_committed_extract():
    faults = pd.read_csv(COMMITTED / "injected_faults.csv")
    assert set(faults["fault"]) == set(FAULT_CLASSES)


def test_cli_rejects_unknown_fault_class(tmp_path):
    result = run_cli(
        "synthesize", "--n", "5", "--seed", "1", "--out", str(tmp_path), "--faults", "gremlins"
    )
    assert result.returncode == 2
    assert "unknown fault classes: ['gremlins']" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def population(contract, codebook, config):
    """20,000 clean synthetic patients: large enough that sampling error is small next to any
    calibration error worth finding (SE of a proportion <= 0.35 percentage points)."""
    extract = synthesize(20_000, 2021, contract, codebook, fault_rate=0)
    raw = {}
    for name in ("patients", "sessions", "assessments"):
        df = getattr(extract, name).copy()
        df.insert(0, "source_row", np.arange(len(df)) + 2)
        raw[name] = df
    return analysis_set(raw, contract, config, codebook)


def within(estimate, target, se, k=4.0):
    """|estimate - target| within k standard errors (k = 4: a false alarm about 1 in 16,000)."""
    return abs(estimate - target) <= k * se


@pytest.mark.slow
def test_population_responder_rates_match_targets(population):
    """The default MCIDs give the abstract's rates at discharge and the assumed ones at 1 year."""
    signs = {"pain": 1, "disability": 1, "health": -1}
    mcid = {"pain": 2, "disability": 10, "health": 10}
    for occasion, targets in RESPONDER_TARGETS.items():
        for outcome, target in targets.items():
            change = (
                signs[outcome]
                * (population[f"{outcome}_start"] - population[f"{outcome}_{occasion}"])
            ).dropna()
            rate = float((change >= mcid[outcome]).mean())
            se = np.sqrt(target * (1 - target) / len(change))
            assert within(rate, target, se), (outcome, occasion, rate, target)


@pytest.mark.slow
def test_population_loss_to_follow_up(population):
    n = len(population)
    for occasion, target in (("discharge", 0.10), ("followup_1y", 0.30)):
        missing = 1 - population[f"assessed_{occasion}"].mean()
        assert within(missing, target, np.sqrt(target * (1 - target) / n)), (occasion, missing)
    # More loss among the younger and those with fewer sessions (paper-facts.md ASSUMPTION).
    lost = ~population["assessed_followup_1y"]
    assert population.loc[lost, "age"].mean() < population.loc[~lost, "age"].mean() - 1
    assert (
        population.loc[lost, "n_sessions"].median() < population.loc[~lost, "n_sessions"].median()
    )


@pytest.mark.slow
def test_population_correlations_are_plausible(population):
    """Higher pain goes with worse disability (higher DRI) and worse health (lower EQ VAS)."""
    rho_dri = stats.spearmanr(
        population["pain_start"], population["disability_start"], nan_policy="omit"
    )[0]
    rho_vas = stats.spearmanr(
        population["pain_start"], population["health_start"], nan_policy="omit"
    )[0]
    assert rho_dri > 0.2 and rho_vas < -0.1
    # Improvements are positively correlated across outcomes and between occasions.
    d_pain = population["pain_start"] - population["pain_discharge"]
    d_dri = population["disability_start"] - population["disability_discharge"]
    d_pain_1y = population["pain_start"] - population["pain_followup_1y"]
    assert stats.spearmanr(d_pain, d_dri, nan_policy="omit")[0] > 0.15
    assert stats.spearmanr(d_pain, d_pain_1y, nan_policy="omit")[0] > 0.3


@pytest.mark.slow
def test_population_dose_and_categories(population, codebook):
    assert population["n_sessions"].median() == 9
    assert (
        population["n_sessions"].quantile(0.25) == 6
        and population["n_sessions"].quantile(0.75) == 14
    )
    assert abs(population["programme_months"].median() - 5) < 0.15
    for code, entry in codebook.items():
        share = population[f"received_{code}"].mean()
        target = entry["synthetic_pct"] / 100
        # Category 1 also covers the few patients drawn with no category at all.
        assert within(
            share,
            target,
            np.sqrt(target * (1 - target) / len(population)),
            k=4 if code != "1" else 6,
        ), code
    dates = population["first_session"]
    assert dates.min() >= pd.Timestamp("2014-01-01") and dates.max() <= pd.Timestamp("2018-12-31")
    both = population[["date_discharge", "date_followup_1y"]].dropna()
    assert len(both) > 0.5 * len(population)
    assert (both["date_followup_1y"] > both["date_discharge"]).all()
