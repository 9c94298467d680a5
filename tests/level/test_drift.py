"""Tests of napari_calcite_afm.level.drift: drift measurement and removal."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_calcite_afm.level import LevelError, Registration, register_stack, shift_stack


def _drifting_stack(synth, seed, shifts, shape=(192, 192), evolve=0.0):
    """Frames of one calcite surface seen through a drifting window.

    ``shifts[i]`` is the (row, col) shift that aligns frame i back onto frame 0.
    """
    rng = np.random.default_rng(seed)
    pad = 24
    big, _ = synth.calcite_surface(rng, (shape[0] + 2 * pad, shape[1] + 2 * pad))
    frames = []
    for s in shifts:
        f = ndimage.shift(big, -np.asarray(s), order=3, mode="nearest")
        f = f[pad : pad + shape[0], pad : pad + shape[1]]
        f = f + rng.normal(0, 0.03, shape) + evolve * rng.normal(0, 0.1, shape)
        frames.append(f)
        big = big - evolve * synth.STEP * (rng.random(big.shape) < 0.001)
    return np.stack(frames)


@pytest.mark.parametrize("reference", ["previous", "first"])
def test_register_stack_recovers_subpixel_shifts(synth, reference):
    true = np.array([[0, 0], [1.5, -2.25], [3.7, 0.4], [-2.2, 5.5], [0.3, 7.9]])
    stack = _drifting_stack(synth, 0, true, evolve=0.2)
    reg = register_stack(stack, reference=reference)
    assert isinstance(reg, Registration)
    assert reg.shifts.shape == (5, 2)
    assert np.abs(reg.shifts - true).max() < 0.5
    assert np.abs(reg.shifts - true).max() < 0.2  # in practice much better than required
    assert reg.aligned.dtype == np.float32
    # aligned frames agree with frame 0 inside the overlap
    v = (slice(None), *reg.valid)
    assert np.isfinite(reg.aligned[v]).all()
    diff = reg.aligned[v][1:] - reg.aligned[v][0]
    assert np.sqrt(np.mean(diff**2)) < 0.3


def test_register_valid_region_is_exact(synth):
    true = np.array([[0, 0], [2.5, -3.0], [-1.25, 4.0]])
    stack = _drifting_stack(synth, 1, true)
    reg = register_stack(stack)
    rows, cols = reg.valid
    np.testing.assert_allclose(reg.shifts, true, atol=0.2)
    expected = np.array([3, 191, 4, 189])  # from the true shifts
    assert np.abs(np.array([rows.start, rows.stop, cols.start, cols.stop]) - expected).max() <= 1
    finite = np.isfinite(reg.aligned).all(axis=0)
    assert finite[rows, cols].all()
    # tight: every row / column just outside has a NaN in some frame
    assert not finite[rows.start - 1, cols].all() and not finite[rows.stop, cols].all()
    assert not finite[rows, cols.start - 1].all() and not finite[rows, cols.stop].all()


def test_shift_stack_convention_and_nan():
    st = np.arange(20.0).reshape(1, 4, 5)
    st[0, 0, 0] = np.nan
    out = shift_stack(st, [[1, 0]])  # content moves down by one row
    assert np.isnan(out[0, 0]).all()
    np.testing.assert_array_equal(out[0, 2:], st[0, 1:3])
    assert np.isnan(out[0, 1, 0])  # the NaN moved with its pixel
    half = shift_stack(np.tile(np.arange(6.0), (1, 3, 1)), [[0, 0.5]])
    np.testing.assert_allclose(half[0, 0, 1:], np.arange(5.0) + 0.5)
    assert np.isnan(half[0, :, 0]).all()
    with pytest.raises(LevelError):
        shift_stack(st, [[1, 2], [3, 4]])


def test_register_max_shift_and_nan_frames(synth):
    true = np.array([[0, 0], [9.0, 0.0]])
    stack = _drifting_stack(synth, 2, true)
    reg = register_stack(stack, max_shift=3)
    assert np.abs(reg.shifts[1]).max() <= 3.5
    stack[1, 10:20] = np.nan  # lines not recorded do not break the registration
    reg = register_stack(stack)
    assert np.abs(reg.shifts - true).max() < 0.5
    # a frame without any data is skipped over (it keeps the previous shift)
    gap = np.stack([stack[0], np.full_like(stack[0], np.nan), stack[1]])
    reg = register_stack(gap)
    assert np.abs(reg.shifts[2] - true[1]).max() < 0.5
    assert not reg.shifts[1].any() and np.isnan(reg.aligned[1]).all()
    with pytest.raises(LevelError):
        register_stack(stack, reference="last")
    with pytest.raises(LevelError):
        register_stack(stack[0])
