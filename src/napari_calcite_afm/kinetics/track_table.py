"""The kinetics of each pit track and the two tables, ``pits.csv`` and ``tracks.csv``.

:func:`track_kinetics` turns the linked pits of :func:`~.tracking.track_pits` into one
row per track: first and last frame, the area growth rate and the deepening rate
(robust Theil-Sen slopes against time over the frames where the pit does not touch the
border of the data, at least ``min_fit_frames`` of them), and the retreat velocities of
its obtuse and acute steps (:mod:`.velocities`) where its outline is rhombic (median
``rhomb_fill`` at least ``min_rhomb_fill``). The movie's obtuse/acute velocity ratio is
that of its multilayer tracks when any has velocities, else that of its monolayer
tracks; tracks are weighted by the precision of their slopes, ``(n^3 - n) / 12`` for
``n`` frames (the spread of their times), in that ratio and in the choice of the obtuse
sides. :func:`write_pits_csv` and
:func:`write_tracks_csv` write the tables atomically, NaN as empty cells.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from .._util import atomic_write
from .pits import PIT_COLUMNS, PitSettings
from .velocities import (
    fit_orientation,
    obtuse_sides,
    rhomb_fill,
    robust_slope,
    side_distances,
    side_velocities,
    velocity_ratio,
)

__all__ = ["PIT_EXTRA_COLUMNS", "TRACK_COLUMNS", "write_pits_csv", "write_tracks_csv"]

#: The columns of ``tracks.csv``, in this order (extra columns follow them:
#: ``children``, ``fate``, ``rhomb_fill``).
TRACK_COLUMNS = (
    "track_id",
    "class",
    "first_frame",
    "last_frame",
    "n_frames",
    "area_growth_nm2_s",
    "deepening_nm_s",
    "obtuse_velocity_nm_s",
    "acute_velocity_nm_s",
    "parents",
)
#: Extra columns of ``pits.csv`` after :data:`~.pits.PIT_COLUMNS`.
PIT_EXTRA_COLUMNS = ("touches_border", "bottom_y_nm", "bottom_x_nm", "n_px")
_TRACK_EXTRA = ("children", "fate", "rhomb_fill")
_ORIENT_MIN_PX = 30  # smallest pit the orientation fit uses, pixels
_ORIENT_MAX_PITS = 3000  # the largest pit observations the orientation fit uses


def _cell(value: Any) -> Any:
    """A value as written: NaN and infinities as empty cells."""
    return "" if isinstance(value, float) and not math.isfinite(value) else value


def _write_csv(path, rows: Sequence[dict], columns: Sequence[str], what: str) -> Path:
    path = Path(path)
    with atomic_write(path, "w", what=what, newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(v) for k, v in row.items()})
    return path


def write_pits_csv(path: str | Path, rows: Sequence[dict]) -> Path:
    """Write ``pits.csv``: one row per pit and frame, atomically.

    Parameters
    ----------
    path : str or Path
        Output file (parent folders are created).
    rows : sequence of dict
        ``PitTracks.pits``: :data:`~.pits.PIT_COLUMNS` then :data:`PIT_EXTRA_COLUMNS`.

    Returns
    -------
    pathlib.Path
        The written file.

    Examples
    --------
    >>> import tempfile
    >>> row = {"track_id": 1, "frame": 0, "time_s": 0.0, "y_nm": 5.0, "x_nm": 7.0,
    ...        "area_nm2": 100.0, "depth_nm": float("nan"), "volume_nm3": 0.0,
    ...        "class": 1, "touches_border": False}
    >>> out = write_pits_csv(Path(tempfile.mkdtemp()) / "pits.csv", [row])
    >>> out.read_text().splitlines()[1]
    '1,0,0.0,5.0,7.0,100.0,,0.0,1,False,,,'
    """
    return _write_csv(path, rows, (*PIT_COLUMNS, *PIT_EXTRA_COLUMNS), "the pit table")


def write_tracks_csv(path: str | Path, rows: Sequence[dict]) -> Path:
    """Write ``tracks.csv``: one row per track, atomically.

    Parameters
    ----------
    path : str or Path
        Output file (parent folders are created).
    rows : sequence of dict
        ``PitTracks.tracks``: :data:`TRACK_COLUMNS`, then ``children``, ``fate``,
        ``rhomb_fill``. ``parents`` and ``children`` are track ids joined by ``;``.

    Returns
    -------
    pathlib.Path
        The written file.

    Examples
    --------
    >>> import tempfile
    >>> out = write_tracks_csv(Path(tempfile.mkdtemp()) / "tracks.csv", [])
    >>> out.read_text().strip().split(",")[:3]
    ['track_id', 'class', 'first_frame']
    """
    return _write_csv(path, rows, (*TRACK_COLUMNS, *_TRACK_EXTRA), "the track table")


def _crop(sl: tuple[slice, slice], shape: tuple[int, int], pad: int = 2):
    return tuple(slice(max(s.start - pad, 0), min(s.stop + pad, n)) for s, n in zip(sl, shape))


def _orientation_masks(pit_rows, comps, objects):
    """Masks of the largest pit observations that do not touch the border."""
    use = [r for r in pit_rows if not r["touches_border"] and r["n_px"] >= _ORIENT_MIN_PX]
    use.sort(key=lambda r: -r["n_px"])
    for r in use[:_ORIENT_MAX_PITS]:
        k, tid = r["frame"], r["track_id"]
        sl = _crop(objects[k][tid - 1], comps.shape[1:])
        yield comps[k][sl] == tid


def _track_geometry(rows, comps, borders, objects, orientation, p, same_class):
    """Side distances (frames, 4), nm, and rhomb fill per frame of one track.

    A side is not measured where it touches the border of the data or another pit of the
    same class (``same_class``: per track id, True for that class): there its outline is
    the boundary between two pits, not a free step.
    """
    src = (rows[0]["bottom_y_nm"], rows[0]["bottom_x_nm"])
    if not all(math.isfinite(v) for v in src):
        src = (rows[0]["y_nm"], rows[0]["x_nm"])
    dist = np.full((len(rows), 4), np.nan)
    fill = np.full(len(rows), np.nan)
    for n, r in enumerate(rows):
        k, tid = r["frame"], r["track_id"]
        sl = _crop(objects[k][tid - 1], comps.shape[1:])
        crop = comps[k][sl]  # comps and borders are padded by one pixel
        mask = crop == tid
        others = same_class[crop] & ~mask
        dist[n] = side_distances(
            mask,
            orientation,
            p,
            source_nm=src,
            offset_px=(sl[0].start - 1, sl[1].start - 1),
            border=borders[k][sl] | others,
        )
        if not r["touches_border"]:
            fill[n] = rhomb_fill(mask, orientation)
    return dist, fill


def _slope_weight(n_frames: int) -> float:
    """Weight of a track's velocities: ``sum (t - mean t)^2`` for ``n`` evenly spaced
    frames (in frame intervals), to which the precision of a fitted slope is
    proportional."""
    n = float(n_frames)
    return (n**3 - n) / 12.0


def _pair_mean(v: np.ndarray, pair: tuple[int, int]) -> float:
    vals = v[list(pair)]
    vals = vals[np.isfinite(vals)]
    return float(vals.mean()) if vals.size else math.nan


def track_kinetics(
    pit_rows: list[dict],
    tracks: dict[int, dict],
    comps: np.ndarray,
    borders: Sequence[np.ndarray],
    pixel_size_nm: float,
    settings: PitSettings,
) -> dict:
    """The rows of ``tracks.csv`` and the movie's orientation and velocity ratio.

    ``pit_rows`` are sorted by track then frame; ``tracks`` maps each track id to its
    ``class``, ``parents``, ``children`` and ``fate``; ``comps`` is the track-id image
    per frame and ``borders`` the pixels without data per frame (NaN or unlabelled; the
    outside of the frame counts as such too). Called by
    :func:`~.tracking.track_pits`, whose docstring shows its use.
    """
    comps = np.pad(comps, ((0, 0), (1, 1), (1, 1)))
    borders = [np.pad(np.asarray(b, bool), 1, constant_values=True) for b in borders]
    objects = [ndimage.find_objects(c) for c in comps]
    orientation = fit_orientation(_orientation_masks(pit_rows, comps, objects))
    by_track: dict[int, list[dict]] = {}
    for r in pit_rows:
        by_track.setdefault(r["track_id"], []).append(r)
    sides, fills, weights, out = {}, {}, {}, []
    nfit = int(settings.min_fit_frames)
    classes = np.zeros(max(tracks, default=0) + 1, np.int64)
    for tid, info in tracks.items():
        classes[tid] = info["class"]
    for tid in sorted(tracks):
        rows = by_track.get(tid, [])
        same = (classes == tracks[tid]["class"]) & (np.arange(classes.size) > 0)
        dist, fill = _track_geometry(
            rows, comps, borders, objects, orientation, pixel_size_nm, same
        )
        t = np.array([r["time_s"] for r in rows])
        inside = np.array([not r["touches_border"] for r in rows], bool)
        med_fill = float(np.nanmedian(fill)) if np.isfinite(fill).any() else math.nan
        fills[tid] = med_fill
        if med_fill >= settings.min_rhomb_fill:
            sides[tid] = side_velocities(dist, t, min_frames=nfit)
            weights[tid] = _slope_weight(len(rows))
        area = np.array([r["area_nm2"] for r in rows], float)
        depth = np.array([r["depth_nm"] for r in rows], float)
        info = tracks[tid]
        out.append(
            {
                "track_id": tid,
                "class": int(info["class"]),
                "first_frame": int(rows[0]["frame"]),
                "last_frame": int(rows[-1]["frame"]),
                "n_frames": len(rows),
                "area_growth_nm2_s": robust_slope(t[inside], area[inside], min_points=nfit),
                "deepening_nm_s": robust_slope(t[inside], depth[inside], min_points=nfit),
                "obtuse_velocity_nm_s": math.nan,
                "acute_velocity_nm_s": math.nan,
                "parents": ";".join(str(p) for p in info["parents"]),
                "children": ";".join(str(c) for c in info["children"]),
                "fate": info["fate"],
                "rhomb_fill": med_fill,
            }
        )
    ids = list(sides)
    pair = obtuse_sides([sides[i] for i in ids], [weights[i] for i in ids])
    acute = ((pair[1] + 1) % 4, (pair[1] + 2) % 4)
    for row in out:
        v = sides.get(row["track_id"])
        if v is not None:
            row["obtuse_velocity_nm_s"] = _pair_mean(v, pair)
            row["acute_velocity_nm_s"] = _pair_mean(v, acute)
    ratios = {}
    for cls in sorted({r["class"] for r in out}):
        sel = [r for r in out if r["class"] == cls]
        ratios[cls] = velocity_ratio(
            [r["obtuse_velocity_nm_s"] for r in sel],
            [r["acute_velocity_nm_s"] for r in sel],
            [_slope_weight(r["n_frames"]) for r in sel],
        )
    # the multilayer pits' ratio when they have one (larger, longer-lived pits)
    ratio = next((v for v in ratios.values() if math.isfinite(v)), math.nan)
    return {
        "tracks": out,
        "orientation": orientation,
        "obtuse_sides": pair,
        "velocity_ratio": ratio,
        "velocity_ratio_by_class": ratios,
    }
