"""The random intercept and slope model behind the HLM reliable-change index
(cohort.models.individual_slopes): against lme4 1.1-31 on R's clinicalsignificance's example data
(tests/fixtures/hlm_reference.csv, made by make_hlm_reference.R; README there), against
statsmodels' MixedLM, and against what the model must do whatever the data."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from cohort.models.individual_slopes import fit_slopes

FIXTURES = Path(__file__).parent / "fixtures"
TIMES = np.arange(1.0, 5.0)  # clinicalsignificance's claus_2020: time = 1, 2, 3, 4
# lme4's bobyqa stops once the criterion changes by less than its tolerance; the criterion is
# flat in the variance parameters, so they agree to about 1e-4 where the criterion agrees to
# 1e-9 (both sets); the conditional modes follow them.
CRITERION_TOL, PARAMETER_TOL, MODE_TOL = 1e-6, 1e-3, 1e-4


def claus_values() -> tuple[np.ndarray, np.ndarray]:
    wide = pd.read_csv(FIXTURES / "claus_2020_hamd.csv")
    return wide["id"].to_numpy(), wide[[f"hamd_{k}" for k in range(1, 5)]].to_numpy(float)


@pytest.mark.parametrize("reference_set, minimum", [("three_or_more", 3), ("all", 1)])
def test_agrees_with_lme4_on_claus_2020(reference_set, minimum):
    ids, values = claus_values()
    reference = pd.read_csv(FIXTURES / "hlm_reference.csv")
    reference = reference[reference["set"] == reference_set]
    first = reference.iloc[0]
    model = fit_slopes(values, TIMES, minimum=minimum)
    assert model.n_patients == len(reference)
    assert model.reml_criterion == pytest.approx(first["reml_criterion"], abs=CRITERION_TOL)
    assert model.beta == pytest.approx([first["fixed_intercept"], first["fixed_slope"]], abs=PARAMETER_TOL)  # fmt: skip
    expected = [[first["var_intercept"], first["cov_intercept_slope"]],
                [first["cov_intercept_slope"], first["var_slope"]]]  # fmt: skip
    assert model.covariance == pytest.approx(np.array(expected), abs=PARAMETER_TOL)
    assert model.residual_variance == pytest.approx(first["var_residual"], abs=PARAMETER_TOL)
    # lme4 calls the first fit singular (intercept and slope correlated -1), not the second
    assert model.singular == (reference_set == "three_or_more")
    mode, sd = model.conditional_slopes(values)
    position = {pid: i for i, pid in enumerate(ids)}
    rows = [position[int(pid)] for pid in reference["id"]]
    assert mode[rows] == pytest.approx(reference["slope_mode"].to_numpy(), abs=MODE_TOL)
    assert sd[rows] == pytest.approx(reference["slope_sd"].to_numpy(), abs=MODE_TOL)


def test_clinicalsignificance_hlm_categories_from_our_fit():
    """The package's HLM categories on its example (its test snapshot, version 2.1.0.9000,
    tests/testthat/_snaps/cs_distribution.md: 11 improved, 20 unchanged, 9 deteriorated of 40)
    follow from our fit: it divides the conditional mode of the random slope, the deviation
    from the cohort's mean slope, by its conditional SD."""
    _, values = claus_values()
    model = fit_slopes(values, TIMES, minimum=3)
    mode, sd = model.conditional_slopes(values)
    fitted = (~np.isnan(values)).sum(axis=1) >= 3
    z = mode[fitted] / sd[fitted]
    assert (int((z < -1.96).sum()), int((abs(z) <= 1.96).sum()), int((z > 1.96).sum())) == (11, 20, 9)  # fmt: skip


def test_agrees_with_statsmodels_mixedlm():
    """A second library: statsmodels' REML on the unbalanced set (2 to 4 measurements each)."""
    ids, values = claus_values()
    long = pd.DataFrame(
        [(pid, t, v) for pid, row in zip(ids, values, strict=True) for t, v in zip(TIMES, row, strict=True)
         if not np.isnan(v)], columns=["id", "time", "y"],
    )  # fmt: skip
    theirs = smf.mixedlm("y ~ time", long, groups=long["id"], re_formula="~time").fit(
        reml=True, method=["lbfgs"]
    )
    ours = fit_slopes(values, TIMES, minimum=1)
    assert ours.reml_criterion <= -2 * theirs.llf + 1e-6  # REML's criterion: ours no worse
    assert ours.reml_criterion == pytest.approx(-2 * theirs.llf, abs=1e-5)
    assert ours.beta == pytest.approx(theirs.fe_params.to_numpy(), abs=5e-3)
    assert ours.covariance == pytest.approx(theirs.cov_re.to_numpy(), abs=5e-3)
    assert ours.residual_variance == pytest.approx(theirs.scale, abs=5e-3)


def test_slope_index_does_not_depend_on_the_time_origin_or_unit():
    """Numbering the occasions 0.. or 1.., or in months, reparametrises the same model: each
    patient's slope index is unchanged (the covariance is unstructured)."""
    _, values = claus_values()
    at = [fit_slopes(values, times, minimum=1).slope_index(values)
          for times in (TIMES, TIMES - 1, 3 * TIMES + 2)]  # fmt: skip
    assert at[1] == pytest.approx(at[0], abs=1e-4)
    assert at[2] == pytest.approx(at[0], abs=1e-4)


def test_patients_measured_alike_are_pooled_exactly():
    """Doubling every patient leaves the estimates (the per-pattern sums double) and each
    patient's index as they were, the between-patient variances up to the REML df."""
    _, values = claus_values()
    once = fit_slopes(values, TIMES, minimum=3)
    twice = fit_slopes(np.vstack([values, values]), TIMES, minimum=3)
    assert twice.n_patients == 2 * once.n_patients
    assert twice.beta == pytest.approx(once.beta, abs=1e-6)


def test_too_few_patients_or_occasions_is_refused():
    values = np.array([[1.0, 2.0, 3.0], [2.0, np.nan, 4.0], [3.0, 4.0, np.nan]])
    with pytest.raises(ValueError, match="too few to fit a random slope"):
        fit_slopes(values, np.arange(3.0), minimum=3)
    with pytest.raises(ValueError, match="too few"):
        fit_slopes(np.ones((10, 2)), np.arange(2.0), minimum=2)
