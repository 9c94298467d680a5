"""Tests of napari_calcite_afm.synthetic.fields: random fields and canvas resampling."""

from __future__ import annotations

import numpy as np
import pytest

from napari_calcite_afm.synthetic.fields import (
    _bilinear_grid,
    _sample_shifted,
    _smooth_noise,
    _spawn,
)


@pytest.mark.parametrize("sigma", [1.5, 12.0])  # direct and coarse-grid filtering
def test_smooth_noise_has_unit_std_and_follows_the_seed(sigma):
    a = _smooth_noise(np.random.default_rng(0), (64, 80), sigma)
    assert a.shape == (64, 80) and a.std() == pytest.approx(1.0)
    np.testing.assert_array_equal(a, _smooth_noise(np.random.default_rng(0), (64, 80), sigma))


def test_spawn_is_deterministic():
    a = [g.random() for g in _spawn(5, 3)]
    assert a == [g.random() for g in _spawn(5, 3)]
    assert len(set(a)) == 3


def test_bilinear_grid_and_sample_shifted():
    arr = np.arange(20.0).reshape(4, 5)
    np.testing.assert_array_equal(_bilinear_grid(arr, np.arange(4.0), np.arange(5.0)), arr)
    canvas = np.arange(100.0).reshape(10, 10)
    np.testing.assert_array_equal(_sample_shifted(canvas, 2, (0.0, 0.0), 4), canvas[2:6, 2:6])
    np.testing.assert_array_equal(_sample_shifted(canvas, 2, (1.0, -1.0), 4), canvas[1:5, 3:7])
    # a linear field is interpolated exactly
    half = _sample_shifted(canvas, 2, (0.5, 0.0), 4)
    np.testing.assert_allclose(half, canvas[2:6, 2:6] - 5.0)
