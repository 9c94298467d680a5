"""The dock widgets through napari (pytest-qt, Xvfb): Clean, Labels, Train, Segment.

Small synthetic stacks (3 frames of 64 x 64 pixels) keep the file fast. Long work runs in
thread workers: the tests wait for them with ``qtbot.waitUntil``.
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui

PLUGIN = "napari-calcite-afm"
PX = 11.7


@pytest.fixture(scope="module")
def series():
    from napari_calcite_afm.synthetic import make_series

    return make_series(3, 64, seed=3)


@pytest.fixture(autouse=True)
def _isolated(isolated_widget_state):
    """Every test here runs with an isolated widget state."""


def add_raw(viewer, series, name="raw", source=None):
    from napari_calcite_afm._layers import image_layer_kwargs

    meta = {"source": str(source)} if source else None
    return viewer.add_image(series.raw, **image_layer_kwargs(series.raw, PX, name, meta))


def dock(viewer, widget):
    viewer.window.add_dock_widget(widget)
    return widget


def wait_idle(qtbot, widget, timeout=60_000):
    qtbot.waitUntil(lambda: not widget.runner.busy, timeout=timeout)


def error_messages():
    from napari.utils.notifications import NotificationSeverity, notification_manager

    return [
        str(n.message)
        for n in notification_manager.records
        if n.severity == NotificationSeverity.ERROR
    ]


def test_widgets_open_through_the_plugin_menu(make_napari_viewer):
    """Every widget in napari.yaml instantiates through napari (PublicOnlyProxy viewer)."""
    viewer = make_napari_viewer()
    names = [
        "Clean (levelling & drift)",
        "Labels",
        "Train",
        "Segment",
        "Statistics",
        "Segment and fit (one click)",
    ]
    for name in names:
        _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name)
        assert widget is not None, name


# ----------------------------------------------------------------------------- clean


def test_clean_preview_and_apply(make_napari_viewer, qtbot, series):
    from napari_calcite_afm._widgets.clean import CleanWidget

    viewer = make_napari_viewer()
    raw = add_raw(viewer, series)
    widget = dock(viewer, CleanWidget(viewer))
    assert widget.image.layer() is raw

    viewer.dims.set_current_step(0, 2)
    widget.preview.setChecked(True)
    widget.update_preview()
    qtbot.waitUntil(lambda: "raw preview" in viewer.layers, timeout=20_000)
    preview = viewer.layers["raw preview"]
    assert preview.data.shape == (64, 64)
    assert preview.metadata["frame"] == 2
    assert tuple(preview.scale) == (PX, PX)

    # the preview follows the time slider
    viewer.dims.set_current_step(0, 0)
    qtbot.waitUntil(lambda: viewer.layers["raw preview"].metadata["frame"] == 0, timeout=20_000)

    widget.register.setChecked(True)
    widget.apply()
    wait_idle(qtbot, widget)
    cleaned = viewer.layers["raw cleaned"]
    assert cleaned.data.shape == series.raw.shape
    assert cleaned.data.dtype == np.float32
    assert tuple(cleaned.scale) == (1.0, PX, PX)
    assert cleaned.colormap.name == raw.colormap.name
    assert cleaned.metadata["levelling"] == widget.settings().to_dict()
    assert len(cleaned.metadata["drift_shifts_px"]) == 3
    # levelling removed the tilt: the frame's spread drops a lot
    assert np.nanstd(cleaned.data[0]) < np.nanstd(series.raw[0])


def test_clean_second_click_is_ignored(make_napari_viewer, qtbot, series):
    from napari_calcite_afm._widgets.clean import CleanWidget

    viewer = make_napari_viewer()
    add_raw(viewer, series)
    widget = dock(viewer, CleanWidget(viewer))
    first = widget.apply()
    assert first is not None
    assert not widget.apply_button.isEnabled()
    assert widget.apply() is None  # busy: no second worker
    wait_idle(qtbot, widget)
    assert widget.apply_button.isEnabled()


# ----------------------------------------------------------------------------- labels


def test_labels_classes_autosave_and_restore(make_napari_viewer, qtbot, series, tmp_path):
    from napari_calcite_afm._widgets.labels import LabelsWidget, autosave_path_for
    from napari_calcite_afm.colormap import LABEL_COLORS
    from napari_calcite_afm.io import read_labels

    source = tmp_path / "movie.tif"
    source.touch()
    viewer = make_napari_viewer()
    raw = add_raw(viewer, series, source=source)
    widget = dock(viewer, LabelsWidget(viewer))

    layer = widget.create_labels(restore=False)
    assert layer.data.shape == series.raw.shape and layer.data.dtype == np.uint8
    assert tuple(layer.scale) == (1.0, PX, PX)
    # fixed colours and names
    for value in (1, 2, 3):
        np.testing.assert_allclose(
            layer.colormap.map(value)[:3], LABEL_COLORS[value][:3], atol=0.01
        )
    assert layer.metadata["label_names"][1].startswith("multilayer pit")
    assert "terrace" in widget.class_buttons.button(2).text()
    widget.set_class(2)
    assert layer.selected_label == 2
    layer.selected_label = 1
    assert widget.class_buttons.checkedId() == 1
    # third class only offered with 3 classes
    assert widget.class_buttons.button(3).isHidden()
    widget.n_classes.setCurrentIndex(1)
    assert not widget.class_buttons.button(3).isHidden()

    # paint -> debounced autosave next to the image
    expected = autosave_path_for(raw)
    assert expected == tmp_path / "movie.labels.autosave.tif"
    widget.autosave_timer.setInterval(50)
    layer.data_setitem((np.array([1]), np.array([10]), np.array([12])), 1)
    layer.paint((1, 20, 20), 2)
    qtbot.waitUntil(lambda: expected.exists(), timeout=10_000)
    saved = read_labels(expected, shape=series.raw.shape)
    assert saved[1, 10, 12] == 1 and saved[1, 20, 20] == 2

    # a new labels layer for the same image offers the autosave back
    viewer.layers.remove(layer)
    restored = widget.create_labels(restore=True)
    assert restored.data[1, 10, 12] == 1 and restored.data[1, 20, 20] == 2

    # explicit save / load round trip
    out = widget.save_labels(tmp_path / "labels.tif")
    assert out.exists()
    restored.data = np.zeros_like(restored.data)
    widget.load_labels(out)
    assert widget.labels_layer.data[1, 20, 20] == 2


def test_labels_autosave_without_source_goes_to_cache(make_napari_viewer, series, tmp_path):
    from napari_calcite_afm._widgets.labels import LabelsWidget

    viewer = make_napari_viewer()
    add_raw(viewer, series, name="unsaved data")
    widget = dock(viewer, LabelsWidget(viewer))
    layer = widget.create_labels(restore=False)
    layer.paint((0, 5, 5), 1)
    path = widget.autosave_now()  # the timer's slot
    assert path == tmp_path / "cache" / "autosave" / "unsaved_data.labels.autosave.tif"
    assert path.exists()


def test_labels_propose_by_otsu(make_napari_viewer, qtbot, series):
    from napari_calcite_afm._widgets.labels import LabelsWidget

    viewer = make_napari_viewer()
    from napari_calcite_afm._layers import image_layer_kwargs

    viewer.add_image(series.clean, **image_layer_kwargs(series.clean, PX, "clean"))
    widget = dock(viewer, LabelsWidget(viewer))
    widget.create_labels(restore=False)
    widget.scope.setCurrentIndex(widget.scope.findData("all"))
    widget.propose()
    wait_idle(qtbot, widget)
    data = widget.labels_layer.data
    assert set(np.unique(data)) <= {0, 1, 2}
    assert (data == 1).any() and (data == 2).any()
    # pits are lower than terraces
    assert series.clean[data == 1].mean() < series.clean[data == 2].mean()


def test_labels_load_wrong_shape_notifies(make_napari_viewer, series, tmp_path):
    from napari_calcite_afm._widgets.labels import LabelsWidget
    from napari_calcite_afm.io import write_tiff

    viewer = make_napari_viewer()
    add_raw(viewer, series)
    widget = dock(viewer, LabelsWidget(viewer))
    bad = write_tiff(tmp_path / "bad.tif", np.ones((2, 32, 32), np.uint8), PX)
    before = len(error_messages())
    assert widget.load_labels(bad) is None  # no exception
    messages = error_messages()[before:]
    assert messages and "bad.tif" in messages[-1]


# ----------------------------------------------------------------------------- train


def _painted_labels(viewer, series, name="raw labels"):
    """Sparse scribbles on frames 0 and 2 (frame 1 left empty)."""
    from napari_calcite_afm._layers import labels_layer_kwargs

    truth = series.labels_raw
    sparse = np.zeros_like(truth)
    for t in (0, 2):
        sparse[t, ::3, :] = truth[t, ::3, :]
    sparse[sparse == 3] = 2
    return viewer.add_labels(sparse, **labels_layer_kwargs(sparse, PX, name))


def test_train_progress_plot_stop_and_save(make_napari_viewer, qtbot, series, tmp_path):
    from napari_calcite_afm._widgets import _state
    from napari_calcite_afm._widgets.train import TrainWidget, training_pairs
    from napari_calcite_afm.model import load_model

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
    wait_idle(qtbot, widget, timeout=120_000)
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
    wait_idle(qtbot, widget, timeout=60_000)
    assert widget.result is not None and widget.result.stopped
    assert widget.checkpoint.exists()
    assert "stopped" in widget.status.text() and "That best model" in widget.status.text()


def test_train_wrong_shape_labels_notifies(make_napari_viewer, series):
    from napari_calcite_afm._widgets.train import TrainWidget

    viewer = make_napari_viewer()
    add_raw(viewer, series)
    viewer.add_labels(np.ones((2, 32, 32), np.uint8), name="other labels")
    widget = dock(viewer, TrainWidget(viewer))
    before = len(error_messages())
    assert widget.train() is None
    assert not widget.runner.busy
    messages = error_messages()[before:]
    assert messages and "shape" in messages[-1] and "other labels" in messages[-1]


# ----------------------------------------------------------------------------- segment


@pytest.fixture
def tiny_model_file(tmp_path):
    from napari_calcite_afm.model import DilatedNet, SegmentationModel

    model = SegmentationModel(DilatedNet(2, width=4), center_nm=0.0, scale_nm=5.0)
    return model.save(tmp_path / "tiny.pt")


def test_segment_stack_and_frame(make_napari_viewer, qtbot, series, tiny_model_file):
    from napari_calcite_afm._widgets.segment import SegmentWidget

    viewer = make_napari_viewer()
    add_raw(viewer, series)
    widget = dock(viewer, SegmentWidget(viewer))
    widget.model.set_file(tiny_model_file)
    widget.show_uncertainty.setChecked(True)
    widget.segment("all")
    wait_idle(qtbot, widget)
    layer = viewer.layers["raw segmentation"]
    assert layer.data.shape == series.raw.shape and layer.data.dtype == np.uint8
    assert tuple(layer.scale) == (1.0, PX, PX)
    assert set(np.unique(layer.data)) <= {1, 2}
    unc = viewer.layers["raw uncertainty"]
    assert unc.data.shape == series.raw.shape
    assert np.nanmin(unc.data) >= 0 and np.nanmax(unc.data) <= 1
    # masks drawn on top of the uncertainty
    assert viewer.layers.index(layer) > viewer.layers.index(unc)

    # current frame only: the other frames keep their labels
    layer.data = np.zeros_like(layer.data)
    viewer.dims.set_current_step(0, 1)
    widget.segment("current")
    wait_idle(qtbot, widget)
    data = viewer.layers["raw segmentation"].data
    assert data[1].all() and not data[0].any() and not data[2].any()


def test_segment_with_the_model_just_trained(make_napari_viewer, qtbot, series):
    from napari_calcite_afm._widgets import _state
    from napari_calcite_afm._widgets.segment import SegmentWidget
    from napari_calcite_afm.model import DilatedNet, SegmentationModel

    viewer = make_napari_viewer()
    add_raw(viewer, series)
    widget = dock(viewer, SegmentWidget(viewer))
    # nothing trained yet: a notification, no crash
    widget.model.kind.setCurrentIndex(widget.model.kind.findData("trained"))
    before = len(error_messages())
    assert widget.segment() is None
    assert "trained" in error_messages()[before:][-1]

    model = SegmentationModel(DilatedNet(3, width=4))
    _state.set_trained(_state.TrainedModel(model=model))
    assert widget.model.choice() == "trained"  # selected automatically
    widget.segment("all")
    wait_idle(qtbot, widget)
    assert viewer.layers["raw segmentation"].data.max() <= 3
