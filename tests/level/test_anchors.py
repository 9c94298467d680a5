"""Tests of napari_calcite_afm.level._anchors: pit bottoms as fixed points of the drift."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import ndimage

from napari_calcite_afm.level import register_stack
from napari_calcite_afm.level._anchors import _match, _pit_bottoms, _tracks

STEP = 0.31  # nm


def _pit(yy, xx, cy, cx, layers=8.0, spacing=3.0, fast=0.8):
    """A terraced rhombic (diamond) pit, ``int(layers)`` steps deep at ``(cy, cx)``, nm;
    its steps are ``spacing`` px apart toward -x and ``0.8 / fast`` times that toward +x.
    A fractional ``layers`` places the step loops (they move outward as it grows)."""
    dx = xx - cx
    gauge = np.abs(yy - cy) + np.where(dx > 0, fast, 0.8) * np.abs(dx)
    return -STEP * np.floor(np.clip(layers * spacing - gauge, 0.0, None) / spacing)


def _movie(drift, seed=3, size=160, pad=24, texture_nm=0.04, noise_nm=0.02, pits=((70.3, 81.6),)):
    """Steps retreating 3 px per frame, deep pits growing one step per frame about fixed
    bottoms (faster toward +x: their outlines move) and a faint fixed texture, seen
    through a window displaced by ``drift[k]`` (so ``drift[k]`` aligns frame k with 0)."""
    rng = np.random.default_rng(seed)
    n = size + 2 * pad
    texture = ndimage.gaussian_filter(rng.normal(size=(n, n)), 0.8) * texture_nm / 0.2
    frames = []
    for k, (dy, dx) in enumerate(drift):
        yy, xx = np.mgrid[0:size, 0:size].astype(float)
        yy, xx = yy + dy + pad, xx + dx + pad
        z = STEP * np.floor((xx + 0.3 * yy + 3.0 * k) / 10.0)
        for cy, cx in pits:
            z = z + _pit(yy, xx, cy + pad, cx + pad, layers=6 + 0.7 * k, fast=0.4)
        z = z + ndimage.map_coordinates(texture, [yy, xx], order=1)
        frames.append(z + rng.normal(0, noise_nm, (size, size)))
    return np.stack(frames)


def test_pit_bottoms_finds_a_deep_pit_at_subpixel_precision_and_ignores_shallow_ones():
    yy, xx = np.mgrid[0:128, 0:128].astype(float)
    z = _pit(yy, xx, 60.4, 70.7)  # 8 steps: 2.5 nm
    z += _pit(yy, xx, 30.0, 30.0, layers=1)  # a monolayer pit, one step deep
    z += STEP * (xx > 100)  # a step edge
    z += np.random.default_rng(0).normal(0, 0.03, z.shape)
    found = _pit_bottoms(z)
    assert found.shape == (1, 3)
    assert np.abs(found[0, :2] - (60.4, 70.7)).max() < 0.5
    assert 1.5 <= found[0, 2] <= 8 * STEP + 0.3  # depth below the surroundings, nm


def test_pit_bottoms_of_a_frame_without_data_or_pits_is_empty():
    assert _pit_bottoms(np.full((64, 64), np.nan)).shape == (0, 3)
    flat = np.random.default_rng(1).normal(0, 0.05, (64, 64))
    assert _pit_bottoms(flat).shape == (0, 3)


def test_match_takes_the_shift_most_bottoms_agree_on():
    a = np.array([[20.0, 20.0, 3.0], [50.0, 80.0, 4.0], [90.0, 40.0, 2.5], [10.0, 100.0, 3.0]])
    b = a.copy()
    b[:3, :2] -= (2.0, -3.0)  # three bottoms moved by the drift; the fourth is spurious
    b[3, :2] = (60.0, 60.0)
    shift, pairs = _match(a, b, guess=np.zeros(2), search=16.0)
    assert np.allclose(shift, (2.0, -3.0))
    assert sorted(pairs) == [(0, 0), (1, 1), (2, 2)]
    # depths that do not fit (a 3 nm bottom cannot become 9 nm deep) are not matched
    deeper = b.copy()
    deeper[:, 2] *= 3.0
    assert _match(a, deeper, guess=np.zeros(2), search=16.0) is None
    assert _match(a, np.zeros((0, 3)), guess=np.zeros(2), search=16.0) is None


def test_tracks_follow_bottoms_and_a_missed_frame_ends_them():
    chain = [0, 1, 2, 4, 5]
    links = {1: [(0, 0)], 2: [(0, 1)], 5: [(0, 0)]}  # nothing linked into frame 4
    tracks = _tracks(chain, links)
    assert {0: 0, 1: 0, 2: 1} in tracks
    assert {4: 0, 5: 0} in tracks
    assert len(tracks) == 2


@pytest.fixture(scope="module")
def misleading_movie():
    """A generator movie whose retreating steps and growing pits pull the whole-frame
    match and the texture 3 px away from the drift, levelled; and its true shifts."""
    from napari_calcite_afm.level import level_stack
    from napari_calcite_afm.synthetic import make_series

    series = make_series(6, 256, seed=2)
    return level_stack(series.raw, workers=1), -series.drift_px


def test_register_holds_on_pit_bottoms_where_the_steps_mislead(misleading_movie, monkeypatch):
    from napari_calcite_afm.level import drift

    movie, truth = misleading_movie
    reg = register_stack(movie)
    assert np.abs(reg.shifts - truth).max() < 0.5
    monkeypatch.setattr(drift, "_anchor_pass", lambda *args: [])
    without = register_stack(movie)
    assert np.abs(without.shifts - truth).max() > 1.5  # the bottoms are what holds it


def test_a_spurious_bottom_that_the_texture_refutes_is_not_used():
    """A pit that moves with the steps (not a fixed point) must not drag the shifts."""
    drift = np.array([[0, 0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    movie = _movie(drift, texture_nm=0.2, pits=())
    yy, xx = np.mgrid[0:160, 0:160].astype(float)
    for k in range(4):
        movie[k] += _pit(yy, xx, 80.0 + 6 * k, 80.0)  # drifts 6 px per frame down the frame
    reg = register_stack(movie)
    assert np.abs(reg.shifts - drift).max() < 0.5


def test_bottoms_do_not_move_a_shift_beyond_max_shift():
    drift = np.array([[0.0, 0.0], [3.0, 0.0], [3.0, 0.0]])
    movie = _movie(drift, texture_nm=0.2, pits=((70.3, 81.6), (40.0, 40.0)))
    assert np.abs(register_stack(movie).shifts - drift).max() < 0.5
    reg = register_stack(movie, max_shift=2.0)
    assert np.abs(np.diff(reg.shifts, axis=0)).max() <= 2.0 + 1e-9


def _pair(ref, mov, shift, texture_z):
    from napari_calcite_afm.level.drift import _Pair

    shift = np.asarray(shift, float)
    return _Pair(ref, mov, shift.copy(), 30.0, shift=shift.copy(), texture_z=texture_z)


def test_a_refinement_that_walks_off_to_the_pairs_own_peak_does_not_confirm_the_bottoms():
    from napari_calcite_afm.level._anchors import _texture_agrees

    own, bottoms = np.array([-1.5, 0.4]), np.array([1.3, -1.3])
    p = _pair(0, 1, own, 7.5)

    def one_peak(a, b, start, shape):  # the texture peaks at the pair's own shift only
        return own.copy(), 7.5

    assert not _texture_agrees(p, bottoms, ["a", "b"], one_peak, (64, 64))
    np.testing.assert_array_equal(p.shift, own)

    def peak_there(a, b, start, shape):  # the texture peaks where the bottoms say, too
        return np.asarray(start) + 0.2, 7.4

    assert _texture_agrees(p, bottoms, ["a", "b"], peak_there, (64, 64))
    np.testing.assert_allclose(p.shift, bottoms + 0.2)


def test_a_silent_texture_needs_bottoms_that_agree_or_were_proven():
    from napari_calcite_afm.level._anchors import _proven, _silent

    p = _pair(3, 4, [0.0, 0.0], 2.5)
    assert _silent(p) and not _silent(_pair(3, 4, [0.0, 0.0], 7.0))
    assert _silent(_pair(3, 4, [0.0, 0.0], float("nan")))  # no texture at all
    assert not _proven(p, [(0, 0)], set())  # one bottom, never proven: maybe spurious
    assert _proven(p, [(0, 0)], {(3, 0)})  # its bottom in frame 3 was used before
    assert _proven(p, [(0, 5)], {(4, 5)})  # its bottom in frame 4 is used after
    assert not _proven(p, [(0, 5)], {(4, 0), (2, 5)})  # other bottoms, other frames
    assert _proven(p, [(0, 0), (1, 2)], set())  # two bottoms agree


def test_a_proven_bottom_carries_a_pair_whose_texture_is_silent():
    """Pair 0-1 agrees with its bottom (proving it); pair 1-2 was misled by 4 px and its
    texture shows nothing: it takes the bottom's shift, unless the texture is strong.
    Then the other way round."""
    from napari_calcite_afm.level._anchors import _anchor_pass

    yy, xx = np.mgrid[0:160, 0:160].astype(float)
    where = [(70.3, 81.6), (71.3, 80.1), (72.0, 82.4)]  # the bottom seen through the drift
    frames = np.stack([_pit(yy, xx, cy, cx, layers=9.0) for cy, cx in where])
    truth = [np.subtract(where[0], where[1]), np.subtract(where[1], where[2])]

    misled = truth[1] + [4.0, 0.0]
    for z, expected in ((2.0, truth[1]), (7.0, misled)):

        def refine(a, b, start, shape, z=z):  # the texture peaks (z) at the misled shift
            near = np.abs(np.asarray(start) - misled).max() < 0.5
            return np.asarray(start, float), z if near else 1.0

        pairs = [_pair(0, 1, truth[0] + 0.3, 6.0), _pair(1, 2, misled, z)]
        _anchor_pass(pairs, frames, ["t"] * 3, refine, (160, 160))
        np.testing.assert_allclose(pairs[1].shift, expected, atol=0.3)
    # proof also reaches back: the first pair is the misled one, the second proves it
    misled = truth[0] + [0.0, -4.0]
    pairs = [_pair(0, 1, misled, 2.0), _pair(1, 2, truth[1] + 0.3, 6.0)]
    _anchor_pass(pairs, frames, ["t"] * 3, refine, (160, 160))
    np.testing.assert_allclose(pairs[0].shift, truth[0], atol=0.3)
    assert pairs[0].anchors == pairs[1].anchors == 1


def test_a_pair_follows_the_bottoms_that_agree_with_it_when_the_majority_is_refuted():
    """Two pits that move together outvote a fixed one; the texture refutes their shift,
    and the pair then follows the fixed bottom that agrees with its own."""
    from napari_calcite_afm.level._anchors import _anchor_pass

    yy, xx = np.mgrid[0:200, 0:200].astype(float)
    fixed, movers = (60.3, 61.6), ((140.0, 60.0), (100.0, 140.0))
    frames = np.stack(
        [
            _pit(yy, xx, *fixed, layers=9.0)
            + sum(_pit(yy, xx, y, x + 5.0 * k, layers=9.0) for y, x in movers)
            for k in range(2)
        ]
    )
    own = np.zeros(2)

    def refine(a, b, start, shape):  # the texture peaks at the pair's own shift only
        near = np.abs(np.asarray(start) - own).max() < 0.5
        return np.asarray(start, float), 7.0 if near else 1.0

    pairs = [_pair(0, 1, own, 7.0)]
    meas = _anchor_pass(pairs, frames, ["t"] * 2, refine, (200, 200))
    np.testing.assert_array_equal(pairs[0].shift, own)  # the movers' shift is refused
    assert pairs[0].anchors == 1 and len(meas) == 1  # the fixed bottom ties the frames
    np.testing.assert_allclose(meas[0].shift, own, atol=0.3)


def test_a_flat_minimum_gives_one_bottom_not_one_per_pixel():
    yy, xx = np.mgrid[0:120, 0:120].astype(float)
    frame = _pit(yy, xx, 60.3, 61.6, layers=9.0)  # its lowest terrace spans a few pixels
    assert len(_pit_bottoms(frame)) == 1


def _silent_pairs(where, offsets):
    """Frames of one deep pit seen at ``where`` and the successive pairs between them,
    misled by ``offsets`` (pixels) off the truth, with a texture that shows nothing."""
    yy, xx = np.mgrid[0:160, 0:160].astype(float)
    frames = np.stack([_pit(yy, xx, cy, cx, layers=9.0) for cy, cx in where])
    truth = [np.subtract(a, b) for a, b in itertools.pairwise(where)]
    pairs = [_pair(k, k + 1, t + off, 2.0) for k, (t, off) in enumerate(zip(truth, offsets))]
    return frames, truth, pairs


def _silent_refine(a, b, start, shape):
    return np.asarray(start, float), 1.0


def test_a_lone_bottom_that_moves_with_the_drift_pair_after_pair_is_trusted():
    """One pit bottom, a silent texture, and pairs that followed steps retreating 6 px
    per frame (a steady offset): the bottom is followed through 4 pairs at a steady
    offset from the pairs' shifts, so it is a fixed point and every pair takes it."""
    from napari_calcite_afm.level._anchors import _anchor_pass

    where = [(70.3, 81.6), (71.3, 80.1), (72.0, 82.4), (73.1, 81.0), (74.5, 82.2)]
    offsets = [(6.0, 0.5), (6.4, 0.2), (5.8, 0.7), (6.6, 0.1)]
    frames, truth, pairs = _silent_pairs(where, offsets)
    _anchor_pass(pairs, frames, ["t"] * 5, _silent_refine, (160, 160))
    for p, t in zip(pairs, truth):
        np.testing.assert_allclose(p.shift, t, atol=0.3)
        assert p.anchors == 1
    # two pairs are too short a run to tell a fixed point from a spurious minimum
    frames, truth, pairs = _silent_pairs(where[:3], offsets[:2])
    _anchor_pass(pairs, frames, ["t"] * 3, _silent_refine, (160, 160))
    assert all(p.anchors == 0 for p in pairs)


def test_a_lone_bottom_that_wanders_against_the_pairs_is_not_trusted():
    """The same pit bottom, but the pairs' offsets from it jump by 5 px from one pair to
    the next (a minimum wandering in a wide pit floor looks so): nothing is taken."""
    from napari_calcite_afm.level._anchors import _anchor_pass

    where = [(70.3, 81.6), (71.3, 80.1), (72.0, 82.4), (73.1, 81.0), (74.5, 82.2)]
    offsets = [(6.0, 0.5), (1.0, 4.0), (6.0, -1.0), (0.5, 3.5)]
    frames, truth, pairs = _silent_pairs(where, offsets)
    _anchor_pass(pairs, frames, ["t"] * 5, _silent_refine, (160, 160))
    assert all(p.anchors == 0 for p in pairs)
    for p, t, off in zip(pairs, truth, offsets):
        np.testing.assert_allclose(p.shift, t + off)
