"""Logistic regression by Newton-Raphson, Firth's penalised likelihood where the data separate,
profile-likelihood confidence intervals and cluster-robust standard errors (R's glm, logistf
and confint conventions).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from cohort.models.design import check_full_rank


# --- Logistic regression ----------------------------------------------------------------------------
@dataclass(frozen=True)
class LogisticSettings:
    """Config `models.logistic`: intervals (profile likelihood, as R's confint.glm and logistf,
    or Wald), when to use Firth's penalised likelihood (auto: under separation or fewer than
    `epv_minimum` events per variable; always; never) and the EPV threshold (Peduzzi et al.,
    J Clin Epidemiol 1996;49:1373)."""

    ci: str = "profile"
    firth: str = "auto"
    epv_minimum: float = 10.0

    @classmethod
    def from_config(cls, logistic: dict | None) -> LogisticSettings:
        return cls(**(logistic or {}))


R_CONVENTIONS = LogisticSettings()  # the default: profile-likelihood CIs, Firth when needed


@dataclass(frozen=True)
class LogisticFit:
    """Logistic regression by maximum likelihood or Firth's penalised likelihood: coefficients,
    covariance (inverse information), the (penalised) log-likelihood, counts."""

    names: list[str]
    params: np.ndarray
    cov_params: np.ndarray
    nobs: int
    iterations: int
    converged: bool
    warnings: list[str]
    firth: bool = False
    loglik: float = np.nan
    clusters: int | None = None  # set when the covariance is cluster-robust

    @property
    def bse(self) -> np.ndarray:
        return np.sqrt(np.diag(self.cov_params))


def separated_terms(y: np.ndarray, x: np.ndarray, names: list[str]) -> list[str]:
    """The terms whose maximum-likelihood estimate is infinite (complete or quasi-complete
    separation), by Konis's linear program (detectseparation::detect_separation): a direction b
    with (2y - 1) x_i'b >= 0 for every row and sum > 0 exists exactly when the data are
    separated; the terms with b_j != 0 diverge. Empty when the MLE exists."""
    from scipy.optimize import linprog

    signed = np.where(np.asarray(y) > 0.5, 1.0, -1.0)[:, None] * x
    scale = np.maximum(np.abs(signed).max(axis=0), 1e-300)
    signed = signed / scale
    result = linprog(
        -signed.sum(axis=0),
        A_ub=-signed,
        b_ub=np.zeros(len(signed)),
        bounds=[(-1, 1)] * x.shape[1],
        method="highs",
    )
    if result.status != 0 or -result.fun < 1e-7 * len(signed):
        return []
    return [name for name, b in zip(names, result.x, strict=True) if abs(b) > 1e-7]


def _hat_diagonal(x: np.ndarray, w: np.ndarray, information: np.ndarray) -> np.ndarray:
    """Diagonal of W^1/2 X (X'WX)^-1 X' W^1/2 (pseudo-inverse where fitted probabilities of 0
    or 1 make X'WX numerically singular: their rows have w = 0 and add nothing)."""
    try:
        inverse = np.linalg.inv(information)
    except np.linalg.LinAlgError:
        inverse = np.linalg.pinv(information)
    return np.einsum("ij,ij->i", x @ inverse, x) * w


def _firth_curvature(x: np.ndarray, p: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    """Second derivatives of Firth's penalty 0.5 log|X'WX| in b (exact): 0.5 [X' diag(c h~) X -
    T] with c = w (1 - 6p + 6p^2), h~_i = x_i' I^-1 x_i and T_kl = tr(I^-1 I_k I^-1 I_l),
    I_k = X' diag(w (1 - 2p) x_k) X. With it Newton converges quadratically where scoring with
    X'WX alone crawls (small samples, where the penalty's curvature is large)."""
    w = p * (1 - p)
    leverage = np.einsum("ij,ij->i", x @ inverse, x)
    first = x.T @ (x * (w * (1 - 6 * p + 6 * p * p) * leverage)[:, None])
    a = w * (1 - 2 * p)
    xa = x * a[:, None]
    scaled = inverse @ np.stack([(xa * x[:, [k]]).T @ x for k in range(x.shape[1])])  # I^-1 I_k
    second = np.tensordot(scaled, scaled.transpose(0, 2, 1), axes=([1, 2], [1, 2]))
    return 0.5 * (first - second)


def _loglik_at(y: np.ndarray, x: np.ndarray, eta: np.ndarray, firth: bool) -> float:
    """The (penalised) log-likelihood at the linear predictor eta = x @ beta (a Newton fit
    keeps eta for its next step: at 10^6 patients each product is a pass over the design)."""
    value = float(np.sum(y * eta - np.logaddexp(0, eta)))
    if firth:
        p = special.expit(eta)
        sign, logdet = np.linalg.slogdet(x.T @ (x * (p * (1 - p))[:, None]))
        value += 0.5 * float(logdet) if sign > 0 else -np.inf
    return value


def _newton(
    y: np.ndarray,
    x: np.ndarray,
    beta: np.ndarray,
    free: np.ndarray,
    firth: bool,
    max_iterations: int,
    tolerance: float = 1e-10,
) -> tuple[np.ndarray, int, bool, float]:
    """Maximise the (penalised) log-likelihood over the coefficients `free` (the others fixed),
    by Newton-Raphson on the (modified) score with step halving. Firth's modified score is
    X'(y - p + h (1/2 - p)), h the hat diagonal of the full design (Firth, Biometrika 1993;
    Heinze & Schemper, Stat Med 2002). Converged when the step is below 1e-10, or when the
    Newton decrement score'step (twice the gain a step promises) is below 1e-12 and the steps
    have stopped shrinking: on an ill-conditioned design rounding keeps them near 1e-8 while
    the likelihood is flat (a converging iteration halves them at least). Returns the
    coefficients, iterations, whether converged and the (penalised) log-likelihood there."""
    eta = x @ beta
    current = _loglik_at(y, x, eta, firth)
    previous_step = np.inf
    for iteration in range(1, max_iterations + 1):
        p = special.expit(eta)
        w = p * (1 - p)
        information = x.T @ (x * w[:, None])
        residual = y - p
        curvature = information
        if firth:
            residual = residual + _hat_diagonal(x, w, information) * (0.5 - p)
            try:  # the exact Hessian, where it is negative definite; else scoring
                exact = information - _firth_curvature(x, p, np.linalg.inv(information))
                np.linalg.cholesky(exact[np.ix_(free, free)])
                curvature = exact
            except np.linalg.LinAlgError:
                pass
        score = (x.T @ residual)[free]  # not x[:, free]: a copy of the design per step
        try:
            step = np.linalg.solve(curvature[np.ix_(free, free)], score)
        except np.linalg.LinAlgError:
            raise ValueError("singular information matrix (separation)") from None
        decrement, size = float(score @ step), float(np.abs(step).max())
        if decrement < 1e-12 and size > 0.5 * previous_step:  # stalled at rounding noise
            return beta, iteration, True, current
        previous_step = size
        largest = np.abs(step).max()
        if largest > 5:  # logistf's maxstep: no coefficient moves by more than 5 at once
            step = step * (5 / largest)
        for _ in range(30):  # step halving: the (penalised) likelihood must not fall
            candidate = beta.copy()
            candidate[free] += step
            candidate_eta = x @ candidate
            value = _loglik_at(y, x, candidate_eta, firth)
            if value >= current - 1e-12:
                break
            step = step / 2
        beta, current, eta = candidate, value, candidate_eta
        if np.abs(step).max() < tolerance:
            return beta, iteration, True, current
    return beta, max_iterations, False, current


def logistic_regression(
    y: np.ndarray,
    x: np.ndarray,
    names: list[str],
    max_iterations: int = 100,
    start: np.ndarray | None = None,
    firth: bool = False,
) -> LogisticFit:
    """Newton-Raphson on the log-likelihood, or on Firth's penalised likelihood (finite under
    separation, less biased with few events); converged when the largest step is below 1e-10.
    By maximum likelihood, complete separation (every outcome predicted exactly) and
    quasi-complete separation (the information matrix becomes singular as a coefficient
    diverges) are refused with a ValueError naming the separated terms; fitted probabilities of
    0 or 1 at convergence are reported. `start`: initial coefficients (e.g. the fit in the
    previous imputed data set: fewer iterations, the same optimum)."""
    check_full_rank(x, names)
    y = np.asarray(y, dtype=float)
    beta = np.zeros(x.shape[1]) if start is None else np.array(start, dtype=float)
    notes: list[str] = []
    free = np.arange(x.shape[1])
    if firth:
        beta, iterations, converged, _ = _newton(y, x, beta, free, True, max_iterations)
    else:
        converged, iterations = False, 0
        while iterations < max_iterations:
            iterations += 1
            p = special.expit(x @ beta)
            if np.abs(y - p).max() < 1e-8:
                raise ValueError(_separation_message(y, x, names, "perfect separation"))
            information = x.T @ (x * (p * (1 - p))[:, None])
            try:
                step = np.linalg.solve(information, x.T @ (y - p))
            except np.linalg.LinAlgError:
                raise ValueError(_separation_message(y, x, names, "singular information")) from None
            beta = beta + step
            if np.abs(step).max() < 1e-10:
                converged = True
                break
    eta = x @ beta
    p = special.expit(eta)
    information = x.T @ (x * (p * (1 - p))[:, None])
    extreme = ((p < 1e-8) | (p > 1 - 1e-8)).any()
    if not firth and (extreme or not converged) and separated_terms(y, x, names):
        raise ValueError(_separation_message(y, x, names, "quasi-complete separation"))
    if not converged:
        notes.append(f"ConvergenceWarning: no convergence in {max_iterations} iterations")
    if not firth and extreme:
        notes.append("PerfectSeparationWarning: fitted probabilities of 0 or 1")
    return LogisticFit(
        list(names),
        beta,
        np.linalg.inv(information),
        len(y),
        iterations,
        converged,
        notes,
        firth,
        _loglik_at(y, x, eta, firth),
    )


def _separation_message(y: np.ndarray, x: np.ndarray, names: list[str], what: str) -> str:
    terms = separated_terms(y, x, names)
    return f"{what}: separation in {', '.join(terms) or 'the design'} (no finite estimate)"


def cluster_robust(
    fit: LogisticFit, y: np.ndarray, x: np.ndarray, clusters: np.ndarray
) -> LogisticFit:
    """The fit with the cluster-robust (sandwich) covariance: (X'WX)^-1 (sum_c u_c u_c')
    (X'WX)^-1 with u_c the cluster's sum of score contributions x_i (y_i - p_i), times the
    small-sample factor G/(G - 1) (N - 1)/(N - k) of Stata and statsmodels (Liang & Zeger 1986)."""
    p = special.expit(x @ fit.params)
    codes, uniques = pd.factorize(np.asarray(clusters), sort=False)
    scores = np.column_stack(
        [
            np.bincount(codes, weights=x[:, j] * (np.asarray(y) - p), minlength=len(uniques))
            for j in range(x.shape[1])
        ]
    )
    g, n, k = len(uniques), len(y), x.shape[1]
    factor = g / (g - 1) * (n - 1) / (n - k)
    covariance = factor * fit.cov_params @ (scores.T @ scores) @ fit.cov_params
    return dataclasses.replace(fit, cov_params=covariance, clusters=g)


def _profile_score(y: np.ndarray, x: np.ndarray, beta: np.ndarray, j: int, firth: bool) -> float:
    """The (penalised) score of coefficient j at beta: the slope of the profile log-likelihood
    in b_j where the other coefficients are at their constrained maximum (envelope theorem).
    Firth's modified score x_j'(y - p + h (1/2 - p)) is the exact gradient of his penalised
    log-likelihood (Firth 1993)."""
    p = special.expit(x @ beta)
    residual = y - p
    if firth:
        w = p * (1 - p)
        residual = residual + _hat_diagonal(x, w, x.T @ (x * w[:, None])) * (0.5 - p)
    return float(x[:, j] @ residual)


def profile_likelihood(
    fit: LogisticFit, y: np.ndarray, x: np.ndarray, j: int, level: float
) -> tuple[float, float, float]:
    """Profile (penalised, for Firth) likelihood interval of coefficient j and the likelihood
    ratio p-value of b_j = 0, as R's confint.glm (MASS) and logistf: the values of b_j where
    2 (l(b) - l_profile(b_j)) reaches the chi-square(1) quantile. An end that does not exist
    within 50 SEs (a separated term) is infinite. A ValueError when a profile fit fails
    numerically (the caller falls back to Wald and says so).

    Each end is found by safeguarded Newton steps on the signed root r(b) = sqrt(deviance gap),
    which is close to linear in b (exactly so for a normal likelihood), from the Wald end; its
    slope comes from the constrained fit's score. Two or three constrained fits per end (two at
    10^5 patients, where the likelihood is nearly quadratic) instead of the eight of a bracketing
    search (Brent's), the same root to 1e-10: at 10^6 patients each fit is a pass of Newton
    steps over every row, so the count of fits is the cost."""
    y = np.asarray(y, dtype=float)
    free = np.array([i for i in range(len(fit.params)) if i != j])
    cutoff = float(special.chdtri(1, 1 - level))
    memo: dict[float, np.ndarray] = {fit.params[j]: fit.params}
    # How the others' maximum moves with b_j where the likelihood is quadratic (a normal's
    # conditional mean): the start of each constrained fit, from the nearest one made.
    direction = fit.cov_params[free, j] / fit.cov_params[j, j]

    def constrained(b: float) -> tuple[float, np.ndarray]:
        """The deviance gap at b_j = b and the constrained maximum."""
        nearest = min(memo, key=lambda v: abs(v - b))
        start = memo[nearest].copy()
        start[j] = b
        start[free] += direction * (b - nearest)
        # 1e-7 on the other coefficients puts the profile likelihood within ~1e-13 of its
        # maximum (the error is quadratic), far below what moves a CI end by 1e-10.
        beta, _, _, loglik = _newton(y, x, start, free, fit.firth, 200, tolerance=1e-7)
        memo[b] = beta
        gap = 2 * (fit.loglik - loglik)
        return min(gap, 1e6), beta  # a likelihood of 0 (-inf) is beyond any cut-off

    se = max(float(fit.bse[j]), 1e-8)
    wald = float(special.ndtri(0.5 + level / 2))
    ends = [
        _profile_end(fit.params[j], direction, se, wald, cutoff, constrained, y, x, j, fit.firth)
        for direction in (-1.0, 1.0)
    ]
    p_value = float(special.chdtrc(1, max(constrained(0.0)[0], 0.0)))
    return ends[0], ends[1], p_value


def _profile_end(
    estimate: float,
    direction: float,
    se: float,
    wald: float,
    cutoff: float,
    constrained: Callable[[float], tuple[float, np.ndarray]],
    y: np.ndarray,
    x: np.ndarray,
    j: int,
    firth: bool,
) -> float:
    """One end of the profile interval: the b on the `direction` side of the estimate where the
    deviance gap equals `cutoff`. Newton on r(b) = sqrt(gap) - sqrt(cutoff) inside a bracket
    (bisection when a step leaves it, outward steps of 1.3, 2, 4, ... 50 SEs while no point
    beyond the end is known); infinite when the gap stays below the cutoff up to 50 SEs."""
    target = np.sqrt(cutoff)
    inner, outer = estimate, None  # r < target at inner; r >= target at outer
    multiples = iter((1.3 * wald, 2.0 * wald, 4.0, 8.0, 16.0, 32.0, 50.0))
    b = estimate + direction * wald * se  # the Wald end: the root when the likelihood is normal
    for _ in range(100):
        gap, beta = constrained(b)
        r = np.sqrt(max(gap, 0.0)) - target
        if r >= 0:
            outer = b
        else:
            inner = b
        # dr/db = gap'(b) / (2 sqrt(gap)), gap'(b) = -2 x (profile score), signed outward
        slope = -direction * _profile_score(y, x, beta, j, firth) / max(np.sqrt(gap), 1e-12)
        step = -r / slope if slope > 0 and np.isfinite(slope) and gap < 1e6 else np.inf
        proposal = b + direction * step
        limit = estimate + direction * 50 * se
        low, high = sorted((inner, outer if outer is not None else limit))
        if not (low < proposal < high):  # outside the bracket: bisect it, or step outward
            if outer is None:
                reached = abs(inner - estimate) / se
                multiple = next((m for m in multiples if m > reached), None)
                if multiple is None:  # still inside the cut-off 50 SEs out
                    return direction * np.inf
                proposal = estimate + direction * multiple * se
            else:
                proposal = 0.5 * (inner + outer)
        tolerance = 1e-10 + 1e-12 * abs(b)
        if abs(proposal - b) < tolerance or (outer is not None and abs(outer - inner) < tolerance):
            return proposal
        b = proposal
    raise ValueError("profile likelihood: no convergence in 100 constrained fits")
