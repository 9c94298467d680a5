"""The Train widget through napari: live plot, Stop, the shared registry, saving."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui

PX = 11.7


@pytest.fixture(scope="module")
def series():
    from napari_calcite_afm.synthetic import make_series

    return make_series(3, 64, seed=3)


def _painted_labels(viewer, series, name="raw labels"):
    """Sparse scribbles on frames 0 and 2 (frame 1 left empty)."""
    from napari_calcite_afm._napari.layers import labels_layer_kwargs

    truth = series.labels_raw
    sparse = np.zeros_like(truth)
    for t in (0, 2):
        sparse[t, ::3, :] = truth[t, ::3, :]
    sparse[sparse == 3] = 2
    return viewer.add_labels(sparse, **labels_layer_kwargs(sparse, PX, name))


def test_train_progress_plot_stop_and_save(
    make_napari_viewer, qtbot, series, tmp_path, add_raw, dock, wait_idle
):
    from napari_calcite_afm._napari.widgets import _state
    from napari_calcite_afm._napari.widgets.train import TrainWidget, training_pairs
    from napari_calcite_afm.segmentation import load_model

    viewer = make_napari_viewer()
    raw = add_raw(viewer, series)
    labels = _painted_labels(viewer, series)
    images, _, frames = training_pairs(raw, labels)
    assert frames == [0, 2] and len(images) == 2

    widget = dock(viewer, TrainWidget(viewer))
    widget.iterations.setValue(40)
    widget.width.setValue(8)
    widget.live.setChecked(True)
    assert widget.train() is not None
    assert widget.train() is None  # a second click does not start a second worker
    wait_idle(widget, timeout=120_000)
    assert widget.result is not None and not widget.result.stopped
    assert widget.progress.value() == widget.progress.maximum() == 40
    # a completed run keeps the annealed final network, and says so
    assert widget.result.best_iteration == 40 and "That final model" in widget.status.text()
    # the plot holds the loss and the validation accuracies
    assert len(widget.loss_line.get_xdata()) >= 3
    assert len(widget.acc_line.get_ydata()) == len(widget.result.history)
    # live prediction layer, the registry and the checkpoint
    assert "raw training preview" in viewer.layers
    entry = _state.get_trained()
    assert entry is not None and entry.model is widget.result.model
    assert entry.checkpoint.exists() and entry.checkpoint.is_relative_to(tmp_path / "cache")
    path = widget.save_model(tmp_path / "model.pt")
    model = load_model(path)
    assert model.n_classes == 2 and model.width == 8
    # the model and its checkpoint record the pixel size they were trained at
    assert model.info["pixel_size_nm"] == pytest.approx(PX)
    assert load_model(entry.checkpoint).info["pixel_size_nm"] == pytest.approx(PX)
    assert model.architecture()["name"] == "UNet"  # the default network
    # the network menu: the study's dilated CNN, with its usual 32 filters
    widget.dilations.setCurrentIndex(widget.dilations.findData("study"))
    cfg = widget.config()
    assert cfg.architecture == "dilated" and cfg.dilations == (1, 2, 4) and cfg.width == 32
    widget.dilations.setCurrentIndex(widget.dilations.findData("unet"))
    assert widget.config().architecture == "unet" and widget.width.value() == 8
    assert model.train_config["batch_size"] == 8  # patches per step, 8 by default
    widget.batch.setValue(32)
    assert widget.config().batch_size == 32
    # the Clean widget's levelling reaches the model with the models' overrides
    raw.metadata["levelling"] = {"background_order": 1, "zero_mean": True}
    level = widget.config().level
    assert level["background_order"] == 1 and level["zero_mean"] is False
    raw.metadata.pop("levelling")

    # Stop ends a long training cleanly and keeps the best model
    widget.iterations.setValue(100_000)
    widget.live.setChecked(False)
    widget.train()
    qtbot.waitUntil(lambda: len(widget._loss) >= 1, timeout=60_000)
    widget.stop_button.click()
    wait_idle(widget, timeout=60_000)
    assert widget.result is not None and widget.result.stopped
    assert widget.checkpoint.exists()
    assert "stopped" in widget.status.text() and "That best model" in widget.status.text()


def test_train_wrong_shape_labels_notifies(
    make_napari_viewer, series, add_raw, dock, error_messages
):
    from napari_calcite_afm._napari.widgets.train import TrainWidget

    viewer = make_napari_viewer()
    add_raw(viewer, series)
    viewer.add_labels(np.ones((2, 32, 32), np.uint8), name="other labels")
    widget = dock(viewer, TrainWidget(viewer))
    before = len(error_messages())
    assert widget.train() is None
    assert not widget.runner.busy
    messages = error_messages()[before:]
    assert messages and "shape" in messages[-1] and "other labels" in messages[-1]


def test_train_plot_follows_the_napari_theme(make_napari_viewer, dock):
    from matplotlib.colors import to_rgba
    from napari.utils.theme import get_theme

    from napari_calcite_afm._napari.widgets.train import TrainWidget

    viewer = make_napari_viewer()
    widget = dock(viewer, TrainWidget(viewer))
    dark = get_theme("dark")
    fig = widget.plot.figure
    assert to_rgba(fig.get_facecolor())[:3] == pytest.approx(
        [v / 255 for v in dark.background.as_rgb_tuple()], abs=0.01
    )
    text = [v / 255 for v in dark.text.as_rgb_tuple()]
    assert to_rgba(widget.ax_loss.xaxis.label.get_color())[:3] == pytest.approx(text, abs=0.01)
    viewer.theme = "light"
    light = get_theme("light")
    assert to_rgba(fig.get_facecolor())[:3] == pytest.approx(
        [v / 255 for v in light.background.as_rgb_tuple()], abs=0.01
    )


def test_start_from_is_automatic_and_fixes_the_network_of_a_trained_model(
    make_napari_viewer, series, add_raw, dock
):
    from napari_calcite_afm._napari.widgets._model_chooser import AUTO, resolve_start
    from napari_calcite_afm._napari.widgets.train import TrainWidget, start_name

    viewer = make_napari_viewer()
    add_raw(viewer, series)
    widget = dock(viewer, TrainWidget(viewer))
    assert widget.start.choice() == AUTO  # the default
    scribbled = [np.zeros((64, 64), np.uint8)]
    scribbled[0][10, 5:40] = 2
    dense = [np.full((64, 64), 2, np.uint8)]
    assert resolve_start(widget.start.spec(), scribbled, 2) == ("default", 2)
    assert resolve_start(widget.start.spec(), dense, 2) == ("new", None)
    widget.n_classes.setCurrentIndex(widget.n_classes.findData(3))
    assert start_name(resolve_start(widget.start.spec(), scribbled, 3)) == "default3"
    # a shipped model fixes the class count and the network
    widget.start.kind.setCurrentIndex(widget.start.kind.findData("default2"))
    assert widget.n_classes.currentData() == 2
    assert not widget.n_classes.isEnabled() and not widget.width.isEnabled()
    assert not widget.dilations.isEnabled()
    widget.start.kind.setCurrentIndex(widget.start.kind.findData("new"))
    assert widget.n_classes.isEnabled() and widget.width.isEnabled()
    # a file to start from; the "model just trained" waits for one
    widget.start.set_file("/models/mine.pt")
    assert widget.start.spec()[0] == "file" and not widget.width.isEnabled()
    trained = widget.start.kind.model().item(widget.start.kind.findData("trained"))
    assert not trained.isEnabled()
    # fine-tuning takes fewer patches per step ("auto") and holds no frame out
    tune, new = widget.config(init="default"), widget.config()
    assert (tune.batch_size, new.batch_size) == (4, 8)
    assert tune.val_fraction == 0.0 and widget.batch.text() == "auto"


def test_scribbles_fine_tune_the_shipped_model(
    make_napari_viewer, series, add_raw, dock, wait_idle
):
    from napari_calcite_afm._napari.layers import labels_layer_kwargs
    from napari_calcite_afm._napari.widgets import _state
    from napari_calcite_afm._napari.widgets.train import TrainWidget
    from napari_calcite_afm.segmentation import load_default_model

    viewer = make_napari_viewer()
    add_raw(viewer, series)
    truth = series.labels_raw
    sparse = np.zeros_like(truth)
    sparse[0, ::8, :] = truth[0, ::8, :]  # one row in eight: 12 % of the pixels
    viewer.add_labels(sparse, **labels_layer_kwargs(sparse, PX, "scribbles"))
    widget = dock(viewer, TrainWidget(viewer))
    widget.labels.set_layer("scribbles")
    widget.iterations.setValue(10)
    widget.batch.setValue(2)
    assert widget.train() is not None
    wait_idle(widget, timeout=120_000)
    model = widget.result.model
    assert model.architecture() == load_default_model(2).architecture()
    assert model.info["fine_tuned_from"]["source"].endswith("default.pt")
    assert model.info["pixel_size_range_nm"] == [pytest.approx(PX)] * 2
    assert "fine-tuning default" in widget.status.text()
    # the model just trained can be the start of the next run, without being chosen for it
    assert _state.get_trained() is not None and widget.start.choice() == "auto"
