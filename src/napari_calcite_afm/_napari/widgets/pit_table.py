"""The kinetics of a movie as napari layers and a per-pit table.

:func:`show_kinetics` adds, for a :class:`~napari_calcite_afm.kinetics.KineticsResult`:

- ``<name> dissolution rate``: an image layer of the local dissolution rate (nm/s) with
  a diverging colormap centred on 0 (red: material removed, blue: deposited) and its
  colorbar (top left, labelled "dissolution rate (nm/s)", shown with the layer);
  frame ``t`` shows the rate from frame ``t - 1`` to ``t`` (frame 0 is empty);
- ``<name> pit ids``: a Labels layer of the track id of every pit pixel (the highlight of
  the selected pit);
- ``<name> pit tracks``: a Tracks layer of the pit centroids, merges and splits drawn as
  the track graph;

all on the movie's scale (nm per pixel, s per frame). :class:`PitTable` lists one row per
pit track; selecting a row moves the time slider to the pit's first frame, shows that pit
alone in the ids layer and plots its area and depth against time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from qtpy.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..conventions import label_layer_colorbar
from ..layers import add_or_update_layer, image_layer_kwargs, labels_layer_kwargs
from ._qt import MplCanvas

__all__ = [
    "TABLE_COLUMNS",
    "PitTable",
    "RATE_LABEL",
    "rate_layer_kwargs",
    "rate_stack",
    "show_kinetics",
    "tracks_layer_data",
]

#: The label beside the rate maps' colorbar.
RATE_LABEL = "dissolution rate (nm/s)"
_RATE_OVERLAY = "calcite_rate_colorbar_label"

#: Columns of the per-pit table: (key of the tracks.csv row, header, format).
TABLE_COLUMNS = [
    ("track_id", "track", "{:d}"),
    ("class", "class", "{:d}"),
    ("first_frame", "first", "{:d}"),
    ("last_frame", "last", "{:d}"),
    ("area_growth_nm2_s", "area growth (nm²/s)", "{:.3g}"),
    ("deepening_nm_s", "deepening (nm/s)", "{:.3g}"),
    ("obtuse_velocity_nm_s", "obtuse v (nm/s)", "{:.3g}"),
    ("acute_velocity_nm_s", "acute v (nm/s)", "{:.3g}"),
    ("parents", "parents", "{}"),
]


def rate_stack(rates: np.ndarray) -> np.ndarray:
    """Rate maps ``(frames - 1, rows, cols)`` as a movie-aligned ``(frames, rows, cols)`` stack.

    Frame ``t`` of the result holds the rate from frame ``t - 1`` to ``t``; frame 0 is
    NaN, so that the layer follows the movie's time slider.

    Examples
    --------
    >>> rate_stack(np.ones((2, 3, 3), np.float32)).shape
    (3, 3, 3)
    """
    rates = np.asarray(rates, dtype=np.float32)
    empty = np.full((1, *rates.shape[1:]), np.nan, np.float32)
    return np.concatenate([empty, rates], axis=0)


def rate_layer_kwargs(stack: np.ndarray, pixel_size_nm: float, name: str, like=None) -> dict:
    """Keyword arguments of a dissolution-rate image layer (nm/s, diverging, centred on 0).

    Examples
    --------
    >>> stack = np.array([[[-1.0, 2.0]], [[0.5, np.nan]]], np.float32)
    >>> kw = rate_layer_kwargs(stack, 10.0, "rate")
    >>> kw["colormap"], kw["contrast_limits"][0] == -kw["contrast_limits"][1]
    ('RdBu_r', True)
    >>> kw["metadata"]["units"]
    'nm/s'
    """
    kwargs = image_layer_kwargs(stack, pixel_size_nm, name, {"units": "nm/s"}, like=like)
    finite = np.abs(stack[np.isfinite(stack)])
    limit = float(np.percentile(finite, 99.0)) if finite.size else 1.0
    limit = limit if limit > 0 else 1.0
    kwargs["colormap"] = "RdBu_r"
    kwargs["contrast_limits"] = (-limit, limit)
    return kwargs


def tracks_layer_data(
    pits: Sequence[dict], tracks: Sequence[dict], pixel_size_nm: float
) -> tuple[np.ndarray, dict, dict]:
    """Data, properties and graph of a napari Tracks layer from ``pits.csv`` rows.

    Returns
    -------
    data : numpy.ndarray
        ``(pits, 4)``: track id, frame, row and column (pixels), sorted by track and frame.
    properties : dict
        ``area_nm2`` and ``depth_nm`` per point.
    graph : dict
        ``{track id: [parent track ids]}`` of merged and split tracks.

    Examples
    --------
    >>> pits = [{"track_id": 1, "frame": 0, "y_nm": 20.0, "x_nm": 40.0, "area_nm2": 5.0,
    ...          "depth_nm": 1.0}]
    >>> data, props, graph = tracks_layer_data(pits, [{"track_id": 1, "parents": ""}], 10.0)
    >>> data.tolist(), graph
    ([[1.0, 0.0, 2.0, 4.0]], {})
    """
    rows = sorted(pits, key=lambda r: (int(r["track_id"]), int(r["frame"])))
    data = np.array(
        [
            [r["track_id"], r["frame"], r["y_nm"] / pixel_size_nm, r["x_nm"] / pixel_size_nm]
            for r in rows
        ],
        dtype=float,
    ).reshape(-1, 4)
    properties = {
        key: np.array([float(r.get(key, math.nan)) for r in rows])
        for key in ("area_nm2", "depth_nm")
    }
    graph = {}
    for track in tracks:
        parents = _ids(track.get("parents"))
        if parents:
            graph[int(track["track_id"])] = parents
    return data, properties, graph


def _ids(value) -> list[int]:
    """Track ids from a list or a ``"3;5"`` / ``"3 5"`` string."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, str):
        return [int(v) for v in value.replace(";", " ").replace(",", " ").split()]
    return [int(v) for v in value]


