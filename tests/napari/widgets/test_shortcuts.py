"""Keyboard shortcuts: Alt+T trains, Alt+S segments, Alt+X stops; napari's keys stay."""

from __future__ import annotations

import threading

import numpy as np
import pytest

pytestmark = pytest.mark.gui

PX = 11.7


@pytest.fixture(scope="module")
def series():
    from napari_calcite_afm.synthetic import make_series

    return make_series(2, 48, seed=6)


def _press(qtbot, viewer, key):
    from qtpy.QtCore import Qt

    qtbot.keyClick(viewer.window._qt_viewer.canvas.native, key, Qt.AltModifier)


def test_train_segment_and_stop_shortcuts(
    make_napari_viewer, qtbot, series, add_raw, dock, wait_idle
):
    from qtpy.QtCore import Qt

    from napari_calcite_afm._napari.layers import labels_layer_kwargs
    from napari_calcite_afm._napari.widgets.segment import SegmentWidget
    from napari_calcite_afm._napari.widgets.train import TrainWidget

    viewer = make_napari_viewer()
    raw = add_raw(viewer, series)
    labels = series.labels_raw.copy()
    labels[labels == 3] = 2
    viewer.add_labels(labels, **labels_layer_kwargs(labels, PX, "painted", like=raw))
    train = dock(viewer, TrainWidget(viewer))
    train.iterations.setValue(100_000)  # long: Alt+X must end it
    train.width.setValue(4)

    _press(qtbot, viewer, Qt.Key_T)
    assert train.runner.busy
    qtbot.waitUntil(lambda: train.progress.maximum() > 0, timeout=60_000)
    _press(qtbot, viewer, Qt.Key_X)
    wait_idle(train, timeout=120_000)
    assert train.result is not None and train.result.stopped

    # Alt+S segments with the model just trained
    segment = dock(viewer, SegmentWidget(viewer))
    segment.image.set_layer(raw)
    assert segment.model.choice() == "trained"
    _press(qtbot, viewer, Qt.Key_S)
    assert segment.runner.busy
    wait_idle(segment)
    assert "raw segmentation" in viewer.layers
    assert "Alt+S" in segment.segment_button.toolTip()
    assert "Alt+T" in train.train_button.toolTip()


def test_stop_reaches_every_widget_and_napari_keys_stay(make_napari_viewer, qtbot, dock):
    from qtpy.QtCore import Qt

    from napari_calcite_afm._napari.widgets.clean import CleanWidget
    from napari_calcite_afm._napari.widgets.statistics import StatisticsWidget

    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((2, 16, 16), np.float32))
    clean = dock(viewer, CleanWidget(viewer))
    stats = dock(viewer, StatisticsWidget(viewer))
    started = threading.Event()

    def wait(progress, stop):
        started.set()
        stop.wait(30)
        return stop.is_set()

    clean.runner.start(wait)
    stats.runner.start(wait)
    assert started.wait(10)
    _press(qtbot, viewer, Qt.Key_X)
    qtbot.waitUntil(lambda: not clean.runner.busy and not stats.runner.busy, timeout=10_000)
    assert clean.runner.last_result is True and stats.runner.last_result is True
    # napari's own shortcuts are untouched: Ctrl+Shift+T still toggles the theme...
    theme = viewer.theme
    qtbot.keyClick(
        viewer.window._qt_viewer.canvas.native, Qt.Key_T, Qt.ControlModifier | Qt.ShiftModifier
    )
    assert viewer.theme != theme
    # ...and a key bound by the user is not taken over
    from napari.components import ViewerModel

    from napari_calcite_afm._napari.widgets._shortcuts import register

    other = ViewerModel()
    other.bind_key("Alt-S", lambda v: None)
    assert register(other, "segment", clean.stop_tasks) is False
