"""Tests of napari_calcite_afm.level.background: plain, robust and along-row backgrounds."""

from __future__ import annotations

import numpy as np
import pytest

from napari_calcite_afm.level import (
    LevelError,
    _x_background,
    polynomial_background,
    remove_background,
)


@pytest.mark.parametrize("order", [0, 1, 2, 3])
def test_polynomial_background_exact(order):
    rng = np.random.default_rng(order)
    yy, xx = np.mgrid[0:40, 0:50].astype(float)
    z = np.zeros_like(xx)
    for j in range(order + 1):
        for i in range(order + 1 - j):
            z += rng.normal() * (yy / 40) ** j * (xx / 50) ** i
    z_nan = z.copy()
    z_nan[5] = np.nan
    fit = polynomial_background(z_nan, order)
    assert fit.shape == z.shape
    np.testing.assert_allclose(fit, z, atol=1e-8)  # also predicted on the NaN row


def test_polynomial_background_mask_and_subsample():
    yy, xx = np.mgrid[0:300, 0:300].astype(float)  # > 16384 pixels: subsampled fit
    plane = 0.02 * xx - 0.01 * yy + 1
    z = plane.copy()
    z[100:200, 100:200] += 50  # excluded by the mask
    mask = np.ones(z.shape, bool)
    mask[100:200, 100:200] = False
    np.testing.assert_allclose(polynomial_background(z, 1, mask), plane, atol=1e-8)
    assert np.abs(polynomial_background(z, 1) - plane).max() > 1  # the block biases it
    assert not polynomial_background(np.full((4, 4), np.nan), 2).any()


def test_remove_background_robust_to_deep_pits(synth):
    rng = np.random.default_rng(1)
    shape = (256, 256)
    yy, xx = np.mgrid[0:256, 0:256].astype(float)
    terrace = rng.normal(0, 0.05, shape)
    z = terrace.copy()
    for c in [(70, 80), (180, 170)]:
        z -= synth.pit_depth_map(shape, c, 40, 0.5, 25)[0]
    tilt = 0.05 * xx + 0.03 * yy + 2e-4 * (xx - 128) ** 2
    flat = remove_background(z + tilt, order=2)
    plain = remove_background(z + tilt, order=2, iterations=0)
    on_terrace = z > -0.2
    resid = flat - z
    assert np.std(resid[on_terrace]) < 0.01  # background recovered, pits did not bias it
    assert np.std((plain - z)[on_terrace]) > 0.3  # whereas plain least squares is biased


def test_remove_background_pit_over_half_the_frame(synth):
    # a plain robust fit (median / MAD) converges to a bow that bends into such a pit
    shape = (200, 200)
    yy, xx = np.mgrid[0:200, 0:200] / 199.0
    depth, inside = synth.pit_depth_map(shape, (140, 130), 80, 0.3, 30)
    assert 0.35 < inside.mean() < 0.6
    terrace = synth.STEP * np.floor((xx + 0.3 * yy) * 4)
    terrace = terrace + np.random.default_rng(3).normal(0, 0.03, shape)
    z = terrace - depth
    raw = z + 20 * xx + 10 * yy + 3 * (xx - 0.5) ** 2 - 2 * (yy - 0.5) ** 2 + xx * yy
    resid = remove_background(raw, order=2) - z
    # the fit takes the terraces' own mean slope (a vicinal plane) too: remove a plane
    r, c = np.nonzero(~inside)
    a = np.stack([np.ones(r.size), r, c], 1)
    coef = np.linalg.lstsq(a, resid[~inside], rcond=None)[0]
    resid -= coef[0] + coef[1] * np.arange(200)[:, None] + coef[2] * np.arange(200)[None, :]
    assert np.abs(resid).max() < 0.25  # < 1 step: the pit (30 nm, half the frame) ignored
    plain = remove_background(raw, order=2, iterations=0) - z
    assert np.ptp(plain[~inside]) > 5


def test_remove_background_keeps_nan():
    z = np.random.default_rng(0).normal(size=(20, 30))
    z[3, :] = np.nan
    z[7, 4] = np.nan
    out = remove_background(z, 1)
    assert np.array_equal(np.isnan(out), np.isnan(z))


def test_background_bad_input_raises():
    with pytest.raises(LevelError, match="2-D"):
        polynomial_background(np.zeros((2, 3, 4)))
    with pytest.raises(LevelError, match="order"):
        polynomial_background(np.zeros((3, 4)), order=-1)
    with pytest.raises(LevelError, match="mask"):
        polynomial_background(np.zeros((3, 4)), mask=np.ones((4, 3), bool))


def test_x_background_ignores_offsets_and_pits():
    rng = np.random.default_rng(21)
    rows, cols = 200, 300
    y = np.linspace(-1, 1, rows)[:, None]
    x = np.linspace(-1, 1, cols)[None, :]
    bow = 4.0 * x + 2.0 * x**2 - 1.5 * x * y
    z = bow + 3.0 * y**2 + np.cumsum(rng.normal(0, 0.3, rows))[:, None]
    z = z + rng.normal(0, 0.03, z.shape)
    # a terraced pit (flat walls, 0.31 nm steps) over most of the frame
    depth = np.floor(np.clip(1.0 - np.maximum(np.abs(x), np.abs(y + 0.2)), 0, None) / 0.05)
    z = z - 0.31 * depth
    z[50:53, 100:160] = np.nan
    errors = []
    for est in (_x_background(z, 2), polynomial_background(z, 2)):
        d = est - bow
        d -= np.nanmean(d, axis=1, keepdims=True)  # a function of the row is left out
        errors.append(np.nanmax(np.abs(d)))
    # slopes are noisy (0.04 nm per pixel here), so the estimate is good to ~0.1 nm:
    # ample to find pits 1 nm deep; a least-squares fit of the heights bends 2 nm
    assert errors[0] < 0.25
    assert errors[1] > 1.0
