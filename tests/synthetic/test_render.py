"""Tests of napari_calcite_afm.synthetic.render: labels of rendered frames."""

from __future__ import annotations

import numpy as np

from napari_calcite_afm.labels import LABEL_MONOLAYER, LABEL_TERRACE
from napari_calcite_afm.synthetic.render import _monolayer_labels


def test_label_values_and_presence(series):
    assert set(np.unique(series.labels)) <= {1, 2, 3}
    assert set(np.unique(series.labels_raw)) <= {1, 2, 3}
    present = set(np.unique(series.labels[-1]))
    assert present == {1, 2, 3}


def _pit(level: np.ndarray, rows: slice, cols: slice, depth: int) -> np.ndarray:
    level[rows, cols] = depth
    cand = np.zeros(level.shape, bool)
    cand[rows, cols] = True
    return cand


def test_closed_pit_is_monolayer_and_opened_pit_is_terrace():
    level = np.zeros((9, 9), np.int64)
    cand = _pit(level, slice(3, 6), slice(3, 6), -1)
    lab = _monolayer_labels(cand, level)
    assert np.all(lab[cand] == LABEL_MONOLAYER)
    # the same pit reaching the lower terrace (level -1, not a pit) has opened
    level[:, 6:] = -1
    cand = _pit(level, slice(3, 6), slice(3, 6), -1)
    assert np.all(_monolayer_labels(cand, level)[cand] == LABEL_TERRACE)


def test_nested_pit_stays_monolayer():
    level = np.zeros((11, 11), np.int64)
    outer = _pit(level, slice(2, 9), slice(2, 9), -1)
    inner = _pit(level, slice(4, 7), slice(4, 7), -2)
    lab = _monolayer_labels(outer | inner, level)
    assert np.all(lab[outer | inner] == LABEL_MONOLAYER)
