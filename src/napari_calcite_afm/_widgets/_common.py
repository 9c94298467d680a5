"""Helpers shared by every dock widget.

- :class:`LayerChooser`: a combo box of the viewer's layers of one type, kept in sync;
- :class:`TaskRunner`: runs one library call at a time in a napari ``thread_worker``,
  relays its ``progress`` reports to the GUI thread, owns the stop ``Event``, disables
  the start buttons while it runs and turns a :class:`~napari_calcite_afm.io.CalciteAFMError`
  into a notification (no traceback dialog);
- :class:`MplCanvas`: an embedded matplotlib figure;
- small functions to read a layer's pixel size, current frame and source file.

Widgets stay thin: they collect options, call the library in a :class:`TaskRunner`
and show the result as layers, plots and tables.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtCore import QObject, Qt, Signal
from qtpy.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from .._util import Cancelled

__all__ = [
    "LayerChooser",
    "MplCanvas",
    "TaskRunner",
    "add_or_update_layer",
    "current_frame",
    "expected_errors",
    "guarded",
    "layer_stack",
    "notify_error",
    "notify_info",
    "notify_warning",
    "pixel_size_of",
    "source_path_of",
]


# --------------------------------------------------------------------------- notifications


def notify_error(message: str) -> None:
    """Show ``message`` as a napari error notification (no traceback)."""
    from napari.utils.notifications import show_error

    show_error(str(message))


def notify_warning(message: str) -> None:
    """Show ``message`` as a napari warning notification."""
    from napari.utils.notifications import show_warning

    show_warning(str(message))


def notify_info(message: str) -> None:
    """Show ``message`` as a napari info notification."""
    from napari.utils.notifications import show_info

    show_info(str(message))


def expected_errors() -> tuple[type[BaseException], ...]:
    """Errors a user can cause: shown as a one-line notification, never a traceback."""
    try:
        from ..io import CalciteAFMError
    except ImportError:  # pragma: no cover - io not importable
        return (ValueError,)
    return (CalciteAFMError,)


def guarded(method: Callable) -> Callable:
    """Decorate a slot so that a user error becomes a notification instead of a crash.

    Also swallows the ``checked`` argument Qt passes to clicked-slots.
    """

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if args and isinstance(args[0], bool) and not _wants_args(method):
            args = ()
        try:
            return method(self, *args, **kwargs)
        except expected_errors() as exc:
            notify_error(str(exc))
            return None

    return wrapper


def _wants_args(method: Callable) -> bool:
    import inspect

    params = list(inspect.signature(method).parameters.values())[1:]
    return any(p.default is inspect.Parameter.empty for p in params)


# --------------------------------------------------------------------------- layers


def pixel_size_of(layer) -> float:
    """Pixel size in nm of an image or labels layer (its metadata, else its scale)."""
    meta = getattr(layer, "metadata", None) or {}
    px = meta.get("pixel_size_nm")
    if px:
        return float(px)
    return float(layer.scale[-1])


def source_path_of(layer) -> Path | None:
    """The file or folder a layer was read from, if any."""
    meta = getattr(layer, "metadata", None) or {}
    for candidate in (meta.get("source"), getattr(getattr(layer, "source", None), "path", None)):
        if candidate:
            return Path(str(candidate))
    return None


def layer_stack(layer) -> np.ndarray:
    """A layer's data as a float32 ``(frames, rows, cols)`` stack (a copy-free view if possible)."""
    data = np.asarray(layer.data)
    if data.ndim == 2:
        data = data[np.newaxis]
    if data.ndim != 3:
        from ..io import CalciteAFMError

        raise CalciteAFMError(
            f"layer {layer.name!r}: expected a frame (rows, cols) or a stack "
            f"(frames, rows, cols), got shape {data.shape}"
        )
    return data.astype(np.float32, copy=False)


