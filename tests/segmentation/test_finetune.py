"""Fine-tuning: starting a training run from a shipped or saved model."""

from __future__ import annotations

import numpy as np
import pytest

from napari_calcite_afm.errors import AFMFileError, TrainError
from napari_calcite_afm.segmentation import (
    FINE_TUNE,
    NEW_NETWORK,
    TrainConfig,
    fine_tune_config,
    initial_model,
    labelled_fraction,
    load_default_model,
    predict_stack,
    segmentation_metrics,
    sparse_labels,
    train_model,
)
from napari_calcite_afm.segmentation.scale import record_training_pixel_sizes


def _accuracy(model, images, labels) -> float:
    pred, _ = predict_stack(model, np.stack(images), device="cpu", return_probabilities=False)
    return segmentation_metrics(np.stack(labels), pred, 2)["pixel_accuracy"]


def test_fine_tuning_defaults_and_overrides():
    keys = ("iterations", "lr", "batch_size", "val_fraction")
    tune = TrainConfig(init="default")
    assert [getattr(tune, k) for k in keys] == [FINE_TUNE[k] for k in keys]
    new = TrainConfig()
    assert [getattr(new, k) for k in keys] == [NEW_NETWORK[k] for k in keys]
    assert FINE_TUNE["iterations"] < NEW_NETWORK["iterations"]
    assert FINE_TUNE["batch_size"] < NEW_NETWORK["batch_size"] and FINE_TUNE["val_fraction"] == 0
    told = TrainConfig(init="m.pt", iterations=50, lr=5e-4)
    assert (told.iterations, told.lr, told.init) == (50, 5e-4, "m.pt")
    assert TrainConfig.from_dict(told.to_dict()) == told
    with pytest.raises(TrainError, match="init"):
        TrainConfig(init="  ")
    with pytest.raises(TrainError, match="lr"):
        TrainConfig(lr="fast")


def test_initial_model_by_name_file_or_object(tmp_path, trained):
    assert initial_model(None) is None
    assert initial_model("default").n_classes == 2
    assert initial_model("default3").n_classes == 3
    path = trained.model.save(tmp_path / "mine.pt")
    assert initial_model(str(path)).architecture() == trained.model.architecture()
    assert initial_model(trained.model) is trained.model
    with pytest.raises(AFMFileError, match=r"missing\.pt"):
        initial_model(tmp_path / "missing.pt")


def test_fine_tune_config_takes_the_model_architecture_and_input():
    shipped = load_default_model(2)
    cfg = fine_tune_config(TrainConfig(init="default", architecture="dilated", width=32), shipped)
    arch = shipped.architecture()
    assert (cfg.architecture, cfg.width, list(cfg.dilations)) == (
        "unet",
        arch["width"],
        arch["dilations"],
    )
    assert (cfg.levels, cfg.multiscale, cfg.decoder) == (
        arch["levels"],
        arch["multiscale"],
        arch["decoder"],
    )
    assert cfg.level == shipped.level_settings.to_dict()
    assert cfg.input_transform == shipped.transform
    with pytest.raises(TrainError, match=r"default.* has 2 classes .* asks for 3"):
        fine_tune_config(TrainConfig(init="default", n_classes=3), shipped)


def test_fine_tuning_starts_from_the_trained_weights(toy, trained, seg):
    """A few small steps from a trained model keep it good; from scratch they do not."""
    images, labels = toy
    short = {**seg.FAST, "iterations": 6, "eval_every": 6, "lr": 1e-4, "seed": 5}
    tuned = train_model(images, labels, TrainConfig(**short), init=trained.model)
    scratch = train_model(images, labels, TrainConfig(**short))
    before = _accuracy(trained.model, images, labels)
    assert before > 0.9
    assert _accuracy(tuned.model, images, labels) > before - 0.05
    assert _accuracy(scratch.model, images, labels) < before - 0.1
    # the initial model's input and network, and a record of where it came from
    model = tuned.model
    assert model.architecture() == trained.model.architecture()
    assert (model.center_nm, model.scale_nm) == (trained.model.center_nm, trained.model.scale_nm)
    assert model.level_settings == trained.model.level_settings
    assert model.info["fine_tuned_from"]["source"] == "the model in memory"
    assert tuned.config.init == "the model in memory"
    # the initial model itself is untouched
    assert _accuracy(trained.model, images, labels) == before


def test_fine_tuning_the_shipped_model_by_name(toy):
    images, labels = toy
    cfg = TrainConfig(init="default", iterations=2, eval_every=2, batch_size=2,
                      patch_size=48, device="cpu", threads=1)  # fmt: skip
    res = train_model(images[:2], labels[:2], cfg)
    shipped = load_default_model(2)
    assert res.model.architecture() == shipped.architecture()
    assert res.model.scale_nm == shipped.scale_nm and res.config.init == "default"
    assert res.model.train_config["init"] == "default"
    origin = res.model.info["fine_tuned_from"]
    assert origin["source"] == "default" and origin["pixel_size_range_nm"] == [11.7, 11.7]
    # a class count that does not match the model is refused, naming both
    with pytest.raises(TrainError, match="default3: it has 3 classes"):
        train_model(images[:1], labels[:1], {"init": "default3", "iterations": 1})


def test_record_training_pixel_sizes_keeps_the_initial_range():
    from types import SimpleNamespace

    plain = SimpleNamespace(info={})
    record_training_pixel_sizes(plain, [5.0, 10.0, 20.0])
    assert plain.info == {"pixel_size_nm": 10.0, "pixel_size_range_nm": [5.0, 20.0]}
    tuned = SimpleNamespace(info={"fine_tuned_from": {"pixel_size_range_nm": [2.0, 20.0]}})
    record_training_pixel_sizes(tuned, [0.5])
    assert tuned.info["pixel_size_range_nm"] == [0.5, 20.0]
    record_training_pixel_sizes(SimpleNamespace(info={}), [])  # nothing to record


def test_scribbles_or_dense_labels():
    dense = np.full((2, 20, 20), 2, np.uint8)
    assert labelled_fraction(dense) == 1.0 and not sparse_labels(dense)
    scribbled = np.zeros((3, 20, 20), np.uint8)
    scribbled[0, 5, :10] = 1  # 10 of 400 pixels of the one labelled frame
    assert labelled_fraction(scribbled) == pytest.approx(0.025)
    assert sparse_labels(scribbled) and sparse_labels([scribbled[0], scribbled[1]])
    assert labelled_fraction(np.zeros((4, 4))) == 0.0
