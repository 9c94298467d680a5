"""Tests of segmentation.data: labels, class weights and the patches of a batch."""

from __future__ import annotations

import numpy as np
import pytest

from napari_calcite_afm.errors import TrainError
from napari_calcite_afm.segmentation import class_weights, prepare_labels
from napari_calcite_afm.segmentation.data import _Frame, _sample_batch


def test_balanced_patches_centre_on_rare_classes():
    y = np.ones((50, 50), np.int64)  # terrace (class index 1)
    y[:5, :5] = 0  # a multilayer pit on 1 % of the pixels
    y[-1] = -1  # unlabelled
    by_class = [np.flatnonzero(y == k) for k in (0, 1)]
    fr = _Frame(np.zeros((50, 50, 1), np.float32), y, np.flatnonzero(y >= 0), by_class)
    # 1 px patches: each patch is its centre pixel
    plain = _sample_batch([fr], np.ones(1), np.random.default_rng(0), 2000, 1, False)[1]
    balanced = _sample_batch(
        [fr], np.ones(1), np.random.default_rng(0), 2000, 1, False, balance=True
    )[1]
    assert (plain >= 0).all() and (balanced >= 0).all()  # always on labelled pixels
    assert np.mean(plain == 0) < 0.03
    assert 0.4 < np.mean(balanced == 0) < 0.6
    # a frame with one class only still works
    all_terrace = [np.zeros(0, np.int64), np.arange(2500)]
    only = _Frame(fr.x, np.ones((50, 50), np.int64), np.arange(2500), all_terrace)
    assert (_sample_batch([only], np.ones(1), np.random.default_rng(1), 50, 1, False,
                          balance=True)[1] == 1).all()  # fmt: skip


def test_patches_keep_features_and_targets_aligned_under_augmentation():
    """Flips and rotations move the channels-last features with their targets."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, (40, 48)).astype(np.int64)
    ramp = np.arange(40 * 48, dtype=np.float32).reshape(40, 48)  # exact in float16
    x = np.stack([y.astype(np.float32), ramp, -ramp], axis=-1).astype(np.float16)
    fr = _Frame(x, y, np.flatnonzero(y >= 0))
    xs, ys = _sample_batch([fr], np.ones(1), np.random.default_rng(0), 64, 24, True)
    assert xs.shape == (64, 24, 24, 3) and xs.dtype == np.float16  # the features' dtype
    assert ys.shape == (64, 24, 24)
    np.testing.assert_array_equal(xs[..., 0], ys)
    np.testing.assert_array_equal(xs[..., 1], -xs[..., 2])
    # the augmentation turns the patches: the ramp does not always increase along rows
    rising = [(np.diff(p[..., 1], axis=1) > 0).all() for p in xs]
    assert 0 < sum(rising) < len(rising)


def test_labels_helpers():
    lab = np.array([0, 1, 2, 3], np.uint8)
    np.testing.assert_array_equal(prepare_labels(lab, 2), [0, 1, 2, 2])
    np.testing.assert_array_equal(prepare_labels(lab, 3), [0, 1, 2, 3])
    with pytest.raises(TrainError):
        prepare_labels(np.array([0, 4]), 2)
    with pytest.raises(TrainError, match="boolean"):  # a mask is not a label image
        prepare_labels(np.ones(3, bool), 2)
    w = class_weights([np.array([1, 2, 2, 2, 0, 0])], 2)
    assert w[0] > 1 > w[1]
    np.testing.assert_allclose(class_weights([np.array([1, 1])], 3), [1, 1, 1])
