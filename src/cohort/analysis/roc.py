"""ROC analysis of a change score against an anchor of improvement: the area under the curve,
DeLong's SE by midranks (DeLong et al., Biometrics 1988;44:837; Sun & Xu, IEEE Signal Process
Lett 2014;21:1389) and Youden's cut-off, hand-written as scipy and statsmodels have none.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


# --- ROC analysis against an anchor ------------------------------------------------------------
def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative) + half the ties,
    the Mann-Whitney U over the product of the group sizes."""
    scores, positive = np.asarray(scores, dtype=float), np.asarray(positive, dtype=bool)
    n1, n0 = int(positive.sum()), int((~positive).sum())
    if n1 == 0 or n0 == 0:
        return math.nan
    ranks = stats.rankdata(scores)
    u = ranks[positive].sum() - n1 * (n1 + 1) / 2
    return float(u / (n1 * n0))


def delong_se(scores: np.ndarray, positive: np.ndarray) -> float:
    """DeLong's standard error of the AUC (DeLong et al. 1988), from midranks: the placement
    values V10 (each positive's share of negatives below it) and V01 (each negative's share of
    positives above it), Var = var(V10) / n1 + var(V01) / n0."""
    scores, positive = np.asarray(scores, dtype=float), np.asarray(positive, dtype=bool)
    x, y = scores[positive], scores[~positive]
    n1, n0 = len(x), len(y)
    if n1 < 2 or n0 < 2:
        return math.nan
    combined = stats.rankdata(np.concatenate([x, y]))
    v10 = (combined[:n1] - stats.rankdata(x)) / n0
    v01 = 1 - (combined[n1:] - stats.rankdata(y)) / n1
    return float(np.sqrt(v10.var(ddof=1) / n1 + v01.var(ddof=1) / n0))


def youden_cutoff(scores: np.ndarray, positive: np.ndarray) -> tuple[float, float, float]:
    """The observed score t maximising Youden's J = sensitivity + specificity - 1 for the call
    "score >= t"; among equal J the lowest t. Returns (t, sensitivity, specificity)."""
    scores, positive = np.asarray(scores, dtype=float), np.asarray(positive, dtype=bool)
    x, y = np.sort(scores[positive]), np.sort(scores[~positive])
    candidates = np.unique(scores)
    sensitivity = (len(x) - np.searchsorted(x, candidates, side="left")) / len(x)
    specificity = np.searchsorted(y, candidates, side="left") / len(y)
    best = int(np.argmax(sensitivity + specificity))  # the first, lowest t, among ties
    return float(candidates[best]), float(sensitivity[best]), float(specificity[best])
