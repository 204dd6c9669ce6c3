"""Regression engines that scale to registry-sized cohorts: a design-matrix builder with the
column names of a patsy formula, an exact REML fit of the random-intercept linear mixed model that
works on per-patient sums, and logistic regression by Newton-Raphson.

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

import dataclasses
import logging
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special

from cohort.distributions import t_critical, t_p_value

log = logging.getLogger(__name__)


# --- Design matrices -----------------------------------------------------------------------------
def is_categorical(series: pd.Series) -> bool:
    return (
        isinstance(series.dtype, pd.CategoricalDtype)
        or series.dtype == object
        or pd.api.types.is_string_dtype(series)
    )


def _levels(series: pd.Series) -> list:
    """Levels in patsy's order: a categorical's categories, otherwise the sorted values."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        return list(series.cat.categories)
    return sorted(series.dropna().unique())


def design_matrix(
    frame: pd.DataFrame,
    variables: list[str],
    reference: dict[str, str] | None = None,
    drop_unused_levels: bool = False,
) -> tuple[np.ndarray, list[str]]:
    """Intercept plus treatment-coded dummies per categorical variable and one column per numeric
    (or boolean, as 0/1) one, named and ordered as patsy does for
    `~ v1 + C(v2) + C(v3, Treatment('ref'))` (categorical terms first, then numeric ones, each in
    the order given). `drop_unused_levels`: categories no row has get no column (a response
    model on a subset), instead of an all-zero column that makes the design singular."""
    reference = reference or {}
    columns, names = [np.ones(len(frame))], ["Intercept"]
    categorical = [v for v in variables if is_categorical(frame[v])]
    for v in [*categorical, *(v for v in variables if v not in categorical)]:
        values = frame[v]
        if not is_categorical(values):
            columns.append(values.to_numpy(dtype=float, na_value=np.nan))
            names.append(v)
            continue
        levels = _levels(values)
        if drop_unused_levels:
            present = set(values.dropna().unique())
            levels = [level for level in levels if level in present]
        if v in reference:
            levels = [reference[v], *(level for level in levels if level != reference[v])]
            prefix = f"C({v}, Treatment('{reference[v]}'))"
        else:
            prefix = f"C({v})"
        codes = pd.Categorical(values, categories=levels).codes
        for k, level in enumerate(levels[1:], start=1):
            columns.append((codes == k).astype(float))
            names.append(f"{prefix}[T.{level}]")
    return np.column_stack(columns), names


def check_full_rank(x: np.ndarray, names: list[str]) -> None:
    """Raise ValueError naming the design's columns when X'X is singular (a constant or
    collinear column), instead of returning arbitrary estimates."""
    xtx = x.T @ x
    scale = np.sqrt(np.diag(xtx))
    if (scale == 0).any():
        raise ValueError(f"singular design: column {names[int(np.argmin(scale))]} is all zero")
    eigen = np.linalg.eigvalsh(xtx / np.outer(scale, scale))
    if eigen.min() < 1e-10 * eigen.max():
        raise ValueError(f"singular design: collinear columns among {', '.join(names)}")


# --- Model frames ---------------------------------------------------------------------------------
def formula_term(data: pd.DataFrame, variable: str) -> str:
    """The variable as a term of a statsmodels formula: C(v) for a categorical one."""
    return f"C({variable})" if is_categorical(data[variable]) else variable


def model_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """Booleans as 0/1 floats (nullable booleans included), so formulas treat them as numbers;
    categories that no row has are dropped (an empty level would make the design singular)."""
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_bool_dtype(out[column].dtype):
            out[column] = out[column].astype("Float64").astype(float)
        elif isinstance(out[column].dtype, pd.CategoricalDtype) and column != "occasion":
            out[column] = out[column].cat.remove_unused_categories()
    return out


LEVEL_TERM = re.compile(r"C\((\w+)[^\[]*\[T\.([^\]]+)\]")