def _time_like(like, stack: np.ndarray):
    """``like`` when it is a layer of the same number of axes (else None)."""
    return like if like is not None and getattr(like, "ndim", None) == stack.ndim else None


def show_kinetics(viewer, result, name: str, like=None) -> dict:
    """Add the rate maps, pit ids and pit tracks of ``result`` as layers.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
    result : KineticsResult
        From :func:`napari_calcite_afm.kinetics.analyse_kinetics`.
    name : str
        Prefix of the layer names.
    like : napari.layers.Layer, optional
        The movie's layer: its scale, translation and axes are copied.

    Returns
    -------
    dict
        ``{"rates": layer or None, "ids": layer, "tracks": layer or None}``.
    """
    px = float(result.pixel_size_nm)
    meta = {"frame_times_s": [float(t) for t in np.asarray(result.frame_times_s, float)]}
    layers: dict = {"rates": None, "tracks": None}
    if result.rates is not None and len(result.rates):
        stack = rate_stack(result.rates)
        kw = rate_layer_kwargs(stack, px, f"{name} dissolution rate", like=_time_like(like, stack))
        kw["metadata"].update(meta)
        layers["rates"] = add_or_update_layer(viewer, stack, kw, "image")
        layers["rates"].visible = False  # on demand: the heights stay in view
        # its own colorbar (nm/s, centred on 0), top left: the heights' stays top right
        layers["rates"].colorbar.position = "top_left"
        layers["rates"].colorbar.visible = True
        label_layer_colorbar(viewer, layers["rates"], RATE_LABEL, _RATE_OVERLAY)
    ids = np.asarray(result.tracks.components, dtype=np.int32)
    ikw = labels_layer_kwargs(ids, px, f"{name} pit ids", meta, like=_time_like(like, ids))
    ikw.pop("colormap", None)  # random colours: one per track
    ikw["opacity"] = 0.6
    layers["ids"] = add_or_update_layer(viewer, ids, ikw, "labels")
    data, properties, graph = tracks_layer_data(result.tracks.pits, result.tracks.tracks, px)
    if len(data):
        name_t = f"{name} pit tracks"
        if name_t in viewer.layers:
            viewer.layers.remove(name_t)
        scale = tuple(layers["ids"].scale)
        layers["tracks"] = viewer.add_tracks(
            data,
            properties=properties,
            graph=graph,
            name=name_t,
            scale=scale,
            translate=tuple(layers["ids"].translate),
            units=tuple(str(u) for u in layers["ids"].units),  # (else the scale bar
            axis_labels=tuple(layers["ids"].axis_labels),  # loses its unit: "500")
            tail_length=max(2, ids.shape[0]),
            metadata={"pixel_size_nm": px, **meta},
        )
    return layers


