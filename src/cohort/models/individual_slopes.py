"""Each patient's own rate of change over the occasions, for the HLM reliable-change index:
the REML fit of value ~ time + (time | patient) and each patient's empirical Bayes slope with
its conditional SD (Raudenbush & Bryk, Hierarchical Linear Models, 2nd ed. 2002, ch. 6; Atkins,
Bedics, McGlinchey & Beauchaine, J Consult Clin Psychol 2005;73:982; R's clinicalsignificance,
method HLM, which fits the same model with lme4).

Hand-written rather than statsmodels' MixedLM, for exactness at the boundary and for speed:
patients measured at the same occasions share their design, so the REML criterion needs only
per-pattern sums (count, sum of values, sum of cross-products) and costs the same for 40 or
10^6 patients, where MixedLM loops over patients in Python. Parametrised as lme4 (relative
covariance factor Lambda, lower triangular with a non-negative diagonal; the residual variance
profiled out): the same criterion as lme4's REMLcrit, minimised over every covariance matrix
(a singular fit, intercept and slope perfectly correlated, included). Tests: lme4 1.1-31 on clinicalsignificance's data
(tests/fixtures/hlm_reference.csv) and statsmodels' MixedLM.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize


@dataclass(frozen=True)
class _Pattern:
    """The patients measured at one set of occasions: their design and sufficient sums."""

    rows: np.ndarray  # the patients' positions in the values matrix
    x: np.ndarray  # n_p x 2: intercept and time at the measured occasions
    total: np.ndarray  # sum of the patients' value vectors
    cross: np.ndarray  # sum of their outer products


def _patterns(values: np.ndarray, times: np.ndarray, minimum: int) -> list[_Pattern]:
    """Group the patients with at least `minimum` measured occasions by which ones they are."""
    measured = ~np.isnan(values)
    keep = measured.sum(axis=1) >= minimum
    out = []
    # Each row's pattern as a bit mask, the first occasion the highest bit: the same patterns in
    # the same (lexicographic) order as np.unique(axis=0), which sorts rows as byte strings and
    # took 1 s per call at 10^6 patients.
    bits = 1 << np.arange(measured.shape[1] - 1, -1, -1)
    masks, inverse = np.unique(measured[keep] @ bits, return_inverse=True)
    keys = (masks[:, None] & bits) > 0
    rows_kept = np.flatnonzero(keep)
    for k, key in enumerate(keys):
        rows = rows_kept[inverse.ravel() == k]
        y = values[np.ix_(rows, np.flatnonzero(key))]
        x = np.column_stack([np.ones(key.sum()), times[key]])
        out.append(_Pattern(rows, x, y.sum(axis=0), y.T @ y))
    return out


def _factor(theta: np.ndarray) -> np.ndarray:
    """Lambda (lower triangular) from lme4's theta = (l11, l21, l22)."""
    return np.array([[theta[0], 0.0], [theta[1], theta[2]]])


def _profiled(theta: np.ndarray, patterns: list[_Pattern]) -> tuple[float, np.ndarray, float]:
    """lme4's profiled REML criterion at theta, with the GLS fixed effects and the residual
    variance there: sum log|H_j| + log|X'H^-1 X| + (n - p)(1 + log(2 pi r^2 / (n - p))),
    H_j = I + Z_j Lambda Lambda' Z_j' (the patient's covariance over the residual variance)."""
    lam = _factor(theta)
    relative = lam @ lam.T
    a, b = np.zeros((2, 2)), np.zeros(2)
    log_det, trace, n_obs = 0.0, 0.0, 0
    for p in patterns:
        count = len(p.rows)
        h = np.eye(len(p.x)) + p.x @ relative @ p.x.T
        h_inv = np.linalg.inv(h)
        log_det += count * np.linalg.slogdet(h)[1]
        a += count * p.x.T @ h_inv @ p.x
        b += p.x.T @ h_inv @ p.total
        trace += float(np.sum(h_inv * p.cross))
        n_obs += count * len(p.x)
    beta = np.linalg.solve(a, b)
    r2 = trace - float(beta @ b)
    dof = n_obs - 2
    criterion = log_det + np.linalg.slogdet(a)[1] + dof * (1 + math.log(2 * math.pi * r2 / dof))
    return criterion, beta, r2 / dof


