"""The segmentation networks and models (moved to :mod:`napari_calcite_afm.segmentation`).

This module keeps the old import path working: the networks now live in
:mod:`~napari_calcite_afm.segmentation.networks` and
:mod:`~napari_calcite_afm.segmentation.features`, the model and its files in
:mod:`~napari_calcite_afm.segmentation.model`.

Examples
--------
>>> from napari_calcite_afm.model import DilatedNet, load_default_model
>>> DilatedNet().receptive_field  # the study's network, in pixels
15
"""

from .errors import AFMFileError, CalciteAFMError  # noqa: F401 (old imports)
from .segmentation.features import MultiscaleFeatures
from .segmentation.model import (
    INPUT_TRANSFORMS,
    MODEL_FORMAT,
    MODEL_FORMAT_VERSION,
    MODEL_LEVEL_DEFAULTS,
    SegmentationModel,
    class_names,
    fill_nan_nearest,
    load_model,
)
from .segmentation.networks import (
    ARCHITECTURES,
    DEFAULT_DILATIONS,
    UNET_DECODERS,
    DilatedNet,
    UNet,
    build_network,
    resolve_device,
)
from .segmentation.shipped import DEFAULT_MODEL_FILES, default_model_path, load_default_model

__all__ = [
    "DEFAULT_DILATIONS",
    "DEFAULT_MODEL_FILES",
    "MODEL_FORMAT",
    "MODEL_FORMAT_VERSION",
    "INPUT_TRANSFORMS",
    "MODEL_LEVEL_DEFAULTS",
    "UNET_DECODERS",
    "ARCHITECTURES",
    "MultiscaleFeatures",
    "DilatedNet",
    "SegmentationModel",
    "UNet",
    "build_network",
    "class_names",
    "default_model_path",
    "fill_nan_nearest",
    "load_default_model",
    "load_model",
    "resolve_device",
]
