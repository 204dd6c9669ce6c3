"""The regression engines against independent computations: the block-structured REML fit against
statsmodels' MixedLM (converged tightly) to 1e-6 and against a dense-matrix REML likelihood and
generalized least squares; the design matrix against patsy; logistic regression against
statsmodels' Logit."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import patsy
import pytest
import statsmodels.formula.api as smf

from cohort.models.design import design_matrix
from cohort.models.lmm import fit_lmm, lmm_data
from cohort.models.logistic import logistic_regression, profile_likelihood, separated_terms
from cohort.models.mixed import MixedModelSettings, random_intercept_reml

OCCASIONS = ["start", "discharge", "followup_1y"]
STATSMODELS = MixedModelSettings(covariance="observed_information", df="normal")
FORMULA = "value ~ C(occasion, Treatment('start')) + age + C(sex) + C(site)"


def long_data(n: int, seed: int, keep: float, intercept_sd: float = 1.2) -> pd.DataFrame:
    """Three occasions per patient, a random intercept, numeric and categorical covariates; a
    share `keep` of follow-up rows is kept (1.0 = balanced)."""
    rng = np.random.default_rng(seed)
    occasion = np.tile(OCCASIONS, n)
    age = np.repeat(rng.normal(45, 12, n), 3)
    sex = np.repeat(rng.choice(["F", "M"], n), 3)
    site = np.repeat(rng.choice(["north", "south", "west"], n), 3)
    u = np.repeat(rng.normal(0, intercept_sd, n), 3)
    value = (6.0 - 1.2 * (occasion != "start") + 0.02 * age + 0.4 * (sex == "M") + u) + rng.normal(
        0, 1.0, 3 * n
    )
    frame = pd.DataFrame(
        {
            "patient_id": np.repeat([f"P{i:04d}" for i in range(n)], 3),
            "occasion": pd.Categorical(occasion, categories=OCCASIONS),
            "age": age,
            "sex": sex,
            "site": pd.Categorical(site, categories=["north", "south", "west"]),
            "value": value,
        }
    )
    kept = (frame["occasion"] == "start") | (rng.random(len(frame)) < keep)
    return frame[kept].reset_index(drop=True)


def ours(frame: pd.DataFrame, covariance="observed_information", df_method="normal"):
    """Our fit; by default with statsmodels' conventions (observed-information SEs, Wald z)."""
    x, names = design_matrix(frame, ["occasion", "age", "sex", "site"], {"occasion": "start"})
    return random_intercept_reml(
        frame["value"].to_numpy(),
        x,
        frame["patient_id"].to_numpy(),
        names,
        covariance=covariance,
        df_method=df_method,
    )


def statsmodels_fit(frame: pd.DataFrame):
    model = smf.mixedlm(FORMULA, frame, groups=frame["patient_id"])
    return model.fit(reml=True, method="bfgs", gtol=1e-8, maxiter=2000)


@pytest.mark.parametrize(
    "n, seed, keep",
    [(150, 1, 1.0), (150, 2, 0.6), (400, 3, 0.3)],
    ids=["balanced", "unbalanced", "sparse"],
)
def test_reml_equals_statsmodels_mixedlm(n, seed, keep):
    """Estimates, standard errors, both variance components and the REML log-likelihood agree with
    statsmodels to 1e-6 (statsmodels' optimiser is run to a gradient of 1e-10 so that its own
    convergence error is below the tolerance)."""
    frame = long_data(n, seed, keep)
    fit, reference = ours(frame), statsmodels_fit(frame)
    assert fit.names == list(reference.fe_params.index)
    assert fit.nobs == len(frame) and fit.groups == n and fit.converged and not fit.boundary
    np.testing.assert_allclose(fit.params, reference.fe_params.to_numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fit.bse, reference.bse_fe.to_numpy(), rtol=1e-6, atol=1e-6)
    assert fit.group_variance == pytest.approx(float(reference.cov_re.iloc[0, 0]), abs=1e-6)
    assert fit.scale == pytest.approx(float(reference.scale), abs=1e-6)
    assert fit.llf == pytest.approx(float(reference.llf), abs=1e-6)


def dense_reml_loglik(frame: pd.DataFrame, x: np.ndarray, s2u: float, s2e: float) -> float:
    """The REML log-likelihood written with the full covariance matrix V (Harville 1977):
    -1/2 [(N - p) log 2pi + log|V| + log|X'V^-1 X| + r'V^-1 r]."""
    y = frame["value"].to_numpy()
    ids = frame["patient_id"].to_numpy()
    v = s2e * np.eye(len(y)) + s2u * (ids[:, None] == ids[None, :])
    v_inv = np.linalg.inv(v)
    xvx = x.T @ v_inv @ x
    beta = np.linalg.solve(xvx, x.T @ v_inv @ y)
    r = y - x @ beta
    return -0.5 * (
        (len(y) - x.shape[1]) * np.log(2 * np.pi)
        + np.linalg.slogdet(v)[1]
        + np.linalg.slogdet(xvx)[1]
        + r @ v_inv @ r
    )


