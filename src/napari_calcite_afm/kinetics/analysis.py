"""The kinetics of a segmented movie in one call: rates, pit tracks, their files.

:func:`analyse_kinetics` is what ``calcite-afm run`` (after segmenting),
``calcite-afm kinetics`` (from given labels) and the napari Kinetics widget call:

1. optionally register the movie (:func:`~napari_calcite_afm.level.register_stack`) and
   move the labels with it (nearest neighbour), so that every frame lies on frame 0's
   grid;
2. put each pair of frames on one height reference (the surface that did not change) and
   compute the local dissolution rate maps (:func:`~.rates.rate_maps`) and the per-pair
   table (:func:`~.rates.rate_table`);
3. find, track and measure the pits (:func:`~.tracking.track_pits`).

:func:`write_kinetics` writes ``drift.csv`` (when the movie was registered),
``rates.tif``, ``rates.csv``, ``pits.csv``, ``tracks.csv`` and the figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from .._util import ProgressFn, StopFlag, json_safe
from ..level import Registration, register_stack
from .rate_gsg import RATE_GSG_COLUMNS, rate_gsg_rows
from .rates import RATE_COLUMNS, KineticsError, height_reference, rate_maps, rate_table
from .registration import write_drift_csv
from .track_table import _write_csv
from .tracking import PitTracks, track_pits

__all__ = [
    "KINETICS_FILES",
    "TABLE_RATE_COLUMNS",
    "add_rates_to_table",
    "KineticsResult",
    "analyse_kinetics",
    "shift_labels",
    "write_kinetics",
]

#: Files :func:`write_kinetics` may write (``drift.csv`` only for a registered movie).
KINETICS_FILES = ("drift.csv", "rates.tif", "rates.csv", "pits.csv", "tracks.csv")


@dataclass
class KineticsResult:
    """Rates and pit tracks of a movie (:func:`analyse_kinetics`).

    Attributes
    ----------
    rates : numpy.ndarray
        float32 ``(frames - 1, rows, cols)``: local dissolution rate between frames
        ``t`` and ``t + 1``, nm/s (nm per frame when the movie has no times), positive
        where material was removed, on frame 0's grid; NaN where the two frames do not
        both cover the pixel.
    rate_table : list of dict
        One row per frame pair (:data:`~.rates.RATE_COLUMNS`).
    tracks : PitTracks
        Pits per frame, tracks, track ids per pixel, velocities.
    pixel_size_nm : float
        Pixel size, nm.
    frame_times_s : numpy.ndarray
        Time of each frame, s (frame numbers when the movie has none: see ``timed``).
    timed : bool
        False when the movie had no frame times: rates are then per frame.
    registration : Registration or None
        The registration done here, when ``register=True``.
    messages : list of str
        What a user should know (rejected drift, missing times, no height reference).
    """

    rates: np.ndarray
    rate_table: list[dict]
    tracks: PitTracks
    pixel_size_nm: float
    frame_times_s: np.ndarray
    timed: bool = True
    registration: Registration | None = None
    messages: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Movie-level figures (JSON-serialisable): mean rates, tracks, velocity ratio."""
        rows = self.rate_table
        mean = {
            key: _nanmean([r[key] for r in rows])
            for key in (
                "rate_nm_s",
                "rate_pits_nm_s",
                "rate_terrace_nm_s",
                "rate_mol_m2_s",
                "rate_gsg_alpha",
                "rate_gsg_alpha_pits",
                "rate_gsg_alpha_terrace",
            )
            if not rows or key in rows[0]
        }
        return json_safe(
            {
                "time_unit": "s" if self.timed else "frame",
                "frame_pairs": len(rows),
                "mean": mean,
                "dissolved_volume_nm3": float(sum(r["dissolved_volume_nm3"] for r in rows)),
                "pits": self.tracks.summary(),
                "messages": list(self.messages),
            }
        )


