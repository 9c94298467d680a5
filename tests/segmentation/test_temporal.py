"""Tests of the temporal prior on a registered movie's class probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from napari_calcite_afm.errors import CalciteAFMError
from napari_calcite_afm.segmentation import temporal_prior


def _movie(pit_prob: np.ndarray) -> np.ndarray:
    """Two-class probabilities ``(frames, 2, rows, cols)`` from P(pit) per frame."""
    p = np.empty((pit_prob.shape[0], 2, *pit_prob.shape[1:]), np.float32)
    p[:, 0] = pit_prob
    p[:, 1] = 1 - pit_prob
    return p


def _flickering_pit(n: int = 5, size: int = 16) -> np.ndarray:
    """A square pit (P = 0.9) on a terrace (P = 0.1) that fades in frame 2 (P = 0.3)."""
    rng = np.random.default_rng(3)
    pit = np.full((n, size, size), 0.1, np.float32)
    pit[:, 4:12, 4:12] = 0.9
    if n > 2:
        pit[2, 4:12, 4:12] = 0.3
    pit += rng.uniform(-0.05, 0.05, pit.shape).astype(np.float32)
    return _movie(pit)


def test_flickering_pit_is_restored():
    p = _flickering_pit()
    before = np.argmax(p, axis=1) + 1
    assert (before[2, 4:12, 4:12] == 2).all()  # the flicker is there per frame
    labels, smooth = temporal_prior(p)
    assert labels.dtype == np.uint8 and labels.shape == (5, 16, 16)
    assert (labels[:, 4:12, 4:12] == 1).all()
    outside = np.ones((16, 16), bool)
    outside[4:12, 4:12] = False
    assert (labels[:, outside] == 2).all()
    np.testing.assert_allclose(smooth.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("method", ["mean", "geometric"])
def test_methods_agree_on_a_flicker(method):
    labels, _ = temporal_prior(_flickering_pit(), method=method)
    assert (labels[2, 4:12, 4:12] == 1).all()


def test_nan_frames_do_not_vote_and_stay_unrecorded():
    p = _flickering_pit()
    p[1, :, 4:8, :] = np.nan  # frame 1 lost rows 4-7
    p[3, :, 4:8, :] = np.nan  # and so did frame 3
    labels, smooth = temporal_prior(p)
    assert (labels[1, 4:8] == 0).all() and (labels[3, 4:8] == 0).all()
    assert np.isnan(smooth[1, :, 4:8]).all()
    # frame 2 at rows 4-7 only has itself: its (faded) evidence decides, no NaN
    assert (labels[2, 4:8, 4:12] == 2).all()
    np.testing.assert_allclose(smooth[2, 0, 4:8, 4:12], p[2, 0, 4:8, 4:12], rtol=1e-6)
    # elsewhere the neighbours restore it
    assert (labels[2, 8:12, 4:12] == 1).all()


def test_single_frame_unchanged():
    p = _flickering_pit(n=1)
    p[0, :, 0, 0] = np.nan
    labels, smooth = temporal_prior(p, window=5, monotone=2)
    expected = (np.argmax(np.nan_to_num(p, nan=0.0), axis=1) + 1).astype(np.uint8)
    expected[0, 0, 0] = 0
    np.testing.assert_array_equal(labels, expected)
    np.testing.assert_array_equal(np.isnan(smooth), np.isnan(p))
    np.testing.assert_allclose(smooth[~np.isnan(p)], p[~np.isnan(p)])


def test_window_one_is_the_per_frame_argmax():
    p = _flickering_pit()
    labels, _ = temporal_prior(p, window=1)
    np.testing.assert_array_equal(labels, np.argmax(p, axis=1) + 1)


def test_monotone_holds_a_pit_that_vanishes():
    pit = np.full((6, 4, 4), 0.1, np.float32)
    pit[:3, 1:3, 1:3] = 0.9  # a pit in frames 0-2, gone from frame 3 on
    p = _movie(pit)
    off, _ = temporal_prior(p, window=1)
    assert (off[3:, 1:3, 1:3] == 2).all()
    held, _ = temporal_prior(p, window=1, monotone=2)
    assert (held[:, 1:3, 1:3] == 1).all()
    assert (held[:, 0] == 2).all()
    # one pit frame is not enough when two are asked for
    once = _movie(np.where(np.arange(6)[:, None, None] == 0, pit, 0.1).astype(np.float32))
    assert (temporal_prior(once, window=1, monotone=2)[0][1:] == 2).all()


def test_three_classes():
    p = np.zeros((3, 3, 2, 2), np.float32)
    p[:, 2] = 0.6  # monolayer pit everywhere...
    p[:, 1] = 0.4
    p[1, 2], p[1, 1] = 0.45, 0.55  # ...but frame 1 says terrace
    labels, _ = temporal_prior(p)
    assert (labels == 3).all()


@pytest.mark.parametrize(
    "kwargs",
    [dict(window=2), dict(window=0), dict(method="median"), dict(monotone=-1)],
)
def test_bad_arguments(kwargs):
    with pytest.raises(CalciteAFMError):
        temporal_prior(_flickering_pit(n=2), **kwargs)


def test_bad_shape():
    with pytest.raises(CalciteAFMError, match="frames, classes"):
        temporal_prior(np.zeros((3, 4, 4), np.float32))


def test_with_heights_the_labels_pass_the_closed_depression_check():
    from napari_calcite_afm.segmentation.closed import remove_open_pits

    z = np.zeros((3, 20, 24))
    z[:, 5:9, 1:5] = -1.0  # a closed pit
    z[:, :, 12:16], z[:, :, 16:] = -0.31, -0.62  # a staircase descending to the right
    p = np.zeros((3, 2, 20, 24), np.float32)
    p[:, 0, 5:9, 1:5] = p[:, 0, :, 12:16] = 0.9  # the network calls both pit
    p[:, 1] = 1 - p[:, 0]
    plain, _ = temporal_prior(p)
    closed, _ = temporal_prior(p, heights=z)
    assert (plain[:, :, 12:16] == 1).all()
    assert (closed[:, 5:9, 1:5] == 1).all() and (closed[:, :, 12:16] == 2).all()
    np.testing.assert_array_equal(closed, [remove_open_pits(lab, f) for lab, f in zip(plain, z)])
    with pytest.raises(CalciteAFMError, match="do not match"):
        temporal_prior(p, heights=z[:2])
