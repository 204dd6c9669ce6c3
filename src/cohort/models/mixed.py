"""Exact REML of the random-intercept linear mixed model on per-patient sums, and of patients
nested in clusters, with lme4/lmerTest's inference (model-based SEs, Satterthwaite or
Kenward-Roger df).

Random-intercept model y_ij = x_ij'b + u_i + e_ij, u_i ~ N(0, s2 g), e_ij ~ N(0, s2). With
V_i = s2 (I + g 11'), V_i^-1 = (I - w_i 11') / s2 with w_i = g / (1 + n_i g), so every
cross-product the REML likelihood needs is the plain cross-product minus a sum over patients of
w_i times the patient sums (Searle, Casella & McCulloch 1992, ch. 6). Profiling out b and s2
leaves a likelihood in the one variance ratio g, maximised on a log-grid and refined by Brent's
root search on its analytic derivative. Since w_i depends on a patient only through n_i, the sums
are pooled by cluster size once (O(N p + G p^2) for N observations, G patients, p fixed
effects); each evaluation then costs O(K p^2) for K distinct cluster sizes. 10^6 patients fit in
about a second. Both random-intercept models of the pipeline use it (rule lmm; rule groups'
occasion x group model, its design built by patsy); a model with another random-effects
structure would use statsmodels' MixedLM.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize

from cohort.core.distributions import t_critical, t_p_value
from cohort.models.design import check_full_rank

log = logging.getLogger(__name__)


# --- Random-intercept linear mixed model, REML -----------------------------------------------------
COVARIANCES = ("model_based", "observed_information")
DF_METHODS = ("satterthwaite", "kenward_roger", "normal")


@dataclass(frozen=True)
class MixedModelSettings:
    """Config `models.lmm`: the fixed effects' covariance and the degrees of freedom of every
    mixed model (MixedFit says what each choice means)."""

    covariance: str = "model_based"
    df: str = "satterthwaite"

    @classmethod
    def from_config(cls, lmm: dict | None) -> MixedModelSettings:
        return cls(**(lmm or {}))


LME4_CONVENTIONS = MixedModelSettings()  # the default: lme4's SEs, lmerTest's Satterthwaite df


@dataclass(frozen=True)
class MixedFit:
    """REML fit of a random-intercept model: fixed effects and their covariance, residual and
    patient-intercept variances, REML log-likelihood (statsmodels' constants), counts, and what
    small-sample inference needs: the covariance of the variance parameters (s2e, s2u) and the
    derivatives of the fixed effects' covariance with respect to them.

    `covariance`: model_based = s2 (X'V^-1 X)^-1 at the REML estimate (lme4, SAS PROC MIXED,
    Stata); observed_information = the inverse observed information in (b, g), as statsmodels.
    `df_method`: satterthwaite (lmerTest's method), kenward_roger (pbkrtest's: the covariance is
    then the adjusted one), normal (Wald z, as statsmodels). With the patient variance on the
    boundary (0) the variance parameters reduce to s2 and every df is the residual N - p."""

    names: list[str]
    params: np.ndarray
    cov_params: np.ndarray
    scale: float
    group_variance: float
    llf: float
    nobs: int
    groups: int
    converged: bool
    boundary: bool
    design_mean: np.ndarray
    phi: np.ndarray  # s2 (X'V^-1 X)^-1, on which Satterthwaite's df are defined
    covariance: str = "model_based"
    df_method: str = "satterthwaite"
    variance_cov: np.ndarray | None = None  # covariance of (s2e, s2u); None on the boundary
    cov_gradient: np.ndarray | None = None  # d Phi / d (s2e, s2u), shape (2, p, p)
    kenward_roger: _KenwardRoger | None = None
    cluster_variance: float | None = None  # with patients nested in clusters
    clusters: int | None = None

    @property
    def bse(self) -> np.ndarray:
        return np.sqrt(np.diag(self.cov_params))

    @property
    def fe_params(self) -> pd.Series:
        return pd.Series(self.params, index=self.names)

    def contrast(self, weights: np.ndarray) -> tuple[float, float, float]:
        """Estimate, standard error and degrees of freedom of the linear combination w'b
        (a fixed effect, an estimated mean, a difference)."""
        w = np.asarray(weights, dtype=float)
        estimate = float(w @ self.params)
        se = float(np.sqrt(w @ self.cov_params @ w))
        if self.df_method == "normal":
            return estimate, se, np.inf
        if self.variance_cov is None or self.cov_gradient is None:  # boundary: s2 only
            return estimate, se, float(self.nobs - len(self.params))
        if self.df_method == "kenward_roger":
            assert self.kenward_roger is not None
            return estimate, se, self.kenward_roger.df(w)
        # Satterthwaite: df = 2 (w'Phi w)^2 / var(w'Phi w), the variance by the delta method
        # over the variance parameters (Giesbrecht & Burns 1985; lmerTest).
        phi = float(w @ self.phi @ w)
        gradient = np.array([w @ d @ w for d in self.cov_gradient])
        spread = float(gradient @ self.variance_cov @ gradient)
        return estimate, se, 2 * phi**2 / spread if spread > 0 else np.inf

    @property
    def df(self) -> np.ndarray:
        """Degrees of freedom of each fixed effect."""
        eye = np.eye(len(self.params))
        return np.array([self.contrast(eye[j])[2] for j in range(len(self.params))])

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided p-values of the fixed effects: t with `df` (z when df_method is normal)."""
        return pd.Series(
            [
                t_p_value(b / se, df)
                for b, se, df in zip(self.params, self.bse, self.df, strict=True)
            ],
            index=self.names,
        )

    def conf_int(self, level: float = 0.95) -> pd.DataFrame:
        """Confidence intervals of the fixed effects, t-based with `df` (columns 0 and 1)."""
        half = np.array([t_critical(level, df) for df in self.df]) * self.bse
        return pd.DataFrame({0: self.params - half, 1: self.params + half}, index=self.names)


@dataclass(frozen=True)
class _KenwardRoger:
    """The ingredients of Kenward & Roger (Biometrics 1997;53:983) for V = s2e I + s2u Z Z':
    Phi = (X'V^-1X)^-1, P_i = -X'V^-1 V_i V^-1 X, W = inverse expected REML information of
    (s2e, s2u). The covariance is linear in its parameters, so R_ij = 0."""

    phi: np.ndarray
    p_mats: np.ndarray  # (2, p, p)
    w: np.ndarray  # (2, 2)
    adjusted: np.ndarray  # Phi_A = Phi + 2 Lambda

    def df(self, weights: np.ndarray) -> float:
        """Denominator df of the one-row contrast (l = 1) by Kenward & Roger's eq. (A1-A6)."""
        l_mat = np.asarray(weights, dtype=float)[:, None]
        theta = l_mat @ np.linalg.inv(l_mat.T @ self.phi @ l_mat) @ l_mat.T
        middle = [theta @ self.phi @ p @ self.phi for p in self.p_mats]
        traces = np.array([np.trace(m) for m in middle])
        a1 = float(traces @ self.w @ traces)
        a2 = sum(self.w[i, j] * np.trace(middle[i] @ middle[j]) for i in range(2) for j in range(2))
        ell = 1.0
        b = (a1 + 6 * a2) / (2 * ell)
        g = ((ell + 1) * a1 - (ell + 4) * a2) / ((ell + 2) * a2)
        denominator = 3 * ell + 2 * (1 - g)
        c1, c2, c3 = g / denominator, (ell - g) / denominator, (ell + 2 - g) / denominator
        e_star = 1 / (1 - a2 / ell)
        v_star = (2 / ell) * (1 + c1 * b) / ((1 - c2 * b) ** 2 * (1 - c3 * b))
        rho = v_star / (2 * e_star**2)
        return 4 + (ell + 2) / (ell * rho - 1)


class _Profile:
    """The REML likelihood profiled in the variance ratio g. The weight w_i = g / (1 + n_i g)
    depends on a patient only through n_i, so the per-patient sums enter only as their cross-
    products summed over the patients of each cluster size k: M_k = sum s_i s_i', v_k =
    sum s_i t_i, c_k = sum t_i^2. After one O(N p + G p^2) pass, each evaluation costs
    O(K p^2) for K distinct cluster sizes (K <= number of occasions), whatever G."""

    def __init__(self, y: np.ndarray, x: np.ndarray, codes: np.ndarray) -> None:
        self.nobs, self.p = x.shape
        groups = int(codes.max()) + 1
        n_i = np.bincount(codes, minlength=groups)
        s = np.column_stack(
            [np.bincount(codes, weights=x[:, j], minlength=groups) for j in range(self.p)]
        )
        t = np.bincount(codes, weights=y, minlength=groups)
        sizes, size_of = np.unique(n_i, return_inverse=True)
        self.k = sizes.astype(float)  # the distinct cluster sizes
        self.count = np.bincount(size_of).astype(float)  # patients of each size
        self.m = np.stack([s[size_of == j].T @ s[size_of == j] for j in range(len(sizes))])
        self.v = np.stack([s[size_of == j].T @ t[size_of == j] for j in range(len(sizes))])
        self.c = np.array([t[size_of == j] @ t[size_of == j] for j in range(len(sizes))])
        self.xtx, self.xty, self.yty = x.T @ x, x.T @ y, float(y @ y)

    def _weighted(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """sum_i f(n_i) s_i s_i', sum_i f(n_i) s_i t_i, sum_i f(n_i) t_i^2 for f given per size."""
        return (
            np.tensordot(weights, self.m, axes=1),
            weights @ self.v,
            float(weights @ self.c),
        )

    def _residual_sums(self, weights: np.ndarray, beta: np.ndarray) -> float:
        """sum_i f(n_i) e_i^2 with e_i = t_i - s_i'beta, the patient's sum of residuals."""
        m, v, c = self._weighted(weights)
        return c - 2 * float(beta @ v) + float(beta @ m @ beta)

    def solve(self, g: float) -> tuple[np.ndarray, np.ndarray, float]:
        """(X'HX, beta, r) at ratio g, with H = s2 V^-1 and r = (y - Xb)'H(y - Xb)."""
        m, v, c = self._weighted(g / (1 + self.k * g))
        a = self.xtx - m
        b = self.xty - v
        beta = np.linalg.solve(a, b)
        return a, beta, self.yty - c - float(b @ beta)

    def loglik(self, g: float) -> float:
        a, _, r = self.solve(g)
        dof = self.nobs - self.p
        return -0.5 * (
            dof * (np.log(2 * np.pi * r / dof) + 1)
            + float(self.count @ np.log1p(self.k * g))
            + float(np.linalg.slogdet(a)[1])
        )

    def slope(self, log_g: float) -> float:
        """d loglik / d log g (analytic)."""
        g = float(np.exp(log_g))
        a, beta, r = self.solve(g)
        dw = 1 / (1 + self.k * g) ** 2
        d_r = -self._residual_sums(dw, beta)
        d_logdet = -float(np.trace(np.linalg.solve(a, self._weighted(dw)[0])))
        d_logv = float(self.count @ (self.k / (1 + self.k * g)))
        dof = self.nobs - self.p
        return -0.5 * (dof * d_r / r + d_logv + d_logdet) * g

    def covariance(self, g: float) -> np.ndarray:
        """Covariance of the fixed effects: the inverse of the observed information of the
        likelihood in (b, g) with s2 profiled out, as statsmodels computes it. With balanced data
        the (b, g) cross term is zero and this equals s2 (X'V^-1 X)^-1 exactly; otherwise it
        differs from it slightly."""
        a, beta, r = self.solve(g)
        dof = self.nobs - self.p
        d1 = 1 / (1 + self.k * g) ** 2  # dw/dg
        d2 = -2 * self.k / (1 + self.k * g) ** 3  # d2w/dg2
        q1, q2 = -self._residual_sums(d1, beta), -self._residual_sums(d2, beta)
        m1, v1, _ = self._weighted(d1)
        a1, a2 = -m1, -self._weighted(d2)[0]
        a_inv = np.linalg.inv(a)
        hess = np.empty((self.p + 1, self.p + 1))
        hess[: self.p, : self.p] = -dof * a / r
        cross = v1 - m1 @ beta  # sum_i dw_i s_i e_i
        hess[: self.p, self.p] = hess[self.p, : self.p] = -dof * cross / r
        hess[self.p, self.p] = -0.5 * (
            -float(self.count @ (self.k**2 / (1 + self.k * g) ** 2))
            + dof * (q2 / r - (q1 / r) ** 2)
            + float(np.trace(a_inv @ a2) - np.trace(a_inv @ a1 @ a_inv @ a1))
        )
        return np.linalg.inv(-hess)[: self.p, : self.p]

    def model_covariance(self, g: float) -> np.ndarray:
        """Phi = s2 (X'V^-1 X)^-1 = s2 A^-1 at ratio g, s2 at its REML value."""
        a, _, r = self.solve(g)
        return r / (self.nobs - self.p) * np.linalg.inv(a)

    def loglik_variances(self, s2e: float, s2u: float) -> float:
        """REML log-likelihood (without constants) at the variances (s2e, s2u), b profiled."""
        g = s2u / s2e
        a, _, r = self.solve(g)
        return -0.5 * (
            (self.nobs - self.p) * np.log(s2e)
            + float(self.count @ np.log1p(self.k * g))
            + float(np.linalg.slogdet(a)[1])
            + r / s2e
        )

    def variance_covariance(self, s2e: float, s2u: float) -> np.ndarray:
        """Covariance of (s2e, s2u): the inverse observed information of the REML likelihood,
        its Hessian by central differences in the log variances with one Richardson step (as
        lmerTest takes numDeriv's). At the maximum the Hessian transforms with the Jacobian
        alone, so the parameterisation does not change the result."""
        point = np.log([s2e, s2u])

        def f(z: np.ndarray) -> float:
            return self.loglik_variances(float(np.exp(z[0])), float(np.exp(z[1])))

        def hessian(h: float) -> np.ndarray:
            out, eye = np.empty((2, 2)), np.eye(2) * h
            for i in range(2):
                for j in range(i, 2):
                    out[i, j] = out[j, i] = (
                        f(point + eye[i] + eye[j])
                        - f(point + eye[i] - eye[j])
                        - f(point - eye[i] + eye[j])
                        + f(point - eye[i] - eye[j])
                    ) / (4 * h * h)
            return out

        h_log = (4 * hessian(5e-4) - hessian(1e-3)) / 3
        jacobian = np.diag([s2e, s2u])  # d theta / d log theta
        return jacobian @ np.linalg.inv(-h_log) @ jacobian

    def covariance_gradient(self, g: float) -> np.ndarray:
        """d Phi / d s2e and d Phi / d s2u (analytic): Phi = s2e A(s2u / s2e)^-1 with
        dA/dg = -sum_k dw_k M_k."""
        a, _, _ = self.solve(g)
        a_inv = np.linalg.inv(a)
        a_g = -self._weighted(1 / (1 + self.k * g) ** 2)[0]
        term = a_inv @ a_g @ a_inv
        return np.stack([a_inv + g * term, -term])

    def kenward_roger(self, g: float) -> _KenwardRoger:
        """Kenward & Roger's P_i, Q_ij and expected REML information for V_i = s2e I + s2u 11'.
        With d_k = 1 / (1 + k g), X'V^-m X = (X'X + sum_k (d_k^m - 1)/k M_k) / s2^m, and every
        other product reduces to per-size sums of s_i s_i' (this module's note)."""
        a, _, r = self.solve(g)
        s2 = r / (self.nobs - self.p)
        d = 1 / (1 + self.k * g)
        phi = s2 * np.linalg.inv(a)

        def x_vm_x(m: int) -> np.ndarray:
            return (self.xtx + self._weighted((d**m - 1) / self.k)[0]) / s2**m

        p_mats = np.stack([-x_vm_x(2), -self._weighted(d**2)[0] / s2**2])
        q12 = self._weighted(d**3)[0] / s2**3
        q = [[x_vm_x(3), q12], [q12, self._weighted(self.k * d**3)[0] / s2**3]]
        t = (
            np.array(
                [
                    [self.count @ (self.k - 1 + d**2), self.count @ (self.k * d**2)],
                    [self.count @ (self.k * d**2), self.count @ (self.k**2 * d**2)],
                ]
            )
            / s2**2
        )
        information = np.empty((2, 2))
        for i in range(2):
            for j in range(2):
                information[i, j] = 0.5 * (
                    t[i, j]
                    - 2 * np.trace(phi @ q[i][j])
                    + np.trace(phi @ p_mats[i] @ phi @ p_mats[j])
                )
        w = np.linalg.inv(information)
        inner = sum(
            w[i, j] * (q[i][j] - p_mats[i] @ phi @ p_mats[j]) for i in range(2) for j in range(2)
        )
        return _KenwardRoger(phi, p_mats, w, phi + 2 * phi @ inner @ phi)


GRID = np.linspace(np.log(1e-8), np.log(1e8), 49)


# random_intercept_reml and nested_intercepts_reml share their signature and the MixedFit they
# return on purpose (duplicates lists them): cohort.models.lmm.fit_mixed calls either, and every table
# reads the same fields whichever model was fitted.
def random_intercept_reml(
    y: np.ndarray,
    x: np.ndarray,
    groups: np.ndarray,
    names: list[str],
    covariance: str = MixedModelSettings.covariance,
    df_method: str = MixedModelSettings.df,
) -> MixedFit:
    """Exact REML fit of y = Xb + u_group + e (one random intercept per group), with the fixed
    effects' covariance and degrees of freedom of `covariance` and `df_method` (MixedFit)."""
    if covariance not in COVARIANCES or df_method not in DF_METHODS:
        raise ValueError(f"unknown covariance {covariance!r} or df method {df_method!r}")
    codes, uniques = pd.factorize(groups, sort=False)
    check_full_rank(x, names)
    if len(uniques) == len(codes):  # the likelihood is flat in the variance ratio
        raise ValueError(
            "every patient has one observation: the patient and residual variances cannot be "
            "told apart (a random intercept needs repeated measurements)"
        )
    profile = _Profile(np.asarray(y, dtype=float), x, codes)
    if profile.nobs <= profile.p:
        raise ValueError(f"{profile.nobs} observations for {profile.p} fixed effects")
    values = np.array([profile.loglik(float(np.exp(v))) for v in GRID])
    best = int(np.argmax(values))
    converged, boundary = True, False
    if best == 0 and profile.slope(GRID[0]) <= 0:
        g, boundary = 0.0, True  # the likelihood falls from g = 0: variance on the boundary
    elif best == len(GRID) - 1:
        g, converged = float(np.exp(GRID[-1])), False  # residual variance ~ 0: degenerate
        log.warning("random-intercept REML: variance ratio above %.0e, not converged", g)
    else:
        low, high = GRID[max(best - 1, 0)], GRID[best + 1]
        if profile.slope(low) <= 0:  # the maximum sits below the first grid point
            low = np.log(1e-300)
        g = float(np.exp(optimize.brentq(profile.slope, low, high, xtol=1e-13, rtol=1e-14)))
    _, beta, r = profile.solve(g)
    scale = r / (profile.nobs - profile.p)
    phi = profile.model_covariance(g)
    kr = profile.kenward_roger(g) if df_method == "kenward_roger" and not boundary else None
    if kr is not None:
        cov_params = kr.adjusted
    elif covariance == "model_based":
        cov_params = phi
    else:
        cov_params = profile.covariance(g)
    variance_cov = gradient = None
    if not boundary and df_method != "normal":
        variance_cov = profile.variance_covariance(scale, g * scale)
        gradient = profile.covariance_gradient(g)
    return MixedFit(
        names=list(names),
        params=beta,
        cov_params=cov_params,
        scale=scale,
        group_variance=g * scale,
        llf=profile.loglik(g),
        nobs=profile.nobs,
        groups=len(uniques),
        converged=converged,
        boundary=boundary,
        design_mean=x.mean(axis=0),
        phi=phi,
        covariance=covariance,
        df_method=df_method,
        variance_cov=variance_cov,
        cov_gradient=gradient,
        kenward_roger=kr,
    )
