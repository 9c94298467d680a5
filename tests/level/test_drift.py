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


# -- confidence, rejection and messages (issue 17)


def _texture_stack(seed, shifts, size=96, noise=0.02):
    """A rough surface (1-px texture plus smooth relief) seen through a drifting window."""
    rng = np.random.default_rng(seed)
    pad = 40
    big = ndimage.gaussian_filter(rng.normal(size=(size + 2 * pad,) * 2), 4) * 2.0
    big += ndimage.gaussian_filter(rng.normal(size=big.shape), 0.8) * 0.2
    frames = []
    for s in shifts:
        f = ndimage.shift(big, -np.asarray(s, float), order=3, mode="nearest")
        frames.append(f[pad : pad + size, pad : pad + size] + rng.normal(0, noise, (size, size)))
    return np.stack(frames)


def test_registration_defaults_keep_old_constructions_working():
    reg = Registration(
        aligned=np.zeros((3, 4, 4)), shifts=np.zeros((3, 2)), valid=(slice(0, 4),) * 2
    )
    assert reg.confidence.tolist() == [1.0, 1.0, 1.0]
    assert reg.rejected.tolist() == [False, False, False] and reg.messages == []
    assert reg.common_fraction == 1.0


def test_good_movie_has_high_confidence_and_no_messages():
    true = np.cumsum(np.tile([[0.6, -0.9]], (6, 1)), axis=0) - [0.6, -0.9]
    reg = register_stack(_texture_stack(3, true))
    assert np.abs(reg.shifts - true).max() < 0.3
    assert reg.confidence[0] == 1.0 and reg.confidence.min() > 0.5
    assert not reg.rejected.any() and reg.messages == []
    off = register_stack(_texture_stack(3, true), texture=False)  # the old behaviour
    assert np.abs(off.shifts - true).max() < 0.3


def test_a_frame_without_correlation_is_rejected_interpolated_and_named():
    true = np.array([[0, 0], [1, -1], [2, -2], [3, -3], [4, -4], [5, -5.0]])
    stack = _texture_stack(4, true)
    stack[3] = np.random.default_rng(9).normal(0, 1.0, stack[3].shape)  # the tip lost contact
    reg = register_stack(stack)
    assert reg.rejected.tolist() == [False, False, False, True, False, False]
    assert reg.confidence[3] == 0.0
    # interpolated between frames 2 and 4; frame 4 was measured against frame 2
    np.testing.assert_allclose(reg.shifts[3], (reg.shifts[2] + reg.shifts[4]) / 2, atol=1e-9)
    assert np.abs(reg.shifts[[0, 1, 2, 4, 5]] - true[[0, 1, 2, 4, 5]]).max() < 0.3
    assert any("frame 3 rejected (weak correlation)" in m for m in reg.messages), reg.messages


def test_rejected_frames_at_the_end_hold_the_last_good_shift():
    true = np.array([[0, 0], [1.5, 0.5], [3, 1.0], [4.5, 1.5]])
    stack = _texture_stack(5, true)
    rng = np.random.default_rng(1)
    stack[2:] = rng.normal(0, 1.0, stack[2:].shape)
    reg = register_stack(stack)
    assert reg.rejected.tolist() == [False, False, True, True]
    np.testing.assert_allclose(reg.shifts[2:], np.tile(reg.shifts[1], (2, 1)))
    assert any("frames 2-3 rejected" in m for m in reg.messages), reg.messages


def test_a_jump_far_beyond_the_drift_before_is_flagged():
    from napari_calcite_afm.level.drift import _jump, _Pair

    positions = {
        0: np.zeros(2),
        1: np.array([1.0, 0.5]),
        2: np.array([2.0, 1.1]),
        3: np.array([3.1, 1.4]),
    }
    steady = _Pair(ref=3, mov=4, coarse=np.array([1.0, 0.4]), strength=12.0)
    jump = _Pair(ref=3, mov=4, coarse=np.array([-40.0, 25.0]), strength=12.0)
    assert not _jump(steady, positions) and _jump(jump, positions)
    # no history: judged against no drift, 3 times more leniently (a weak first peak
    # 47 px off is a frame-filling staircase matching itself along its steps)
    assert _jump(
        _Pair(ref=0, mov=1, coarse=np.array([-40.0, 25.0]), strength=12.0), {0: np.zeros(2)}
    )
    assert not _jump(
        _Pair(ref=0, mov=1, coarse=np.array([9.0, -9.0]), strength=12.0), {0: np.zeros(2)}
    )
    one_step = {0: np.zeros(2), 1: np.ones(2)}  # one step of history: 3 times more lenient
    assert _jump(_Pair(ref=1, mov=2, coarse=np.array([-40.0, 25.0]), strength=12.0), one_step)
    assert not _jump(_Pair(ref=1, mov=2, coarse=np.array([9.0, -9.0]), strength=12.0), one_step)