def _nanmean(values) -> float:
    v = np.asarray([x for x in values if x is not None], dtype=float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else math.nan


def shift_labels(labels: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Move each frame's labels by its drift correction (nearest neighbour, 0 outside).

    Parameters
    ----------
    labels : numpy.ndarray
        uint8 ``(frames, rows, cols)`` labels 0-3.
    shifts : numpy.ndarray
        ``(frames, 2)`` shifts in pixels, ``scipy.ndimage.shift`` convention
        (:attr:`Registration.shifts`).

    Returns
    -------
    numpy.ndarray
        uint8 labels on frame 0's grid.

    Examples
    --------
    >>> lab = np.zeros((2, 5, 5), np.uint8); lab[:, 2, 2] = 1
    >>> out = shift_labels(lab, np.array([[0.0, 0.0], [1.0, -1.0]]))
    >>> np.argwhere(out[1] == 1).tolist()
    [[3, 1]]
    """
    out = np.zeros_like(labels, dtype=np.uint8)
    for k, shift in enumerate(np.asarray(shifts, float)):
        out[k] = ndimage.shift(labels[k], shift, order=0, mode="constant", cval=0)
    return out


def _times(frame_times_s, n: int, messages: list[str]) -> tuple[np.ndarray, bool]:
    t = None if frame_times_s is None else np.asarray(frame_times_s, dtype=float).ravel()
    if t is not None and t.size == 1 and n > 1 and np.isfinite(t[0]) and t[0] > 0:
        t = np.arange(n) * float(t[0])  # a frame interval
    if t is None or t.size != n or not np.isfinite(t).all():
        messages.append(
            "the movie has no frame times and no frame interval was given: rates are in nm "
            "per frame and velocities per frame (give --frame-interval S for nm/s)"
        )
        return np.arange(n, dtype=float), False
    if np.any(np.diff(t) <= 0):
        raise KineticsError(f"frame times must increase, got {t.tolist()}")
    return t, True


def analyse_kinetics(
    heights,
    labels,
    pixel_size_nm: float,
    frame_times_s=None,
    *,
    register: bool = False,
    registration: Registration | None = None,
    rate_model: str = "gaussian",
    rate_smooth_px: float = 0.0,
    settings=None,
    progress: ProgressFn | None = None,
    stop: StopFlag | None = None,
) -> KineticsResult:
    """Local dissolution rates and pit tracks of a segmented movie.

    Parameters
    ----------
    heights : array_like
        ``(frames, rows, cols)`` levelled heights, nm; on frame 0's grid already
        (registered) unless ``register``. NaN outside the data.
    labels : array_like
        ``(frames, rows, cols)`` labels 0-3 on the same grid as ``heights``.
    pixel_size_nm : float
        Pixel size, nm.
    frame_times_s : sequence of float or float, optional
        Frame times (s, increasing) or the frame interval (s). Without them the rates
        are per frame and the result says so.
    register : bool
        Register the frames first (and move the labels with them).
    registration : Registration, optional
        The registration already applied to ``heights`` and ``labels`` (as ``run``
        does before segmenting): kept for ``drift.csv``, its messages carried over.
    rate_model : {"gaussian", "gsg"}
        ``"gsg"`` also fits generalized sub-Gaussian models to each rate map, whole and
        by region (:func:`~.rate_gsg.rate_gsg_rows`: the rate table gains
        :data:`~.rate_gsg.RATE_GSG_COLUMNS`).
    rate_smooth_px : float
        Gaussian smoothing of the rate maps, pixels (0: none; see
        :func:`~.rates.rate_maps`); the rate table is computed from the smoothed maps.
    settings : PitSettings, optional
        Pit finding and tracking settings.
    progress : callable, optional
        Called with ``{"stage", "frame", "n_frames"}`` (stages ``register``, ``rates``,
        ``pits``).
    stop : callable or threading.Event, optional
        When set, :class:`~napari_calcite_afm.errors.Cancelled` is raised.

    Returns
    -------
    KineticsResult

    Raises
    ------
    KineticsError
        Fewer than 2 frames, labels of another shape, decreasing times.

    Examples
    --------
    >>> lab = np.full((3, 40, 40), 2, np.uint8)
    >>> z = np.zeros((3, 40, 40))
    >>> for k, half in enumerate((3, 5, 7)):          # one pit growing and deepening
    ...     lab[k, 20 - half:20 + half, 20 - half:20 + half] = 1
    ...     z[k][lab[k] == 1] = -0.31 * (k + 2)
    >>> res = analyse_kinetics(z, lab, 10.0, 300.0)
    >>> res.rates.shape, len(res.tracks.tracks), res.timed
    ((2, 40, 40), 1, True)
    >>> res.rate_table[0]["rate_pits_nm_s"] > 0
    True
    """
    z = np.asarray(heights, dtype=np.float32)
    lab = np.asarray(labels)
    if z.ndim != 3 or z.shape[0] < 2:
        raise KineticsError(
            f"kinetics needs a movie of at least 2 frames (frames, rows, cols), got {z.shape}"
        )
    if lab.shape != z.shape:
        raise KineticsError(f"labels have shape {lab.shape}, heights {z.shape}: they must match")
    lab = lab.astype(np.uint8, copy=False)
    if rate_model not in ("gaussian", "gsg"):
        raise KineticsError(f"rate_model must be 'gaussian' or 'gsg', got {rate_model!r}")
    messages: list[str] = []
    times, timed = _times(frame_times_s, z.shape[0], messages)
    reg = registration
    if reg is not None and not register:
        messages.extend(reg.messages)
    if register:
        if progress is not None:
            progress({"stage": "register", "frame": 0, "n_frames": z.shape[0]})
        reg = register_stack(z, stop=stop)
        z = reg.aligned.astype(np.float32, copy=False)
        lab = shift_labels(lab, reg.shifts)
        messages.extend(reg.messages)
    report = None
    if progress is not None:

        def report(info: dict) -> None:
            progress(
                {
                    "stage": info.get("stage"),
                    "frame": info.get("frame", info.get("done", 1) - 1),
                    "n_frames": info.get("n_frames", info.get("total")),
                }
            )

    ref = height_reference(z, lab)
    rates = rate_maps(
        z, times, lab, reference=ref, smooth_px=rate_smooth_px, progress=report, stop=stop
    )
    table = rate_table(rates, times, pixel_size_nm, lab, reference=ref)
    messages.extend(table.messages)
    rows = table.to_rows()
    if rate_model == "gsg":
        for row, extra in zip(rows, rate_gsg_rows(rates, lab)):
            row.update(extra)
    tracks = track_pits(z, lab, pixel_size_nm, times, settings=settings, progress=report, stop=stop)
    return KineticsResult(
        rates=rates,
        rate_table=rows,
        tracks=tracks,
        pixel_size_nm=float(pixel_size_nm),
        frame_times_s=times,
        timed=timed,
        registration=reg,
        messages=messages,
    )


#: Columns :func:`add_rates_to_table` adds to a run's table (the pair ending at the row's
#: frame; NaN at frame 0).
TABLE_RATE_COLUMNS = (
    "rate_nm_s",
    "rate_pits_nm_s",
    "rate_terrace_nm_s",
    "rate_mol_m2_s",
    "rate_pits_mol_m2_s",
    "rate_terrace_mol_m2_s",
    "dissolved_volume_nm3",
)


def add_rates_to_table(table: list[dict], result: KineticsResult) -> list[str]:
    """Put each frame pair's mean rates into the rows of its second frame (in place).

    Parameters
    ----------
    table : list of dict
        A run's table (one row per frame and lag, with ``frame``).
    result : KineticsResult

    Returns
    -------
    list of str
        The columns added (:data:`TABLE_RATE_COLUMNS`, then the rate maps' GSG alpha
        where fitted).

    Examples
    --------
    >>> lab = np.full((2, 16, 16), 2, np.uint8)
    >>> res = analyse_kinetics(np.zeros((2, 16, 16)), lab, 10.0, 60.0)
    >>> table = [{"frame": 0}, {"frame": 1}]
    >>> add_rates_to_table(table, res)[0], math.isnan(table[0]["rate_nm_s"]), table[1]["rate_nm_s"]
    ('rate_nm_s', True, 0.0)
    """
    columns = list(TABLE_RATE_COLUMNS)
    if result.rate_table and "rate_gsg_alpha" in result.rate_table[0]:
        columns += ["rate_gsg_alpha", "rate_gsg_alpha_pits", "rate_gsg_alpha_terrace"]
    by_frame = {int(r["frame"]) + 1: r for r in result.rate_table}
    for row in table:
        pair = by_frame.get(int(row["frame"]), {})
        row.update({c: float(pair.get(c, math.nan)) for c in columns})
    return columns


def _rate_columns(result: KineticsResult) -> tuple[str, ...]:
    gsg = bool(result.rate_table) and "rate_gsg_alpha" in result.rate_table[0]
    return (*RATE_COLUMNS, *RATE_GSG_COLUMNS) if gsg else tuple(RATE_COLUMNS)


def write_kinetics(
    result: KineticsResult,
    folder: str | Path,
    *,
    registration: Registration | None = None,
    figures: bool = True,
) -> dict[str, str]:
    """Write the kinetic outputs of ``result`` into ``folder`` (each file atomically).

    Parameters
    ----------
    result : KineticsResult
    folder : str or Path
        Output folder (created if missing).
    registration : Registration, optional
        The registration of the movie, for ``drift.csv`` (default: the result's own).
    figures : bool
        Also write ``kinetics.png`` (mean rates, pit areas and depths against time,
        step velocities) and ``rates_frames.png`` (rate maps of up to 4 frame pairs).

    Returns
    -------
    dict
        ``{file name: path}`` of what was written.

    Examples
    --------
    >>> import tempfile
    >>> lab = np.full((2, 16, 16), 2, np.uint8); lab[:, 4:8, 4:8] = 1
    >>> res = analyse_kinetics(np.zeros((2, 16, 16)), lab, 10.0, 60.0)
    >>> sorted(write_kinetics(res, tempfile.mkdtemp(), figures=False))
    ['pits.csv', 'rates.csv', 'rates.tif', 'tracks.csv']
    """
    from .rates import write_rates_tif

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    reg = registration if registration is not None else result.registration
    if reg is not None and getattr(reg, "confidence", None) is not None:
        files["drift.csv"] = str(write_drift_csv(folder / "drift.csv", reg))
    interval = float(np.median(np.diff(result.frame_times_s))) if result.timed else None
    files["rates.tif"] = str(
        write_rates_tif(
            folder / "rates.tif",
            result.rates,
            result.pixel_size_nm,
            frame_interval_s=interval,
            metadata={"unit": "nm/s" if result.timed else "nm/frame", "messages": result.messages},
        )
    )
    files["rates.csv"] = str(
        _write_csv(folder / "rates.csv", result.rate_table, _rate_columns(result), "the rate table")
    )
    files["pits.csv"] = str(result.tracks.write_pits_csv(folder / "pits.csv"))
    files["tracks.csv"] = str(result.tracks.write_tracks_csv(folder / "tracks.csv"))
    if figures:
        from .figures import write_kinetics_figures

        files.update(write_kinetics_figures(result, folder))
    return files
