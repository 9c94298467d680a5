"""Fixtures of the dock widgets' tests (pytest-qt, Xvfb).

Every test here runs with an isolated widget state (a temporary cache, no trained model).
Long work runs in thread workers: the tests wait for them with :func:`wait_idle`.
"""

from __future__ import annotations

import pytest

PX = 11.7


@pytest.fixture(autouse=True)
def _isolated(isolated_widget_state):
    """Every test here runs with an isolated widget state."""


@pytest.fixture
def add_raw():
    """``add_raw(viewer, series, name="raw", source=None)``: the raw heights as a layer."""

    def add(viewer, series, name="raw", source=None):
        from napari_calcite_afm._napari.layers import image_layer_kwargs

        meta = {"source": str(source)} if source else None
        return viewer.add_image(series.raw, **image_layer_kwargs(series.raw, PX, name, meta))

    return add


@pytest.fixture
def dock():
    """``dock(viewer, widget)``: dock ``widget`` in the viewer and return it."""

    def add(viewer, widget):
        viewer.window.add_dock_widget(widget)
        return widget

    return add


@pytest.fixture
def wait_idle(qtbot):
    """``wait_idle(widget, timeout=60_000)``: wait until the widget's runner is idle."""

    def wait(widget, timeout=60_000):
        qtbot.waitUntil(lambda: not widget.runner.busy, timeout=timeout)

    return wait


@pytest.fixture
def error_messages():
    """``error_messages()``: the messages of every napari error notification so far."""

    def messages():
        from napari.utils.notifications import NotificationSeverity, notification_manager

        return [
            str(n.message)
            for n in notification_manager.records
            if n.severity == NotificationSeverity.ERROR
        ]

    return messages


@pytest.fixture
def warning_messages():
    """``warning_messages()``: the messages of every napari warning notification so far."""

    def messages():
        from napari.utils.notifications import NotificationSeverity, notification_manager

        return [
            str(n.message)
            for n in notification_manager.records
            if n.severity == NotificationSeverity.WARNING
        ]

    return messages
