"""Tests of segmentation.closed: pit labels must be closed depressions."""

from __future__ import annotations

import numpy as np
import pytest

from napari_calcite_afm.errors import CalciteAFMError
from napari_calcite_afm.segmentation import load_default_model, predict_stack
from napari_calcite_afm.segmentation.closed import remove_open_pits, ring_fractions

STEP = 0.31


def _staircase(rows=40, cols=60):
    """Terraces one step apart, descending to the right every 15 px."""
    return np.tile(-STEP * (np.arange(cols) // 15), (rows, 1)).astype(np.float64)


def test_a_closed_monolayer_pit_stays_and_the_foot_of_a_step_goes():
    z = _staircase()
    z[10:16, 18:24] -= STEP  # a monolayer pit on the second terrace
    labels = np.full(z.shape, 2, np.uint8)
    labels[10:16, 18:24] = 3
    labels[:, 30:34] = 3  # a strip of the third terrace at the foot of a step
    out = remove_open_pits(labels, z)
    assert (out[10:16, 18:24] == 3).all()
    assert (out[:, 30:34] == 2).all()
    assert labels[0, 31] == 3  # the input is not changed


def test_a_deep_pit_stays_and_a_pit_label_on_level_terrace_goes():
    z = _staircase()
    yy, xx = np.mgrid[:40, :60]
    r = np.hypot(yy - 20, xx - 22)
    z -= np.clip(6 - r, 0, None).round() * STEP  # a terraced pit 6 steps deep
    labels = np.full(z.shape, 2, np.uint8)
    labels[r < 6] = 1
    labels[5:12, 40:44] = 1  # a patch of one terrace called pit
    out = remove_open_pits(labels, z)
    assert (out[r < 6] == 1).all()
    assert (out[5:12, 40:44] == 2).all()


def test_a_monolayer_pit_beside_a_multilayer_pit_is_judged_on_the_terrace_around_it():
    z = np.zeros((40, 40))
    z[10:30, 5:18] = -3.0  # a deep multilayer pit
    z[12:28, 18:20] = -STEP  # a narrow monolayer pit along its rim
    labels = np.full(z.shape, 2, np.uint8)
    labels[10:30, 5:18] = 1
    labels[12:28, 18:20] = 3
    out = remove_open_pits(labels, z)
    assert (out[12:28, 18:20] == 3).all() and (out[10:30, 5:18] == 1).all()
    # counted in its ring, the deep pit would have opened it
    _, frac = ring_fractions(labels == 3, z, 0.5 * STEP)
    _, frac_without = ring_fractions(labels == 3, z, 0.5 * STEP, exclude=labels == 1)
    assert frac[0] < 0.6 <= frac_without[0]


def test_unrecorded_pixels_are_not_part_of_a_ring():
    z = np.zeros((30, 30))
    z[10:16, 10:16] = -STEP
    labels = np.full(z.shape, 2, np.uint8)
    labels[10:16, 10:16] = 3
    z[:, 16:] = np.nan  # the right side not recorded
    labels[:, 16:] = 0
    assert (remove_open_pits(labels, z)[10:16, 10:16] == 3).all()
    # a region with no recorded ring at all is kept: nothing says it is open
    lone = np.full((8, 8), np.nan)
    lone[3:5, 3:5] = -1.0
    lab = np.zeros((8, 8), np.uint8)
    lab[3:5, 3:5] = 1
    assert (remove_open_pits(lab, lone)[3:5, 3:5] == 1).all()


def test_shapes_must_agree():
    with pytest.raises(CalciteAFMError, match="differ in shape"):
        remove_open_pits(np.ones((4, 4), np.uint8), np.zeros((4, 5)))


def test_predict_stack_applies_it_to_the_labels_and_not_the_probabilities():
    model = load_default_model(3)
    rng = np.random.default_rng(5)
    z = np.stack([_staircase(96, 96) + rng.normal(0, 0.05, (96, 96)) for _ in range(2)])
    z[0, 30:50, 30:50] -= 2.0
    raw, p_raw = predict_stack(model, z, levelled=True, closed=False, device="cpu")
    lab, p = predict_stack(model, z, levelled=True, device="cpu")
    np.testing.assert_array_equal(p, p_raw)
    for k in range(2):
        np.testing.assert_array_equal(lab[k], remove_open_pits(raw[k], z[k]))
