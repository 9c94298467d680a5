"""Clean: remove tilt, bow, scan-line offsets and scars (and drift) from AFM heights.

A thin layer over :mod:`napari_calcite_afm.level`: the options are the fields of
:class:`~napari_calcite_afm.level.LevelSettings`; the preview levels the frame under
the time slider, "Apply" levels every frame (and optionally registers them) in a
background thread into a new layer.

The channel list shows the channels of the image's file
(:func:`napari_calcite_afm.io.list_channels`); choosing one reloads the layer with that
channel (:func:`napari_calcite_afm.io.read_stack`) and remembers it for the file, so
the reader opens that channel next time (:mod:`..channels`).
"""

from __future__ import annotations

import warnings

import napari
import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGroupBox,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ...colormap import robust_contrast_limits
from ..channels import remember_channel
from ..conventions import apply_conventions
from ..layers import (
    add_or_update_layer,
    current_frame,
    image_layer_kwargs,
    layer_stack,
    pixel_size_of,
    source_path_of,
)
from ._qt import LayerChooser, form_layout, progress_bar, run_row, status_label
from ._shortcuts import register as register_shortcut
from ._tasks import TaskRunner, guarded

__all__ = ["ROW_METHODS", "CleanWidget"]

#: Scan-line alignment methods offered (value, description).
ROW_METHODS = [
    ("median_diff", "median of differences (Gwyddion default)"),
    ("median", "median of each row"),
    ("polynomial", "polynomial fit of each row"),
    ("none", "no row alignment"),
]


#: Metadata keys of layers computed from a file (not read from it): no channel choice.
_DERIVED = ("cleaned_from", "levelling", "pipeline", "frame")


