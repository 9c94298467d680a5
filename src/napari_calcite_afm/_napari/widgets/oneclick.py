"""Segment and fit (one click): clean, segment and fit a whole movie.

A thin layer over :func:`napari_calcite_afm.pipeline.run_pipeline` (the same call as
``calcite-afm run``): from an image layer or a file, in a background thread. The cleaned
stack and the masks come back as layers, the Statistics widget opens with the parameters
against time, and everything can be exported to a folder
(:func:`napari_calcite_afm.pipeline.write_outputs`). A model trained at a pixel size more
than twice finer or coarser than the movie's gets a napari warning
(:mod:`..pixel_size`).
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import napari
import numpy as np
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..._util import parse_lags
from ...errors import CalciteAFMError
from ...segmentation.scale import pixel_size_warning
from ..conventions import apply_conventions
from ..layers import (
    add_or_update_layer,
    image_layer_kwargs,
    labels_layer_kwargs,
    layer_stack,
    layer_unit_warning,
    pixel_size_of,
)
from ._model_chooser import ModelChooser, load_spec
from ._qt import (
    LayerChooser,
    class_legend,
    dock_plugin_widget,
    form_layout,
    output_folder,
    progress_bar,
    rate_smooth_box,
    run_row,
    status_label,
)
from ._shortcuts import register as register_shortcut
from ._tasks import TaskRunner, guarded

__all__ = ["STAGES", "OneClickWidget"]

PLUGIN = "napari-calcite-afm"
#: Share of the progress bar given to each pipeline stage (start, end).
STAGES = {
    "read": (0.0, 0.02),
    "level": (0.02, 0.3),
    "register": (0.3, 0.35),
    "segment": (0.35, 0.8),
    "fit": (0.8, 0.93),
    "kinetics": (0.93, 0.97),
    "write": (0.97, 1.0),
}


def _overall(info: dict) -> dict:
    """A pipeline report as one fraction of the whole run.

    Examples
    --------
    >>> _overall({"stage": "segment", "frame": 4, "n_frames": 10})["fraction"]
    0.575
    """
    lo, hi = STAGES.get(info.get("stage"), (0.0, 1.0))
    n = max(int(info.get("n_frames") or 1), 1)
    done = (int(info.get("frame") or 0) + 1) / n
    return {"fraction": lo + (hi - lo) * min(done, 1.0), "stage": info.get("stage")}


def _warn_pixel_size(model, pixel_size_nm, what: str) -> bool:
    """Emit the pixel-size warning (shown by the task runner); True once it is judged."""
    if pixel_size_nm is None:
        return False
    text = pixel_size_warning(model, float(pixel_size_nm), what)
    if text:
        warnings.warn(text, UserWarning, stacklevel=2)
    return True


def _file_row(line: QLineEdit, button: QPushButton) -> QWidget:
    row = QHBoxLayout()
    row.setContentsMargins(0, 0, 0, 0)
    row.addWidget(line)
    row.addWidget(button)
    holder = QWidget()
    holder.setLayout(row)
    return holder


class OneClickWidget(QWidget):
    """Clean, segment and fit a whole time series, then show and export the results."""

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__()
        self.viewer = viewer
        self.result = None
        self.layers: dict = {}
        self.statistics = None
        self.kinetics = None

        self.input_kind = QComboBox()
        self.input_kind.addItem("an image layer (raw heights, nm)", "layer")
        self.input_kind.addItem("an AFM file or folder", "file")
        self.image = LayerChooser(viewer, "image")
        self.path = QLineEdit()
        self.path.setPlaceholderText("AFM file, TIFF or folder of frames")
        self.browse = QPushButton("Browse…")
        self.file_row = _file_row(self.path, self.browse)
        self.model = ModelChooser()
        self.lags = QLineEdit("1, 2, 4, 8")
        self.lags.setToolTip("lags s of the increment statistics, pixels")
        self.register = QCheckBox("correct drift between frames")
        self.register.setChecked(True)
        self.temporal = QCheckBox("label each frame with its two neighbours (3-frame mean)")
        self.temporal.setToolTip(
            "average the class probabilities of the registered frames t-1, t, t+1: pits "
            "no longer flicker and about half as many pit tracks (mostly fragments) are "
            "made; each frame's own probabilities are kept"
        )
        self.smooth = rate_smooth_box()
        self.run_button = QPushButton("Run: clean → segment → fit")
        self.stop_button = QPushButton("Stop")
        self.out_dir = QLineEdit()
        self.out_dir.setPlaceholderText("output folder (TIFFs, table.csv, figures)")
        self.out_browse = QPushButton("Browse…")
        self.export_button = QPushButton("Export everything")
        self.export_button.setEnabled(False)
        self.progress = progress_bar()
        self.status = status_label()

        form = form_layout()
        form.addRow("input", self.input_kind)
        form.addRow("image", self.image.native)
        form.addRow("file", self.file_row)
        form.addRow("model", self.model)
        form.addRow("lags (px)", self.lags)
        form.addRow("smooth rates", self.smooth)
        self._form = form
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.register)
        layout.addWidget(self.temporal)
        layout.addLayout(run_row(self.run_button, self.stop_button))
        layout.addWidget(self.progress)
        layout.addWidget(class_legend(3))
        layout.addWidget(self.status)
        out_form = form_layout()
        out_form.addRow("export to", _file_row(self.out_dir, self.out_browse))
        layout.addLayout(out_form)
        layout.addWidget(self.export_button)
        layout.addStretch(1)

        self.runner = TaskRunner(
            self,
            [self.run_button, self.export_button],
            self.progress,
            self.stop_button,
            self.status,
            name="Segment and fit",
        )
        self.input_kind.currentIndexChanged.connect(self._update_input)
        self.browse.clicked.connect(lambda *_: self._browse_input())
        self.out_browse.clicked.connect(lambda *_: self._browse_out())
        self.run_button.clicked.connect(lambda *_: self.run())
        self.export_button.clicked.connect(lambda *_: self.export())
        self._update_input()
        register_shortcut(viewer, "stop", self.stop_tasks)
        apply_conventions(viewer)

    def stop_tasks(self) -> None:
        """Stop the run in the background (the Alt+X shortcut)."""
        if self.runner.busy:
            self.runner.stop()

    # ----------------------------------------------------------------- inputs

    def _update_input(self, *args) -> None:
        from_file = self.input_kind.currentData() == "file"
        self.image.enabled = not from_file
        self.file_row.setEnabled(from_file)

    def _browse_input(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "AFM file")
        if path:
            self.set_input_file(path)

    def _browse_out(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output folder")
        if folder:
            self.out_dir.setText(folder)

    def set_input_file(self, path) -> None:
        """Run on the AFM file or folder ``path`` (instead of a layer)."""
        self.input_kind.setCurrentIndex(self.input_kind.findData("file"))
        self.path.setText(str(path))

    # ----------------------------------------------------------------- run

    @guarded
    def run(self):
        """Run the pipeline in a background thread; results become layers and plots."""
        from ...pipeline import PipelineConfig

        config = PipelineConfig(
            lags=parse_lags(self.lags.text()),
            register=self.register.isChecked(),
            temporal_window=3 if self.temporal.isChecked() else 1,
            rate_smooth_px=float(self.smooth.value()),
        )
        spec = self.model.spec()
        kwargs: dict = {}
        unit_warning = None  # a file's channel is judged by run_pipeline once read
        if self.input_kind.currentData() == "file":
            text = self.path.text().strip()
            if not text:
                raise CalciteAFMError("choose an AFM file or folder first")
            source = Path(text)
            name = source.stem or source.name
            like = None
            what = f"{source.name}"
        else:
            layer = self.image.layer()
            if layer is None:
                raise CalciteAFMError("choose an image layer first")
            source = layer_stack(layer)
            name = layer.name
            like = layer
            what = f"layer {layer.name!r}"
            kwargs["pixel_size_nm"] = pixel_size_of(layer)
            unit_warning = layer_unit_warning(layer)
            times = (layer.metadata or {}).get("frame_times_s")
            if times is not None and len(times) > 1:
                kwargs["frame_interval_s"] = float(np.median(np.diff(times)))

        def work(progress, stop):
            from ...pipeline import run_pipeline

            progress({"stage": "read", "frame": 0, "n_frames": 1})
            model = load_spec(spec)
            # A layer's pixel size is known now; a file's is judged by run_pipeline,
            # which warns (naming the file) once it has read it.
            if unit_warning:
                warnings.warn(unit_warning, UserWarning, stacklevel=1)
            if "pixel_size_nm" in kwargs:
                _warn_pixel_size(model, kwargs["pixel_size_nm"], what)
            result = run_pipeline(
                source,
                model=model,
                config=config,
                progress=lambda info: progress(_overall(info)),
                stop=stop,
                **kwargs,
            )
            return result

        def report(info):
            if info.get("stage"):
                self.status.setText(f"{info['stage']}…")

        def done(result):
            self.show_result(result, name, like)

        return self.runner.start(work, on_done=done, on_progress=report, message="running…")

    def show_result(self, result, name: str, like=None) -> None:
        """Add the cleaned stack and the masks as layers and open the Statistics plots.

        ``like``: the input layer, whose scale, translation and axes the new layers take
        (without it, the time axis comes from the run's frame times).
        """
        self.result = result
        px = result.pixel_size_nm
        times = [float(t) for t in np.asarray(result.frame_times_s, float)]
        meta = {"frame_times_s": times, "pipeline": result.summary.get("config")}
        if result.shifts_px is not None:
            meta["drift_shifts_px"] = np.asarray(result.shifts_px).round(3).tolist()
        ikw = image_layer_kwargs(result.cleaned, px, f"{name} cleaned", meta, like=like)
        lkw = labels_layer_kwargs(
            result.labels, px, f"{name} segmentation", {"frame_times_s": times}, like=like
        )
        cleaned = add_or_update_layer(self.viewer, result.cleaned, ikw, "image")
        labels = add_or_update_layer(self.viewer, result.labels, lkw, "labels")
        self.layers = {"cleaned": cleaned, "labels": labels}
        self.export_button.setEnabled(True)
        self._open_statistics(cleaned, labels, result)
        if getattr(result, "kinetics", None) is not None:
            self._open_kinetics(cleaned, labels, result, name)
        c = [r["c"] for r in result.table if r.get("lag_px") == result.table[0].get("lag_px")]
        c = [v for v in c if isinstance(v, float) and math.isfinite(v)]
        text = f"{len(result.fits)} frames: layers {cleaned.name!r} and {labels.name!r}"
        if c:
            text += f"; pit area fraction c from {min(c):.3f} to {max(c):.3f}"
        self.status.setText(text)

    def _open_statistics(self, cleaned, labels, result) -> None:
        """Dock (or reuse) the Statistics widget and give it this run's table."""
        from .statistics import StatisticsWidget

        widget = dock_plugin_widget(self.viewer, PLUGIN, "Statistics", StatisticsWidget)
        widget.image.set_layer(cleaned)
        widget.labels.set_layer(labels)
        widget.n_classes.setCurrentIndex(widget.n_classes.findData(result.n_classes))
        widget.set_series(result.table, result.fits)
        widget.tabs.setCurrentIndex(1)
        self.statistics = widget

    def _open_kinetics(self, cleaned, labels, result, name: str) -> None:
        """Dock (or reuse) the Kinetics widget with this run's rates and pit tracks."""
        from .kinetics import KineticsWidget

        widget = dock_plugin_widget(self.viewer, PLUGIN, "Kinetics", KineticsWidget)
        widget.image.set_layer(cleaned)
        widget.labels.set_layer(labels)
        widget.show_result(result.kinetics, like=cleaned, name=name)
        self.kinetics = widget

    # ----------------------------------------------------------------- export

    @guarded
    def export(self, folder: str | os.PathLike | None = None):
        """Write every output of the last run into ``folder`` (or the chosen one)."""
        from ...pipeline import write_outputs

        if self.result is None:
            raise CalciteAFMError("run the pipeline first")
        folder = output_folder(self, self.out_dir, folder)
        if folder is None:
            return None
        result = self.result

        def done(files):
            self.status.setText(f"wrote {', '.join(sorted(files))} to {folder}")

        return self.runner.start(
            lambda progress, stop: write_outputs(result, folder),
            on_done=done,
            message=f"writing to {folder}…",
        )
