"""Exact REML of patients nested in clusters, (1 | cluster / patient): the random-intercept model
of cohort.models.mixed with a second variance component for the cluster (clinic or provider,
config `cluster`), profiled over the two variance ratios; SEs and df as lme4/lmerTest.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import optimize

from cohort.models.design import check_full_rank
from cohort.models.mixed import MixedFit, MixedModelSettings


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
    z = _newton_polish(negative, z, free)
    gp, gc = (0.0 if boundary[i] else float(np.exp(z[i])) for i in range(2))
    a, beta, r, _ = profile.solve(gp, gc)
    scale = r / (profile.nobs - profile.p)
    variances = np.array([scale, gp * scale, gc * scale])
    phi = scale * np.linalg.inv(a)
    variance_cov = gradient = None
    if df_method != "normal":
        variance_cov, gradient = _variance_derivatives(profile, variances, free)
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


def _newton_polish(
    negative: Callable[[np.ndarray], float], z: np.ndarray, free: list[int]
) -> np.ndarray:
    """Newton steps on the free log ratios (numerical derivatives) from L-BFGS-B's optimum,
    while they lower the negative log-likelihood."""
    for _ in range(20):
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
    return z


def _variance_derivatives(
    profile: _NestedProfile, variances: np.ndarray, free: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """What Satterthwaite's df need: the covariance of the variance estimates (inverse
    observed information on the log scale) and d Phi / d variance_i (central differences in
    its log), for the residual variance and the components not on the boundary."""
    keep = [0, *(i + 1 for i in free)]
    hess_log = _log_scale_hessian(profile.loglik_variances, variances, keep)
    jacobian = np.diag(variances[keep])
    variance_cov = jacobian @ np.linalg.inv(-hess_log) @ jacobian
    gradient = []
    for i in keep:
        up, down = variances.copy(), variances.copy()
        up[i], down[i] = variances[i] * np.exp(1e-5), variances[i] * np.exp(-1e-5)
        gradient.append((profile.phi(up) - profile.phi(down)) / (2e-5 * variances[i]))
    return variance_cov, np.stack(gradient)