class CleanWidget(QWidget):
    """Levelling and drift correction of an AFM height stack."""

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__()
        self.viewer = viewer
        self.result_layer = None

        self.image = LayerChooser(viewer, "image")
        self.image.tooltip = "the raw AFM heights (nm) to clean"
        self.channel = QComboBox()
        self.channel.setToolTip(
            "the channel of the image's file: choosing another reloads the layer with it "
            "(remembered for this file, the next time it is opened)"
        )

        self.background_order = QSpinBox()
        self.background_order.setRange(0, 5)
        self.background_order.setToolTip(
            "order of the polynomial surface removed from each frame: 1 = tilt (plane), "
            "2 = tilt + bow, 0 = offset only"
        )
        self.row_method = QComboBox()
        for value, text in ROW_METHODS:
            self.row_method.addItem(text, value)
        self.row_method.setToolTip(
            "how each scan line's own offset is removed ('align rows' in Gwyddion)"
        )
        self.row_order = QSpinBox()
        self.row_order.setRange(0, 5)
        self.row_order.setToolTip("polynomial order per row (the 'polynomial' alignment only)")
        self.scars = QCheckBox("repair scars")
        self.scars.setToolTip(
            "find short streaks along a scan line and fill them from the rows above and below"
        )
        self.robust_iterations = QSpinBox()
        self.robust_iterations.setRange(0, 20)
        self.robust_iterations.setToolTip(
            "passes that exclude pits and other features from the background fit (0 = none)"
        )
        self.outlier_sigma = QDoubleSpinBox()
        self.outlier_sigma.setRange(0.5, 10.0)
        self.outlier_sigma.setSingleStep(0.5)
        self.outlier_sigma.setSuffix(" σ")
        self.outlier_sigma.setToolTip(
            "pixels farther than this from the background (in standard deviations) are "
            "treated as features and left out of the fit"
        )
        self.zero_mean = QCheckBox("zero mean height")
        self.zero_mean.setToolTip("shift each frame so its mean height is 0 nm")
        self.register = QCheckBox("correct drift between frames (registration)")
        self.register.setToolTip(
            "align the frames by cross-correlation; pixels outside the overlap become NaN"
        )
        self.register.setChecked(True)
        self.preview = QCheckBox("preview the current frame (follows the time slider)")
        self.preview.setToolTip(
            "level the frame under the time slider into a '… preview' layer, live"
        )

        self.apply_button = QPushButton("Apply to all frames")
        self.stop_button = QPushButton("Stop")
        self.progress = progress_bar()
        self.status = status_label()

        self._lay_out()

        self.set_settings(self._default_settings())
        self.runner = TaskRunner(
            self,
            [self.apply_button, self.channel],
            self.progress,
            self.stop_button,
            self.status,
            name="Clean",
        )
        self.runner.finished.connect(self._fill_channels)
        self.preview_runner = TaskRunner(self, name="Clean (preview)")
        self.preview_runner.finished.connect(self._preview_finished)
        self._preview_pending = False
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(150)
        self._preview_timer.timeout.connect(self.update_preview)
        self._connect(viewer)
        self._fill_channels()
        apply_conventions(viewer)
        register_shortcut(viewer, "stop", self.stop_tasks)

    def _lay_out(self) -> None:
        """The image and channel, the levelling options, the run row and the status."""
        box = QGroupBox("Levelling (per frame)")
        form = form_layout()
        form.addRow("background order", self.background_order)
        form.addRow("scan-line alignment", self.row_method)
        form.addRow("row polynomial order", self.row_order)
        form.addRow("feature passes", self.robust_iterations)
        form.addRow("feature threshold", self.outlier_sigma)
        form.addRow(self.scars)
        form.addRow(self.zero_mean)
        box.setLayout(form)

        top = form_layout()
        top.addRow("image (raw heights, nm)", self.image.native)
        top.addRow("channel (of its file)", self.channel)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(box)
        layout.addWidget(self.register)
        layout.addWidget(self.preview)
        layout.addLayout(run_row(self.apply_button, self.stop_button))
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addStretch(1)

    def _connect(self, viewer) -> None:
        """Buttons, options and the time slider to their slots."""
        self.apply_button.clicked.connect(lambda *_: self.apply())
        self.preview.toggled.connect(self._schedule_preview)
        for widget in (self.background_order, self.row_order, self.robust_iterations):
            widget.valueChanged.connect(self._schedule_preview)
        self.outlier_sigma.valueChanged.connect(self._schedule_preview)
        self.row_method.currentIndexChanged.connect(self._schedule_preview)
        self.scars.toggled.connect(self._schedule_preview)
        self.zero_mean.toggled.connect(self._schedule_preview)
        self.image.changed.connect(self._schedule_preview)
        self.image.changed.connect(self._fill_channels)
        self.channel.activated.connect(lambda index: self.set_channel(self.channel.itemText(index)))
        viewer.dims.events.current_step.connect(self._schedule_preview)

    def stop_tasks(self) -> None:
        """Stop the levelling running in the background (the Alt+X shortcut)."""
        if self.runner.busy:
            self.runner.stop()

    # ----------------------------------------------------------------- channel

    def _fill_channels(self, *args) -> None:
        """List the channels of the chosen image's file (disabled without a file)."""
        from ...io import list_channels

        layer = self.image.layer()
        source = source_path_of(layer) if layer is not None else None
        meta = (layer.metadata or {}) if layer is not None else {}
        channels: list[str] = []
        derived = any(key in meta for key in _DERIVED)  # cleaned, preview, pipeline
        if source is not None and source.exists() and not derived:
            channels = list(meta.get("channels") or [])
            if not channels:
                try:
                    channels = list_channels(source)
                except (OSError, ValueError):
                    channels = []
        current = meta.get("channel")
        if current and current not in channels:
            channels.insert(0, str(current))
        self.channel.blockSignals(True)
        self.channel.clear()
        self.channel.addItems([str(c) for c in channels] or ["(no file: one channel)"])
        if current:
            self.channel.setCurrentIndex(max(self.channel.findText(str(current)), 0))
        self.channel.blockSignals(False)
        self.channel.setEnabled(len(channels) > 1 and not self.runner.busy)

    @guarded
    def set_channel(self, channel: str):
        """Reload the chosen image layer with ``channel`` of its file, and remember it."""
        from ...io import read_stack

        layer = self.image.layer()
        source = source_path_of(layer) if layer is not None else None
        derived = layer is not None and any(key in (layer.metadata or {}) for key in _DERIVED)
        if layer is None or source is None or not source.exists() or derived:
            self.status.setText("the image has no file to read another channel from")
            return None
        if channel == (layer.metadata or {}).get("channel"):
            return None

        def work(progress, stop):
            return read_stack(source, channel)

        def show(stack):
            heights = stack.heights[0] if layer.ndim == 2 else stack.heights
            meta = dict(layer.metadata or {})
            meta.update(channel=stack.channel, afm_metadata=stack.metadata)
            layer.data = heights
            layer.metadata = meta
            layer.contrast_limits = robust_contrast_limits(heights)
            remember_channel(source, stack.channel)
            self._fill_channels()
            self.status.setText(
                f"layer {layer.name!r} now shows channel {stack.channel!r} of {source.name} "
                "(remembered for this file)"
            )

        return self.runner.start(work, on_done=show, message=f"reading channel {channel!r}…")

    # ----------------------------------------------------------------- settings

    @staticmethod
    def _default_settings():
        from ...level import LevelSettings

        return LevelSettings()

    def settings(self):
        """The :class:`~napari_calcite_afm.level.LevelSettings` chosen in the widget."""
        from ...level import LevelSettings

        return LevelSettings(
            background_order=self.background_order.value(),
            row_method=self.row_method.currentData(),
            row_order=self.row_order.value(),
            scars=self.scars.isChecked(),
            robust_iterations=self.robust_iterations.value(),
            outlier_sigma=self.outlier_sigma.value(),
            zero_mean=self.zero_mean.isChecked(),
        )

    def set_settings(self, settings) -> None:
        """Show ``settings`` (a :class:`~napari_calcite_afm.level.LevelSettings`)."""
        self.background_order.setValue(int(settings.background_order))
        index = self.row_method.findData(settings.row_method)
        if index < 0:
            self.row_method.addItem(str(settings.row_method), settings.row_method)
            index = self.row_method.count() - 1
        self.row_method.setCurrentIndex(index)
        self.row_order.setValue(int(settings.row_order))
        self.scars.setChecked(bool(settings.scars))
        self.robust_iterations.setValue(int(settings.robust_iterations))
        self.outlier_sigma.setValue(float(settings.outlier_sigma))
        self.zero_mean.setChecked(bool(settings.zero_mean))

    # ----------------------------------------------------------------- preview

    def _schedule_preview(self, *args) -> None:
        try:
            if self.preview.isChecked():
                self._preview_timer.start()
        except RuntimeError:  # widget deleted, viewer still emitting
            pass

    @guarded
    def update_preview(self):
        """Level the current frame of the chosen image into the '<image> preview' layer."""
        layer = self.image.layer()
        if layer is None or not self.preview.isChecked():
            return None
        if self.preview_runner.busy:
            self._preview_pending = True
            return None
        from ...level import level_frame

        index = current_frame(self.viewer, layer)
        frame = layer_stack(layer)[index]
        settings = self.settings()
        px = pixel_size_of(layer)
        name = f"{layer.name} preview"

        def work(progress, stop):
            return level_frame(frame, settings)

        def show(levelled):
            kwargs = image_layer_kwargs(
                levelled, px, name, {"frame": index, "levelling": settings.to_dict()}, like=layer
            )
            add_or_update_layer(self.viewer, levelled, kwargs, "image")
            self.status.setText(f"preview of frame {index} in layer {name!r}")

        return self.preview_runner.start(work, on_done=show)

    def _preview_finished(self) -> None:
        if self._preview_pending:
            self._preview_pending = False
            self._schedule_preview()

    # ----------------------------------------------------------------- apply

    @guarded
    def apply(self):
        """Level (and register) every frame in a background thread into '<image> cleaned'."""
        layer = self.image.layer()
        if layer is None:
            self.status.setText("choose an image layer first")
            return None
        from ...level import level_stack, register_stack

        stack = layer_stack(layer)
        settings = self.settings()
        register = self.register.isChecked() and stack.shape[0] > 1
        px = pixel_size_of(layer)
        meta_in = dict(layer.metadata or {})
        name = f"{layer.name} cleaned"

        def work(progress, stop):
            cleaned = level_stack(stack, settings, progress=progress, stop=stop)
            info = {"levelling": settings.to_dict()}
            if register and not stop.is_set():
                progress({"stage": "registering frames"})
                reg = register_stack(cleaned, stop=stop)
                cleaned = reg.aligned
                info["drift_shifts_px"] = np.asarray(reg.shifts).round(3).tolist()
                if reg.confidence is not None:
                    info["drift_confidence"] = np.asarray(reg.confidence).round(3).tolist()
                if reg.messages:  # shown as a napari warning by the task runner
                    warnings.warn(f"{layer.name}: " + "; ".join(reg.messages), stacklevel=1)
            return np.asarray(cleaned, dtype=np.float32), info

        def show(result):
            cleaned, info = result
            if layer.ndim == 2:
                cleaned = cleaned[0]
            keep = ("source", "format", "channel", "frame_times_s")
            meta = {k: meta_in[k] for k in keep if k in meta_in}
            meta.update(info, cleaned_from=layer.name)
            kwargs = image_layer_kwargs(cleaned, px, name, meta, like=layer)
            self.result_layer = add_or_update_layer(self.viewer, cleaned, kwargs, "image")
            if f"{layer.name} preview" in self.viewer.layers:
                self.viewer.layers[f"{layer.name} preview"].visible = False
            text = f"new layer {name!r}: {cleaned.shape[0] if cleaned.ndim == 3 else 1} frame(s)"
            shifts = np.asarray(info.get("drift_shifts_px", []), float)
            if shifts.size:
                drift = float(np.max(np.hypot(shifts[:, 0], shifts[:, 1])))
                text += f", drift corrected (largest shift {drift:.1f} px = {drift * px:.0f} nm)"
            self.status.setText(text)

        def report(info):
            if "stage" in info:
                self.status.setText(str(info["stage"]))
            elif "frame" in info and "n_frames" in info:
                self.status.setText(f"levelled {info['frame'] + 1} of {info['n_frames']} frames")

        return self.runner.start(work, on_done=show, on_progress=report, message="levelling…")
