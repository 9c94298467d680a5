"""Semantic segmentation of AFM height frames: networks, models, training, inference.

Pixels of a calcite frame are classified as multilayer pit (label 1), terrace (2) and,
with three classes, monolayer pit (3); label 0 means unlabelled or not recorded. The
package is plain Python and torch (no Qt, no napari):

=====================  ==================================================================
:mod:`.networks`       the study's :class:`DilatedNet`, the default :class:`UNet`,
                       :func:`build_network`, :func:`resolve_device`
:mod:`.features`       :class:`MultiscaleFeatures`, the U-Net's fixed first layer
:mod:`.model`          :class:`SegmentationModel` (network + levelling + nm
                       normalisation) and its files (:func:`load_model`)
:mod:`.shipped`        the shipped models (:func:`load_default_model`)
:mod:`.config`         :class:`TrainConfig`, :func:`step_dtype`, :data:`GPU_BUDGET`
:mod:`.data`           labels (:func:`prepare_labels`), patches, class weights, splits
:mod:`.training`       :func:`train_model` and its :class:`TrainResult`
:mod:`.inference`      :func:`predict_frame`, :func:`predict_stack`, :func:`uncertainty`
:mod:`.closed`         pits are closed depressions: :func:`remove_open_pits`
:mod:`.finetune`       fine-tuning a shipped or saved model (:func:`initial_model`),
                       scribbles or dense labels (:func:`sparse_labels`)
:mod:`.depth`          out of its depth: :func:`frame_uncertainty`, :func:`assess_depth`
:mod:`.metrics`        :func:`confusion_matrix`, accuracies, IoU,
                       :func:`segmentation_metrics`
:mod:`.temporal`       :func:`temporal_prior`: class probabilities averaged over
                       neighbouring frames of a registered movie
=====================  ==================================================================

The older module paths :mod:`napari_calcite_afm.model`, :mod:`napari_calcite_afm.train`
and :mod:`napari_calcite_afm.predict` re-export the same names.

Examples
--------
>>> import numpy as np
>>> from napari_calcite_afm.segmentation import load_default_model, predict_frame
>>> model = load_default_model()
>>> frame = np.zeros((64, 64), np.float32)  # heights in nm
>>> labels, probabilities = predict_frame(model, frame, device="cpu")
>>> labels.shape, probabilities.shape
((64, 64), (2, 64, 64))
"""

from ..errors import TrainError
from .closed import remove_open_pits
from .config import (
    FINE_TUNE,
    GPU_BUDGET,
    NEW_NETWORK,
    PRECISIONS,
    RECOMMENDED_DILATIONS,
    TrainConfig,
    native_bfloat16,
    step_dtype,
)
from .data import class_weights, prepare_labels
from .depth import (
    DEFAULT_UNCERTAINTY_THRESHOLD,
    DepthReport,
    assess_depth,
    calibrate_uncertainty,
    calibrated_threshold,
    frame_uncertainty,
    uncertainty_threshold,
)
from .features import MultiscaleFeatures
from .finetune import (
    SPARSE_FRACTION,
    fine_tune_config,
    initial_model,
    labelled_fraction,
    sparse_labels,
)
from .inference import AUTO_TILE, AUTO_TILE_PIXELS, predict_frame, predict_stack, uncertainty
from .metrics import (
    confusion_matrix,
    iou_per_class,
    mean_class_accuracy,
    pixel_accuracy,
    segmentation_metrics,
)
from .model import (
    INPUT_TRANSFORMS,
    MODEL_FORMAT,
    MODEL_FORMAT_VERSION,
    MODEL_LEVEL_DEFAULTS,
    SegmentationModel,
    class_names,
    fill_nan_nearest,
    load_model,
)
from .networks import (
    ARCHITECTURES,
    DEFAULT_DILATIONS,
    UNET_DECODERS,
    DilatedNet,
    UNet,
    build_network,
    resolve_device,
)
from .shipped import DEFAULT_MODEL_FILES, default_model_path, load_default_model, resolve_model
from .temporal import temporal_prior
from .training import TrainResult, train_model

__all__ = [
    "ARCHITECTURES",
    "AUTO_TILE",
    "AUTO_TILE_PIXELS",
    "DEFAULT_DILATIONS",
    "DEFAULT_MODEL_FILES",
    "DEFAULT_UNCERTAINTY_THRESHOLD",
    "DepthReport",
    "FINE_TUNE",
    "GPU_BUDGET",
    "INPUT_TRANSFORMS",
    "MODEL_FORMAT",
    "MODEL_FORMAT_VERSION",
    "MODEL_LEVEL_DEFAULTS",
    "NEW_NETWORK",
    "PRECISIONS",
    "RECOMMENDED_DILATIONS",
    "SPARSE_FRACTION",
    "UNET_DECODERS",
    "DilatedNet",
    "MultiscaleFeatures",
    "SegmentationModel",
    "TrainConfig",
    "TrainError",
    "TrainResult",
    "UNet",
    "assess_depth",
    "build_network",
    "calibrate_uncertainty",
    "calibrated_threshold",
    "class_names",
    "class_weights",
    "confusion_matrix",
    "default_model_path",
    "fill_nan_nearest",
    "fine_tune_config",
    "frame_uncertainty",
    "initial_model",
    "iou_per_class",
    "labelled_fraction",
    "load_default_model",
    "resolve_model",
    "load_model",
    "mean_class_accuracy",
    "native_bfloat16",
    "pixel_accuracy",
    "predict_frame",
    "predict_stack",
    "remove_open_pits",
    "prepare_labels",
    "resolve_device",
    "segmentation_metrics",
    "sparse_labels",
    "step_dtype",
    "temporal_prior",
    "train_model",
    "uncertainty",
    "uncertainty_threshold",
]