def test_a_change_of_drift_that_the_texture_confirms_is_not_a_jump(monkeypatch):
    """Where steps bias the whole-frame shifts, the true shift can look like a jump from
    them; the terrace texture, which does not move, tells the two apart."""
    from napari_calcite_afm.level import drift

    monkeypatch.setattr(drift, "_GOOD", 1e9)  # judge every pair, however strong its peak
    true = np.array([[0, 0], [1, 0.5], [2, 1.0], [3, 1.5], [4, 2.0], [13, 2.5], [14, 3.0]])
    stack = _texture_stack(6, true, size=128)
    reg = register_stack(stack)
    assert not reg.rejected.any(), reg.messages
    assert np.abs(reg.shifts - true).max() < 0.3
    old = register_stack(stack, texture=False)  # no texture to confirm it: a jump
    assert old.rejected[5] and any("jump" in m for m in old.messages)


def test_confidence_is_lower_on_noise():
    true = np.array([[0, 0], [0.7, 0.3], [1.4, 0.6], [2.1, 0.9]])
    clean = register_stack(_texture_stack(6, true, noise=0.02))
    noisy = register_stack(_texture_stack(6, true, noise=0.8))
    assert noisy.confidence[1:].mean() < clean.confidence[1:].mean() - 0.2


def test_a_small_common_area_is_reported():
    true = np.array([[0, 0], [-12.0, 14.0], [-24.0, 28.0], [-34.0, 39.0]])
    reg = register_stack(_texture_stack(7, true))
    assert np.abs(reg.shifts - true).max() < 1.0
    assert reg.common_fraction < 0.5
    assert any("% of the frame" in m for m in reg.messages), reg.messages


def test_the_shifts_align_frames_as_scipy_shift_applies_them():
    true = np.array([[0, 0], [2.0, -3.0]])
    stack = _texture_stack(8, true)
    reg = register_stack(stack)
    back = ndimage.shift(stack[1], reg.shifts[1], order=1)
    inner = (slice(8, -8), slice(8, -8))
    before = np.sqrt(np.mean((stack[1] - stack[0])[inner] ** 2))
    after = np.sqrt(np.mean((back - stack[0])[inner] ** 2))
    assert after < 0.25 * before


def test_register_reports_progress_and_stops():
    from napari_calcite_afm.errors import Cancelled

    stack = _texture_stack(2, np.zeros((4, 2)))
    seen = []
    register_stack(stack, progress=seen.append)
    assert [d["frame"] for d in seen] == [1, 2, 3] and seen[0]["stage"] == "register"
    with pytest.raises(Cancelled):
        register_stack(stack, stop=lambda: True)


def test_too_weak_a_texture_does_not_move_the_shifts_and_is_reported():
    """Retreating straight steps over a texture far below the noise: the texture has
    nothing to say, so the whole-frame shifts are kept (here: no drift at all)."""
    rng = np.random.default_rng(11)
    size, pad = 128, 20
    yy, xx = np.mgrid[0 : size + 2 * pad, 0 : size + 2 * pad].astype(float)
    texture = ndimage.gaussian_filter(rng.normal(size=yy.shape), 0.8) * 0.04
    frames = []
    for k in range(5):
        steps = 0.31 * np.floor((xx + 0.3 * yy + 3.0 * k) / 10.0)
        frames.append((steps + texture)[pad:-pad, pad:-pad] + rng.normal(0, 0.02, (size, size)))
    reg = register_stack(np.stack(frames))
    whole = register_stack(np.stack(frames), texture=False)
    assert np.abs(reg.shifts - whole.shifts).max() < 0.8
    assert np.abs(reg.shifts).max() < 1.0
    assert reg.confidence[1:].max() <= 0.5
    weak = [m for m in reg.messages if "terrace texture barely showed" in m]
    assert weak and "longest: frames 1-4" in weak[0], reg.messages