def test_reml_matches_the_dense_likelihood_and_gls():
    """At the estimate, the log-likelihood equals the dense-matrix formula, the estimates are GLS
    with the fitted V, and nearby variance pairs have a lower likelihood (it is the maximum)."""
    frame = long_data(60, 4, 0.7)
    fit = ours(frame)
    x, _ = design_matrix(frame, ["occasion", "age", "sex", "site"], {"occasion": "start"})
    s2u, s2e = fit.group_variance, fit.scale
    assert fit.llf == pytest.approx(dense_reml_loglik(frame, x, s2u, s2e), abs=1e-8)
    for du, de in [(1.05, 1), (0.95, 1), (1, 1.05), (1, 0.95)]:
        assert dense_reml_loglik(frame, x, s2u * du, s2e * de) < fit.llf
    ids = frame["patient_id"].to_numpy()
    v_inv = np.linalg.inv(s2e * np.eye(len(frame)) + s2u * (ids[:, None] == ids[None, :]))
    gls = np.linalg.solve(x.T @ v_inv @ x, x.T @ v_inv @ frame["value"].to_numpy())
    np.testing.assert_allclose(fit.params, gls, rtol=1e-9, atol=1e-9)


def test_balanced_standard_errors_are_the_gls_ones():
    """With balanced data the fixed effects are orthogonal to the variance ratio, so the standard
    errors are exactly those of GLS, sqrt(diag((X'V^-1 X)^-1))."""
    frame = long_data(50, 5, 1.0)
    fit = ours(frame)
    x, _ = design_matrix(frame, ["occasion", "age", "sex", "site"], {"occasion": "start"})
    ids = frame["patient_id"].to_numpy()
    v = fit.scale * np.eye(len(frame)) + fit.group_variance * (ids[:, None] == ids[None, :])
    se = np.sqrt(np.diag(np.linalg.inv(x.T @ np.linalg.inv(v) @ x)))
    np.testing.assert_allclose(fit.bse, se, rtol=1e-9)


def test_no_patient_variance_gives_the_boundary_and_ordinary_least_squares():
    """Data with less between-patient spread than chance: the variance sits on the boundary 0 and
    the fixed effects are the ordinary least-squares ones."""
    frame = long_data(100, 6, 1.0, intercept_sd=0.0)
    noise = pd.Series(np.random.default_rng(0).normal(0, 1, len(frame)))
    noise -= noise.groupby(frame["patient_id"]).transform("mean")  # no between-patient part
    frame["value"] = 5 - 1.0 * (frame["occasion"] != "start") + 0.02 * frame["age"] + noise
    fit = ours(frame)
    assert fit.boundary and fit.group_variance == 0.0
    x, _ = design_matrix(frame, ["occasion", "age", "sex", "site"], {"occasion": "start"})
    ols, *_ = np.linalg.lstsq(x, frame["value"].to_numpy(), rcond=None)
    np.testing.assert_allclose(fit.params, ols, rtol=1e-9, atol=1e-12)


def test_single_observation_patients_and_unsorted_rows():
    """Patients seen once, and rows in any order, give the same fit as sorted rows."""
    frame = long_data(120, 7, 0.25)
    shuffled = frame.sample(frac=1.0, random_state=1).reset_index(drop=True)
    a, b = ours(frame), ours(shuffled)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-10)
    assert a.llf == pytest.approx(b.llf, abs=1e-9)
    reference = statsmodels_fit(frame)
    assert a.llf == pytest.approx(float(reference.llf), abs=1e-6)


def test_fit_lmm_on_the_pipeline_long_format():
    """fit_lmm (what rule lmm uses) on lmm_data's long format equals statsmodels' formula fit."""
    rng = np.random.default_rng(8)
    n = 90
    patients = pd.DataFrame(
        {
            "patient_id": [f"P{i}" for i in range(n)],
            "age": rng.normal(45, 12, n),
            "sex": pd.Categorical(rng.choice(["female", "male"], n)),
        }
    )
    u = rng.normal(0, 1, n)
    for j, o in enumerate(OCCASIONS):
        value = np.round(np.clip(6 - j + u + rng.normal(0, 1, n), 0, 10))
        value[rng.random(n) < 0.2 * j] = np.nan
        patients[f"pain_{o}"] = value
    long = lmm_data(patients, "pain", OCCASIONS, ["age", "sex"])
    fit = fit_lmm(long, ["age", "sex"], OCCASIONS, STATSMODELS)
    reference = smf.mixedlm(
        "value ~ C(occasion, Treatment('start')) + C(sex) + age", long, groups=long["patient_id"]
    ).fit(reml=True, method="bfgs", gtol=1e-8, maxiter=2000)
    np.testing.assert_allclose(fit.params, reference.fe_params.to_numpy(), atol=1e-6)
    np.testing.assert_allclose(fit.bse, reference.bse_fe.to_numpy(), atol=1e-6)


