"""Tests of segmentation.inference: whole and tiled frames, stacks, NaN, uncertainty."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from scipy import ndimage

from napari_calcite_afm.errors import CalciteAFMError
from napari_calcite_afm.segmentation import predict_frame, predict_stack, uncertainty
from napari_calcite_afm.segmentation.closed import remove_open_pits


@pytest.mark.parametrize("n_classes", [2, 3])
def test_output_shapes_odd_size(seg, n_classes):
    model = seg.random_model(n_classes)
    frame = np.random.default_rng(0).normal(0, 1, (37, 53)).astype(np.float32)
    labels, prob = predict_frame(model, frame, closed=False)
    assert labels.shape == (37, 53) and labels.dtype == np.uint8
    assert prob.shape == (n_classes, 37, 53) and prob.dtype == np.float32
    assert labels.min() >= 1 and labels.max() <= n_classes
    np.testing.assert_allclose(prob.sum(axis=0), 1.0, atol=1e-5)
    np.testing.assert_array_equal(labels, prob.argmax(axis=0) + 1)
    # by default the labels also pass the closed-depression check (on levelled heights)
    closed, _ = predict_frame(model, frame)
    np.testing.assert_array_equal(closed, remove_open_pits(labels, model.level(frame)))
    x = torch.zeros(2, 1, 37, 53)
    assert model.net(x).shape == (2, n_classes, 37, 53)


def test_nan_pixels_label_zero_and_nan_probability(seg):
    model = seg.random_model()
    frame = np.random.default_rng(1).normal(0, 1, (30, 40)).astype(np.float32)
    frame[5:8, :] = np.nan
    frame[:, -3:] = np.nan
    labels, prob = predict_frame(model, frame)
    nan = np.isnan(frame)
    assert (labels[nan] == 0).all() and (labels[~nan] > 0).all()
    assert np.isnan(prob[:, nan]).all() and np.isfinite(prob[:, ~nan]).all()
    unc = uncertainty(prob)
    assert np.isnan(unc[nan]).all()
    # all NaN: all label 0
    labels, prob = predict_frame(model, np.full((9, 9), np.nan))
    assert (labels == 0).all() and np.isnan(prob).all()


@pytest.mark.parametrize("dilations", [(1, 2, 4), (1, 2, 4, 8)])
def test_tiled_equals_whole_frame(seg, dilations):
    model = seg.random_model(dilations=dilations, seed=2)
    rng = np.random.default_rng(2)
    frame = rng.normal(0, 1, (90, 131)).astype(np.float32)
    frame[40:44, 10:30] = np.nan
    whole_l, whole_p = predict_frame(model, frame, levelled=True)
    tiled_l, tiled_p = predict_frame(model, frame, tile=48, overlap=model.halo, levelled=True)
    np.testing.assert_allclose(tiled_p, whole_p, atol=1e-5, equal_nan=True)
    agree = (tiled_l == whole_l).mean()
    assert agree > 0.999
    # a small overlap is not exact, but still the right shape
    l2, p2 = predict_frame(model, frame, tile=40, overlap=2, levelled=True)
    assert l2.shape == frame.shape and p2.shape == whole_p.shape
    with pytest.raises(CalciteAFMError):
        predict_frame(model, frame, tile=10, overlap=5)


def test_unet_tiles_close_to_whole_frame(seg):
    """The pooling grid moves with a tile, so tiles match closely but not exactly."""
    model = seg.random_model(width=4, dilations=(1, 2), unet=True, seed=5)
    rng = np.random.default_rng(3)
    frame = ndimage.gaussian_filter(rng.normal(0, 3, (200, 333)), 4).astype(np.float32)
    whole_l, whole_p = predict_frame(model, frame, levelled=True)
    tiled_l, tiled_p = predict_frame(model, frame, tile=160, overlap=model.halo, levelled=True)
    assert (tiled_l == whole_l).mean() > 0.97
    assert np.abs(tiled_p - whole_p).mean() < 0.02


def test_predict_stack_progress_stop_and_batches(seg):
    model = seg.random_model()
    stack = np.random.default_rng(3).normal(0, 1, (5, 24, 28)).astype(np.float32)
    seen = []
    labels, prob = predict_stack(model, stack, batch_size=2, progress=seen.append)
    assert labels.shape == (5, 24, 28) and prob.shape == (5, 2, 24, 28)
    assert [d["frame"] for d in seen] == [2, 4, 5]
    for i in range(5):  # batching does not change the result
        li, pi = predict_frame(model, stack[i])
        np.testing.assert_array_equal(li, labels[i])
        np.testing.assert_allclose(pi, prob[i], atol=1e-5)
    ev = threading.Event()
    ev.set()
    labels, prob = predict_stack(model, stack, stop=ev, return_probabilities=False)
    assert (labels == 0).all() and prob is None
    calls = iter(range(100))
    labels, _ = predict_stack(model, stack, batch_size=1, stop=lambda: next(calls) >= 2)
    assert (labels[:2] > 0).all() and (labels[2:] == 0).all()
    with pytest.raises(CalciteAFMError):
        predict_stack(model, np.zeros((2, 3, 4, 5)))


def test_uncertainty():
    p = np.zeros((2, 1, 3), np.float32)
    p[:, 0, 0] = [1.0, 0.0]
    p[:, 0, 1] = [0.5, 0.5]
    p[:, 0, 2] = [0.9, 0.1]
    ent = uncertainty(p, "entropy")
    mar = uncertainty(p, "margin")
    assert ent.shape == (1, 3) and ent.dtype == np.float32
    np.testing.assert_allclose(ent[0, :2], [0.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(mar[0], [0.0, 1.0, 0.2], atol=1e-6)
    assert 0 < ent[0, 2] < 1
    assert uncertainty(np.stack([p, p]), "margin").shape == (2, 1, 3)
    with pytest.raises(CalciteAFMError):
        uncertainty(p, "bogus")


def test_predict_stack_gives_each_frame_its_mean_uncertainty(seg):
    from napari_calcite_afm.segmentation import frame_uncertainty

    model = seg.random_model()
    images, _ = seg.toy_frames(3, 48, seed=11)
    stack = np.stack(images)
    stack[1, :5] = np.nan
    unsure = np.full(3, -1.0)
    _, prob = predict_stack(model, stack, device="cpu", uncertainty_out=unsure)
    np.testing.assert_allclose(unsure, frame_uncertainty(prob), rtol=1e-6)
    assert np.all((unsure >= 0) & (unsure <= 1))
    # without the probabilities too; frames stopped before keep their value
    again = np.full(3, -1.0)
    predict_stack(model, stack, device="cpu", return_probabilities=False, uncertainty_out=again)
    np.testing.assert_allclose(again, unsure, rtol=1e-6)
    with pytest.raises(CalciteAFMError, match="one value per frame"):
        predict_stack(model, stack, device="cpu", uncertainty_out=np.zeros(2))


def test_labels_divide_out_the_class_weights_of_training(seg):
    from napari_calcite_afm.segmentation.inference import class_weight_prior

    model = seg.random_model(3)
    frame = np.random.default_rng(1).normal(0, 1, (40, 48)).astype(np.float32)
    assert class_weight_prior(model) is None  # no record: the plain argmax
    plain, prob = predict_frame(model, frame, closed=False)
    np.testing.assert_array_equal(plain, prob.argmax(axis=0) + 1)
    model.info["class_weights"] = [1.0, 0.1, 5.0]  # trained to favour the rare class 3
    tilted, prob2 = predict_frame(model, frame, closed=False)
    np.testing.assert_array_equal(prob2, prob)  # the probabilities stay the network's
    w = np.array([1.0, 0.1, 5.0])[:, None, None]
    np.testing.assert_array_equal(tilted, (prob / np.sqrt(w)).argmax(axis=0) + 1)
    assert (tilted == 3).sum() <= (plain == 3).sum() and (tilted == 2).sum() >= (plain == 2).sum()
    model.info["class_weights"] = [1.0, 1.0, 1.0]  # equal weights change nothing
    assert class_weight_prior(model) is None
