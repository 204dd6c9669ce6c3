"""Two-stage meta-analysis of the sites' estimates: the random-effects model with REML tau²,
Hartung-Knapp(-Sidik-Jonkman) CI and prediction interval, and the fixed (common) effect beside
it, as R's metafor computes them (rma(method = "REML", test = "knha") and rma(method = "FE");
Viechtbauer, J Stat Softw 2010;36:3; Hartung & Knapp, Stat Med 2001;20:3875; Higgins &
Thompson, Stat Med 2002;21:1539 for I² and H²).

Hand-written: statsmodels has no REML tau² with Hartung-Knapp; tau² is the root of the REML
score equation (brentq, to machine precision), so that it agrees with metafor at a tight
convergence threshold (tests/fixtures/meta_reference.csv).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats


@dataclass(frozen=True)
class MetaAnalysis:
    """One pooled estimate: random effects (REML, Hartung-Knapp) and the fixed effect."""

    k: int
    estimate: float
    se: float  # Hartung-Knapp
    ci_low: float
    ci_high: float
    p_value: float
    tau2: float
    i2: float  # % of the total variability due to heterogeneity
    h2: float
    q: float  # Cochran's Q about the fixed effect, k - 1 df
    q_p: float
    pi_low: float  # prediction interval for a new site's true effect
    pi_high: float
    fe_estimate: float
    fe_se: float
    fe_ci_low: float
    fe_ci_high: float


def _reml_score(tau2: float, y: np.ndarray, v: np.ndarray) -> float:
    """d/d tau² of the REML log-likelihood (times 2)."""
    w = 1 / (v + tau2)
    mu = float(np.sum(w * y) / np.sum(w))
    return float(np.sum(w**2 * (y - mu) ** 2) - np.sum(w) + np.sum(w**2) / np.sum(w))


def reml_tau2(y: np.ndarray, v: np.ndarray) -> float:
    """REML between-site variance: 0 where the score is not positive there (the likelihood
    falls from the boundary), else the root of the score equation."""
    if _reml_score(0.0, y, v) <= 0:
        return 0.0
    upper = max(float(np.var(y, ddof=1)), float(v.max()), 1e-12)
    while _reml_score(upper, y, v) > 0:
        upper *= 2
    return float(optimize.brentq(_reml_score, 0.0, upper, args=(y, v), xtol=1e-15, rtol=1e-15))


def meta_analysis(
    estimates: np.ndarray, variances: np.ndarray, level: float = 0.95
) -> MetaAnalysis:
    """Pool k >= 2 sites' estimates with their sampling variances (ValueError otherwise)."""
    y, v = np.asarray(estimates, dtype=float), np.asarray(variances, dtype=float)
    k = len(y)
    if k < 2 or not (np.isfinite(y).all() and np.isfinite(v).all() and (v > 0).all()):
        raise ValueError("a meta-analysis needs two or more estimates with positive variances")
    z = stats.norm.ppf(0.5 + level / 2)
    t = stats.t.ppf(0.5 + level / 2, k - 1)
    w0 = 1 / v
    fe = float(np.sum(w0 * y) / np.sum(w0))
    fe_se = 1 / math.sqrt(float(np.sum(w0)))
    q = float(np.sum(w0 * (y - fe) ** 2))
    tau2 = reml_tau2(y, v)
    w = 1 / (v + tau2)
    mu = float(np.sum(w * y) / np.sum(w))
    se = math.sqrt(float(np.sum(w * (y - mu) ** 2)) / ((k - 1) * float(np.sum(w))))
    typical = (k - 1) * float(np.sum(w0)) / (float(np.sum(w0)) ** 2 - float(np.sum(w0**2)))
    pi_half = t * math.sqrt(se**2 + tau2)
    return MetaAnalysis(
        k=k, estimate=mu, se=se, ci_low=mu - t * se, ci_high=mu + t * se,
        p_value=float(2 * stats.t.sf(abs(mu / se), k - 1)) if se > 0 else math.nan,
        tau2=tau2, i2=100 * tau2 / (tau2 + typical), h2=(tau2 + typical) / typical, q=q,
        q_p=float(stats.chi2.sf(q, k - 1)), pi_low=mu - pi_half, pi_high=mu + pi_half,
        fe_estimate=fe, fe_se=fe_se, fe_ci_low=fe - z * fe_se, fe_ci_high=fe + z * fe_se,
    )  # fmt: skip
