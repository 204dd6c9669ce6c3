"""Normal and t quantiles and two-sided p-values from scipy.special.

scipy.stats computes these with the same special functions but costs about 0.6-1 s to import, a
cost every Snakemake job that imports it pays; the tests check these against scipy.stats.
"""

from __future__ import annotations

import numpy as np
from scipy import special


def normal_critical(level: float) -> float:
    """The two-sided normal critical value of a `level` confidence interval (1.96 for 0.95)."""
    return float(special.ndtri(0.5 + level / 2))


def t_critical(level: float, df: float) -> float:
    """The two-sided t critical value of a `level` confidence interval with `df` degrees of
    freedom (any real df > 0; infinite df gives the normal value)."""
    return float(special.stdtrit(df, 0.5 + level / 2))


def normal_p_value(statistic: float | np.ndarray) -> float | np.ndarray:
    """Two-sided p-value of a standard normal (Wald) statistic."""
    return 2 * special.ndtr(-np.abs(statistic))


def t_p_value(statistic: float, df: float) -> float:
    """Two-sided p-value of a t statistic with `df` degrees of freedom."""
    return float(2 * special.stdtr(df, -abs(statistic)))