def term_level_n(
    terms: list[str], frame: pd.DataFrame, patient: str | None = None
) -> dict[str, float]:
    """For each term of a categorical level (`C(var)[T.level]`), the patients in that level or
    in the reference level, whichever is fewer: the estimate compares those two groups, and
    disclosure control hides it when either is small. NaN for other terms (occasion excepted:
    its patients per occasion are the observed n)."""
    people = frame.drop_duplicates(patient) if patient else frame
    counts: dict[str, pd.Series] = {}
    in_terms: dict[str, set[str]] = {}
    for term in terms:
        for variable, level in LEVEL_TERM.findall(term):
            in_terms.setdefault(variable, set()).add(level)
    for variable in in_terms:
        if variable in people.columns and variable != "occasion":
            counts[variable] = people[variable].astype(str).value_counts()
    out = {}
    for term in terms:
        smallest = np.nan
        for variable, level in LEVEL_TERM.findall(term):
            if variable not in counts:
                continue
            present = counts[variable][counts[variable] > 0]
            reference = present[[lv not in in_terms[variable] for lv in present.index]]
            n = min(
                float(present.get(level, 0)), float(reference.min()) if len(reference) else np.inf
            )
            smallest = n if np.isnan(smallest) else min(smallest, n)
        out[term] = smallest
    return out


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
        other product reduces to per-size sums of s_i s_i' (cohort.regression's module note)."""
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
# return on purpose (duplicates lists them): cohort.lmm.fit_mixed calls either, and every table
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


# --- Patients nested in clusters: (1 | cluster / patient), REML ---------------------------------
class _NestedProfile:
    """The REML likelihood of y = Xb + u_cluster + v_patient + e, profiled in the two variance
    ratios gp = s2p / s2e and gc = s2c / s2e. Within a cluster, V = s2e (A + gc 11') with A the
    single-level block matrix, so by Woodbury V^-1 reduces to per-patient sums (weights d_j =
    1 / (1 + n_j gp), as in _Profile) and then per-cluster sums t_c = sum_j d_j s_j, m_c = sum_j
    n_j d_j: each evaluation costs O(P p^2) for P patients."""

    def __init__(
        self, y: np.ndarray, x: np.ndarray, patient: np.ndarray, cluster_of: np.ndarray
    ) -> None:
        self.nobs, self.p = x.shape
        patients = int(patient.max()) + 1
        self.n = np.bincount(patient, minlength=patients).astype(float)
        self.s = np.column_stack(
            [np.bincount(patient, weights=x[:, j], minlength=patients) for j in range(self.p)]
        )
        self.t = np.bincount(patient, weights=y, minlength=patients)
        self.cluster = cluster_of
        self.clusters = int(cluster_of.max()) + 1
        self.xtx, self.xty, self.yty = x.T @ x, x.T @ y, float(y @ y)

    def solve(self, gp: float, gc: float) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
        """(X'HX, b, r, m_c) at the ratios, H = s2e V^-1, r = (y - Xb)'H(y - Xb)."""
        d = 1 / (1 + self.n * gp)
        w = gp * d
        a = self.xtx - (self.s * w[:, None]).T @ self.s
        b = self.xty - (self.s * w[:, None]).T @ self.t
        c = self.yty - float(w @ self.t**2)
        tc = np.column_stack(
            [
                np.bincount(self.cluster, weights=d * self.s[:, j], minlength=self.clusters)
                for j in range(self.p)
            ]
        )
        uc = np.bincount(self.cluster, weights=d * self.t, minlength=self.clusters)
        mc = np.bincount(self.cluster, weights=self.n * d, minlength=self.clusters)
        f = gc / (1 + gc * mc)
        a = a - (tc * f[:, None]).T @ tc
        b = b - (tc * f[:, None]).T @ uc
        c = c - float(f @ uc**2)
        beta = np.linalg.solve(a, b)
        return a, beta, c - float(b @ beta), mc

    def log_det_v(self, gp: float, gc: float, mc: np.ndarray) -> float:
        """log|V| - N log s2e."""
        return float(np.log1p(self.n * gp).sum() + np.log1p(gc * mc).sum())

    def loglik(self, gp: float, gc: float) -> float:
        a, _, r, mc = self.solve(gp, gc)
        dof = self.nobs - self.p
        return -0.5 * (
            dof * (np.log(2 * np.pi * r / dof) + 1)
            + self.log_det_v(gp, gc, mc)
            + float(np.linalg.slogdet(a)[1])
        )

    def loglik_variances(self, variances: np.ndarray) -> float:
        """REML log-likelihood (without constants) at (s2e, s2p, s2c), b profiled."""
        s2e, s2p, s2c = variances
        a, _, r, mc = self.solve(s2p / s2e, s2c / s2e)
        return -0.5 * (
            (self.nobs - self.p) * np.log(s2e)
            + self.log_det_v(s2p / s2e, s2c / s2e, mc)
            + float(np.linalg.slogdet(a)[1])
            + r / s2e
        )

    def phi(self, variances: np.ndarray) -> np.ndarray:
        s2e, s2p, s2c = variances
        return s2e * np.linalg.inv(self.solve(s2p / s2e, s2c / s2e)[0])


def _log_scale_hessian(f, point: np.ndarray, free: list[int], h: float = 1e-4) -> np.ndarray:
    """Hessian of f at `point` over the log of its `free` coordinates, by central differences
    with one Richardson step."""

    def at(z: np.ndarray) -> np.ndarray:
        value = point.copy()
        value[free] = np.exp(z)
        return value

    z0 = np.log(point[free])
    k = len(free)

    def hessian(step: float) -> np.ndarray:
        out, eye = np.empty((k, k)), np.eye(k) * step
        for i in range(k):
            for j in range(i, k):
                out[i, j] = out[j, i] = (
                    f(at(z0 + eye[i] + eye[j]))
                    - f(at(z0 + eye[i] - eye[j]))
                    - f(at(z0 - eye[i] + eye[j]))
                    + f(at(z0 - eye[i] - eye[j]))
                ) / (4 * step * step)
        return out

    return (4 * hessian(5 * h) - hessian(10 * h)) / 3


# Same signature and MixedFit fields as random_intercept_reml, on purpose (see there).
def nested_intercepts_reml(
    y: np.ndarray,
    x: np.ndarray,
    patients: np.ndarray,
    clusters: np.ndarray,
    names: list[str],
    covariance: str = MixedModelSettings.covariance,
    df_method: str = MixedModelSettings.df,
) -> MixedFit:
    """REML fit of y = Xb + u_cluster + v_patient + e, patients nested in clusters (lme4's
    `(1 | cluster / patient)`): the two variance ratios by L-BFGS-B on their logs, polished by
    Newton steps; SEs from s2e (X'V^-1 X)^-1 and Satterthwaite df over (s2e, s2p, s2c) as
    lmerTest. A ratio that goes to 0 is on the boundary (that component dropped from the df).
    Kenward-Roger and the observed-information covariance are available only without
    clusters."""
    if covariance != "model_based" or df_method == "kenward_roger":
        raise ValueError(
            "with a cluster, the mixed models use the model-based covariance with Satterthwaite "
            "or normal df (Kenward-Roger and observed information are single-level only)"
        )
    check_full_rank(x, names)
    y = np.asarray(y, dtype=float)
    patient_codes, patient_ids = pd.factorize(patients, sort=False)
    cluster_of = pd.Series(np.asarray(clusters)).groupby(patient_codes).agg(["first", "nunique"])
    if (cluster_of["nunique"] > 1).any():
        raise ValueError("a patient belongs to more than one cluster: clusters must nest patients")
    cluster_codes, cluster_ids = pd.factorize(cluster_of["first"], sort=False)
    profile = _NestedProfile(y, x, patient_codes, cluster_codes)
    if profile.nobs <= profile.p:
        raise ValueError(f"{profile.nobs} observations for {profile.p} fixed effects")
    floor = -30.0

    def negative(z: np.ndarray) -> float:
        return -profile.loglik(float(np.exp(z[0])), float(np.exp(z[1])))

    starts = [np.array([a, b]) for a in (-2.0, 0.0, 2.0) for b in (-3.0, -1.0, 1.0)]
    best = min(starts, key=negative)
    result = optimize.minimize(
        negative, best, method="L-BFGS-B", bounds=[(floor, 20.0)] * 2,
        options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 500},
    )  # fmt: skip
    z = result.x.copy()
    boundary = [bool(v <= floor + 1e-6) for v in z]
    free = [i for i in range(2) if not boundary[i]]
    for _ in range(20):  # Newton on the free log ratios, numerical derivatives
        if not free:
            break
        h = 1e-4
        grad, hess = np.zeros(len(free)), np.zeros((len(free), len(free)))
        for a, i in enumerate(free):
            e = np.zeros(2)
            e[i] = h
            grad[a] = (negative(z + e) - negative(z - e)) / (2 * h)
            for b, j in enumerate(free):
                f = np.zeros(2)
                f[j] = h
                hess[a, b] = (
                    negative(z + e + f) - negative(z + e - f) - negative(z - e + f)
                    + negative(z - e - f)
                ) / (4 * h * h)  # fmt: skip
        try:
            step = -np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            break
        candidate = z.copy()
        candidate[free] += step
        if negative(candidate) > negative(z) + 1e-12:
            break
        z = candidate
        if np.abs(step).max() < 1e-10:
            break
    gp, gc = (0.0 if boundary[i] else float(np.exp(z[i])) for i in range(2))
    a, beta, r, _ = profile.solve(gp, gc)
    scale = r / (profile.nobs - profile.p)
    variances = np.array([scale, gp * scale, gc * scale])
    phi = scale * np.linalg.inv(a)
    variance_cov = gradient = None
    if df_method != "normal":
        keep = [0, *(i + 1 for i in free)]
        hess_log = _log_scale_hessian(profile.loglik_variances, variances, keep)
        jacobian = np.diag(variances[keep])
        variance_cov = jacobian @ np.linalg.inv(-hess_log) @ jacobian
        gradient = []
        for i in keep:  # d Phi / d variance_i by central differences in its log
            up, down = variances.copy(), variances.copy()
            up[i], down[i] = variances[i] * np.exp(1e-5), variances[i] * np.exp(-1e-5)
            gradient.append((profile.phi(up) - profile.phi(down)) / (2e-5 * variances[i]))
        gradient = np.stack(gradient)
    return MixedFit(
        names=list(names),
        params=beta,
        cov_params=phi,
        scale=scale,
        group_variance=gp * scale,
        llf=profile.loglik(gp, gc),
        nobs=profile.nobs,
        groups=len(patient_ids),
        converged=bool(result.success) or result.status == 0,
        boundary=boundary[0],
        design_mean=x.mean(axis=0),
        phi=phi,
        covariance=covariance,
        df_method=df_method,
        variance_cov=variance_cov,
        cov_gradient=gradient,
        cluster_variance=gc * scale,
        clusters=len(cluster_ids),
    )


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


def _penalised_loglik(y: np.ndarray, x: np.ndarray, beta: np.ndarray, firth: bool) -> float:
    eta = x @ beta
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
) -> tuple[np.ndarray, int, bool]:
    """Maximise the (penalised) log-likelihood over the coefficients `free` (the others fixed),
    by Newton-Raphson on the (modified) score with step halving. Firth's modified score is
    X'(y - p + h (1/2 - p)), h the hat diagonal of the full design (Firth, Biometrika 1993;
    Heinze & Schemper, Stat Med 2002). Converged when the step is below 1e-10, or when the
    Newton decrement score'step (twice the gain a step promises) is below 1e-12 and the steps
    have stopped shrinking: on an ill-conditioned design rounding keeps them near 1e-8 while
    the likelihood is flat (a converging iteration halves them at least)."""
    current = _penalised_loglik(y, x, beta, firth)
    previous_step = np.inf
    for iteration in range(1, max_iterations + 1):
        p = special.expit(x @ beta)
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
        score = x[:, free].T @ residual
        try:
            step = np.linalg.solve(curvature[np.ix_(free, free)], score)
        except np.linalg.LinAlgError:
            raise ValueError("singular information matrix (separation)") from None
        decrement, size = float(score @ step), float(np.abs(step).max())
        if decrement < 1e-12 and size > 0.5 * previous_step:  # stalled at rounding noise
            return beta, iteration, True
        previous_step = size
        largest = np.abs(step).max()
        if largest > 5:  # logistf's maxstep: no coefficient moves by more than 5 at once
            step = step * (5 / largest)
        for _ in range(30):  # step halving: the (penalised) likelihood must not fall
            candidate = beta.copy()
            candidate[free] += step
            value = _penalised_loglik(y, x, candidate, firth)
            if value >= current - 1e-12:
                break
            step = step / 2
        beta, current = candidate, value
        if np.abs(step).max() < tolerance:
            return beta, iteration, True
    return beta, max_iterations, False


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
        beta, iterations, converged = _newton(y, x, beta, free, True, max_iterations)
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
    p = special.expit(x @ beta)
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
        _penalised_loglik(y, x, beta, firth),
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


def profile_likelihood(
    fit: LogisticFit, y: np.ndarray, x: np.ndarray, j: int, level: float
) -> tuple[float, float, float]:
    """Profile (penalised, for Firth) likelihood interval of coefficient j and the likelihood
    ratio p-value of b_j = 0, as R's confint.glm (MASS) and logistf: the values of b_j where
    2 (l(b) - l_profile(b_j)) reaches the chi-square(1) quantile. An end that does not exist
    within 50 SEs (a separated term) is infinite. A ValueError when a profile fit fails
    numerically (the caller falls back to Wald and says so)."""
    y = np.asarray(y, dtype=float)
    free = np.array([i for i in range(len(fit.params)) if i != j])
    cutoff = float(special.chdtri(1, 1 - level))
    memo: dict[float, np.ndarray] = {}

    def deviance_gap(b: float) -> float:
        start = fit.params.copy()
        start[j] = b
        nearest = min(memo, key=lambda v: abs(v - b)) if memo else None
        if nearest is not None:
            start[free] = memo[nearest][free]
        # 1e-7 on the other coefficients puts the profile likelihood within ~1e-13 of its
        # maximum (the error is quadratic), far below what moves a CI end by 1e-9.
        beta, _, _ = _newton(y, x, start, free, fit.firth, 200, tolerance=1e-7)
        memo[b] = beta
        gap = 2 * (fit.loglik - _penalised_loglik(y, x, beta, fit.firth))
        return min(gap, 1e6)  # a likelihood of 0 (-inf) is beyond any cut-off

    ends = []
    se = max(float(fit.bse[j]), 1e-8)
    wald = float(special.ndtri(0.5 + level / 2))  # the Wald end, a first guess of the root
    for direction in (-1.0, 1.0):
        inner, outer, found = fit.params[j], fit.params[j], False
        for multiple in (0.9 * wald, 1.3 * wald, 2 * wald, 4, 8, 16, 32, 50):
            outer = fit.params[j] + direction * multiple * se
            if deviance_gap(outer) > cutoff:
                found = True
                break
            inner = outer
        if not found:
            ends.append(direction * np.inf)
            continue
        ends.append(
            optimize.brentq(
                lambda b: deviance_gap(b) - cutoff, inner, outer, xtol=1e-10, rtol=1e-12
            )
        )
    p_value = float(special.chdtrc(1, max(deviance_gap(0.0), 0.0)))
    return ends[0], ends[1], p_value