def test_design_matrix_equals_patsy():
    frame = long_data(30, 9, 0.8)
    frame["smoker"] = np.where(frame["age"] > 45, "yes", "no")  # object dtype: sorted levels
    variables = ["occasion", "age", "sex", "site", "smoker"]
    x, names = design_matrix(frame, variables, {"occasion": "start"})
    reference = patsy.dmatrix(
        "C(occasion, Treatment('start')) + age + C(sex) + C(site) + C(smoker)",
        frame,
        return_type="dataframe",
    )
    assert names == list(reference.columns)
    np.testing.assert_array_equal(x, reference.to_numpy())


def test_singular_design_is_refused_with_the_columns_named():
    frame = long_data(30, 10, 1.0)
    frame["age_again"] = frame["age"] * 2
    x, names = design_matrix(frame, ["occasion", "age", "age_again"], {"occasion": "start"})
    with pytest.raises(ValueError, match="collinear columns among .*age_again"):
        random_intercept_reml(frame["value"].to_numpy(), x, frame["patient_id"].to_numpy(), names)


def test_logistic_regression_equals_statsmodels_logit():
    rng = np.random.default_rng(11)
    n = 500
    frame = pd.DataFrame(
        {"age": rng.normal(45, 12, n), "sex": rng.choice(["F", "M"], n), "dose": rng.poisson(8, n)}
    )
    eta = -2 + 0.03 * frame["age"] + 0.5 * (frame["sex"] == "M") + 0.05 * frame["dose"]
    frame["responder"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    x, names = design_matrix(frame, ["age", "sex", "dose"])
    fit = logistic_regression(frame["responder"].to_numpy(), x, names)
    reference = smf.logit("responder ~ age + C(sex) + dose", frame).fit(disp=0, tol=1e-12)
    assert fit.names == list(reference.params.index) and fit.converged and not fit.warnings
    np.testing.assert_allclose(fit.params, reference.params.to_numpy(), rtol=1e-8)
    np.testing.assert_allclose(fit.bse, reference.bse.to_numpy(), rtol=1e-8)


def test_logistic_regression_refuses_separated_data():
    x = np.column_stack([np.ones(40), np.arange(40.0)])
    y = (np.arange(40) >= 20).astype(float)  # a threshold on x separates the classes
    with pytest.raises(ValueError, match="separation"):
        logistic_regression(y, x, ["Intercept", "x"])
    group = (np.arange(40) % 2).astype(float)
    y_quasi = np.where(group == 1, 1.0, (np.arange(40) % 4 == 0).astype(float))
    with pytest.raises(ValueError, match="separation"):  # group 1: all responders
        logistic_regression(y_quasi, np.column_stack([np.ones(40), group]), ["Intercept", "g"])


def test_logistic_regression_from_a_start_value_reaches_the_same_optimum():
    rng = np.random.default_rng(12)
    x = np.column_stack([np.ones(400), rng.normal(size=400), rng.normal(size=400)])
    y = (rng.random(400) < 1 / (1 + np.exp(-(0.3 + x[:, 1] - 0.5 * x[:, 2])))).astype(float)
    cold = logistic_regression(y, x, ["Intercept", "a", "b"])
    warm = logistic_regression(y, x, ["Intercept", "a", "b"], start=cold.params + 0.05)
    np.testing.assert_allclose(warm.params, cold.params, atol=1e-9)
    np.testing.assert_allclose(warm.bse, cold.bse, rtol=1e-9)
    assert warm.iterations < cold.iterations


def test_group_by_occasion_model_equals_statsmodels_mixedlm():
    """Rule groups' occasion x group model (interaction terms from patsy) on the exact REML
    equals statsmodels' MixedLM with the same formula, unbalanced follow-up included."""
    from cohort.analysis.groups import group_by_occasion_lmm

    rng = np.random.default_rng(13)
    n = 160
    arm = rng.choice(["control", "treated"], n)
    age = rng.normal(45, 10, n)
    u = rng.normal(0, 4, n)
    patients = pd.DataFrame({"patient_id": [f"T{i}" for i in range(n)], "arm": arm, "age": age})
    for j, occasion in enumerate(["baseline", "month_3", "month_12"]):
        value = 20 + u - 2 * j - 3 * j * (arm == "treated") + 0.05 * age + rng.normal(0, 3, n)
        value[(rng.random(n) < 0.2 * j)] = np.nan
        patients[f"score_{occasion}"] = value
    occasions = ["baseline", "month_3", "month_12"]
    fit = group_by_occasion_lmm(
        patients, "score", occasions, "arm", "control", ["age"], STATSMODELS
    )
    long = patients.melt(
        id_vars=["patient_id", "arm", "age"],
        value_vars=[f"score_{o}" for o in occasions],
        var_name="occasion",
        value_name="value",
    ).dropna(subset=["value"])
    long["occasion"] = pd.Categorical(long["occasion"].str.removeprefix("score_"), occasions)
    reference = smf.mixedlm(
        "value ~ C(occasion, Treatment('baseline')) * C(arm, Treatment('control')) + age",
        long,
        groups=long["patient_id"],
    ).fit(reml=True, method="bfgs", gtol=1e-8, maxiter=2000)
    assert fit.names == list(reference.fe_params.index) and fit.nobs == len(long)
    np.testing.assert_allclose(fit.params, reference.fe_params.to_numpy(), atol=1e-6)
    np.testing.assert_allclose(fit.bse, reference.bse_fe.to_numpy(), atol=1e-6)
    np.testing.assert_allclose(fit.pvalues, reference.pvalues[fit.names].to_numpy(), atol=1e-6)
    np.testing.assert_allclose(
        fit.conf_int(0.95).to_numpy(), reference.conf_int(0.05).loc[fit.names].to_numpy(), atol=1e-6
    )
    assert fit.llf == pytest.approx(float(reference.llf), abs=1e-6)


def test_one_observation_per_patient_is_refused():
    """With a single observation per patient the two variances are not identifiable (the REML
    likelihood is flat in their ratio): refused with a reason, not an arbitrary split."""
    rng = np.random.default_rng(14)
    x = np.column_stack([np.ones(200), rng.normal(size=200)])
    y = x @ [1.0, 2.0] + rng.normal(size=200)
    with pytest.raises(ValueError, match="one observation"):
        random_intercept_reml(y, x, np.arange(200), ["Intercept", "a"])


# --- Small-sample inference: model-based covariance, Satterthwaite and Kenward-Roger -----------
FIXTURES = Path(__file__).parent / "fixtures"


def r_name(term: str) -> str:
    """Our patsy-style term as R names it: C(occasion, Treatment('start'))[T.discharge] ->
    occasiondischarge, Intercept -> (Intercept)."""
    return (
        "(Intercept)"
        if term == "Intercept"
        else re.sub(r"C\((\w+)[^\[]*\[T\.([^\]]+)\]", r"\1\2", term)
    )


def contrasts_as_r(fit) -> dict[str, np.ndarray]:
    """Each fixed effect and the estimated mean at each occasion (every other column at its mean
    over the observations), named as make_lmm_reference.R names them."""
    out = {r_name(t): row for t, row in zip(fit.names, np.eye(len(fit.names)), strict=True)}
    occasion = [j for j, t in enumerate(fit.names) if t.startswith("C(occasion")]
    for j in [None, *occasion]:
        weights = fit.design_mean.copy()
        weights[occasion] = 0.0
        if j is not None:
            weights[j] = 1.0
        out["mean:reference" if j is None else f"mean:{r_name(fit.names[j])}"] = weights
    return out


def assert_agrees_with_lmertest(satterthwaite, kenward_roger, model, rtol):
    """SE (s2 (X'V^-1 X)^-1) and Satterthwaite df as lmerTest's, KR SE and df as pbkrtest's."""
    expected = pd.read_csv(FIXTURES / "lmm_small_sample_reference.csv")
    expected = expected[expected["model"] == model].set_index("contrast")
    contrasts = contrasts_as_r(satterthwaite)
    assert sorted(contrasts) == sorted(expected.index)
    for name, weights in contrasts.items():
        row = expected.loc[name]
        estimate, se, df = satterthwaite.contrast(weights)
        assert estimate == pytest.approx(row["estimate"], rel=rtol, abs=1e-9), name
        assert (se, df) == pytest.approx((row["se"], row["df_satterthwaite"]), rel=rtol), name
        _, se, df = kenward_roger.contrast(weights)
        assert (se, df) == pytest.approx(
            (row["se_kenward_roger"], row["df_kenward_roger"]), rel=rtol
        ), name


def test_small_sample_inference_equals_lmertest_and_pbkrtest():
    """Unbalanced data (40% of follow-ups missing): fixed effects and estimated means agree with
    lmerTest (Satterthwaite) and pbkrtest (Kenward-Roger) to 1e-6 relative. lme4's bobyqa was
    run to rhoend 1e-12 and lmerTest's Hessian comes from numDeriv, so both sides are accurate to
    about 1e-7 (tests/fixtures/README.md)."""
    frame = pd.read_csv(FIXTURES / "lmm_unbalanced.csv")
    frame["occasion"] = pd.Categorical(frame["occasion"], categories=OCCASIONS)
    frame["site"] = pd.Categorical(frame["site"], categories=["north", "south", "west"])
    fits = [ours(frame, "model_based", method) for method in ("satterthwaite", "kenward_roger")]
    assert_agrees_with_lmertest(*fits, "unbalanced", 1e-6)


def paired_data(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    u = rng.normal(0, 2, n)
    return pd.DataFrame(
        {
            "patient_id": np.repeat(np.arange(n), 2),
            "occasion": pd.Categorical(np.tile(["start", "discharge"], n), ["start", "discharge"]),
            "value": np.repeat(u, 2) + np.tile([5.0, 4.2], n) + rng.normal(0, 1, 2 * n),
        }
    )


@pytest.mark.parametrize("df_method", ["satterthwaite", "kenward_roger"])
def test_balanced_paired_design_gives_the_paired_t_test(df_method):
    """Closed form: two occasions, every patient measured twice, value ~ occasion. The occasion
    effect is the mean paired difference with SE sd(d)/sqrt(n) and n - 1 df, so its t-based CI
    and p are the paired t-test's (scipy.stats.ttest_rel), under both small-sample methods."""
    from scipy import stats

    frame = paired_data(24, 3)
    x, names = design_matrix(frame, ["occasion"], {"occasion": "start"})
    fit = random_intercept_reml(
        frame["value"].to_numpy(), x, frame["patient_id"].to_numpy(), names, df_method=df_method
    )
    assert not fit.boundary
    wide = frame.pivot(index="patient_id", columns="occasion", values="value")
    test = stats.ttest_rel(wide["discharge"], wide["start"])
    term = "C(occasion, Treatment('start'))[T.discharge]"
    j = fit.names.index(term)
    assert fit.df[j] == pytest.approx(23, rel=1e-6)
    assert fit.pvalues[term] == pytest.approx(test.pvalue, rel=1e-6)
    ci = test.confidence_interval(0.95)
    assert tuple(fit.conf_int(0.95).loc[term]) == pytest.approx((ci.low, ci.high), rel=1e-6)


def test_balanced_split_plot_df_are_the_strata_residual_df():
    """Closed form (balanced split plot, Satterthwaite and KR exact): with n patients in two arms
    measured on T occasions, value ~ occasion + arm, the arm effect is tested in the between-
    patient stratum (n - 2 df) and the occasion effects in the within-patient stratum
    ((n - 1)(T - 1) df); KR leaves the balanced-design SEs unchanged."""
    n, t = 30, 3
    rng = np.random.default_rng(8)
    frame = pd.DataFrame(
        {
            "patient_id": np.repeat(np.arange(n), t),
            "occasion": pd.Categorical(np.tile(OCCASIONS, n), OCCASIONS),
            "arm": np.repeat(np.where(np.arange(n) < n // 2, "a", "b"), t),
        }
    )
    frame["value"] = np.repeat(rng.normal(0, 2, n), t) + rng.normal(0, 1, n * t)
    x, names = design_matrix(frame, ["occasion", "arm"], {"occasion": "start"})
    y, ids = frame["value"].to_numpy(), frame["patient_id"].to_numpy()
    expected = {
        "C(arm)[T.b]": n - 2,
        "C(occasion, Treatment('start'))[T.followup_1y]": (n - 1) * (t - 1),
    }
    for method in ["satterthwaite", "kenward_roger"]:
        fit = random_intercept_reml(y, x, ids, names, df_method=method)
        for term, df in expected.items():
            assert fit.df[fit.names.index(term)] == pytest.approx(df, rel=1e-6), (method, term)
        np.testing.assert_allclose(fit.bse, random_intercept_reml(y, x, ids, names).bse, rtol=1e-9)


def test_model_based_covariance_differs_from_observed_information_only_when_unbalanced():
    """s2 (X'V^-1 X)^-1 (lme4) and the observed information (statsmodels) coincide on balanced
    data and differ, slightly, on unbalanced data: the option is a real choice."""
    balanced, unbalanced = long_data(60, 5, 1.0), long_data(60, 5, 0.5)
    for frame, same in [(balanced, True), (unbalanced, False)]:
        model = ours(frame, covariance="model_based").bse
        observed = ours(frame, covariance="observed_information").bse
        assert np.allclose(model, observed, rtol=1e-8) == same


def test_boundary_variance_gives_the_residual_df():
    """With the patient variance on the boundary only s2 is estimated: every df is N - p."""
    frame = long_data(100, 6, 1.0, intercept_sd=0.0)
    noise = pd.Series(np.random.default_rng(0).normal(0, 1, len(frame)))
    noise -= noise.groupby(frame["patient_id"]).transform("mean")
    frame["value"] = 5 - 1.0 * (frame["occasion"] != "start") + noise
    fit = ours(frame, covariance="model_based", df_method="satterthwaite")
    assert fit.boundary
    np.testing.assert_allclose(fit.df, fit.nobs - len(fit.names))


# --- Logistic regression: profile likelihood, separation, Firth ---------------------------------
def logistic_fixture(variables):
    frame = pd.read_csv(FIXTURES / "logistic_small.csv")
    frame["sex"] = pd.Categorical(frame["sex"], ["F", "M"])
    frame["site"] = pd.Categorical(frame["site"], ["common", "rare"])
    x, names = design_matrix(frame, variables)
    expected = pd.read_csv(FIXTURES / "logistic_reference.csv")
    return frame["y"].to_numpy(dtype=float), x, names, expected


def test_profile_likelihood_intervals_equal_r_confint_glm():
    """60 patients, 8 events: R's glm estimates to 1e-7 and SEs to 1e-4 (glm.fit takes the
    information from its last IRLS weights, one step behind its estimate, epsilon 1e-8); the
    likelihood-ratio p-values (drop1, LRT) to 1e-7; the profile intervals to 1e-3, because
    MASS's confint.glm interpolates its profile on a grid with a spline (it is off by up to
    5e-4 here) while ours finds the root: at our ends, statsmodels' fit with the coefficient as
    an offset gives a deviance equal to the chi-square quantile to 1e-8."""
    import statsmodels.api as sm
    from scipy import stats

    y, x, names, expected = logistic_fixture(["sex", "age", "score"])
    expected = expected[expected["model"] == "ml"]
    fit = logistic_regression(y, x, names)
    for j, term in enumerate(names):
        row = expected.set_index("term").loc[r_name(term)]
        assert fit.params[j] == pytest.approx(row["estimate"], rel=1e-7)
        assert fit.bse[j] == pytest.approx(row["se"], rel=1e-4)
        low, high, p = profile_likelihood(fit, y, x, j, 0.95)
        assert (low, high) == pytest.approx((row["ci_low"], row["ci_high"]), abs=1e-3)
        if term != "Intercept":
            assert p == pytest.approx(row["p_lr"], rel=1e-7)
        for end in (low, high):  # exact: the profile deviance is the chi-square quantile there
            others = [i for i in range(len(names)) if i != j]
            restricted = sm.GLM(
                y, x[:, others], family=sm.families.Binomial(), offset=end * x[:, j]
            )
            deviance = 2 * (fit.loglik - restricted.fit(tol=1e-12).llf)
            assert deviance == pytest.approx(stats.chi2.ppf(0.95, 1), rel=1e-8)


def brute_force_gap(y, x, params, j, b, firth):
    """The (penalised) deviance gap at b_j = b, the other coefficients maximised by scipy's BFGS
    (no Newton step and no score of ours)."""
    from scipy import optimize as opt
    from scipy import special as sp

    def penalised(beta):
        value = float(np.sum(y * (x @ beta) - np.logaddexp(0, x @ beta)))
        if firth:
            p = sp.expit(x @ beta)
            value += 0.5 * np.linalg.slogdet(x.T @ (x * (p * (1 - p))[:, None]))[1]
        return value

    others = [i for i in range(len(params)) if i != j]

    def negative(z):
        beta = params.copy()
        beta[others], beta[j] = z, b
        return -penalised(beta)

    best = opt.minimize(negative, params[others], method="BFGS", options={"gtol": 1e-10})
    return 2 * (penalised(params) + best.fun)


@pytest.mark.parametrize("firth", [False, True])
def test_profile_ends_are_roots_of_an_independently_computed_deviance(firth):
    """The profile ends (Newton steps on the signed root of the deviance gap) against a gap
    computed apart from them (brute_force_gap). On 12 simulated data sets (30 to 400 patients,
    a rare binary covariate, 4 to 60 events), at each finite end the gap equals the chi-square
    quantile to 1e-6, the end lies on its side of the estimate, and a point 1% of the way back
    inside has a smaller gap (the root nearest the estimate, not another). An end is infinite
    only where the gap 50 SEs out stays below the quantile."""
    from scipy import special as sp

    cutoff = sp.chdtri(1, 0.05)
    for seed in range(12):
        rng = np.random.default_rng(seed)
        n = int(rng.choice([30, 60, 150, 400]))
        x = np.column_stack(
            [np.ones(n), rng.normal(size=n), rng.random(n) < 0.1, rng.integers(0, 11, n) / 10]
        ).astype(float)
        y = (rng.random(n) < sp.expit(x @ np.array([-1.5, 0.8, 1.0, 0.5]))).astype(float)
        fit = logistic_regression(y, x, ["Intercept", "age", "rare", "score"], firth=firth)
        for j in range(1, x.shape[1]):
            low, high, _ = profile_likelihood(fit, y, x, j, 0.95)
            for end, side in ((low, -1), (high, 1)):
                if np.isinf(end):
                    far = fit.params[j] + side * 50 * fit.bse[j]
                    assert brute_force_gap(y, x, fit.params, j, far, firth) < cutoff
                    continue
                inside = end - 0.01 * (end - fit.params[j])
                assert side * (end - fit.params[j]) > 0
                assert brute_force_gap(y, x, fit.params, j, end, firth) == pytest.approx(
                    cutoff, rel=1e-6
                )
                assert brute_force_gap(y, x, fit.params, j, inside, firth) < cutoff


def test_separation_is_detected_and_named():
    """A level with no event: glm's estimate runs off to -16 with SE 2309; Konis's linear
    program names the separated term, maximum likelihood is refused naming it, and the data
    without that level are not separated."""
    y, x, names, expected = logistic_fixture(["sex", "site", "age", "score"])
    runaway = expected[(expected["model"] == "ml_separated") & (expected["term"] == "siterare")]
    assert runaway["se"].iat[0] > 1000  # what R reports instead of an error
    assert separated_terms(y, x, names) == ["C(site)[T.rare]"]
    with pytest.raises(ValueError, match=r"separation in C\(site\)\[T.rare\]"):
        logistic_regression(y, x, names)
    y2, x2, names2, _ = logistic_fixture(["sex", "age", "score"])
    assert separated_terms(y2, x2, names2) == []


def test_firth_equals_brglm2_under_separation():
    """Firth's penalised likelihood with the separated level: finite estimates and SEs equal to
    brglm2's (type AS_mean, identical to Firth's for the logistic link) to 1e-6."""
    y, x, names, expected = logistic_fixture(["sex", "site", "age", "score"])
    expected = expected[expected["model"] == "firth"].set_index("term")
    fit = logistic_regression(y, x, names, firth=True)
    assert fit.converged and fit.firth
    for j, term in enumerate(names):
        row = expected.loc[r_name(term)]
        assert (fit.params[j], fit.bse[j]) == pytest.approx((row["estimate"], row["se"]), rel=1e-6)


def test_firth_on_a_two_by_two_table_is_the_log_odds_ratio_plus_one_half():
    """Closed form: with one binary covariate, Firth's estimate is the log odds ratio of the table
    with 1/2 added to each cell (Firth 1993), even with an empty cell."""
    cells = {(0, 0): 12, (0, 1): 5, (1, 0): 9, (1, 1): 0}  # (exposed, event): count
    rows = [(e, v) for (e, v), k in cells.items() for _ in range(k)]
    exposed, event = (np.array(c, dtype=float) for c in zip(*rows, strict=True))
    x = np.column_stack([np.ones(len(rows)), exposed])
    fit = logistic_regression(event, x, ["Intercept", "exposed"], firth=True)
    a, b, c, d = (cells[k] + 0.5 for k in [(1, 1), (1, 0), (0, 1), (0, 0)])
    assert fit.params[1] == pytest.approx(np.log(a * d / (b * c)), rel=1e-9)


def test_firth_profile_interval_equals_a_brute_force_profile():
    """The penalised profile interval (as logistf) against a direct computation: the penalised
    log-likelihood maximised by scipy's BFGS over the other coefficients (brute_force_gap), the
    ends found by Brent's method on that gap (to 1e-4)."""
    from scipy import optimize as opt
    from scipy import special as sp

    y, x, names, _ = logistic_fixture(["sex", "site", "age", "score"])
    fit = logistic_regression(y, x, names, firth=True)
    j = names.index("C(site)[T.rare]")
    low, high, _ = profile_likelihood(fit, y, x, j, 0.95)

    def gap(b):
        return brute_force_gap(y, x, fit.params, j, b, True) - sp.chdtri(1, 0.05)

    assert opt.brentq(gap, low - 1, fit.params[j]) == pytest.approx(low, abs=1e-4)
    assert opt.brentq(gap, fit.params[j], high + 1) == pytest.approx(high, abs=1e-4)


# --- Patients nested in clusters --------------------------------------------------------------
def test_nested_model_equals_lme4_and_lmertest():
    """12 clinics, 68 patients, a quarter of follow-ups missing: value ~ occasion + age + sex +
    (1 | clinic/patient_id). Estimates and SEs agree with lme4 to 1e-6 relative, the three
    variances to 1e-5 and lmerTest's Satterthwaite df to 1e-5 (lme4's bobyqa run to rhoend
    1e-12; both sides differentiate numerically)."""
    from cohort.models.nested import nested_intercepts_reml

    frame = pd.read_csv(FIXTURES / "lmm_clustered.csv")
    frame["occasion"] = pd.Categorical(frame["occasion"], categories=OCCASIONS)
    expected = pd.read_csv(FIXTURES / "lmm_clustered_reference.csv").set_index("term")
    x, names = design_matrix(frame, ["occasion", "sex", "age"], {"occasion": "start"})
    fit = nested_intercepts_reml(
        frame["value"].to_numpy(),
        x,
        frame["patient_id"].to_numpy(),
        frame["clinic"].to_numpy(),
        names,
    )
    assert (fit.groups, fit.clusters, fit.nobs) == (68, 12, len(frame))
    for j, term in enumerate(names):
        row = expected.loc[r_name(term)]
        assert (fit.params[j], fit.bse[j]) == pytest.approx((row["estimate"], row["se"]), rel=1e-6)
        assert fit.df[j] == pytest.approx(row["df_satterthwaite"], rel=1e-5)
    variances = (fit.scale, fit.group_variance, fit.cluster_variance)
    assert variances == pytest.approx(
        tuple(
            expected.loc[f"variance:{g}", "estimate"]
            for g in ("Residual", "patient_id:clinic", "clinic")
        ),
        rel=1e-5,
    )


def test_balanced_nested_design_gives_the_anova_estimators():
    """Closed form (Searle, Casella & McCulloch 1992, ch. 4): a clusters x b patients x n
    measurements, intercept only. REML equals the ANOVA estimators when they are positive:
    s2e = MSE, s2p = (MSP - MSE) / n, s2c = (MSC - MSP) / (b n); the mean's SE is
    sqrt(MSC / (a b n)) with a - 1 Satterthwaite df."""
    from cohort.models.nested import nested_intercepts_reml

    a, b, n = 9, 4, 3
    rng = np.random.default_rng(17)
    cluster = np.repeat(np.arange(a), b * n)
    patient = np.repeat(np.arange(a * b), n)
    y = (
        5
        + rng.normal(0, 1.5, a)[cluster]
        + rng.normal(0, 1.0, a * b)[patient]
        + rng.normal(0, 0.7, a * b * n)
    )
    patient_mean = pd.Series(y).groupby(patient).transform("mean").to_numpy()
    cluster_mean = pd.Series(y).groupby(cluster).transform("mean").to_numpy()
    mse = ((y - patient_mean) ** 2).sum() / (a * b * (n - 1))
    msp = ((patient_mean - cluster_mean) ** 2).sum() / (a * (b - 1))
    msc = ((cluster_mean - y.mean()) ** 2).sum() / (a - 1)
    assert msc > msp > mse
    fit = nested_intercepts_reml(y, np.ones((len(y), 1)), patient, cluster, ["Intercept"])
    assert fit.scale == pytest.approx(mse, rel=1e-7)
    assert fit.group_variance == pytest.approx((msp - mse) / n, rel=1e-6)
    assert fit.cluster_variance == pytest.approx((msc - msp) / (b * n), rel=1e-6)
    assert fit.bse[0] == pytest.approx(np.sqrt(msc / (a * b * n)), rel=1e-7)
    assert fit.df[0] == pytest.approx(a - 1, rel=1e-5)


def test_a_patient_in_two_clusters_is_refused():
    from cohort.models.nested import nested_intercepts_reml

    y = np.arange(6.0)
    with pytest.raises(ValueError, match="more than one cluster"):
        nested_intercepts_reml(
            y, np.ones((6, 1)), np.array([1, 1, 2, 2, 3, 3]), np.array([1, 2, 1, 1, 2, 2]), ["I"]
        )


def test_cluster_robust_logistic_covariance_equals_statsmodels():
    """Sandwich covariance with clusters: statsmodels' Logit with cov_type='cluster' (its
    default small-sample correction, as Stata's) to 1e-8."""
    import statsmodels.api as sm

    from cohort.models.logistic import cluster_robust

    rng = np.random.default_rng(23)
    n = 300
    clinic = rng.integers(0, 15, n)
    x = np.column_stack([np.ones(n), rng.normal(size=n), rng.integers(0, 2, n)])
    eta = x @ [-0.3, 0.8, 0.5] + rng.normal(0, 0.8, 15)[clinic]
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    fit = cluster_robust(logistic_regression(y, x, ["Intercept", "a", "b"]), y, x, clinic)
    reference = sm.Logit(y, x).fit(disp=False, cov_type="cluster", cov_kwds={"groups": clinic})
    np.testing.assert_allclose(fit.cov_params, reference.cov_params(), rtol=1e-8)
    assert fit.clusters == 15


def test_firth_penalty_curvature_equals_a_numerical_hessian():
    """The exact second derivatives of 0.5 log|X'WX| that make Firth's Newton steps quadratic,
    against central differences of the penalty (to 1e-6)."""
    from scipy import special as sp

    from cohort.models.logistic import _firth_curvature

    rng = np.random.default_rng(4)
    x = np.column_stack([np.ones(40), rng.normal(size=40), rng.integers(0, 2, 40)])
    beta = np.array([0.2, -0.7, 0.9])

    def penalty(b):
        p = sp.expit(x @ b)
        return 0.5 * np.linalg.slogdet(x.T @ (x * (p * (1 - p))[:, None]))[1]

    h, k = 1e-4, len(beta)
    numeric = np.empty((k, k))
    for i in range(k):
        for j in range(k):
            e, f = np.eye(k)[i] * h, np.eye(k)[j] * h
            numeric[i, j] = (
                penalty(beta + e + f)
                - penalty(beta + e - f)
                - penalty(beta - e + f)
                + penalty(beta - e - f)
            ) / (4 * h * h)
    p = sp.expit(x @ beta)
    information = x.T @ (x * (p * (1 - p))[:, None])
    exact = _firth_curvature(x, p, np.linalg.inv(information))
    np.testing.assert_allclose(exact, numeric, rtol=1e-6, atol=1e-8)


def test_occasion_covariance_rows_equal_lme4s_vcov():
    """lmm.csv's `covariance: discharge, followup_1y` row (what a coordinator pools the change
    between follow-ups with) is lme4's vcov(fit) between the two occasion terms, to 1e-6
    (tests/fixtures/make_lmm_covariance_reference.R); with the two SEs it gives the SE of the
    contrast followup_1y - discharge as the fit computes it directly."""
    from cohort.models.lmm import occasion_covariance_rows

    expected = pd.read_csv(FIXTURES / "lmm_covariance_reference.csv").iloc[0]
    frame = pd.read_csv(FIXTURES / "lmm_unbalanced.csv")
    frame["occasion"] = pd.Categorical(frame["occasion"], categories=OCCASIONS)
    frame["site"] = pd.Categorical(frame["site"], categories=["north", "south", "west"])
    fit = ours(frame, "model_based", "satterthwaite")
    (row,) = occasion_covariance_rows(fit, list(OCCASIONS), {"outcome": "x"})
    assert row["term"] == "covariance: discharge, followup_1y"
    assert row["estimate"] == pytest.approx(expected["covariance"], rel=1e-6)
    a, b = (fit.names.index(f"C(occasion, Treatment('start'))[T.{o}]") for o in OCCASIONS[1:])
    assert fit.cov_params[a, a] == pytest.approx(expected["variance_a"], rel=1e-6)
    weights = np.zeros(len(fit.names))
    weights[[a, b]] = [-1.0, 1.0]
    _, se, _ = fit.contrast(weights)
    pooled_var = fit.cov_params[a, a] + fit.cov_params[b, b] - 2 * row["estimate"]
    assert se**2 == pytest.approx(pooled_var, rel=1e-12)