@dataclass(frozen=True)
class SlopeModel:
    """The fitted growth model: fixed intercept and slope, the random effects' covariance
    (intercept, slope), the residual variance, and what it was fitted on."""

    times: tuple[float, ...]
    beta: np.ndarray
    theta: np.ndarray  # lme4's relative covariance factor, Lambda = [[t0, 0], [t1, t2]]
    residual_variance: float
    reml_criterion: float
    n_patients: int
    n_observations: int

    @property
    def covariance(self) -> np.ndarray:
        """The random intercept's and slope's covariance matrix, sigma^2 Lambda Lambda'."""
        lam = _factor(self.theta)
        return self.residual_variance * lam @ lam.T

    @property
    def singular(self) -> bool:
        """Whether the fit lies on the boundary (a variance 0 or a correlation of +/-1)."""
        return bool(min(self.theta[0], self.theta[2]) < 1e-4)  # lme4's isSingular(tol = 1e-4)

    def conditional_slopes(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each patient's conditional mode of the random slope (the deviation from the fixed
        slope) and its conditional SD given the patient's measured values at these estimates
        (lme4's ranef(condVar = TRUE)); NaN for a patient with no measured value."""
        values = np.asarray(values, dtype=float)
        times = np.asarray(self.times, dtype=float)
        lam = _factor(self.theta)
        mode, sd = np.full(len(values), np.nan), np.full(len(values), np.nan)
        for p in _patterns(values, times, minimum=1):
            measured = ~np.isnan(values[p.rows[0]])
            y = values[np.ix_(p.rows, np.flatnonzero(measured))]
            za = p.x @ lam  # Z Lambda
            precision = np.eye(2) + za.T @ za  # L L' of lme4, per patient
            inverse = np.linalg.inv(precision)
            # u = Lambda (L L')^-1 Lambda' Z' (y - X beta); Var(u | y) = sigma^2 Lambda (L L')^-1 Lambda'
            gain = lam @ inverse @ za.T
            mode[p.rows] = ((y - p.x @ self.beta) @ gain.T)[:, 1]
            sd[p.rows] = math.sqrt(self.residual_variance * (lam @ inverse @ lam.T)[1, 1])
        return mode, sd

    def slope_index(self, values: np.ndarray) -> np.ndarray:
        """Each patient's own slope (fixed + conditional mode) over its conditional SD, the HLM
        reliable-change index of Atkins et al. (2005): beyond 1.96 the patient's change over
        the occasions is reliably different from none."""
        mode, sd = self.conditional_slopes(values)
        return (self.beta[1] + mode) / sd


def _lower_factor(relative: np.ndarray) -> np.ndarray:
    """lme4's theta of a 2 x 2 covariance (its Cholesky factor, a zero diagonal allowed)."""
    l11 = math.sqrt(max(relative[0, 0], 0.0))
    l21 = relative[1, 0] / l11 if l11 > 0 else 0.0
    return np.array([l11, l21, math.sqrt(max(relative[1, 1] - l21**2, 0.0))])


def fit_slopes(values: np.ndarray, times: np.ndarray, minimum: int = 3) -> SlopeModel:
    """REML fit of value ~ time + (time | patient) on the patients with at least `minimum`
    measured occasions (clinicalsignificance: 3), `values` patients x occasions (NaN missing).
    Fitted in standardised time (the same model, reparametrised, so that the optimiser's start
    suits any unit) and reported in `times`. Raises ValueError where too few patients are
    measured often enough to fit it."""
    values = np.asarray(values, dtype=float)
    times = np.asarray(times, dtype=float)
    centre, scale = float(times.mean()), float(times.std()) or 1.0
    patterns = _patterns(values, (times - centre) / scale, minimum)
    n_patients = sum(len(p.rows) for p in patterns)
    if n_patients < 3 or len(times) < 3:
        raise ValueError(
            f"{n_patients} patients measured at {minimum} or more of {len(times)} occasions: "
            "too few to fit a random slope"
        )

    def criterion(theta: np.ndarray) -> float:
        return _profiled(theta, patterns)[0]

    # Unconstrained: Lambda Lambda' covers every covariance matrix, so no bound is needed and a
    # singular fit is an ordinary point (bounded quasi-Newton stalls on the boundary there).
    found = minimize(
        criterion, np.array([1.0, 0.0, 1.0]), method="Nelder-Mead",
        options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 4000},
    )  # fmt: skip
    polished = minimize(criterion, found.x, method="BFGS", options={"gtol": 1e-9})
    theta = polished.x if polished.fun < found.fun else found.x
    value, beta, residual = _profiled(theta, patterns)
    # back to `times`: [1, s] = [1, t] A with s = (t - centre) / scale
    to_times = np.array([[1.0, -centre / scale], [0.0, 1.0 / scale]])
    lam = _factor(theta)
    return SlopeModel(  # the criterion of `times`: log|X'H^-1 X| gains 2 log|det A^-1|
        tuple(float(t) for t in times), to_times @ beta,
        _lower_factor(to_times @ lam @ lam.T @ to_times.T), residual,
        value + 2 * math.log(scale), n_patients,
        sum(len(p.rows) * len(p.x) for p in patterns),
    )  # fmt: skip
