"""Kinetics: dissolution-rate maps and pit tracks of a segmented movie.

A thin layer over :func:`napari_calcite_afm.kinetics.analyse_kinetics` (the same call as
``calcite-afm kinetics``): from a height layer (levelled, nm) and its Labels layer, in a
background thread. The rate maps (nm/s, diverging colormap centred on 0), the pit ids and
the pit tracks come back as layers (:mod:`.pit_table`); the per-pit table lists every
track with its growth, deepening and step retreat velocities, and selecting a row shows
that pit and plots its area and depth against time. Everything exports to a folder
(:func:`napari_calcite_afm.kinetics.write_kinetics`).
"""

from __future__ import annotations

import math
import os

import napari
import numpy as np
from qtpy.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ...errors import CalciteAFMError
from ..conventions import apply_conventions
from ..layers import layer_stack, pixel_size_of
from ._qt import (
    LayerChooser,
    form_layout,
    output_folder,
    progress_bar,
    rate_smooth_box,
    run_row,
    status_label,
)
from ._shortcuts import register as register_shortcut
from ._tasks import TaskRunner, guarded
from .pit_table import PitTable, show_kinetics

__all__ = ["KineticsWidget", "kinetics_text"]


def kinetics_text(result) -> str:
    """One status line: pairs, mean rate, tracks, velocity ratio and any warning.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> tracks = SimpleNamespace(tracks=[{}, {}], velocity_ratio=2.31)
    >>> r = SimpleNamespace(rate_table=[{"rate_nm_s": 0.01}, {"rate_nm_s": 0.03}],
    ...                     tracks=tracks, messages=[])
    >>> kinetics_text(r)
    '2 frame pairs, mean rate 0.02 nm/s; 2 pit tracks; obtuse/acute velocity ratio 2.31'
    """
    rates = [r.get("rate_nm_s", math.nan) for r in result.rate_table]
    rates = [v for v in rates if isinstance(v, float) and math.isfinite(v)]
    parts = [f"{len(result.rate_table)} frame pairs"]
    if rates:
        parts[0] += f", mean rate {np.mean(rates):.3g} nm/s"
    parts.append(f"{len(result.tracks.tracks)} pit tracks")
    if math.isfinite(result.tracks.velocity_ratio):
        parts.append(f"obtuse/acute velocity ratio {result.tracks.velocity_ratio:.3g}")
    text = "; ".join(parts)
    if result.messages:
        text += "\n⚠ " + "\n⚠ ".join(result.messages)
    return text


class KineticsWidget(QWidget):
    """Rate maps, pit tracks and the per-pit table of a segmented movie."""

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__()
        self.viewer = viewer
        self.result = None
        self.layers: dict = {}
        self.image = LayerChooser(viewer, "image")
        self.labels = LayerChooser(viewer, "labels")
        self.interval = QDoubleSpinBox()
        self.interval.setRange(0.0, 1e7)
        self.interval.setDecimals(3)
        self.interval.setValue(300.0)
        self.interval.setSuffix(" s")
        self.interval.setToolTip(
            "time between frames, s: used where the layer has no frame times "
            "(0: unknown, rates per frame)"
        )
        self.smooth = rate_smooth_box()
        self.register = QCheckBox("register the frames first (unregistered movie)")
        self.run_button = QPushButton("Measure kinetics")
        self.stop_button = QPushButton("Stop")
        self.out_dir = QLineEdit()
        self.out_dir.setPlaceholderText("output folder (rates.tif, pits.csv, tracks.csv...)")
        self.export_button = QPushButton("Export")
        self.export_button.setEnabled(False)
        self.progress = progress_bar()
        self.status = status_label()
        self.table = PitTable(viewer)

        form = form_layout()
        form.addRow("heights", self.image.native)
        form.addRow("labels", self.labels.native)
        form.addRow("frame interval", self.interval)
        form.addRow("smooth rates", self.smooth)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.register)
        layout.addLayout(run_row(self.run_button, self.stop_button))
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.table)
        out_form = form_layout()
        out_form.addRow("export to", self.out_dir)
        layout.addLayout(out_form)
        layout.addWidget(self.export_button)

        self.runner = TaskRunner(
            self,
            [self.run_button, self.export_button],
            self.progress,
            self.stop_button,
            self.status,
            name="Kinetics",
        )
        self.run_button.clicked.connect(lambda *_: self.run())
        self.export_button.clicked.connect(lambda *_: self.export())
        register_shortcut(viewer, "stop", self.stop_tasks)
        apply_conventions(viewer)

    def stop_tasks(self) -> None:
        """Stop the measurement in the background (the Alt+X shortcut)."""
        if self.runner.busy:
            self.runner.stop()

    def _times(self, layer, n: int) -> np.ndarray | None:
        times = (layer.metadata or {}).get("frame_times_s")
        if times is not None and len(times) == n and np.isfinite(np.asarray(times, float)).all():
            return np.asarray(times, float)
        dt = float(self.interval.value())
        return np.arange(n, dtype=float) * dt if dt > 0 else None

    @guarded
    def run(self):
        """Measure rates and pit tracks in a background thread; results become layers."""
        from ...kinetics import analyse_kinetics

        image, labels = self.image.layer(), self.labels.layer()
        if image is None or labels is None:
            raise CalciteAFMError("choose a height layer and its labels layer first")
        heights = layer_stack(image)
        lab = np.asarray(labels.data)
        lab = lab[None] if lab.ndim == 2 else lab
        if lab.shape != heights.shape:
            raise CalciteAFMError(
                f"labels {labels.name!r} have shape {lab.shape}, "
                f"heights {image.name!r} {heights.shape}: they must match"
            )
        px = pixel_size_of(image)
        times = self._times(image, heights.shape[0])
        register = self.register.isChecked()
        smooth_px = float(self.smooth.value())

        def work(progress, stop):
            return analyse_kinetics(
                heights,
                lab.astype(np.uint8, copy=False),
                px,
                times,
                register=register,
                rate_smooth_px=smooth_px,
                progress=progress,
                stop=stop,
            )

        return self.runner.start(
            work, on_done=lambda res: self.show_result(res, image), message="measuring…"
        )

    def show_result(self, result, like=None, name: str | None = None) -> None:
        """Show ``result`` (a ``KineticsResult``) as layers and in the pit table."""
        self.result = result
        name = name or (like.name if like is not None else "movie")
        self.layers = show_kinetics(self.viewer, result, name, like=like)
        self.table.set_tracks(result.tracks.pits, result.tracks.tracks, self.layers["ids"])
        self.export_button.setEnabled(True)
        self.status.setText(kinetics_text(result))

    @guarded
    def export(self, folder: str | os.PathLike | None = None):
        """Write rates.tif, rates.csv, pits.csv, tracks.csv and the figures to ``folder``."""
        from ...kinetics import write_kinetics

        if self.result is None:
            raise CalciteAFMError("measure the kinetics first")
        folder = output_folder(self, self.out_dir, folder)
        if folder is None:
            return None
        result = self.result
        return self.runner.start(
            lambda progress, stop: write_kinetics(result, folder),
            on_done=lambda files: self.status.setText(
                f"wrote {', '.join(sorted(files))} to {folder}"
            ),
            message=f"writing to {folder}…",
        )
