"""Multiple imputation by chained equations (MICE) with mice's default methods, and Rubin's
rules for pooling.

Each variable with missing values is imputed in turn from all the others (a categorical one
entering the others' models as indicator columns), by the method mice uses by default:
- numeric: predictive mean matching. A Bayesian linear regression (coefficients and residual
  variance drawn from their posterior, Rubin 1987, as mice's "norm") gives predicted values; each
  missing value takes the observed value of one of the `donors` observed cases whose predictions
  are closest (type 1 matching). Only values that occur in the data are imputed.
- binary: logistic regression (mice's "logreg"); more than two levels: multinomial logistic
  regression ("polyreg"); both on the data augmented as mice does against separation, with the
  coefficients drawn from their approximate posterior.
The m imputations are m independent chains. Written here rather than taken from statsmodels'
MICEData, which imputes every variable by predictive mean matching on its model's predictions
(no draw of a level from a logistic or multinomial model), and refits formulas on data frames
where this engine updates one cross-product matrix per step.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cohort.core.distributions import t_critical

log = logging.getLogger(__name__)


def _draw_regression(
    rng: np.random.Generator, gram: np.ndarray, cols: list[int], target: int, n_obs: int
) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares coefficients of column `target` on `cols` and one posterior draw of them
    (flat prior), from the cross-product matrix of the observed rows: O(p^2) work whatever N
    (the pseudo-inverse gives lstsq's minimum-norm answer when columns are collinear)."""
    gxx, gxy = gram[np.ix_(cols, cols)], gram[cols, target]
    xtx_inv = np.linalg.pinv(gxx)
    beta = xtx_inv @ gxy
    rss = max(float(gram[target, target] - 2 * beta @ gxy + beta @ gxx @ beta), 0.0)
    sigma2 = rss / rng.chisquare(max(n_obs - len(cols), 1))
    covariance = xtx_inv * sigma2
    try:
        root = np.linalg.cholesky(covariance + np.eye(len(beta)) * 1e-12)
    except np.linalg.LinAlgError:  # a few observed rows: rank-deficient, rounding below zero
        values, vectors = np.linalg.eigh((covariance + covariance.T) / 2)
        root = vectors * np.sqrt(np.clip(values, 0.0, None))
    return beta, beta + root @ rng.standard_normal(len(beta))


def stable_argsort(values: np.ndarray) -> np.ndarray:
    """np.argsort(values, kind="stable"), about twice as fast for large arrays: a radix sort on
    16-bit buckets of the value range, then a stable sort of the values in that order, which is
    nearly sorted (equal values share a bucket and keep their index order, so the result is
    identical, ties included)."""
    low, high = float(values.min(initial=0.0)), float(values.max(initial=0.0))
    if len(values) < 10_000 or not high > low or not np.isfinite(high - low):
        return np.argsort(values, kind="stable")
    buckets = ((values - low) * (65535 / (high - low))).astype(np.uint16)
    by_bucket = np.argsort(buckets, kind="stable")
    return by_bucket[np.argsort(values[by_bucket], kind="stable")]


def nearest_block(sorted_pred: np.ndarray, pred_mis: np.ndarray, k: int) -> np.ndarray:
    """For each missing case, the first position of the k observed cases with the nearest
    predictions in `sorted_pred`; they lie within the 2k sorted values around the case.
    Distances along sorted values fall then rise, so the k nearest form a contiguous block: the
    block of k with the smallest sum of distances (the first, on ties). The cases are taken in
    the order of their predictions (each case's answer is its own): the binary searches and
    gathers then walk `sorted_pred` forwards, 2-3 times faster at registry size."""
    n = len(sorted_pred)
    width = min(2 * k, n)
    order = np.argsort(pred_mis, kind="stable")
    queries = pred_mis[order]
    pos = np.searchsorted(sorted_pred, queries)
    start = np.clip(pos - k, 0, n - width)
    window = start[:, None] + np.arange(width)[None, :]
    distance = np.abs(sorted_pred[window] - queries[:, None])
    cumulative = np.concatenate([np.zeros((len(queries), 1)), distance.cumsum(axis=1)], axis=1)
    block_sums = cumulative[:, k:] - cumulative[:, : width - k + 1]
    first = np.empty(len(queries), dtype=np.intp)
    first[order] = start + np.argmin(block_sums, axis=1)
    return first


