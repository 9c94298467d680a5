"""Statistics: the multimodal Gaussian model of the heights, frame by frame and over time.

A thin layer over :func:`napari_calcite_afm.stats.fit_frame`,
:func:`napari_calcite_afm.pipeline.fit_series` and the figures of
:mod:`napari_calcite_afm.plotting` (so the plots show exactly the library's numbers):

- tab "Current frame" follows the time slider: histogram of Z' with the fitted mixture
  f and its modes, histogram of the increments dZ(s) with g(d; s) for the chosen lag, and a
  table of the seven parameters with the goodness of fit (with the GSG model chosen, its
  densities dashed green and its parameters below: ``_statistics_gsg``);
- tab "Against time" fits every frame in a background thread and draws each parameter
  against time;
- the table exports to CSV, the figures to PNG and SVG (black on white; the frame's
  figure as the command line writes it, with the frame itself, its scale bar in nm and
  its colorbar).

The plots take the colours of napari's theme (dark by default).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import napari
import numpy as np
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHeaderView,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..._util import parse_lags
from ...errors import CalciteAFMError
from ..conventions import apply_conventions
from ..layers import current_frame, layer_stack, pixel_size_of
from ._qt import LayerChooser, MplCanvas, form_layout, progress_bar, run_row, status_label
from ._shortcuts import register as register_shortcut
from ._statistics_gsg import GSG_PARAMETERS, increment_model_combo
from ._tasks import TaskRunner, guarded

__all__ = ["PARAMETERS", "StatisticsWidget"]

#: Rows of the parameter table: (key, label, unit, meaning).
PARAMETERS = [
    ("c", "c", "", "area fraction of multilayer pits (A)"),
    ("mu_A", "μ_A", "nm", "mean Z' in pits (A)"),
    ("sigma_A", "σ_A", "nm", "std. dev. of Z' in pits (A)"),
    ("rho_A", "ρ_A(s)", "", "correlation at lag s in pits (A)"),
    ("mu_B", "μ_B", "nm", "mean Z' on terraces (B)"),
    ("sigma_B", "σ_B", "nm", "std. dev. of Z' on terraces (B)"),
    ("rho_B", "ρ_B(s)", "", "correlation at lag s on terraces (B)"),
    ("ks_height", "KS heights", "", "Kolmogorov-Smirnov, Z' vs f (0 = perfect)"),
    ("ks_increment", "KS increments", "", "Kolmogorov-Smirnov, dZ(s) vs g"),
]


def _format(value, unit: str) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(v):
        return "—"
    return f"{v:.4g} {unit}".strip()


class StatisticsWidget(QWidget):
    """Fit and plot the multimodal Gaussian model of the current frame and over time."""

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__()
        self.viewer = viewer
        self.fit = None  # FrameFit of the current frame
        self.fit_frame_index: int | None = None
        self.fit_heights: np.ndarray | None = None  # that frame's heights (nm)
        self.rows: list[dict] = []  # the time table (one row per frame and lag)
        self.fits: list = []
        self.artists: dict = {}
        self.time_lines: dict = {}
        self._pending = False

        self._make_options(viewer)
        self.tabs = QTabWidget()
        self.tabs.addTab(self._make_frame_tab(), "Current frame")
        self.tabs.addTab(self._make_time_tab(), "Against time")
        self.export_table_button = QPushButton("Export table (CSV)…")
        self.export_figures_button = QPushButton("Export figures (PNG, SVG)…")
        self.progress = progress_bar()
        self.status = status_label()
        self._lay_out()

        self.runner = TaskRunner(
            self,
            [self.fit_all_button],
            self.progress,
            self.stop_button,
            self.status,
            name="Statistics",
        )
        self.frame_runner = TaskRunner(self, name="Statistics (current frame)")
        self.frame_runner.finished.connect(self._frame_finished)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(120)
        self._timer.timeout.connect(self.update_frame)

        self._fill_lags()
        self._connect(viewer)
        apply_conventions(viewer)
        register_shortcut(viewer, "stop", self.stop_tasks)
        self._schedule()

    def stop_tasks(self) -> None:
        """Stop the fits running in the background (the Alt+X shortcut)."""
        for runner in (self.runner, self.frame_runner):
            if runner.busy:
                runner.stop()

    # ----------------------------------------------------------------- building

    def _make_options(self, viewer) -> None:
        """The inputs and fit options (the form at the top)."""
        self.image = LayerChooser(viewer, "image")
        self.image.tooltip = "cleaned (levelled) heights in nm"
        self.labels = LayerChooser(viewer, "labels")
        self.labels.tooltip = "the segmentation: 1 multilayer pit (A), 2 terrace (B)"
        self.lags = QLineEdit("1, 2, 4, 8")
        self.lags.setToolTip("lags s in pixels, comma separated (the pixel size gives nm)")
        self.lag = QComboBox()
        self.lag.setToolTip("the lag whose increment histogram, ρ and KS are shown")
        self.axis = QComboBox()
        self.axis.addItem("both directions (pooled)", "both")
        self.axis.addItem("x (fast scan, along rows)", "x")
        self.axis.addItem("y (slow scan, along columns)", "y")
        self.n_classes = QComboBox()
        self.n_classes.addItem("2 modes: A pits, B terraces (3 counts as B)", 2)
        self.n_classes.addItem("3 modes: + monolayer pits", 3)
        self.increment_model = increment_model_combo()

        self.log_heights = QCheckBox("log density for heights (shows a small pit mode)")
        self.log_heights.setChecked(True)

    def _make_frame_tab(self) -> QWidget:
        """Tab 1: the current frame's histograms and the parameter table."""
        self.frame_plot = MplCanvas(4.2, 5.0, viewer=self.viewer)
        rows = PARAMETERS + GSG_PARAMETERS
        self.table = QTableWidget(len(rows), 3)
        self.table.setHorizontalHeaderLabels(["parameter", "value", "meaning"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.Stretch)
        for r, (_, label, _, meaning) in enumerate(rows):
            self.table.setItem(r, 0, QTableWidgetItem(label))
            item = QTableWidgetItem(meaning)
            item.setToolTip(meaning)
            self.table.setItem(r, 2, item)
        self.table.resizeRowsToContents()
        self._show_gsg_rows(False)
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        frame_tab = QWidget()
        frame_layout = QVBoxLayout(frame_tab)
        frame_layout.setContentsMargins(2, 2, 2, 2)
        frame_layout.addWidget(self.log_heights)
        frame_layout.addWidget(self.frame_plot, 1)
        frame_layout.addWidget(self.table)
        return frame_tab

    def _make_time_tab(self) -> QWidget:
        """Tab 2: "Fit all frames" and the parameters against time."""
        self.fit_all_button = QPushButton("Fit all frames")
        self.stop_button = QPushButton("Stop")
        self.time_plot = MplCanvas(4.2, 7.5, viewer=self.viewer)
        self.time_plot.setMinimumHeight(580)
        self._now_lines: list = []
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.time_plot)
        time_tab = QWidget()
        time_layout = QVBoxLayout(time_tab)
        time_layout.addLayout(run_row(self.fit_all_button, self.stop_button))
        time_layout.addWidget(scroll)
        return time_tab

    def _lay_out(self) -> None:
        form = form_layout()
        form.addRow("heights (nm)", self.image.native)
        form.addRow("segmentation", self.labels.native)
        form.addRow("lags (px)", self.lags)
        form.addRow("lag shown", self.lag)
        form.addRow("direction", self.axis)
        form.addRow("modes", self.n_classes)
        form.addRow("increment model", self.increment_model)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.tabs, 1)
        layout.addLayout(run_row(self.export_table_button, self.export_figures_button))
        layout.addWidget(self.progress)
        layout.addWidget(self.status)

    def _connect(self, viewer) -> None:
        self.lags.editingFinished.connect(self._on_lags_edited)
        self.lag.currentIndexChanged.connect(self._on_lag_changed)
        for combo in (self.axis, self.n_classes, self.increment_model):
            combo.currentIndexChanged.connect(self._schedule)
        for chooser in (self.image, self.labels):
            chooser.changed.connect(self._schedule)
        self.log_heights.toggled.connect(lambda *_: self._draw_frame())
        self.fit_all_button.clicked.connect(lambda *_: self.fit_all())
        self.export_table_button.clicked.connect(lambda *_: self.export_table())
        self.export_figures_button.clicked.connect(lambda *_: self.export_figures())
        viewer.dims.events.current_step.connect(self._schedule)

    # ----------------------------------------------------------------- options

    def _fill_lags(self) -> None:
        try:
            lags = parse_lags(self.lags.text())
        except ValueError:
            return
        current = self.lag.currentData()
        self.lag.blockSignals(True)
        self.lag.clear()
        image = self.image.layer()
        px = pixel_size_of(image) if image is not None else None
        for s in lags:
            self.lag.addItem(f"{s} px" + (f" = {s * px:.4g} nm" if px else ""), s)
        index = self.lag.findData(current)
        self.lag.setCurrentIndex(max(index, 0))
        self.lag.blockSignals(False)

    def _on_lags_edited(self) -> None:
        self._fill_lags()
        self._schedule()

    def _on_lag_changed(self, *args) -> None:
        if self.fit is not None and self.chosen_lag() in [ls.lag_px for ls in self.fit.lags]:
            self._draw_frame()
        else:
            self._schedule()
        if self.rows:
            self._draw_time()

    def chosen_lag(self) -> int:
        """The lag (pixels) whose increments, ρ and KS are shown."""
        value = self.lag.currentData()
        return int(value) if value is not None else parse_lags(self.lags.text())[0]

    def settings(self) -> dict:
        """Keyword arguments of the fits chosen in the widget."""
        return {
            "lags": parse_lags(self.lags.text()),
            "axis": self.axis.currentData(),
            "n_classes": int(self.n_classes.currentData()),
            "increment_model": self.increment_model.currentData(),
        }

    def _inputs(self):
        image, labels = self.image.layer(), self.labels.layer()
        if image is None or labels is None:
            return None
        z = layer_stack(image)
        lab = np.asarray(labels.data)
        if lab.ndim == 2:
            lab = lab[np.newaxis]
        if lab.shape != z.shape:
            raise CalciteAFMError(
                f"segmentation {labels.name!r} has shape {lab.shape} but heights "
                f"{image.name!r} have shape {z.shape}"
            )
        return image, z, lab

    # ----------------------------------------------------------------- current frame

    def _schedule(self, *args) -> None:
        try:
            self._timer.start()
            self._mark_current()
        except RuntimeError:  # widget deleted
            pass

    @guarded
    def update_frame(self):
        """Fit the frame under the time slider (in a worker) and redraw tab 1."""
        if self.frame_runner.busy:
            self._pending = True
            return None
        inputs = self._inputs()
        if inputs is None:
            self.status.setText("choose the heights and their segmentation")
            return None
        image, z, lab = inputs
        index = current_frame(self.viewer, image)
        kwargs = self.settings()
        kwargs["pixel_size_nm"] = pixel_size_of(image)
        frame, labels = z[index], lab[index]

        def work(progress, stop):
            from ...stats import fit_frame

            return fit_frame(frame, labels, **kwargs)

        def show(fit):
            self.fit, self.fit_frame_index, self.fit_heights = fit, index, frame
            self._draw_frame()

        return self.frame_runner.start(work, on_done=show)

    def _frame_finished(self) -> None:
        if self._pending:
            self._pending = False
            self._schedule()

    def _draw_frame(self) -> None:
        from ...plotting import plot_height_fit, plot_increment_fit

        fit = self.fit
        if fit is None:
            return
        lag = self.chosen_lag()
        if lag not in [ls.lag_px for ls in fit.lags]:
            lag = fit.lags[0].lag_px
        fig = self.frame_plot.figure
        fig.clear()
        ax_h, ax_d = fig.subplots(2, 1)
        self.artists = {
            "height": plot_height_fit(ax_h, fit, log=self.log_heights.isChecked()),
            "increment": plot_increment_fit(ax_d, fit, lag),
        }
        ax_h.set_title(f"frame {self.fit_frame_index}: heights Z'", fontsize=9)
        ax_d.set_title(f"increments at lag {lag} px", fontsize=9)
        self.frame_plot.draw()
        self._fill_table(fit, lag)
        flags = list(fit.flags) + list(fit.lag(lag).flags)
        note = f" — note: {'; '.join(flags)}" if flags else ""
        self.status.setText(f"frame {self.fit_frame_index}, lag {lag} px{note}")

    def frame_rows(self) -> list[dict]:
        """Table rows of the current frame's fit (every lag)."""
        if self.fit is None:
            return []
        time_s = math.nan
        image = self.image.layer()
        times = (image.metadata or {}).get("frame_times_s") if image is not None else None
        if times is not None and self.fit_frame_index < len(times):
            time_s = float(times[self.fit_frame_index])
        return self.fit.to_rows(frame=self.fit_frame_index, time_s=time_s)

    def _show_gsg_rows(self, show: bool) -> None:
        """Show or hide the GSG rows of the table, which is as tall as its rows."""
        n = len(PARAMETERS) + (len(GSG_PARAMETERS) if show else 0)
        for r in range(len(PARAMETERS), self.table.rowCount()):
            self.table.setRowHidden(r, not show)
        rows_height = sum(self.table.rowHeight(r) for r in range(n))
        header = self.table.horizontalHeader().sizeHint().height()
        self.table.setMinimumHeight(rows_height + header + 2 * self.table.frameWidth() + 4)

    def _fill_table(self, fit, lag: int) -> None:
        row = next(r for r in self.frame_rows() if r["lag_px"] == lag)
        for r, (key, _, unit, _) in enumerate(PARAMETERS + GSG_PARAMETERS):
            self.table.setItem(r, 1, QTableWidgetItem(_format(row.get(key), unit)))
        self._show_gsg_rows(fit.gsg is not None)
        self.table.resizeColumnToContents(0)
        self.table.resizeColumnToContents(1)

    def table_values(self) -> dict[str, float]:
        """The numbers shown in the table, by key (tests compare them with the library)."""
        lag = self.chosen_lag()
        row = next((r for r in self.frame_rows() if r["lag_px"] == lag), {})
        keys = PARAMETERS + (GSG_PARAMETERS if "ks_increment_gsg" in row else [])
        return {key: row.get(key, math.nan) for key, *_ in keys}

    # ----------------------------------------------------------------- against time

    @guarded
    def fit_all(self):
        """Fit every frame in a background thread and draw the parameters against time."""
        inputs = self._inputs()
        if inputs is None:
            self.status.setText("choose the heights and their segmentation")
            return None
        image, z, lab = inputs
        kwargs = self.settings()
        px = pixel_size_of(image)
        times = (image.metadata or {}).get("frame_times_s")

        def work(progress, stop):
            from ...pipeline import fit_series

            return fit_series(
                z,
                lab,
                pixel_size_nm=px,
                frame_times_s=times,
                progress=progress,
                stop=stop,
                **kwargs,
            )

        def done(result):
            self.set_series(*result)
            self.tabs.setCurrentIndex(1)
            self.status.setText(f"fitted {len(self.fits)} frames")

        return self.runner.start(work, on_done=done, message="fitting every frame…")

    def set_series(self, rows: list[dict], fits: list | None = None) -> None:
        """Show a time table (from :meth:`fit_all` or the one-click pipeline)."""
        self.rows = list(rows)
        self.fits = list(fits or [])
        lags = sorted({int(r["lag_px"]) for r in self.rows if np.isfinite(r.get("lag_px", np.nan))})
        if lags and lags != list(parse_lags(self.lags.text())):
            self.lags.setText(", ".join(str(s) for s in lags))
            self._fill_lags()
        self._draw_time()

    def _draw_time(self) -> None:
        from ...plotting import plot_parameters_vs_time

        fig = self.time_plot.figure
        fig.clear()
        self._now_lines = []
        if self.rows:
            lag = self.chosen_lag()
            self.time_lines = plot_parameters_vs_time(fig, self.rows, lag=lag)
            timed = all(math.isfinite(float(r.get("time_s", math.nan))) for r in self.rows)
            fig.suptitle(
                f"against {'time (min)' if timed else 'frame'}; ρ and KS(dZ) at lag {lag} px; "
                "dotted: frame shown",
                fontsize=8,
            )
            self._now_lines = [
                ax.axvline(np.nan, color="0.45", ls=":", lw=1) for ax in self.time_lines_axes()
            ]
            self._mark_current()
        self.time_plot.draw()

    def time_lines_axes(self) -> list:
        """The axes of the parameters-against-time panels."""
        return [line.axes for line in self.time_lines.values()]

    def _mark_current(self) -> None:
        """A dotted vertical line at the frame under the time slider, in every panel."""
        image = self.image.layer()
        if not self._now_lines or image is None:
            return
        index = current_frame(self.viewer, image)
        frames = [int(r["frame"]) for r in self.rows]
        if index not in frames:
            return
        x = next(iter(self.time_lines.values())).get_xdata()
        order = sorted(set(frames))
        if len(x) == len(order):
            for line in self._now_lines:
                line.set_xdata([x[order.index(index)]] * 2)
            self.time_plot.draw()

    # ----------------------------------------------------------------- export

    @guarded
    def export_table(self, path: str | os.PathLike | None = None):
        """Write the time table (or, before "Fit all frames", the current frame's) as CSV."""
        from ...pipeline import table_columns, write_table_csv
        from ...stats import row_columns

        rows = self.rows or self.frame_rows()
        if not rows:
            self.status.setText("nothing to export yet")
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(
                self, "Export table", str(Path.home() / "calcite-statistics.csv"), "CSV (*.csv)"
            )
            if not path:
                return None
        n = int(self.n_classes.currentData())
        model = "gsg" if "ks_increment_gsg" in rows[0] else "gaussian"
        if self.rows:  # a run's table: its uncertainty and rates too, where it has them
            columns = table_columns(n, model, uncertainty="uncertainty" in rows[0])
            columns += [c for c in rows[0] if c.startswith("rate_") or c.startswith("dissolved")]
        else:
            columns = row_columns(n, model)
        out = write_table_csv(path, rows, [c for c in columns if c in rows[0]])
        self.status.setText(f"wrote {out}")
        return out

    @guarded
    def export_figures(self, folder: str | os.PathLike | None = None):
        """Save the figures as PNG and SVG into ``folder`` (black on white); returns the paths.

        ``fit_frameNNNN``: the current frame as the command line draws it, with the frame
        itself (scale bar in nm, colorbar "height (nm)") before its histograms;
        ``parameters_vs_time``: the plots of the second tab, after "Fit all frames".
        """
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self, "Export figures to folder")
            if not folder:
                return None
        from ...plotting import frame_figure

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        if self.fit is not None:
            image = self.image.layer()
            time_s = next((r.get("time_s") for r in self.frame_rows()), math.nan)
            figure = frame_figure(
                self.fit,
                frame=self.fit_frame_index,
                time_s=float(time_s) if time_s is not None else math.nan,
                heights=self.fit_heights,
                pixel_size_nm=pixel_size_of(image) if image is not None else None,
            )
            for ext in ("png", "svg"):
                path = folder / f"fit_frame{self.fit_frame_index:04d}.{ext}"
                figure.savefig(path, dpi=150)
                written.append(path)
        if self.rows:
            for ext in ("png", "svg"):
                path = folder / f"parameters_vs_time.{ext}"
                self.time_plot.savefig(path, dpi=150)
                written.append(path)
        self.status.setText(f"wrote {len(written)} files to {folder}")
        return written
