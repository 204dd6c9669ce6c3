"""Models against independent computations (the fitting engines themselves are checked against
statsmodels and closed forms in test_regression): counts of the mixed model, the logistic model
against Newton-Raphson by hand,
Rubin's rules by hand, and multiple imputation's coverage under data missing at random."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cohort.analysis.imputation import (
    mice,
    nearest_block,
    pooled_proportion,
    rubin_pool,
    stable_argsort,
)
from cohort.analysis.imputed_sets import (
    analyse_imputed,
    completed_data_sets,
    imputation_columns,
    impute_part,
    number_of_imputations,
    read_parts,
    write_part,
)
from cohort.analysis.predictors import predictor_table
from cohort.analysis.responders import classify_all, wilson_interval
from cohort.core.settings import ImputationSettings, McidRule, ModelTerms, Outcome
from cohort.models.design import design_matrix
from cohort.models.lmm import lmm_tables
from cohort.models.logistic import LogisticSettings, logistic_regression

OCCASIONS = ["start", "discharge", "followup_1y"]
OUTCOMES = {"pain": Outcome("pain", "Pain", (0, 10), "lower", mcid=McidRule(2, None))}
HANDLING = "non_responder"
RESPONSE = (list(OUTCOMES), OCCASIONS, HANDLING)  # outcomes, occasions, could-not-improve


def cohort(n: int, seed: int, p_missing: float = 0.2) -> pd.DataFrame:
    """Patients with a random intercept, an occasion effect, covariates, and missing follow-ups."""
    rng = np.random.default_rng(seed)
    age = rng.normal(45, 12, n)
    sex = pd.Categorical(rng.choice(["F", "M"], n), categories=["F", "M"])
    u = rng.normal(0, 1.2, n)
    frame = pd.DataFrame(
        {
            "patient_id": [f"P{i}" for i in range(n)],
            "age": age,
            "sex": sex,
            "n_sessions": rng.integers(3, 20, n).astype(float),
        }
    )
    for j, occasion in enumerate(OCCASIONS):
        value = (
            6.5 - 1.2 * (j > 0) + 0.02 * (age - 45) + 0.4 * (sex == "M") + u + rng.normal(0, 1.0, n)
        )
        value = np.clip(np.round(value), 0, 10)
        if j > 0:
            value[rng.random(n) < p_missing] = np.nan
        frame[f"pain_{occasion}"] = value
    frame["assessed_followup_1y"] = frame["pain_followup_1y"].notna()
    return frame


def test_lmm_counts_patients_and_observations():
    patients = cohort(60, 2)
    patients.loc[0, "age"] = np.nan  # incomplete covariate: out of the model
    effects, means, fits = lmm_tables(patients, OUTCOMES, OCCASIONS, ["age", "sex"], 0.95)
    assert set(effects["patients"]) == {59}
    observed = int(patients.loc[1:, [f"pain_{o}" for o in OCCASIONS]].notna().sum().sum())
    assert set(effects["observations"]) == {observed} and fits["pain"].nobs == observed
    assert list(means["occasion"]) == OCCASIONS
    assert effects["converged"].all()


def irls(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Logistic regression by Newton-Raphson, written out: coefficients and standard errors."""
    beta = np.zeros(x.shape[1])
    for _ in range(50):
        p = 1 / (1 + np.exp(-x @ beta))
        w = p * (1 - p)
        hessian = x.T @ (x * w[:, None])
        step = np.linalg.solve(hessian, x.T @ (y - p))
        beta += step
        if np.abs(step).max() < 1e-12:
            break
    return beta, np.sqrt(np.diag(np.linalg.inv(hessian)))


