"""Training of the segmentation network (moved to :mod:`napari_calcite_afm.segmentation`).

This module keeps the old import path working: the settings now live in
:mod:`~napari_calcite_afm.segmentation.config`, the data preparation in
:mod:`~napari_calcite_afm.segmentation.data` and :func:`train_model` in
:mod:`~napari_calcite_afm.segmentation.training`.

Examples
--------
>>> from napari_calcite_afm.train import TrainConfig
>>> TrainConfig().architecture, TrainConfig.study_reference().architecture
('unet', 'dilated')
"""

from ._util import ProgressFn, StopFlag  # noqa: F401 (old imports)
from .errors import TrainError
from .segmentation.config import (
    GPU_BUDGET,
    PRECISIONS,
    RECOMMENDED_DILATIONS,
    TrainConfig,
    native_bfloat16,
    step_dtype,
)
from .segmentation.data import (  # the private two: imported by the tests
    _Frame,  # noqa: F401
    _sample_batch,  # noqa: F401
    class_weights,
    prepare_labels,
)
from .segmentation.training import TrainResult, train_model

__all__ = [
    "GPU_BUDGET",
    "PRECISIONS",
    "RECOMMENDED_DILATIONS",
    "TrainConfig",
    "TrainError",
    "TrainResult",
    "class_weights",
    "native_bfloat16",
    "prepare_labels",
    "step_dtype",
    "train_model",
]
