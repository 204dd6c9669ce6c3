"""cohort.core.distributions (scipy.special) against scipy.stats, including real and infinite
degrees of freedom (Rubin's and Barnard-Rubin's df are real; no between-imputation variance gives
infinite df)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from cohort.core.distributions import normal_critical, normal_p_value, t_critical, t_p_value


@pytest.mark.parametrize("level", [0.8, 0.9, 0.95, 0.99])
def test_normal_critical_value(level):
    assert normal_critical(level) == pytest.approx(stats.norm.ppf(0.5 + level / 2), rel=1e-14)


@pytest.mark.parametrize("df", [1, 2.5, 12.3, 40, 1e4, np.inf])
@pytest.mark.parametrize("level", [0.9, 0.95])
def test_t_critical_value(level, df):
    assert t_critical(level, df) == pytest.approx(stats.t.ppf(0.5 + level / 2, df), rel=1e-12)


@pytest.mark.parametrize("z", [-3.2, -1.96, 0.0, 0.4, 2.5, 8.0])
def test_normal_p_value(z):
    assert normal_p_value(z) == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-12, abs=1e-300)


def test_normal_p_value_of_an_array():
    z = np.array([-2.0, 0.5, 3.0])
    np.testing.assert_allclose(normal_p_value(z), 2 * stats.norm.sf(np.abs(z)), rtol=1e-12)


@pytest.mark.parametrize("df", [1, 3.7, 25, np.inf])
@pytest.mark.parametrize("t", [-2.5, 0.0, 1.1, 4.0])
def test_t_p_value(t, df):
    assert t_p_value(t, df) == pytest.approx(2 * stats.t.sf(abs(t), df), rel=1e-12)