def current_frame(viewer, layer) -> int:
    """Index of the frame of ``layer`` shown at the viewer's current time-slider position."""
    if layer is None or layer.ndim < 3:
        return 0
    n = int(np.shape(layer.data)[0])
    try:
        index = float(layer.world_to_data(viewer.dims.point)[0])
    except Exception:  # pragma: no cover - odd transforms
        index = float(viewer.dims.current_step[-layer.ndim])
    return int(np.clip(np.round(index), 0, max(n - 1, 0)))


def is_layer_type(layer, layer_type: str) -> bool:
    """``isinstance`` check by name (``"image"``, ``"labels"``...), public API only."""
    import napari.layers

    cls = getattr(napari.layers, layer_type.capitalize(), None)
    return cls is not None and isinstance(layer, cls)


def add_or_update_layer(viewer, data, kwargs: dict[str, Any], layer_type: str):
    """Add a layer named ``kwargs['name']``, or replace the data of the existing one."""
    name = kwargs["name"]
    if name in viewer.layers:
        layer = viewer.layers[name]
        if is_layer_type(layer, layer_type) and np.shape(layer.data) == np.shape(data):
            layer.data = data
            for key in ("scale", "metadata", "contrast_limits"):
                if key in kwargs:
                    setattr(layer, key, kwargs[key])
            return layer
        viewer.layers.remove(name)
    adder = getattr(viewer, f"add_{layer_type}")
    return adder(data, **kwargs)


class LayerChooser(QComboBox):
    """A combo box of the viewer's layers of some types, refreshed as layers change.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
    layer_types : str or sequence of str
        ``"image"``, ``"labels"``.
    allow_none : bool
        Offer a first empty entry (for optional layers).
    """

    def __init__(self, viewer, layer_types: str | Sequence[str], allow_none: bool = False):
        super().__init__()
        self._viewer = viewer
        self._types = (layer_types,) if isinstance(layer_types, str) else tuple(layer_types)
        self._allow_none = allow_none
        self.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(12)
        events = viewer.layers.events
        for name in ("inserted", "removed", "moved", "reordered", "renamed"):
            emitter = getattr(events, name, None)
            if emitter is not None:
                emitter.connect(self._on_layers_changed)
        self.refresh()

    def _on_layers_changed(self, event=None) -> None:
        try:
            self.refresh()
        except RuntimeError:  # the Qt object is gone (viewer closing)
            pass

    def layers(self) -> list:
        return [
            layer
            for layer in self._viewer.layers
            if any(is_layer_type(layer, t) for t in self._types)
        ]

    def refresh(self) -> None:
        """Re-read the layer list, keeping the current choice when it still exists."""
        current = self.currentText()
        names = [layer.name for layer in self.layers()]
        if self._allow_none:
            names = ["", *names]
        self.blockSignals(True)
        self.clear()
        self.addItems(names)
        if current in names:
            self.setCurrentText(current)
        elif names:
            # prefer the newest (top) layer of that type
            self.setCurrentIndex(len(names) - 1)
        self.blockSignals(False)
        if self.currentText() != current:
            self.currentIndexChanged.emit(self.currentIndex())

    def layer(self):
        """The chosen layer, or ``None``."""
        name = self.currentText()
        if name and name in self._viewer.layers:
            return self._viewer.layers[name]
        return None

    def set_layer(self, layer_or_name) -> None:
        name = getattr(layer_or_name, "name", layer_or_name)
        self.refresh()
        self.setCurrentText(str(name))


# --------------------------------------------------------------------------- workers


class _Relay(QObject):
    """Carries progress reports from the worker thread to the GUI thread (queued)."""

    progressed = Signal(object)


@dataclass
class _Failed:
    message: str


@dataclass
class _Cancelled:
    message: str


def _is_cancellation(exc: BaseException, stop_event: threading.Event) -> bool:
    """The library's ``Cancelled`` (raised when ``stop`` is set) is a clean stop."""
    return stop_event.is_set() or isinstance(exc, Cancelled)


