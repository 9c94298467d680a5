"""Tests of segmentation.metrics: confusion matrix, accuracies, IoU."""

from __future__ import annotations

import numpy as np
import pytest

from napari_calcite_afm.segmentation import (
    confusion_matrix,
    iou_per_class,
    mean_class_accuracy,
    pixel_accuracy,
    segmentation_metrics,
)


def test_metrics():
    truth = np.array([[1, 1, 2, 2], [2, 2, 0, 1]])
    pred = np.array([[1, 2, 2, 2], [2, 1, 1, 0]])
    cm = confusion_matrix(truth, pred, 2)
    # labelled-and-predicted pixels: (1,1) (1,2) (2,2) (2,2) (2,2) (2,1)
    np.testing.assert_array_equal(cm, [[1, 1], [1, 3]])
    assert pixel_accuracy(cm) == pytest.approx(4 / 6)
    assert mean_class_accuracy(cm) == pytest.approx((1 / 2 + 3 / 4) / 2)
    np.testing.assert_allclose(iou_per_class(cm), [1 / 3, 3 / 5])
    m = segmentation_metrics(truth, pred, 2)
    assert m["n_pixels"] == 6 and m["confusion"] == [[1, 1], [1, 3]]
    assert np.isnan(pixel_accuracy(np.zeros((2, 2), int)))
