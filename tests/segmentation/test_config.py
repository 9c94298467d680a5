"""Tests of segmentation.config: TrainConfig and the arithmetic of a training step."""

from __future__ import annotations

import json

import pytest
import torch

from napari_calcite_afm.errors import CalciteAFMError, TrainError
from napari_calcite_afm.segmentation import TrainConfig, native_bfloat16, step_dtype


def test_step_precision(monkeypatch):
    from napari_calcite_afm.segmentation import config as config_mod

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert step_dtype("float32", cpu) == torch.float32
    assert step_dtype("bfloat16", cpu) == torch.bfloat16
    assert step_dtype("auto", cuda) == torch.float32  # GPUs: float32 unless asked
    monkeypatch.setattr(config_mod, "native_bfloat16", lambda: False)
    assert step_dtype("auto", cpu) == torch.float32  # emulated bfloat16 would be slower
    monkeypatch.setattr(config_mod, "native_bfloat16", lambda: True)
    assert step_dtype("auto", cpu) == torch.bfloat16
    assert isinstance(native_bfloat16(), bool)
    assert TrainConfig().precision == "auto" and TrainConfig().decoder == "add"
    with pytest.raises(TrainError, match="precision"):
        TrainConfig(precision="float16")
    with pytest.raises(TrainError, match="decoder"):
        TrainConfig(decoder="sum")


def test_train_config_round_trip():
    cfg = TrainConfig(dilations=(1, 2, 4, 8), level={"background_order": 1}, seed=5)
    d = cfg.to_dict()
    json.dumps(d)
    assert TrainConfig.from_dict(d) == cfg
    with pytest.raises(TrainError):
        TrainConfig.from_dict({"bogus": 1})
    with pytest.raises(CalciteAFMError):
        TrainConfig(n_classes=4)
    with pytest.raises(CalciteAFMError):
        TrainConfig(optimizer="rmsprop")
    study = TrainConfig.study_reference()
    assert study.optimizer == "sgd" and study.architecture == "dilated"
    assert study.width == 32 and study.dilations == (1, 2, 4)
    default = TrainConfig()
    assert default.architecture == "unet" and default.width == 8 and default.dilations == (1, 2)
    assert default.class_weighting is False and TrainConfig(n_classes=3).class_weighting is True
    assert TrainConfig(class_weighting=True).class_weighting is True and study.class_weighting
    wide = TrainConfig(architecture="dilated")
    assert wide.width == 16 and wide.dilations == (1, 2, 4, 8, 16)
    with pytest.raises(TrainError, match="architecture"):
        TrainConfig(architecture="resnet")
    with pytest.raises(TrainError, match="levels"):
        TrainConfig(levels=7)
    assert default.multiscale is True and study.multiscale is False and wide.multiscale is False
    assert TrainConfig(multiscale=False).multiscale is False
    assert default.keep_final() and not study.keep_final()  # one-cycle vs constant rate
    assert TrainConfig(keep="best").keep_final() is False
    assert TrainConfig.study_reference(keep="last").keep_final() is True
    with pytest.raises(TrainError, match="keep"):
        TrainConfig(keep="first")
    with pytest.raises(TrainError, match="U-Net only"):
        TrainConfig(architecture="dilated", multiscale=True)