def test_logistic_model_equals_newton_raphson_by_hand():
    patients = cohort(200, 3)
    classified = classify_all(patients, OUTCOMES, OCCASIONS)
    table, _ = predictor_table(
        patients,
        classified,
        *RESPONSE,
        lambda o: ["age", "n_sessions", f"{o}_start"],
        0.95,
        LogisticSettings(ci="wald", firth="never"),
    )
    row = table[(table["occasion"] == "discharge")].set_index("term")
    frame = patients.merge(
        classified[(classified["occasion"] == "discharge") & (classified["category"] != "missing")],
        on="patient_id",
    )
    x = np.column_stack(
        [np.ones(len(frame)), frame["age"], frame["n_sessions"], frame["pain_start"]]
    )
    y = (frame["category"] == "responder").to_numpy(dtype=float)
    beta, se = irls(x, y)
    assert int(row["N"].iat[0]) == len(frame) and int(row["events"].iat[0]) == int(y.sum())
    np.testing.assert_allclose(
        row.loc[["age", "n_sessions", "pain_start"], "log_or"], beta[1:], rtol=1e-6
    )
    np.testing.assert_allclose(
        row.loc[["age", "n_sessions", "pain_start"], "se"], se[1:], rtol=1e-6
    )
    epv = min(y.sum(), len(y) - y.sum()) / 3
    assert row["epv"].iat[0] == pytest.approx(epv)
    assert ("EPV" in row["warnings"].iat[0]) == (epv < 10)


def test_rubin_rules_by_hand():
    q = np.array([1.0, 1.2, 0.8, 1.1, 0.9])
    u = np.array([0.04, 0.05, 0.04, 0.06, 0.06])
    pooled = rubin_pool(q, u, 0.95)
    b = np.var(q, ddof=1)  # 0.025
    t = 0.05 + (1 + 1 / 5) * b  # 0.08
    r = (1 + 1 / 5) * b / 0.05
    df = 4 * (1 + 1 / r) ** 2
    assert (pooled.estimate, pooled.within, pooled.between, pooled.total) == pytest.approx(
        (1.0, 0.05, 0.025, 0.08)
    )
    assert pooled.df == pytest.approx(df)
    from scipy import stats

    half = stats.t.ppf(0.975, df) * np.sqrt(t)
    assert (pooled.ci_low, pooled.ci_high) == pytest.approx((1 - half, 1 + half))
    assert pooled.lambda_ == pytest.approx(0.03 / 0.08)
    assert pooled.fmi == pytest.approx((r + 2 / (df + 3)) / (r + 1))
    # Barnard-Rubin: never more df than the complete data would have.
    assert rubin_pool(q, u, 0.95, df_complete=20).df < 20


def test_rubin_rules_equal_mice_pool_scalar():
    """mice 3.15.0 (R 4.2.2): pool.scalar(Q, U, n = 60, k = 3) and with n = Inf give these df
    and fmi (lambda is (1 + 1/m) B / T by definition: mice's formula, printed by pool())."""
    q = np.array([1.2, 1.5, 0.9, 1.4, 1.1])
    u = np.array([0.04, 0.05, 0.045, 0.05, 0.042])
    barnard_rubin = rubin_pool(q, u, df_complete=57)
    assert (barnard_rubin.between, barnard_rubin.total) == pytest.approx((0.057, 0.1138))
    assert barnard_rubin.df == pytest.approx(7.36330397705975, rel=1e-12)
    assert barnard_rubin.fmi == pytest.approx(0.67804643687984, rel=1e-12)
    assert barnard_rubin.lambda_ == pytest.approx(1.2 * 0.057 / 0.1138, rel=1e-12)
    rubin = rubin_pool(q, u)
    assert (rubin.df, rubin.fmi) == pytest.approx(
        (11.072158954892108, 0.657754454838835), rel=1e-12
    )


def test_mice_is_reproducible_and_imputes_observed_values():
    patients = cohort(100, 4)
    data = patients[["age", "n_sessions", *(f"pain_{o}" for o in OCCASIONS)]]
    first = dict(mice(data, [0, 1, 2], 5, seed=9))
    again = dict(mice(data, [2, 0], 5, seed=9))  # another split of the chains over jobs
    assert not first[0].equals(first[1])  # chains differ
    for i, b in again.items():
        a = first[i]
        pd.testing.assert_frame_equal(a, b)
        assert not a.isna().any().any()
        for column in ("pain_discharge", "pain_followup_1y"):
            assert set(a[column]) <= set(data[column].dropna())  # PMM: observed values only
        observed = data.notna()
        pd.testing.assert_frame_equal(
            a[observed].dropna(how="all"), data[observed].dropna(how="all")
        )


