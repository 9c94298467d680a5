"""The Labels widget through napari: fixed classes, autosave, Otsu proposal, save/load."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui

PX = 11.7


@pytest.fixture(scope="module")
def series():
    from napari_calcite_afm.synthetic import make_series

    return make_series(3, 64, seed=3)


def test_labels_classes_autosave_and_restore(
    make_napari_viewer, qtbot, series, tmp_path, add_raw, dock
):
    from napari_calcite_afm._napari.widgets.labels import LabelsWidget, autosave_path_for
    from napari_calcite_afm.io import read_labels
    from napari_calcite_afm.labels import LABEL_COLORS

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


def test_labels_autosave_without_source_goes_to_cache(
    make_napari_viewer, series, tmp_path, add_raw, dock
):
    from napari_calcite_afm._napari.widgets.labels import LabelsWidget

    viewer = make_napari_viewer()
    add_raw(viewer, series, name="unsaved data")
    widget = dock(viewer, LabelsWidget(viewer))
    layer = widget.create_labels(restore=False)
    layer.paint((0, 5, 5), 1)
    path = widget.autosave_now()  # the timer's slot
    assert path == tmp_path / "cache" / "autosave" / "unsaved_data.labels.autosave.tif"
    assert path.exists()


def test_labels_propose_by_otsu(make_napari_viewer, series, dock, wait_idle):
    from napari_calcite_afm._napari.widgets.labels import LabelsWidget

    viewer = make_napari_viewer()
    from napari_calcite_afm._napari.layers import image_layer_kwargs

    viewer.add_image(series.clean, **image_layer_kwargs(series.clean, PX, "clean"))
    widget = dock(viewer, LabelsWidget(viewer))
    widget.create_labels(restore=False)
    widget.scope.setCurrentIndex(widget.scope.findData("all"))
    widget.propose()
    wait_idle(widget)
    data = widget.labels_layer.data
    assert set(np.unique(data)) <= {0, 1, 2}
    assert (data == 1).any() and (data == 2).any()
    # pits are lower than terraces
    assert series.clean[data == 1].mean() < series.clean[data == 2].mean()


def test_labels_load_wrong_shape_notifies(
    make_napari_viewer, series, tmp_path, add_raw, dock, error_messages
):
    from napari_calcite_afm._napari.widgets.labels import LabelsWidget
    from napari_calcite_afm.io import write_tiff

    viewer = make_napari_viewer()
    add_raw(viewer, series)
    widget = dock(viewer, LabelsWidget(viewer))
    bad = write_tiff(tmp_path / "bad.tif", np.ones((2, 32, 32), np.uint8), PX)
    before = len(error_messages())
    assert widget.load_labels(bad) is None  # no exception
    messages = error_messages()[before:]
    assert messages and "bad.tif" in messages[-1]


def test_proposal_is_undone_by_ctrl_z(make_napari_viewer, qtbot, series, dock, wait_idle):
    """Painted labels overwritten by "Propose from threshold" come back with Ctrl+Z."""
    from qtpy.QtCore import Qt

    from napari_calcite_afm._napari.layers import image_layer_kwargs
    from napari_calcite_afm._napari.widgets.labels import LabelsWidget

    viewer = make_napari_viewer()
    viewer.add_image(series.clean, **image_layer_kwargs(series.clean, PX, "clean"))
    widget = dock(viewer, LabelsWidget(viewer))
    layer = widget.create_labels(restore=False)
    # the user paints a stroke of "terrace" across a pit and one pixel of "pit"
    layer.paint((1, 30, 30), 2)
    layer.data_setitem((np.array([1]), np.array([5]), np.array([7])), 1)
    painted = np.array(layer.data, copy=True)
    assert (painted[1] == 2).sum() > 10

    viewer.dims.set_current_step(0, 1)
    widget.scope.setCurrentIndex(widget.scope.findData("current"))
    widget.propose()
    wait_idle(widget)
    proposed = np.array(layer.data, copy=True)
    assert not np.array_equal(proposed[1], painted[1])
    assert set(np.unique(proposed[1])) == {1, 2}
    assert not proposed[0].any() and not proposed[2].any()  # other frames untouched
    assert "Ctrl+Z" in widget.status.text()

    # Ctrl+Z on the canvas with the labels layer selected (napari's own undo)
    viewer.layers.selection.active = layer
    canvas = viewer.window._qt_viewer.canvas.native
    qtbot.keyClick(canvas, Qt.Key_Z, Qt.ControlModifier)
    np.testing.assert_array_equal(layer.data, painted)
    layer.redo()
    np.testing.assert_array_equal(layer.data, proposed)
    layer.undo()
    np.testing.assert_array_equal(layer.data, painted)


def test_a_proposal_too_big_to_undo_asks_first(
    make_napari_viewer, series, dock, wait_idle, monkeypatch
):
    from qtpy.QtWidgets import QMessageBox

    import napari_calcite_afm._napari.widgets.labels as labels_module
    from napari_calcite_afm._napari.layers import image_layer_kwargs
    from napari_calcite_afm._napari.widgets.labels import LabelsWidget

    monkeypatch.setattr(labels_module, "UNDO_LIMIT_PIXELS", 100)
    asked = []
    monkeypatch.setattr(
        QMessageBox, "question", lambda *args, **kw: asked.append(args) or QMessageBox.No
    )
    viewer = make_napari_viewer()
    viewer.add_image(series.clean, **image_layer_kwargs(series.clean, PX, "clean"))
    widget = dock(viewer, LabelsWidget(viewer))
    layer = widget.create_labels(restore=False)
    layer.paint((0, 30, 30), 2)
    painted = np.array(layer.data, copy=True)
    widget.scope.setCurrentIndex(widget.scope.findData("all"))
    widget.propose()
    wait_idle(widget)
    assert len(asked) == 1 and "painted" in asked[0][2]
    np.testing.assert_array_equal(layer.data, painted)  # declined: nothing written
    assert "cancelled" in widget.status.text()


def test_class_shortcuts(make_napari_viewer, qtbot, series, add_raw, dock):
    from qtpy.QtCore import Qt

    from napari_calcite_afm._napari.widgets.labels import LabelsWidget

    viewer = make_napari_viewer()
    add_raw(viewer, series)
    widget = dock(viewer, LabelsWidget(viewer))
    layer = widget.create_labels(restore=False)
    canvas = viewer.window._qt_viewer.canvas.native
    qtbot.keyClick(canvas, Qt.Key_2, Qt.AltModifier)
    assert layer.selected_label == 2 and widget.class_buttons.checkedId() == 2
    qtbot.keyClick(canvas, Qt.Key_1, Qt.AltModifier)
    assert layer.selected_label == 1 and layer.mode == "paint"
    assert widget.n_classes.currentData() == 2
    qtbot.keyClick(canvas, Qt.Key_3, Qt.AltModifier)  # switches to three classes
    assert layer.selected_label == 3 and widget.n_classes.currentData() == 3
    qtbot.keyClick(canvas, Qt.Key_0, Qt.AltModifier)
    assert layer.mode == "erase"
    # napari's own digits still switch the layer's modes
    qtbot.keyClick(canvas, Qt.Key_2)
    assert layer.mode == "paint"
    assert "Alt+1" in widget.class_buttons.button(1).toolTip()
