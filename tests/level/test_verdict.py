"""Tests of the drift registration's confidence (napari_calcite_afm.level._verdict):
errors of weak pairs add up along the movie, and the confidence says so."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from napari_calcite_afm.level import _verdict as verdict
from napari_calcite_afm.level import register_stack
from napari_calcite_afm.level._consensus import _Measurement, _solve_positions
from napari_calcite_afm.level._verdict import _chain_factor


def _chain(weights, extra=()):
    """Spread of frames 0..n tied by successive measurements of ``weights`` (and
    ``extra`` measurements (ref, mov, weight)), every true shift zero."""
    frames = list(range(len(weights) + 1))
    meas = [_Measurement(i, i + 1, np.zeros(2), w) for i, w in enumerate(weights)]
    meas += [_Measurement(a, b, np.zeros(2), w) for a, b, w in extra]
    return _solve_positions(frames, 0, meas)[2]


def test_the_spread_of_a_chain_of_weak_pairs_grows_as_its_square_root():
    spread = _chain([1.0] * 4)
    assert spread[0] == 0.0
    np.testing.assert_allclose([spread[k] for k in range(1, 5)], np.sqrt([1, 2, 3, 4]))


def test_a_strong_tie_back_to_the_first_frame_keeps_a_late_frame_well_known():
    loose = _chain([1.0] * 4)
    tied = _chain([1.0] * 4, extra=[(0, 4, 100.0)])  # e.g. a pit bottom in both frames
    assert tied[4] < 0.15 < loose[4]
    assert tied[2] < loose[2]  # the frames between are pulled in too


def test_the_chain_factor_is_one_within_half_a_pixel_and_falls_beyond():
    assert _chain_factor(0.0) == _chain_factor(0.5) == 1.0
    assert _chain_factor(1.5) == 0.5
    assert _chain_factor(2.5) < _chain_factor(1.5) < _chain_factor(1.0) < 1.0


def _steps_then_texture(texture_from: int, n: int = 9, seed: int = 3) -> np.ndarray:
    """Retreating straight steps over a terrace texture at the noise level, which
    stands well above the noise from frame ``texture_from`` on (no drift)."""
    rng = np.random.default_rng(seed)
    size, pad = 128, 20
    yy, xx = np.mgrid[0 : size + 2 * pad, 0 : size + 2 * pad].astype(float)
    texture = ndimage.gaussian_filter(rng.normal(size=yy.shape), 1.0)
    frames = []
    for k in range(n):
        steps = 0.31 * np.floor((xx + 0.3 * yy + 3.0 * k) / 10.0)
        z = steps + texture * (0.3 if k >= texture_from else 0.02)
        frames.append(z[pad:-pad, pad:-pad] + rng.normal(0, 0.02, (size, size)))
    return np.stack(frames)


def test_a_well_measured_frame_after_a_run_of_weak_ones_is_not_trusted_fully(monkeypatch):
    """The last pairs see a strong texture, but the frames are tied to frame 0 only
    through the weak pairs before: their confidence stays low. Judged by its own pair
    alone (the chain factor off), the last frame would be trusted fully."""
    late = register_stack(_steps_then_texture(texture_from=5))
    always = register_stack(_steps_then_texture(texture_from=0))
    assert always.confidence[-1] > 0.8, always.confidence
    assert late.confidence[-1] < 0.5, late.confidence
    monkeypatch.setattr(verdict, "_chain_factor", lambda spread_px: 1.0)
    alone = register_stack(_steps_then_texture(texture_from=5))
    assert alone.confidence[-1] > 0.8, alone.confidence
