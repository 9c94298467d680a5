"""The task runner: a bar in napari's activity dock for every background task, and the
core's Python warnings shown as napari warnings."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

pytestmark = pytest.mark.gui


def _runner_widget(viewer):
    from qtpy.QtWidgets import QPushButton, QVBoxLayout, QWidget

    from napari_calcite_afm._napari.widgets._qt import progress_bar, status_label
    from napari_calcite_afm._napari.widgets._tasks import TaskRunner

    widget = QWidget()
    start, stop = QPushButton("Start"), QPushButton("Stop")
    bar, status = progress_bar(), status_label()
    layout = QVBoxLayout(widget)
    for w in (start, stop, bar, status):
        layout.addWidget(w)
    widget.runner = TaskRunner(widget, [start], bar, stop, status, name="Test")
    viewer.window.add_dock_widget(widget)
    return widget


def test_progress_shows_in_the_activity_dock_and_cancel_stops(make_napari_viewer, qtbot):
    from napari._qt.widgets.qt_progress_bar import QtLabeledProgressBar
    from napari.utils import progress

    viewer = make_napari_viewer()
    widget = _runner_widget(viewer)
    runner = widget.runner
    reported = threading.Event()

    def work(report, stop):
        report({"frame": 1, "n_frames": 4})  # two of four frames done
        reported.set()
        stop.wait(30)  # until the activity dock's Cancel
        return "stopped" if stop.is_set() else "timed out"

    runner.start(work, message="levelling…")
    bar = runner.activity
    assert bar is not None and bar in progress._all_instances
    assert bar.desc.startswith("Test: levelling")
    qtbot.waitUntil(lambda: bar.total == 4 and bar.n == 2, timeout=10_000)
    shown = [
        pbar
        for pbar in viewer.window._qt_window.findChildren(QtLabeledProgressBar)
        if pbar.progress is bar
    ]
    assert shown, "no bar in napari's activity dock"
    assert widget.runner.progress_bar.value() == 2  # the widget's own bar too
    bar.cancel()  # the Cancel button of the activity dock
    qtbot.waitUntil(lambda: not runner.busy, timeout=10_000)
    assert runner.stop_event.is_set() and runner.last_result == "stopped"
    assert runner.activity is None and bar not in progress._all_instances


def test_warnings_of_the_core_become_napari_warnings(make_napari_viewer, qtbot, warning_messages):
    viewer = make_napari_viewer()
    runner = _runner_widget(viewer).runner
    text = "drift registration diverged (shift 80 px): frames left unregistered"

    def work(report, stop):
        warnings.warn(text, UserWarning, stacklevel=1)
        warnings.warn(text, UserWarning, stacklevel=1)  # the same again: shown once
        warnings.warn("a second warning", RuntimeWarning, stacklevel=1)
        return 1

    before = len(warning_messages())
    runner.start(work)
    qtbot.waitUntil(lambda: not runner.busy, timeout=10_000)
    qtbot.waitUntil(lambda: len(warning_messages()) >= before + 2, timeout=10_000)
    new = warning_messages()[before:]
    assert new.count(text) == 1 and "a second warning" in new
    assert runner.warnings == [text, "a second warning"]
    assert "warning" in runner.status.text()
    # a second run warns again (napari alone shows a warning once per session)
    runner.start(work)
    qtbot.waitUntil(lambda: not runner.busy, timeout=10_000)
    qtbot.waitUntil(lambda: warning_messages()[before:].count(text) == 2, timeout=10_000)


def test_clean_shows_the_drift_warning(
    make_napari_viewer, qtbot, monkeypatch, add_raw, dock, wait_idle, warning_messages
):
    import napari_calcite_afm.level as level
    from napari_calcite_afm._napari.widgets.clean import CleanWidget
    from napari_calcite_afm.synthetic import make_series

    original = level.register_stack
    text = "drift registration diverged between frames 1 and 2; shifts reset to 0"

    def diverging(*args, **kwargs):
        warnings.warn(text, UserWarning, stacklevel=2)
        return original(*args, **kwargs)

    monkeypatch.setattr(level, "register_stack", diverging)
    viewer = make_napari_viewer()
    add_raw(viewer, make_series(3, 48, seed=4))
    widget = dock(viewer, CleanWidget(viewer))
    before = len(warning_messages())
    widget.register.setChecked(True)
    widget.apply()
    wait_idle(widget)
    qtbot.waitUntil(lambda: text in warning_messages()[before:], timeout=10_000)
    assert "raw cleaned" in viewer.layers
    assert np.isfinite(viewer.layers["raw cleaned"].data).any()