class PitTable(QWidget):
    """One row per pit track; a selected row highlights its pit and plots its kinetics.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer whose time slider follows the selection.
    """

    def __init__(self, viewer):
        super().__init__()
        self.viewer = viewer
        self.pits: list[dict] = []
        self.tracks: list[dict] = []
        self.ids_layer = None
        self.table = QTableWidget(0, len(TABLE_COLUMNS))
        self.table.setHorizontalHeaderLabels([h for _, h, _ in TABLE_COLUMNS])
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.setMinimumHeight(160)
        self.canvas = MplCanvas(4.0, 3.2, viewer=viewer)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        layout.addWidget(self.canvas)
        self.table.itemSelectionChanged.connect(self._on_selection)

    def set_tracks(self, pits: Sequence[dict], tracks: Sequence[dict], ids_layer=None) -> None:
        """Show ``tracks`` (rows of tracks.csv) with their ``pits`` (rows of pits.csv)."""
        self.pits, self.tracks, self.ids_layer = list(pits), list(tracks), ids_layer
        self.table.setRowCount(len(self.tracks))
        for i, track in enumerate(self.tracks):
            for j, (key, _, fmt) in enumerate(TABLE_COLUMNS):
                self.table.setItem(i, j, QTableWidgetItem(_format(track.get(key), fmt)))
        self.canvas.figure.clear()
        self.canvas.draw()

    def select_track(self, track_id: int) -> None:
        """Select the row of ``track_id`` (as a click on it would)."""
        for i, track in enumerate(self.tracks):
            if int(track["track_id"]) == int(track_id):
                self.table.selectRow(i)
                return

    def selected_track(self) -> int | None:
        """The track id of the selected row, or None."""
        rows = self.table.selectionModel().selectedRows()
        return int(self.tracks[rows[0].row()]["track_id"]) if rows else None

    def _on_selection(self) -> None:
        tid = self.selected_track()
        if tid is None:
            if self.ids_layer is not None:
                self.ids_layer.show_selected_label = False
            return
        rows = [r for r in self.pits if int(r["track_id"]) == tid]
        rows.sort(key=lambda r: int(r["frame"]))
        if self.ids_layer is not None:
            self.ids_layer.selected_label = tid
            self.ids_layer.show_selected_label = True
            self.ids_layer.visible = True
        if rows and self.viewer.dims.ndim >= 3:
            self.viewer.dims.set_current_step(0, int(rows[0]["frame"]))
        self._plot(tid, rows)

    def _plot(self, tid: int, rows: list[dict]) -> None:
        fig = self.canvas.figure
        fig.clear()
        ax_area, ax_depth = fig.subplots(2, 1, sharex=True)
        t = np.array([_time(r) for r in rows], dtype=float)
        unit = "s" if np.isfinite(t).all() else "frame"
        if unit == "frame":
            t = np.array([r["frame"] for r in rows], dtype=float)
        ax_area.plot(t, [r.get("area_nm2", math.nan) for r in rows], "o-")
        ax_area.set_ylabel("area (nm²)")
        ax_area.set_title(f"pit track {tid}")
        ax_depth.plot(t, [r.get("depth_nm", math.nan) for r in rows], "o-")
        ax_depth.set_ylabel("depth (nm)")
        ax_depth.set_xlabel(f"time ({unit})")
        self.canvas.draw()


def _time(row: dict) -> float:
    value = row.get("time_s")
    return math.nan if value is None else float(value)


def _format(value, fmt: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    try:
        return fmt.format(int(value) if fmt == "{:d}" else value)
    except (TypeError, ValueError):
        return str(value)
