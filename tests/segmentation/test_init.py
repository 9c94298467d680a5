"""The package's public API, and the old module paths that re-export it."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import napari_calcite_afm.segmentation as segmentation
from napari_calcite_afm.errors import AFMFileError, CalciteAFMError, TrainError

#: Old module -> (new module, names it must still export).
OLD_PATHS = {
    "model": (
        "segmentation",
        [
            "DEFAULT_DILATIONS", "DEFAULT_MODEL_FILES", "MODEL_FORMAT", "MODEL_FORMAT_VERSION",
            "INPUT_TRANSFORMS", "MODEL_LEVEL_DEFAULTS", "UNET_DECODERS", "ARCHITECTURES",
            "MultiscaleFeatures", "DilatedNet", "SegmentationModel", "UNet", "build_network",
            "class_names", "default_model_path", "fill_nan_nearest", "load_default_model",
            "load_model", "resolve_device",
        ],
    ),
    "train": (
        "segmentation",
        [
            "GPU_BUDGET", "PRECISIONS", "RECOMMENDED_DILATIONS", "TrainConfig", "TrainError",
            "TrainResult", "class_weights", "native_bfloat16", "prepare_labels", "step_dtype",
            "train_model",
        ],
    ),
    "predict": (
        "segmentation",
        [
            "AUTO_TILE", "AUTO_TILE_PIXELS", "confusion_matrix", "iou_per_class",
            "mean_class_accuracy", "pixel_accuracy", "predict_frame", "predict_stack",
            "segmentation_metrics", "uncertainty",
        ],
    ),
}  # fmt: skip


def test_every_public_name_resolves():
    for name in segmentation.__all__:
        assert getattr(segmentation, name) is not None, name


@pytest.mark.parametrize("old", sorted(OLD_PATHS))
def test_old_module_paths_export_the_same_objects(old):
    module = importlib.import_module(f"napari_calcite_afm.{old}")
    new_name, names = OLD_PATHS[old]
    new = importlib.import_module(f"napari_calcite_afm.{new_name}")
    for name in names:
        assert getattr(module, name) is getattr(new, name), f"{old}.{name}"
    assert set(module.__all__) <= set(names)


def test_private_names_the_tests_and_errors_use_stay_importable():
    from napari_calcite_afm.model import AFMFileError as model_file_error
    from napari_calcite_afm.predict import CalciteAFMError as predict_error
    from napari_calcite_afm.segmentation.data import _Frame, _sample_batch
    from napari_calcite_afm.train import _Frame as old_frame
    from napari_calcite_afm.train import _sample_batch as old_sample_batch

    assert old_frame is _Frame and old_sample_batch is _sample_batch
    assert model_file_error is AFMFileError and predict_error is CalciteAFMError
    assert segmentation.TrainError is TrainError and issubclass(TrainError, CalciteAFMError)


def test_errors_keep_their_classes(tmp_path):
    with pytest.raises(AFMFileError):
        segmentation.load_model(tmp_path / "missing.pt")
    with pytest.raises(TrainError):
        segmentation.TrainConfig(iterations=0)
    with pytest.raises(TrainError):
        segmentation.prepare_labels(np.array([0, 5]), 2)
    with pytest.raises(CalciteAFMError):
        segmentation.build_network("resnet")
    with pytest.raises(CalciteAFMError):
        segmentation.uncertainty(np.zeros((2, 2)))