def _pmm(
    rng: np.random.Generator,
    pred_obs: np.ndarray,
    pred_mis: np.ndarray,
    y_obs: np.ndarray,
    donors: int,
) -> np.ndarray:
    """For each missing case, the observed value of a random one of the `donors` observed cases
    whose predictions are nearest (one sort of the observed predictions; no sort per case)."""
    order = stable_argsort(pred_obs)
    k = min(donors, len(order))
    first = nearest_block(pred_obs[order], pred_mis, k)
    return y_obs[order[first + rng.integers(0, k, len(pred_mis))]]


METHODS = ("pmm", "logreg", "polyreg")


def imputation_method(levels: int | None) -> str:
    """mice's default method for a variable: pmm for a numeric one (levels None), logreg for a
    binary and polyreg for a categorical one with more levels."""
    if levels is None:
        return "pmm"
    return "logreg" if levels <= 2 else "polyreg"


def augment(
    x: np.ndarray, y: np.ndarray, weights: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """White, Daniel & Royston (Comput Stat Data Anal 2010;54:2267), as mice's `augment`: for
    each predictor and outcome level, two pseudo-records at the predictor's mean +- SD/2
    (clipped to its range; other predictors at their means), of total weight p + 1. They keep
    the logistic fit finite under separation and change it little otherwise."""
    p = x.shape[1] - 1  # predictors besides the intercept
    if p == 0:
        return x, y, weights
    mean, sd = x[:, 1:].mean(axis=0), x[:, 1:].std(axis=0, ddof=1) if len(x) > 1 else 0.0
    low, high = x[:, 1:].min(axis=0), x[:, 1:].max(axis=0)
    rows = 2 * p * k
    pseudo = np.tile(mean, (rows, 1))
    for j in range(p):
        block = slice(2 * k * j, 2 * k * (j + 1))
        pseudo[block, j] = np.clip(mean[j] + np.tile([0.5, -0.5], k) * sd[j], low[j], high[j])
    levels = np.tile(np.repeat(np.arange(k), 2), p)
    x_aug = np.vstack([x, np.column_stack([np.ones(rows), pseudo])])
    return (
        x_aug,
        np.concatenate([y, levels]),
        np.concatenate([weights, np.full(rows, (p + 1) / rows)]),
    )


def multinomial_logit(
    y: np.ndarray,
    x: np.ndarray,
    weights: np.ndarray,
    k: int,
    max_iterations: int = 50,
    start: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted maximum-likelihood multinomial logit of codes y in 0..k-1 (reference 0; k = 2 is
    logistic regression) by Newton-Raphson: coefficients (p x (k-1)) and the inverse information
    over them stacked level by level. From `start` where it converges there (a nearby earlier
    fit: fewer steps, the same maximum), else from zeros, as without one (a start far out on a
    flat likelihood can make the information singular, or stall)."""
    if start is not None:
        try:
            beta, inverse, converged = _newton_multinomial(y, x, weights, k, max_iterations, start)
            if converged and np.isfinite(beta).all():
                return beta, inverse
        except np.linalg.LinAlgError:
            pass
    beta, inverse, _ = _newton_multinomial(
        y, x, weights, k, max_iterations, np.zeros((x.shape[1], k - 1))
    )
    return beta, inverse


def _newton_multinomial(
    y: np.ndarray,
    x: np.ndarray,
    weights: np.ndarray,
    k: int,
    max_iterations: int,
    start: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """`multinomial_logit` from `start`, with whether it converged (a step below 1e-8)."""
    n, p = x.shape
    beta = start.copy()
    indicator = (y[:, None] == np.arange(1, k)[None, :]).astype(float)
    converged = False
    for _ in range(max_iterations):
        eta = np.column_stack([np.zeros(n), x @ beta])
        prob = np.exp(eta - eta.max(axis=1, keepdims=True))
        prob = (prob / prob.sum(axis=1, keepdims=True))[:, 1:]
        gradient = (x.T @ (weights[:, None] * (indicator - prob))).T.ravel()
        information = np.empty(((k - 1) * p, (k - 1) * p))
        for a in range(k - 1):
            for b in range(a, k - 1):
                w = weights * prob[:, a] * (float(a == b) - prob[:, b])
                block = x.T @ (x * w[:, None])
                information[a * p : (a + 1) * p, b * p : (b + 1) * p] = block
                information[b * p : (b + 1) * p, a * p : (a + 1) * p] = block
        ridge = 1e-8 * np.trace(information) / len(information)  # collinear predictors
        step = np.linalg.solve(information + ridge * np.eye(len(information)), gradient)
        beta += step.reshape(k - 1, p).T
        if np.abs(step).max() < 1e-8:
            converged = True
            break
    return beta, np.linalg.pinv(information), converged


def _draw_categories(
    rng: np.random.Generator,
    x_obs: np.ndarray,
    y_obs: np.ndarray,
    x_mis: np.ndarray,
    k: int,
    start: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """logreg / polyreg: fit the (augmented) multinomial logit on the observed rows, draw its
    coefficients from their approximate posterior N(b, I^-1) (mice's logreg does; its polyreg
    does not, which understates the between-imputation variance), and draw each missing
    value's level from its predicted probabilities. Returns the levels drawn and the fit, the
    `start` of the same variable's fit in the chain's next iteration."""
    x_aug, y_aug, w_aug = augment(x_obs, y_obs, np.ones(len(y_obs)), k)
    beta, covariance = multinomial_logit(y_aug, x_aug, w_aug, k, start=start)
    values, vectors = np.linalg.eigh((covariance + covariance.T) / 2)
    noise = vectors @ (np.sqrt(np.clip(values, 0, None)) * rng.standard_normal(len(values)))
    drawn = beta + noise.reshape(k - 1, -1).T
    eta = np.column_stack([np.zeros(len(x_mis)), x_mis @ drawn])
    prob = np.exp(eta - eta.max(axis=1, keepdims=True))
    cumulative = (prob / prob.sum(axis=1, keepdims=True)).cumsum(axis=1)
    drawn_levels = (rng.random(len(x_mis))[:, None] > cumulative[:, :-1]).sum(axis=1)
    return drawn_levels.astype(float), beta


def mice(
    data: pd.DataFrame,
    imputations: list[int],
    iterations: int,
    seed: int,
    donors: int = 5,
    levels: dict[str, int] | None = None,
) -> Iterator[tuple[int, pd.DataFrame]]:
    """Completed copies of `data` (all columns numeric; NaN = missing), one per imputation number.
    `levels`: the categorical columns (codes 0..k-1) and their number of levels; they enter the
    other variables' models as k - 1 indicator columns and are imputed by logreg or polyreg
    (imputation_method); every other column by PMM. Imputation i is a chain with its own random
    stream, seeded by (seed, i), so it is the same whichever job computes it and however the
    imputations are split across jobs."""
    levels = levels or {}
    values = data.to_numpy(dtype=float)
    missing = np.isnan(values)
    for j in range(values.shape[1]):
        if missing[:, j].all():
            raise ValueError(f"imputation: column '{data.columns[j]}' has no observed value")
    targets = [
        j for j in range(values.shape[1]) if missing[:, j].any() and (~missing[:, j]).sum() > 1
    ]
    k_of = [levels.get(c) for c in data.columns]
    # Design columns of each variable: one, or k - 1 indicators of a categorical with k > 2.
    blocks, width = [], 1
    for k in k_of:
        size = k - 1 if k and k > 2 else 1
        blocks.append(list(range(width, width + size)))
        width += size

    def encode(design: np.ndarray, j: int, rows: np.ndarray | slice, column: np.ndarray) -> None:
        if len(blocks[j]) == 1:
            design[rows, blocks[j][0]] = column
        else:
            for level, c in enumerate(blocks[j], start=1):
                design[rows, c] = column == level

    for done, i in enumerate(imputations, start=1):
        rng = np.random.default_rng([seed, i])
        filled = values.copy()
        for j in targets:  # start from random draws of the observed values
            observed = values[~missing[:, j], j]
            filled[missing[:, j], j] = rng.choice(observed, missing[:, j].sum())
        design = np.ones((len(values), width))
        for j in range(values.shape[1]):
            encode(design, j, slice(None), filled[:, j])
        gram = design.T @ design  # kept current: only the imputed variable's columns change
        # A categorical variable's fit starts from its fit of the chain's previous iteration,
        # on nearly the same data: 2-3 Newton steps instead of 6-8, the same maximum (each
        # fit runs to a step below 1e-8), and nothing shared between chains.
        fits: dict[int, np.ndarray] = {}
        for _ in range(iterations):
            for j in targets:
                mis, own = missing[:, j], blocks[j]
                cols = [c for c in range(width) if c not in own]
                x_mis = design[mis]
                method = imputation_method(k_of[j])
                if method == "pmm":
                    observed_gram = gram - x_mis.T @ x_mis  # cross-products of observed rows
                    beta, beta_draw = _draw_regression(
                        rng, observed_gram, cols, own[0], int((~mis).sum())
                    )
                    fitted, drawn = np.zeros(width), np.zeros(width)
                    fitted[cols], drawn[cols] = beta, beta_draw
                    imputed = _pmm(
                        rng, (design @ fitted)[~mis], x_mis @ drawn, filled[~mis, j], donors
                    )
                else:
                    imputed, fits[j] = _draw_categories(
                        rng, design[~mis][:, cols], filled[~mis, j], x_mis[:, cols], k_of[j],
                        fits.get(j),
                    )  # fmt: skip
                filled[mis, j] = imputed
                encode(design, j, mis, imputed)
                gram[:, own] = design.T @ design[:, own]
                gram[own, :] = gram[:, own].T
        log.info("imputation %d done (%d of %d in this job)", i, done, len(imputations))
        yield i, pd.DataFrame(filled, index=data.index, columns=data.columns)


@dataclass(frozen=True)
class Pooled:
    """Rubin's rules: pooled estimate, total variance and its parts, degrees of freedom, CI, and
    mice's two measures of the information lost to missing data: lambda = (1 + 1/m) B / T, the
    proportion of the variance due to missingness, and fmi = (r + 2 / (df + 3)) / (r + 1), the
    fraction of missing information (r = (1 + 1/m) B / U, the relative increase in variance)."""

    estimate: float
    within: float
    between: float
    total: float
    df: float
    ci_low: float
    ci_high: float
    lambda_: float
    fmi: float


def rubin_pool(
    estimates: np.ndarray,
    variances: np.ndarray,
    level: float = 0.95,
    df_complete: float | None = None,
) -> Pooled:
    """Pool m estimates and their variances (Rubin 1987). Degrees of freedom: Rubin's
    (m - 1)(1 + 1/r)^2, or Barnard & Rubin (1999) when the complete-data df is given, as
    mice::pool.scalar."""
    q = np.asarray(estimates, dtype=float)
    u = np.asarray(variances, dtype=float)
    m = len(q)
    q_bar = float(q.mean())
    u_bar = float(u.mean())
    b = float(q.var(ddof=1)) if m > 1 else 0.0
    t = u_bar + (1 + 1 / m) * b
    r = (1 + 1 / m) * b / u_bar if u_bar > 0 else (np.inf if b > 0 else 0.0)
    lambda_ = (1 + 1 / m) * b / t if t > 0 else 0.0
    if b == 0:
        df = np.inf if df_complete is None else float(df_complete)
    else:
        df = (m - 1) / lambda_**2
        if df_complete is not None:
            df_obs = (df_complete + 1) / (df_complete + 3) * df_complete * (1 - lambda_)
            df = 1 / (1 / df + 1 / df_obs)
    half = t_critical(level, df) * np.sqrt(t)
    fmi = (r + 2 / (df + 3)) / (r + 1) if np.isfinite(r) else 1.0
    return Pooled(q_bar, u_bar, b, t, float(df), q_bar - half, q_bar + half, lambda_, float(fmi))


def pooled_proportion(
    rates: np.ndarray, n: int, level: float = 0.95
) -> tuple[float, float, float, Pooled]:
    """Pool m proportions on the logit scale (variance 1 / (n p (1 - p))), back-transformed:
    (estimate, CI low, CI high) and the logit-scale pooling."""
    p = np.clip(np.asarray(rates, dtype=float), 0.5 / n, 1 - 0.5 / n)
    logit = np.log(p / (1 - p))
    pooled = rubin_pool(logit, 1 / (n * p * (1 - p)), level)

    def expit(x: float) -> float:
        return float(1 / (1 + np.exp(-x)))

    return expit(pooled.estimate), expit(pooled.ci_low), expit(pooled.ci_high), pooled


# Below this ratio of the between- to the within-imputation variance the imputations do not
# differ beyond rounding: Rubin's df ((m - 1) / lambda^2) and fmi lose their meaning.
MIN_BETWEEN_RATIO = 1e-9


def degenerate_pooling(rates: np.ndarray, n: int, pooled: Pooled) -> str:
    """Why m imputed proportions cannot be pooled as an estimate ('' when they can): no
    responder or every patient a responder in every imputation (the logit pooling would
    publish a continuity correction, 0.5 / n, as the rate), or imputations that do not differ
    (a df and fmi that are not finite or sane)."""
    rates = np.asarray(rates, dtype=float)
    if np.all(rates == 0):
        return f"not pooled: no responder in any imputation (0 of {n}); see the complete-case row"
    if np.all(rates == 1):
        return f"not pooled: every patient a responder in every imputation ({n} of {n}); see the complete-case row"
    ratio = pooled.between / pooled.within if pooled.within > 0 else math.inf
    if not (np.isfinite(pooled.df) and 0 <= pooled.fmi <= 1) or ratio < MIN_BETWEEN_RATIO:
        return (
            "not pooled: the imputations do not differ (between-imputation variance "
            f"{pooled.between:.2g}), so Rubin's df and fmi are not defined"
        )
    return ""