class TaskRunner(QObject):
    """Run one library call at a time in a background thread.

    ``start(func)`` calls ``func(progress, stop)`` in a napari ``thread_worker``:
    ``progress(dict)`` may be called from the worker (the reports reach ``on_progress``
    in the GUI thread) and ``stop`` is a :class:`threading.Event` set by :meth:`stop`
    (the Stop button). While it runs the ``buttons`` are disabled and a second
    ``start`` is ignored. A :class:`~napari_calcite_afm.io.CalciteAFMError` raised by
    ``func`` is shown as an error notification; anything else goes to napari's error
    reporting, as for any plugin.
    """

    started = Signal()
    finished = Signal()

    def __init__(
        self,
        parent: QWidget,
        buttons: Iterable[QPushButton] = (),
        progress_bar: QProgressBar | None = None,
        stop_button: QPushButton | None = None,
        status: QLabel | None = None,
    ):
        super().__init__(parent)
        self.buttons = list(buttons)
        self.progress_bar = progress_bar
        self.stop_button = stop_button
        self.status = status
        self.stop_event = threading.Event()
        self.worker = None
        self.last_result: Any = None
        self.last_error: str | None = None
        self._relay = _Relay(self)
        self._relay.progressed.connect(self._on_progress)
        self._on_progress_cb: Callable[[dict], None] | None = None
        self._on_done_cb: Callable[[Any], None] | None = None
        if stop_button is not None:
            stop_button.setEnabled(False)
            stop_button.clicked.connect(self.stop)

    @property
    def busy(self) -> bool:
        return self.worker is not None

    def stop(self, *args) -> None:
        """Ask the running call to stop at its next check (it ends cleanly)."""
        self.stop_event.set()
        if self.status is not None and self.busy:
            self.status.setText("stopping…")

    def start(
        self,
        func: Callable[[Callable[[dict], None], threading.Event], Any],
        on_done: Callable[[Any], None] | None = None,
        on_progress: Callable[[dict], None] | None = None,
        message: str = "working…",
    ):
        """Start ``func(progress, stop)`` in a worker; ignored while one is running."""
        if self.busy:
            notify_info("already running: wait for it to finish or press Stop")
            return None
        from napari.qt.threading import create_worker

        self.stop_event = threading.Event()
        stop_event = self.stop_event
        relay = self._relay
        errors = expected_errors()

        def work():
            try:
                return func(relay.progressed.emit, stop_event)
            except errors as exc:
                if _is_cancellation(exc, stop_event):
                    return _Cancelled(str(exc))
                return _Failed(str(exc))
            except Exception as exc:
                if _is_cancellation(exc, stop_event):
                    return _Cancelled(str(exc))
                raise

        self._on_progress_cb = on_progress
        self._on_done_cb = on_done
        self.last_error = None
        for button in self.buttons:
            button.setEnabled(False)
        if self.stop_button is not None:
            self.stop_button.setEnabled(True)
        if self.progress_bar is not None:
            self.progress_bar.setRange(0, 0)  # busy until the first report
            self.progress_bar.setVisible(True)
        if self.status is not None:
            self.status.setText(message)
        worker = create_worker(work)
        worker.returned.connect(self._on_returned)
        worker.errored.connect(self._on_errored)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        self.started.emit()
        worker.start()
        return worker

    def _on_progress(self, info) -> None:
        if self.worker is None:
            return
        if self.progress_bar is not None and isinstance(info, dict):
            done, total = _fraction(info)
            if total:
                self.progress_bar.setRange(0, total)
                self.progress_bar.setValue(done)
        if self._on_progress_cb is not None:
            self._on_progress_cb(info)

    def _on_returned(self, result) -> None:
        if isinstance(result, _Cancelled):
            self.last_error = None
            if self.status is not None:
                self.status.setText(f"stopped: {result.message}" if result.message else "stopped")
            return
        if isinstance(result, _Failed):
            self.last_error = result.message
            if self.status is not None:
                self.status.setText("failed: see the notification")
            notify_error(result.message)
            return
        self.last_result = result
        if self.progress_bar is not None and self.progress_bar.maximum() > 0:
            self.progress_bar.setValue(self.progress_bar.maximum())
        if self.status is not None:
            self.status.setText("stopped" if self.stop_event.is_set() else "done")
        if self._on_done_cb is not None:
            try:
                self._on_done_cb(result)
            except expected_errors() as exc:
                self.last_error = str(exc)
                notify_error(str(exc))

    def _on_errored(self, exc) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"
        if self.status is not None:
            self.status.setText(f"error: {exc}")

    def _on_finished(self) -> None:
        self.worker = None
        for button in self.buttons:
            button.setEnabled(True)
        if self.stop_button is not None:
            self.stop_button.setEnabled(False)
        if self.progress_bar is not None:
            if self.progress_bar.maximum() == 0:
                self.progress_bar.setRange(0, 1)
                self.progress_bar.setValue(0)
        self.finished.emit()


