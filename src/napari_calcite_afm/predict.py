"""Segmentation of frames and its metrics (moved to :mod:`napari_calcite_afm.segmentation`).

This module keeps the old import path working: prediction now lives in
:mod:`~napari_calcite_afm.segmentation.inference`, the metrics in
:mod:`~napari_calcite_afm.segmentation.metrics`.

Examples
--------
>>> import numpy as np
>>> from napari_calcite_afm.predict import segmentation_metrics
>>> segmentation_metrics(np.array([1, 2, 2]), np.array([1, 2, 1]), 2)["n_pixels"]
3
"""

from ._util import ProgressFn, StopFlag  # noqa: F401 (old imports)
from .errors import CalciteAFMError  # noqa: F401 (old imports)
from .segmentation.inference import (
    AUTO_TILE,  # noqa: F401 (old imports)
    AUTO_TILE_PIXELS,
    predict_frame,
    predict_stack,
    uncertainty,
)
from .segmentation.metrics import (
    confusion_matrix,
    iou_per_class,
    mean_class_accuracy,
    pixel_accuracy,
    segmentation_metrics,
)

__all__ = [
    "AUTO_TILE_PIXELS",
    "confusion_matrix",
    "iou_per_class",
    "mean_class_accuracy",
    "pixel_accuracy",
    "predict_frame",
    "predict_stack",
    "segmentation_metrics",
    "uncertainty",
]