def test_number_of_imputations_follows_incomplete_share():
    frame = pd.DataFrame({"a": [1, np.nan, 3, 4], "b": [1, 2, 3, 4]})
    assert (
        number_of_imputations(frame, ImputationSettings(m="auto", max_imputed_records=1000)) == 25
    )
    assert number_of_imputations(frame, ImputationSettings(m=7, max_imputed_records=1000)) == 7
    # The cap: at most max(5, records / N) imputations with `auto`, never below 5.
    assert number_of_imputations(frame, ImputationSettings(m="auto", max_imputed_records=40)) == 10
    assert number_of_imputations(frame, ImputationSettings(m="auto", max_imputed_records=4)) == 5
    assert number_of_imputations(frame, ImputationSettings(m=30, max_imputed_records=4)) == 30


def simulate(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Age, start pain and follow-up pain; older patients improve more."""
    age = rng.normal(45, 12, n)
    start = np.clip(np.round(rng.normal(7, 1.5, n)), 0, 10)
    improvement = 1.5 + 0.06 * (age - 45) + rng.normal(0, 2, n)
    return age, start, np.clip(np.round(start - improvement), 0, 10)


@pytest.mark.slow
def test_imputed_responder_rate_covers_the_truth_under_mar():
    """Follow-up missing at random given age (which predicts response): the complete-case rate is
    biased, while the imputed rate's 95% interval covers the population rate at about the nominal
    level. The population rate comes from 2 million simulated patients. 200 replicates: a true
    coverage of 0.95 is seen between 0.90 and 0.99 (3 SE of a binomial share, 0.015 each)."""
    rng = np.random.default_rng(2021)
    _, start, follow = simulate(rng, 2_000_000)
    truth = float(((start - follow) >= 2).mean())
    n, replicates = 300, 200
    covered, cc_bias = 0, []
    for r in range(replicates):
        age, start, follow = simulate(rng, n)
        p_missing = 1 / (1 + np.exp(-(-0.8 + 0.08 * (age - 45))))  # older lost more often
        observed = follow.copy()
        observed[rng.random(n) < p_missing] = np.nan
        data = pd.DataFrame({"age": age, "pain_start": start, "pain_end": observed})
        rates = [
            float(((c["pain_start"] - c["pain_end"]) >= 2).mean())
            for _, c in mice(data, list(range(10)), 5, seed=r)
        ]
        _, low, high, _ = pooled_proportion(np.array(rates), n, 0.95)
        covered += low <= truth <= high
        measured = ~np.isnan(observed)
        cc_bias.append(((start - observed)[measured] >= 2).mean() - truth)
    coverage = covered / replicates
    print(f"coverage {coverage:.3f}, complete-case bias {np.mean(cc_bias):+.3f}")
    assert 0.90 <= coverage <= 0.99, coverage
    assert np.mean(cc_bias) < -0.03  # complete cases under-represent the older, who improve more


def test_wilson_is_what_the_sensitivity_table_uses():
    assert wilson_interval(108, 240)[0] == pytest.approx(0.38834, abs=1e-5)


def imputation_config() -> tuple[list[str], ImputationSettings]:
    """The imputation model's columns and settings, as rule impute builds them."""
    terms = ModelTerms(covariates=("age", "sex"), dose="n_sessions")
    settings = ImputationSettings(
        m=4, max_imputed_records=10**6, iterations=3, donors=5, seed=5, jobs=2
    )
    return imputation_columns(terms, list(OUTCOMES), OCCASIONS), settings


def test_imputations_do_not_depend_on_how_they_are_split_into_jobs():
    """Rule impute splits the m chains over jobs; one job or three give the same data sets, and
    the completed tables have every patient, observed values untouched."""
    patients = cohort(80, 12)
    config = imputation_config()
    whole, m = impute_part(patients, *config, 0, 1)
    split = pd.concat([impute_part(patients, *config, k, 3)[0] for k in range(3)])
    more_jobs_than_chains = [impute_part(patients, *config, k, 6)[0] for k in range(6)]
    assert [len(p) for p in more_jobs_than_chains[4:]] == [0, 0]  # parts 4, 5: nothing to do
    assert len(list(completed_data_sets(patients, *config, pd.concat(more_jobs_than_chains)))) == 4
    key = ["imputation", "row"]
    pd.testing.assert_frame_equal(
        whole.sort_values(key).reset_index(drop=True),
        split.sort_values(key).reset_index(drop=True),
    )
    completed = list(completed_data_sets(patients, *config, split))
    assert m == 4 and len(completed) == 4
    for data in completed:
        assert len(data) == len(patients) and not data["pain_followup_1y"].isna().any()
        observed = patients["pain_followup_1y"].notna()
        assert (
            data.loc[observed, "pain_followup_1y"] == patients.loc[observed, "pain_followup_1y"]
        ).all()


def test_stacked_imputed_analyses_equal_one_data_set_at_a_time():
    """analyse_imputed stacks small completed data sets into batches: the rates and every fit
    are those of one data set at a time, whatever the batch size (a categorical covariate is
    imputed too, so stacked categories are exercised)."""
    patients = cohort(80, 14)
    patients.loc[::7, "sex"] = np.nan
    config = imputation_config()
    parts, m = impute_part(patients, *config, 0, 1)

    def terms_of(outcome):
        return ["age", "sex", f"{outcome}_start", "n_sessions"]

    def analyses(batch_rows):
        completed = completed_data_sets(patients, *config, parts)
        return analyse_imputed(
            completed, OUTCOMES, OCCASIONS, HANDLING, terms_of, batch_rows=batch_rows
        )

    one_at_a_time = analyses(1)
    for batch_rows in (3 * len(patients) - 1, 10**6):  # batches of 3 and 1, or all 4 at once
        stacked = analyses(batch_rows)
        assert stacked.m == one_at_a_time.m == m
        assert stacked.rates == one_at_a_time.rates
        assert stacked.fits.keys() == one_at_a_time.fits.keys()
        for key, fits in stacked.fits.items():
            assert len(fits) == m
            for a, b in zip(fits, one_at_a_time.fits[key], strict=True):
                assert a.names == b.names
                np.testing.assert_array_equal(a.params, b.params)
                np.testing.assert_array_equal(a.bse, b.bse)


def test_part_files_give_the_data_sets_of_the_stacked_parts_one_imputation_at_a_time(tmp_path):
    """Rule impute's part files (one row group per imputation) read lazily give the completed
    data sets of the stacked parts, in the same order; a part with no imputation is read too."""
    import pyarrow.parquet as pq

    patients = cohort(60, 15)
    config = imputation_config()
    pieces = [impute_part(patients, *config, k, 3)[0] for k in range(3)]
    paths = []
    for k, piece in enumerate([*pieces, pieces[0].iloc[:0]]):
        paths.append(str(tmp_path / f"part{k}.parquet"))
        write_part(piece, paths[-1], len(patients))
    assert pq.ParquetFile(paths[0]).num_row_groups == 2  # imputations 0 and 3
    assert read_parts(paths).imputations() == [0, 1, 2, 3]
    lazily = list(completed_data_sets(patients, *config, read_parts(paths)))
    stacked = list(completed_data_sets(patients, *config, pd.concat(pieces)))
    assert len(lazily) == len(stacked) == 4
    for a, b in zip(lazily, stacked, strict=True):
        pd.testing.assert_frame_equal(a, b)


def test_a_missing_imputation_part_is_an_error():
    patients = cohort(40, 13)
    config = imputation_config()
    first, _ = impute_part(patients, *config, 0, 2)  # imputations 0 and 2 only
    with pytest.raises(AssertionError, match="expected"):
        list(completed_data_sets(patients, *config, first))


def test_pmm_donor_pool_is_the_k_nearest_by_brute_force():
    """The donors of predictive mean matching (a contiguous block of the sorted predictions) are
    the k observed cases nearest to each missing case's prediction, ties and both ends of the
    range included: compared with sorting every distance."""
    rng = np.random.default_rng(0)
    for _ in range(500):
        n = int(rng.integers(1, 60))
        k = int(min(rng.integers(1, 8), n))
        observed = np.sort(np.round(rng.normal(size=n), int(rng.integers(0, 3))))  # ties
        missing = np.round(rng.normal(size=20) * 1.5, int(rng.integers(0, 3)))  # beyond the ends
        first = nearest_block(observed, missing, k)
        for i, x in enumerate(missing):
            block = np.abs(observed[first[i] : first[i] + k] - x)
            np.testing.assert_allclose(np.sort(block), np.sort(np.abs(observed - x))[:k])


@pytest.mark.parametrize("decimals", [0, 2, 8])
def test_stable_argsort_equals_numpy_stable_sort_ties_included(decimals):
    """The bucketed sort that PMM uses gives exactly numpy's stable order (few or many ties)."""
    values = np.round(np.random.default_rng(decimals).normal(0, 3, 50_000), decimals)
    np.testing.assert_array_equal(stable_argsort(values), np.argsort(values, kind="stable"))
    constant = np.full(20_000, 1.5)
    np.testing.assert_array_equal(stable_argsort(constant), np.arange(20_000))


def test_multinomial_logit_equals_statsmodels_mnlogit():
    """The Newton-Raphson multinomial logit of polyreg/logreg imputation: coefficients and
    inverse information as statsmodels' MNLogit (three levels) and Logit (two)."""
    import statsmodels.api as sm

    from cohort.analysis.imputation import multinomial_logit

    rng = np.random.default_rng(31)
    x = np.column_stack([np.ones(400), rng.normal(size=400), rng.integers(0, 2, 400)])
    eta = np.column_stack([np.zeros(400), x @ [0.3, 1.0, -0.5], x @ [-0.2, -0.8, 1.0]])
    prob = np.exp(eta) / np.exp(eta).sum(axis=1, keepdims=True)
    y = (rng.random(400)[:, None] > prob.cumsum(axis=1)[:, :-1]).sum(axis=1)
    beta, covariance = multinomial_logit(y.astype(float), x, np.ones(400), 3)
    reference = sm.MNLogit(y, x).fit(method="newton", tol=1e-12, disp=False)
    np.testing.assert_allclose(beta, reference.params, rtol=1e-6)
    np.testing.assert_allclose(covariance, reference.cov_params(), rtol=1e-6, atol=1e-10)
    binary = (y == 2).astype(float)
    beta, covariance = multinomial_logit(binary, x, np.ones(400), 2)
    logit = sm.Logit(binary, x).fit(disp=False, tol=1e-12)
    np.testing.assert_allclose(beta[:, 0], logit.params, rtol=1e-6)
    np.testing.assert_allclose(covariance, logit.cov_params(), rtol=1e-6)
    # From a start elsewhere (as the next MICE iteration starts from the last fit): the same
    # maximum and information.
    beta3, covariance3 = multinomial_logit(y.astype(float), x, np.ones(400), 3)
    started, covariance_started = multinomial_logit(
        y.astype(float), x, np.ones(400), 3, start=beta3 + 0.3
    )
    np.testing.assert_allclose(started, beta3, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(covariance_started, covariance3, rtol=1e-6)
    # A start far out, where every probability is 0 or 1 and the information vanishes: the fit
    # from zeros instead, exactly.
    far, covariance_far = multinomial_logit(
        y.astype(float), x, np.ones(400), 3, start=np.full_like(beta3, 1e4)
    )
    np.testing.assert_array_equal(far, beta3)
    np.testing.assert_array_equal(covariance_far, covariance3)


def test_augmentation_is_mice_s():
    """mice's augment(): 2 p k pseudo-records (p predictors, k levels), each predictor in turn at
    its mean +- SD/2 clipped to its range with the others at their means, each level twice per
    predictor, total weight p + 1."""
    from cohort.analysis.imputation import augment

    x = np.column_stack([np.ones(5), [1.0, 2, 3, 4, 10], [0.0, 0, 1, 1, 1]])
    y = np.array([0.0, 1, 2, 1, 0])
    xa, ya, wa = augment(x, y, np.ones(5), 3)
    pseudo = xa[5:]
    assert len(pseudo) == 2 * 2 * 3 and wa[5:].sum() == pytest.approx(3)
    sd = x[:, 1].std(ddof=1)
    np.testing.assert_allclose(pseudo[:6, 1], np.tile([4 + sd / 2, 4 - sd / 2], 3))
    np.testing.assert_allclose(pseudo[:6, 2], 0.6)
    np.testing.assert_allclose(
        pseudo[6:, 2],
        np.clip(np.tile([0.6, 0.6], 3) + np.tile([0.5, -0.5], 3) * x[:, 2].std(ddof=1), 0, 1),
    )
    assert ya[5:].tolist() == [0, 0, 1, 1, 2, 2] * 2


def test_categorical_variables_are_imputed_from_their_own_model():
    """A three-level nominal and a binary variable, both depending on a covariate, 40% missing
    completely at random: polyreg and logreg impute only valid levels, and the imputed values
    follow the conditional distribution: per half of the covariate, the share of each level among
    the imputed matches the observed share to within 0.06 (4 SE of a share over ~ 1,000 imputed
    values in 5 imputations)."""
    rng = np.random.default_rng(5)
    n = 1200
    x = rng.normal(size=n)
    eta = np.column_stack([np.zeros(n), 1.5 * x, -1.5 * x])
    prob = np.exp(eta) / np.exp(eta).sum(axis=1, keepdims=True)
    nominal = (rng.random(n)[:, None] > prob.cumsum(axis=1)[:, :-1]).sum(axis=1).astype(float)
    binary = (rng.random(n) < 1 / (1 + np.exp(-2 * x))).astype(float)
    data = pd.DataFrame({"x": x, "nominal": nominal, "binary": binary})
    data.loc[rng.random(n) < 0.4, "nominal"] = np.nan
    data.loc[rng.random(n) < 0.4, "binary"] = np.nan
    completed = [
        c for _, c in mice(data, list(range(5)), 5, seed=3, levels={"nominal": 3, "binary": 2})
    ]
    for column, k in (("nominal", 3), ("binary", 2)):
        missing = data[column].isna().to_numpy()
        for half in (x > 0, x <= 0):
            imputed = np.concatenate([c[column].to_numpy()[missing & half] for c in completed])
            assert set(np.unique(imputed)) <= set(range(k))
            observed = data.loc[~missing & half, column]
            for level in range(k):
                assert (imputed == level).mean() == pytest.approx(
                    (observed == level).mean(), abs=0.06
                ), (column, level)


def test_no_pooled_row_from_fewer_than_m_fits():
    """A model that failed in one of three imputations is not pooled from the other two: its row
    says so, with the count and the reason; with all three it is pooled by Rubin's rules."""
    from cohort.analysis.imputed_sets import ImputedAnalyses
    from cohort.analysis.predictors import pooled_predictors
    from cohort.models.logistic import LogisticFit

    def fit(b: float) -> LogisticFit:
        return LogisticFit(
            ["Intercept", "age"], np.array([0.1, b]), np.eye(2) * 0.01, 80, 5, True, []
        )

    key = ("pain", "discharge")
    failed = ImputedAnalyses(
        m=3, fits={key: [fit(0.2), fit(0.3)]}, notes={key: {"ValueError: perfect separation"}}
    )
    row = pooled_predictors(failed, ["pain"], OCCASIONS[:2], 0.95).iloc[0]
    assert row["term"] == "(model failed)" and "2 of m = 3" in row["method"]
    assert "perfect separation" in row["warnings"] and pd.isna(row.get("odds_ratio", np.nan))
    complete = ImputedAnalyses(m=3, fits={key: [fit(0.2), fit(0.3), fit(0.4)]})
    row = pooled_predictors(complete, ["pain"], OCCASIONS[:2], 0.95).set_index("term").loc["age"]
    pooled = rubin_pool(np.array([0.2, 0.3, 0.4]), np.full(3, 0.01), 0.95, df_complete=78)
    assert row["log_or"] == pytest.approx(0.3) and row["se"] == pytest.approx(np.sqrt(pooled.total))
    assert (row["fmi"], row["lambda"]) == pytest.approx((pooled.fmi, pooled.lambda_))


def test_firth_is_chosen_under_separation_or_few_events_and_stated():
    """firth auto: a model with a separating variable is fitted by Firth's penalised likelihood,
    the warning names the separated term, and the estimates are logistic_regression's with
    firth=True; with firth never the same model fails with the reason; with EPV below the
    threshold Firth is used although nothing is separated. The method column says which."""
    patients = cohort(200, 3)
    classified = classify_all(patients, OUTCOMES, OCCASIONS)
    at = classified[(classified["occasion"] == "discharge") & (classified["outcome"] == "pain")]
    responders = set(at.loc[at["category"] == "responder", "patient_id"])
    patients["marker"] = pd.Categorical(
        np.where(
            patients["patient_id"].isin(responders) | (np.arange(len(patients)) % 3 > 0), "a", "b"
        )
    )  # level b: no responder

    def terms(outcome):
        return ["age", "marker"]

    table, firth_models = predictor_table(patients, classified, *RESPONSE, terms, 0.95)
    rows = table[(table["occasion"] == "discharge") & (table["outcome"] == "pain")]
    assert ("pain", "discharge") in firth_models
    assert rows["method"].str.contains("Firth").all()
    assert rows["warnings"].str.contains(r"separation in C\(marker\)\[T.b\]").all()
    frame = rows.set_index("term")
    data = patients.merge(at[at["category"] != "missing"], on="patient_id")
    x, names = design_matrix(data, ["marker", "age"], drop_unused_levels=True)
    direct = logistic_regression(
        (data["category"] == "responder").to_numpy(float), x, names, firth=True
    )
    assert frame.loc["C(marker)[T.b]", "log_or"] == pytest.approx(direct.params[1], rel=1e-9)
    never, _ = predictor_table(
        patients, classified, *RESPONSE, terms, 0.95, LogisticSettings(firth="never")
    )
    failed = never[(never["occasion"] == "discharge") & (never["outcome"] == "pain")]
    assert failed["term"].tolist() == ["(model failed)"]
    assert "separation" in failed["warnings"].iat[0]
    few, firth_models = predictor_table(
        patients, classified, *RESPONSE, lambda o: ["age"], 0.95, LogisticSettings(epv_minimum=1000)
    )
    assert few["method"].str.contains("Firth").all() and len(firth_models) == 2


def test_cluster_setting_nests_patients_and_makes_logistic_ses_robust():
    """With a cluster column the mixed model has a clinic variance and the method says so; the
    logistic models keep their estimates and take cluster-robust SEs with Wald CIs."""
    from cohort.models.logistic import cluster_robust

    patients = cohort(240, 6)
    patients["clinic"] = pd.Categorical([f"K{i % 12}" for i in range(len(patients))])
    effects, _, fits = lmm_tables(
        patients, OUTCOMES, OCCASIONS, ["age", "sex"], 0.95, cluster="clinic"
    )
    pain = effects[effects["outcome"] == "pain"]
    assert "variance: clinic intercept" in set(pain["term"])
    assert pain["method"].str.contains("per clinic and per patient within clinic").all()
    assert fits["pain"].clusters == 12
    classified = classify_all(patients, OUTCOMES, OCCASIONS)

    def terms(outcome):
        return ["age", "n_sessions", f"{outcome}_start"]

    settings = LogisticSettings(firth="never")
    plain, _ = predictor_table(patients, classified, *RESPONSE, terms, 0.95, settings)
    robust, _ = predictor_table(patients, classified, *RESPONSE, terms, 0.95, settings, "clinic")
    a = plain[plain["occasion"] == "discharge"].set_index("term")
    b = robust[robust["occasion"] == "discharge"].set_index("term")
    np.testing.assert_allclose(a["log_or"], b["log_or"], rtol=1e-12)
    assert b["method"].str.contains("cluster-robust").all()
    frame = patients.merge(
        classified[(classified["occasion"] == "discharge") & (classified["category"] != "missing")],
        on="patient_id",
    )
    x, names = design_matrix(frame, terms("pain"))
    y = (frame["category"] == "responder").to_numpy(dtype=float)
    expected = cluster_robust(logistic_regression(y, x, names), y, x, frame["clinic"].to_numpy())
    np.testing.assert_allclose(b.loc[names[1:], "se"], expected.bse[1:], rtol=1e-9)
    z = 1.959963984540054
    np.testing.assert_allclose(
        b.loc[names[1:], "ci_high"], np.exp(expected.params[1:] + z * expected.bse[1:]), rtol=1e-9
    )
