"""The background-task runner of the dock widgets, and how they report to the user.

- :class:`TaskRunner`: runs one library call at a time in a napari ``thread_worker``,
  relays its ``progress`` reports to the GUI thread (the widget's own bar and a bar in
  napari's activity dock, whose Cancel button stops the task), owns the stop ``Event``,
  disables the start buttons while it runs, turns a
  :class:`~napari_calcite_afm.errors.CalciteAFMError` into a notification (no traceback
  dialog) and shows every Python warning the call emits (a drift registration that
  diverges, a model applied to another pixel size...) as a napari warning;
- :func:`guarded`: the same for a slot run in the GUI thread;
- :func:`notify_error`, :func:`notify_warning`, :func:`notify_info`: napari notifications.

Widgets stay thin: they collect options, call the library in a :class:`TaskRunner`
and show the result as layers, plots and tables.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from napari.utils import cancelable_progress, progress
from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import QLabel, QProgressBar, QPushButton, QWidget

from ...errors import CalciteAFMError, Cancelled

__all__ = [
    "TaskRunner",
    "expected_errors",
    "guarded",
    "notify_error",
    "notify_info",
    "notify_warning",
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
    """Errors a user can cause: shown as a one-line notification, never a traceback.

    Examples
    --------
    >>> [error.__name__ for error in expected_errors()]
    ['CalciteAFMError']
    """
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
    params = list(inspect.signature(method).parameters.values())[1:]
    return any(p.default is inspect.Parameter.empty for p in params)


# --------------------------------------------------------------------------- the runner


class _StoppingProgress(cancelable_progress):
    """A bar of napari's activity dock whose Cancel button stops the task at once.

    napari's ``cancelable_progress`` calls its callback only while it is iterated; the
    runner's reports update it by hand, so ``cancel`` calls the callback itself.
    """

    def cancel(self) -> None:
        super().cancel()
        if self.cancel_callback is not None:
            self.cancel_callback()


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
    ``start`` is ignored. A :class:`~napari_calcite_afm.errors.CalciteAFMError` raised by
    ``func`` is shown as an error notification; anything else goes to napari's error
    reporting, as for any plugin.

    Each call also has a bar in napari's activity dock (``napari.utils.progress``, named
    "<name>: <message>"), with a Cancel button when the runner has a Stop button. The
    Python warnings the call emits are collected in :attr:`warnings` and each shown
    once per call as a napari warning notification (napari itself shows a warning only
    once per session).

    Parameters
    ----------
    parent : QWidget
        The widget that owns the runner.
    buttons : iterable of QPushButton
        Disabled while a call runs.
    progress_bar : QProgressBar, optional
        Shows the reports' progress (busy until the first one).
    stop_button : QPushButton, optional
        Sets the stop event; enabled only while a call runs.
    status : QLabel, optional
        Shows "working…", "done", "stopped" or the failure.
    name : str, optional
        The widget's name, for the activity dock (e.g. ``"Clean"``).
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
        name: str = "Calcite AFM",
    ):
        super().__init__(parent)
        self.name = name
        self.activity = None  # the napari.utils.progress of the running call
        self.warnings: list[str] = []
        self._returned = False
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
        """True while a call runs."""
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
        """Start ``func(progress, stop)`` in a worker; ignored while one is running.

        ``on_done(result)`` and ``on_progress(info)`` run in the GUI thread. Returns the
        worker, or ``None`` when a call is already running.
        """
        if self.busy:
            notify_info("already running: wait for it to finish or press Stop")
            return None
        from napari.qt.threading import create_worker

        self.stop_event = threading.Event()
        work = _guarded_work(func, self._relay, self.stop_event)
        self._on_progress_cb = on_progress
        self._on_done_cb = on_done
        self.last_error = None
        worker = create_worker(work)
        # the call's warnings come here (napari's own relay shows each only once)
        with contextlib.suppress(TypeError, RuntimeError):
            worker.warned.disconnect()
        worker.warned.connect(self._on_warned)
        worker.returned.connect(self._on_returned)
        worker.errored.connect(self._on_errored)
        worker.finished.connect(self._on_finished)
        self._returned = False
        self.worker = worker  # busy from here: the activity dock processes Qt events
        self._show_started(message)
        self.started.emit()
        worker.start()
        return worker

    def _show_started(self, message: str) -> None:
        self.warnings = []
        for button in self.buttons:
            button.setEnabled(False)
        if self.stop_button is not None:
            self.stop_button.setEnabled(True)
        if self.progress_bar is not None:
            self.progress_bar.setRange(0, 0)  # busy until the first report
            self.progress_bar.setVisible(True)
        if self.status is not None:
            self.status.setText(message)
        self._open_activity(message)  # last: napari processes Qt events here

    def _on_progress(self, info) -> None:
        if self.worker is None or self._returned:
            return  # a late report (from a pool thread of the call) must not undo "done"
        done, total = _fraction(info) if isinstance(info, dict) else (0, 0)
        if total and self.progress_bar is not None:
            self.progress_bar.setRange(0, total)
            self.progress_bar.setValue(done)
        if self._on_progress_cb is not None:
            self._on_progress_cb(info)
        if isinstance(info, dict):
            # last: napari's activity bars process Qt events when they change, so the
            # next reports (even the result) may be handled inside this call
            self._update_activity(info, done, total)

    def _open_activity(self, message: str) -> None:
        """A bar in napari's activity dock (busy until the first report)."""
        self._close_activity()
        text = f"{self.name}: {message.rstrip('…').rstrip('.')}"
        if self.stop_button is not None:
            self.activity = _StoppingProgress(total=0, desc=text, cancel_callback=self.stop)
        else:
            self.activity = progress(total=0, desc=text)

    def _update_activity(self, info: dict, done: int, total: int) -> None:
        bar = self.activity
        if bar is None:
            return
        if total:
            if bar.total != total:
                bar.total = total
            if done != bar.n:
                bar.update(done - bar.n)
        text = f"{self.name}: {info['stage']}" if info.get("stage") else None
        if text and self.activity is bar and bar.desc.rstrip(": ") != text:
            bar.set_description(text)

    def _close_activity(self) -> None:
        if self.activity is not None:
            bar, self.activity = self.activity, None
            bar.close()

    def _on_warned(self, args: tuple) -> None:
        """A warning from the call: one notification per distinct message."""
        message = str(args[0]) if args else ""
        if not message or message in self.warnings:
            return
        self.warnings.append(message)
        notify_warning(message)
        if self.status is not None:
            self.status.setText(f"warning: {message}")

    def _on_returned(self, result) -> None:
        self._returned = True
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
            text = "stopped" if self.stop_event.is_set() else "done"
            if self.warnings:
                text += f" (warning: {self.warnings[-1]})"
            self.status.setText(text)
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
        self._close_activity()
        self.finished.emit()


def _guarded_work(func: Callable, relay: _Relay, stop_event: threading.Event) -> Callable:
    """``func(progress, stop)`` for the worker: a user error or a stop becomes a value."""
    errors = expected_errors()

    def report(info) -> None:
        try:
            relay.progressed.emit(info)
        except RuntimeError:  # the widget was closed while the call ran
            stop_event.set()

    def work():
        try:
            return func(report, stop_event)
        except errors as exc:
            if _is_cancellation(exc, stop_event):
                return _Cancelled(str(exc))
            return _Failed(str(exc))
        except Exception as exc:
            if _is_cancellation(exc, stop_event):
                return _Cancelled(str(exc))
            raise

    return work


def _fraction(info: dict) -> tuple[int, int]:
    """(done, total) from a library progress report.

    The library's reports differ: ``stats`` gives ``done``/``total``, ``train``
    ``iteration``/``n_iterations`` (iterations done), ``level`` ``frame``/``n_frames``
    (0-based index of the frame just done).

    Examples
    --------
    >>> _fraction({"frame": 2, "n_frames": 10}), _fraction({"fraction": 0.5})
    ((3, 10), (500, 1000))
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