def _fraction(info: dict) -> tuple[int, int]:
    """(done, total) from a library progress report.

    The library's reports differ: ``stats`` gives ``done``/``total``, ``train``
    ``iteration``/``n_iterations`` (iterations done), ``level`` ``frame``/``n_frames``
    (0-based index of the frame just done).
    """
    for done_key, total_key, offset in (
        ("done", "total", 0),
        ("iteration", "n_iterations", 0),
        ("frame", "n_frames", 1),
    ):
        if info.get(total_key):
            done = int(info.get(done_key, 0) or 0) + offset
            total = int(info[total_key])
            return max(0, min(done, total)), total
    if "fraction" in info:
        return round(1000 * float(info["fraction"])), 1000
    return 0, 0


# --------------------------------------------------------------------------- matplotlib


class MplCanvas(QWidget):
    """A matplotlib figure in a Qt widget (with the zoom/save toolbar if ``toolbar``)."""

    def __init__(self, width: float = 4.0, height: float = 3.0, toolbar: bool = False):
        super().__init__()
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=(width, height), layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.canvas.setMinimumHeight(int(height * 60))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        if toolbar:
            from matplotlib.backends.backend_qtagg import NavigationToolbar2QT

            layout.addWidget(NavigationToolbar2QT(self.canvas, self))
        layout.addWidget(self.canvas)

    def draw(self) -> None:
        self.canvas.draw_idle()


# --------------------------------------------------------------------------- small builders


def form_layout() -> QFormLayout:
    form = QFormLayout()
    form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
    form.setLabelAlignment(Qt.AlignRight)
    return form


def run_row(*widgets: QWidget) -> QHBoxLayout:
    row = QHBoxLayout()
    for widget in widgets:
        row.addWidget(widget)
    return row


def class_legend(n_classes: int = 3) -> QLabel:
    """A one-line legend of the fixed label colours (as the Labels layers draw them)."""
    from ..colormap import LABEL_COLORS, LABEL_NAMES

    parts = []
    for value in range(1, n_classes + 1):
        r, g, b, _ = (round(255 * v) for v in LABEL_COLORS[value])
        parts.append(
            f'<span style="color: rgb({r},{g},{b}); font-size: 14pt;">&#9632;</span>&nbsp;'
            f"{LABEL_NAMES[value]}"
        )
    label = QLabel("&nbsp;&nbsp; ".join(parts))
    label.setWordWrap(True)
    return label


def progress_bar() -> QProgressBar:
    bar = QProgressBar()
    bar.setRange(0, 1)
    bar.setValue(0)
    bar.setTextVisible(True)
    bar.setVisible(False)  # shown by TaskRunner.start
    return bar


def status_label(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextSelectableByMouse)
    return label
