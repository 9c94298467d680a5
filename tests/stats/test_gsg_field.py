"""fit_gsg_field / fit_gsg_regions: any field, whole or by region (e.g. dissolution rates)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_calcite_afm.stats import (
    GSGParams,
    StatsError,
    fit_gsg_field,
    fit_gsg_regions,
    gsg_correlation,
    simulate_gsg_field,
)


def test_a_field_drawn_from_the_model_is_recovered_and_fits():
    y = simulate_gsg_field((160, 160), 1.4, 0.02, 4.0, mu=0.03, seed=31)  # like rates, nm/s
    p = fit_gsg_field(y, lags=(1, 2, 4))
    assert isinstance(p, GSGParams) and p.flags == []
    assert abs(p.alpha - 1.4) < 0.2 and abs(p.sigma / 0.02 - 1) < 0.15
    assert abs(p.rho[2] - gsg_correlation(2, 4.0)) < 0.07
    assert p.ks_height < 0.03
    assert max(p.ks_increment.values()) < 0.03
    # the fitted densities evaluate (and integrate to about 1)
    grid = np.linspace(-0.5, 0.5, 20_001)
    assert abs(p.pdf(grid).sum() * 5e-5 - 1) < 1e-3
    assert abs(p.increment_cdf(0.0, 1) - 0.5) < 1e-12


def test_nan_and_mask_are_ignored():
    y = simulate_gsg_field((96, 96), 1.5, 1.0, 3.0, seed=32)
    full = fit_gsg_field(y, lags=(1,), goodness=False)
    y2 = y.copy()
    y2[:, 48:] = np.nan
    half = fit_gsg_field(y2, lags=(1,), goodness=False)
    mask = np.zeros(y.shape, bool)
    mask[:, :48] = True
    masked = fit_gsg_field(y, mask, lags=(1,), goodness=False)
    assert half.n == masked.n == 96 * 48 and full.n == 96 * 96
    assert half.alpha == masked.alpha and half.rho == masked.rho
    assert math.isnan(half.ks_height)  # goodness=False


def test_regions_are_fitted_one_by_one():
    a = simulate_gsg_field((96, 96), 1.2, 1.0, 2.0, mu=-5.0, seed=33)
    b = simulate_gsg_field((96, 96), 1.8, 0.3, 2.0, seed=34)
    labels = np.zeros((96, 96), np.uint8)
    labels[:, :40] = 1
    labels[:, 40:] = 2
    labels[:5] = 0  # unlabelled rows are ignored
    y = np.where(labels == 1, a, b)
    fits = fit_gsg_regions(y, labels, lags=(1, 2), goodness=False)
    assert sorted(fits) == [1, 2] and [f.label for f in fits.values()] == [1, 2]
    assert fits[1].mu == pytest.approx(a[5:, :40].mean())
    assert fits[1].alpha < fits[2].alpha
    assert fits[1].n == 91 * 40
    one = fit_gsg_field(y, labels == 1, lags=(1, 2), goodness=False)
    assert one.alpha == fits[1].alpha


def test_degenerate_fields_return_nan_with_a_flag():
    assert fit_gsg_field(np.full((16, 16), np.nan)).flags == [
        "GSG undefined: 0 values < min_pixels (10)"
    ]
    p = fit_gsg_field(np.random.default_rng(35).uniform(size=(48, 48)))
    assert math.isnan(p.alpha) and "kurtosis below 3" in p.flags[0]
    assert math.isnan(p.ks_height) and p.ks_increment == {}


@pytest.mark.parametrize(
    "call",
    [
        lambda: fit_gsg_field(np.zeros((2, 4, 4))),
        lambda: fit_gsg_field(np.array([["a"]])),
        lambda: fit_gsg_field(np.zeros((4, 4)), np.zeros((3, 4), bool)),
        lambda: fit_gsg_field(np.zeros((4, 4)), lags=(0,)),
        lambda: fit_gsg_field(np.zeros((4, 4)), axis="z"),
        lambda: fit_gsg_field(np.zeros((4, 4)), method="mle"),
        lambda: fit_gsg_field(np.zeros((4, 4)), min_pixels=0),
        lambda: fit_gsg_regions(np.zeros((4, 4)), np.zeros((4, 5), int)),
        lambda: fit_gsg_regions(np.zeros((4, 4)), np.zeros((4, 4), float)),
    ],
)
def test_bad_arguments_raise_stats_errors(call):
    with pytest.raises(StatsError):
        call()
