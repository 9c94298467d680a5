"""Tests of napari_calcite_afm.level.robust: the robust statistics and polynomial fits.

These are private building blocks; the public functions that use them are tested in the
other files of this folder.
"""

from __future__ import annotations

import numpy as np

from napari_calcite_afm.level.robust import (
    _centre_spread,
    _eval_poly,
    _fit_poly,
    _robust_sigma,
    _row_clipped_median,
    _row_nanmedian,
)


def test_robust_sigma_of_a_normal_sample_ignores_outliers_and_nan():
    v = np.random.default_rng(0).normal(0, 2.0, 20_000)
    v[:2000] = 1e3  # outliers
    v[2000:2100] = np.nan
    assert abs(_robust_sigma(v) - 2.0) < 0.3
    assert _robust_sigma(np.full(5, np.nan)) == 0.0


def test_row_nanmedian_and_clipped_median():
    a = np.array([[1.0, 2.0, np.nan, 3.0], [np.nan] * 4, [4.0, 4.0, 4.0, 100.0]])
    med = _row_nanmedian(a)
    assert med[0] == 2.0 and np.isnan(med[1]) and med[2] == 4.0
    rng = np.random.default_rng(1)
    d = rng.normal(0.5, 0.02, (3, 400))
    d[:, :150] = rng.uniform(-20, -5, (3, 150))  # a pit wall over 3/8 of the row
    np.testing.assert_allclose(_row_clipped_median(d), 0.5, atol=0.01)


def test_centre_spread_stays_on_the_densest_population():
    rng = np.random.default_rng(2)
    terrace = rng.normal(0.0, 0.05, 5000)
    pit = rng.uniform(-30, -1, 5000)  # half the values, spread below the terrace
    centre, sigma = _centre_spread(np.concatenate([terrace, pit]))
    assert abs(centre) < 0.05
    assert 0.02 < sigma < 0.2


def test_fit_and_eval_poly_reproduce_a_polynomial_surface():
    y = np.linspace(-1, 1, 30)[:, None]
    x = np.linspace(-1, 1, 40)[None, :]
    z = 1.0 + 0.5 * x - 2.0 * y + 0.3 * x * y + 0.7 * y**2
    used = np.ones(z.shape, bool)
    used[5:10] = False
    cmat = _fit_poly(z, used, 2)
    assert cmat.shape == (3, 3)
    np.testing.assert_allclose(_eval_poly(cmat, z.shape), z, atol=1e-10)
    assert _fit_poly(z, np.zeros(z.shape, bool), 2) is None
    assert not _eval_poly(None, (2, 3)).any()