def test_a_staircase_alias_far_off_the_trend_gives_way_to_the_peak_near_it():
    """A regular staircase matches itself one step spacing away, often more strongly
    than at the true shift; a jump-flagged pair then takes the peak near the trend."""
    from napari_calcite_afm.level._pairs import (
        _jump,
        _off_trend,
        _Pair,
        _peak_near,
        _staircase_alias,
    )

    rng = np.random.default_rng(5)
    tex = ndimage.gaussian_filter(rng.normal(size=(128, 128)), 1.0)
    true, alias = np.array([2.0, 1.0]), np.array([-22.0, 9.0])
    # frame b holds the reference twice: weakly at the true shift, strongly at the alias
    mov = 0.6 * np.roll(tex, (-2, -1), (0, 1)) + np.roll(tex, (22, -9), (0, 1))
    f_ref, f_mov = np.fft.fft2(tex), np.fft.fft2(mov)
    positions = {0: np.zeros(2), 1: np.array([2.1, 0.9]), 2: np.array([4.0, 2.1])}
    pair = _Pair(ref=2, mov=3, coarse=alias.copy(), strength=40.0)
    assert _jump(pair, positions)
    assert _staircase_alias(pair, positions, f_ref, f_mov, weak=8.0)
    assert np.abs(pair.coarse - true).max() < 0.3 and pair.strength >= 8.0
    bounded = _Pair(ref=2, mov=3, coarse=alias.copy(), strength=40.0)  # beyond max_shift
    assert not _staircase_alias(bounded, positions, f_ref, f_mov, weak=8.0, max_shift=1.5)
    # no trend yet (fewer than 2 steps): the peak near no drift since the last frame
    for known in ({0: np.zeros(2)}, {0: np.zeros(2), 1: true}):
        early = _Pair(ref=max(known), mov=max(known) + 1, coarse=alias.copy(), strength=40.0)
        assert _off_trend(early, known)
        assert _staircase_alias(early, known, f_ref, f_mov, weak=8.0)
        assert np.abs(early.coarse - true).max() < 0.3
    near = _Pair(ref=2, mov=3, coarse=np.array([6.0, 4.0]), strength=40.0)
    assert not _off_trend(near, positions)  # 4 px off the trend's (2.0, 1.05): no alias
    # only the far peak: the window's maximum is the flank of a peak outside it
    single = np.fft.fft2(np.roll(tex, (22, -9), (0, 1)))
    assert _peak_near(f_ref, single, np.array([2.0, 1.0]), 5.0)[1] < 8.0
    lone = _Pair(ref=2, mov=3, coarse=alias.copy(), strength=40.0)
    assert not _staircase_alias(lone, positions, f_ref, single, weak=8.0)


def test_a_first_frame_unlike_the_rest_is_skipped_and_its_drift_continued_back():
    """The first scan after the approach can match none of the frames after it: the
    drift is then measured from frame 1 and continued back to frame 0, instead of
    every later frame being measured against frame 0 across a growing gap."""
    rng = np.random.default_rng(21)
    base = ndimage.gaussian_filter(rng.normal(size=(160, 160)), 2.0)
    step = np.array([1.5, -1.0])  # drift per frame, pixels
    frames = [ndimage.gaussian_filter(rng.normal(size=(128, 128)), 2.0)]  # unrelated
    for k in range(1, 7):
        moved = ndimage.shift(base, k * step, order=1)[16:-16, 16:-16]
        frames.append(moved + rng.normal(0, 0.02, moved.shape))
    seen = []
    reg = register_stack(np.stack(frames), texture=False, progress=seen.append)
    assert [e["frame"] for e in seen] == list(range(1, 7))  # the second pass reports none
    expected = -np.arange(7)[:, None] * step  # aligning frame k with frame 0
    assert np.abs(reg.shifts - expected).max() < 0.3, reg.shifts
    assert reg.rejected.tolist() == [True] + [False] * 6
    assert reg.confidence[0] == 0.0 and reg.confidence[1:].min() > 0.5
    assert "frame 0 matched none of the frames after" in reg.messages[0], reg.messages
    # measured against frame 0 instead, every frame was rejected and held at no drift
    first = register_stack(np.stack(frames), texture=False, reference="first")
    assert first.rejected[1:].all() and np.abs(first.shifts).max() == 0.0


def test_skip_odd_leading_keeps_the_first_pass_when_its_first_pair_holds():
    from napari_calcite_afm.level._leading import skip_odd_leading
    from napari_calcite_afm.level._pairs import _Pair

    good = [_Pair(0, 1, np.zeros(2), 30.0), _Pair(1, 2, np.zeros(2), 30.0)]
    calls = []
    out = skip_odd_leading(np.zeros((3, 4, 4)), (good, None, 0), calls.append)
    assert out == (good, None, 0, []) and calls == []


def test_two_odd_leading_frames_are_skipped_together():
    rng = np.random.default_rng(22)
    base = ndimage.gaussian_filter(rng.normal(size=(160, 160)), 2.0)
    step = np.array([-1.0, 0.5])
    frames = [ndimage.gaussian_filter(rng.normal(size=(128, 128)), 2.0) for _ in range(2)]
    for k in range(2, 8):
        moved = ndimage.shift(base, k * step, order=1)[16:-16, 16:-16]
        frames.append(moved + rng.normal(0, 0.02, moved.shape))
    reg = register_stack(np.stack(frames), texture=False)
    assert np.abs(reg.shifts - (-np.arange(8)[:, None] * step)).max() < 0.3, reg.shifts
    assert reg.rejected.tolist() == [True, True] + [False] * 6
    assert "frames 0-1 matched none of the frames after" in reg.messages[0], reg.messages


def test_a_faint_peak_on_the_drift_trend_is_kept_and_one_off_it_is_not():
    """A noise peak would fall anywhere; a faint one where the trend predicts is the
    drift (rejecting it makes the next frames be measured across wider gaps)."""
    from napari_calcite_afm.level._pairs import _on_trend, _Pair

    positions = {0: np.zeros(2), 1: np.array([1.0, -0.5]), 2: np.array([2.0, -1.0])}
    assert _on_trend(_Pair(2, 3, np.array([1.5, -0.2]), 6.0), positions)
    assert not _on_trend(_Pair(2, 3, np.array([4.5, -0.5]), 6.0), positions)  # 3.5 px off
    assert not _on_trend(_Pair(2, 3, np.array([1.0, -0.5]), 4.0), positions)  # too faint
    # across a gap of 4 frames the allowance widens by its square root (4 px)
    assert _on_trend(_Pair(2, 6, np.array([7.0, -2.0]), 6.0), positions)
    # one step is no trend
    assert not _on_trend(_Pair(1, 2, np.array([1.0, -0.5]), 6.0), dict(list(positions.items())[:2]))


def _texture_grids(seed: int, peaks) -> list[np.ndarray]:
    """Smooth unit-variance noise grids (radius 12) with a Gaussian bump of height z at
    each ``(offset, z)`` of ``peaks`` (None: noise only)."""
    rng = np.random.default_rng(seed)
    idx = np.arange(25) - 12
    out = []
    for peak in peaks:
        g = ndimage.gaussian_filter(rng.normal(size=(25, 25)), 1.0)
        g /= g.std()
        if peak is not None:
            (dy, dx), z = peak
            g += z * np.exp(-0.5 * ((idx[:, None] - dy) ** 2 + (idx[None, :] - dx) ** 2))
        out.append(g)
    return out


def test_weak_texture_peaks_that_agree_over_pairs_win_over_the_prior():
    """Four pairs whose weak texture peaks (z 3.5-4.8, about the noise peaks of one grid)
    lie 9-11 px from the whole-frame shift and within 3 px of each other (a development
    256 px movie): pooled, they are the answer (with the old 4 px prior 2 of 20 noise
    draws found them); a lone such peak among pairs that show nothing is not."""
    from napari_calcite_afm.level._texture import _bias_posterior

    offsets = [(7, -6), (7, -8), (7, -5), (8, -8)]
    found = lone = 0
    for seed in range(20):
        grids = _texture_grids(seed, zip(offsets, (3.6, 4.5, 4.8, 3.5)))
        posts = _bias_posterior(grids)
        peaks = [np.array(np.unravel_index(int(np.argmax(p)), p.shape)) - 12 for p in posts]
        found += all(np.abs(k - o).max() <= 2 for k, o in zip(peaks, offsets))
        grids = _texture_grids(seed, [None, None, ((7, -6), 3.6), None, None])
        post = _bias_posterior(grids)[2]
        k = np.array(np.unravel_index(int(np.argmax(post)), post.shape)) - 12
        lone += bool(np.abs(k - (7, -6)).max() <= 2)
    assert found >= 12
    assert lone <= 4
