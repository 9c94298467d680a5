"""Pit tracking through a registered movie: track ids, merges, splits, kinetics.

:func:`track_pits` finds the pits of every frame (:func:`~.pits.find_pits`), links them
frame to frame, and measures each track's kinetics (:mod:`.track_table`,
:mod:`.velocities`). The result, :class:`PitTracks`, writes ``pits.csv`` and
``tracks.csv``.

Linking, frame ``t - 1`` to frame ``t``, each class on its own:

1. **Overlap.** Frames are on one registered grid and pits only grow, so a pit overlaps
   itself in the next frame: pits ``i`` (frame ``t - 1``) and ``j`` (frame ``t``) are
   linked when they share at least ``min_overlap`` of the smaller one's pixels.
2. **Touching multilayer pits.** A pit of frame ``t`` that overlaps several pits of
   frame ``t - 1`` of a class in ``separate_classes`` (multilayer pits: each has its own
   deepest point) is divided among them by a watershed of the heights seeded at their
   bottoms (:mod:`.separation`); each part continues its pit's track. A pit left
   without a basin of its own (less than ``min_keep`` of its area before) was absorbed:
   its track ends with fate ``"merged"``, its ``children`` name the track that absorbed
   it, which goes on and lists it among its ``parents``. A minimum of the heights at
   least ``new_basin_nm`` deep inside such a pit that is no known pit's basin is a pit
   that nucleated against or inside another: its basin becomes a new pit (a new track
   without parents); in the first frame, this divides pits that already touch.
3. **Nearest centroid.** A pit left without a link (a small pit, residual drift) is
   linked to the nearest pit of the frame before that was left without one too, within
   ``link_distance_nm`` (closest pairs first).
4. **Gaps.** A pit still without a link continues a track lost at most ``max_gap``
   frames before when it overlaps that track's last pit (a pit the segmentation missed
   in a frame or two).
5. **Tracks.** A link that is the only one of both its pits continues the track. Every
   other pit starts a new track: a pit linked to several pits of the frame before is a
   **merge** (their tracks end, with fate ``"merged"``, and the new track lists them as
   its ``parents``); several pits linked to one pit of the frame before are a **split**
   (its track ends with fate ``"split"``, each new track lists it as its parent). A
   track whose pit finds no link ends with fate ``"lost"``; one still there at the last
   frame with ``"end"``. Track ids count from 1 in order of appearance (frame, then
   class, then position of the pit's first pixel in raster order).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._util import ProgressFn, StopFlag, stop_requested
from ..errors import CalciteAFMError, Cancelled
from .pits import (
    FramePits,
    PitSettings,
    _check_frame,
    _components,
    measure_components,
)
from .separation import separate_touching
from .track_table import track_kinetics, write_pits_csv, write_tracks_csv
from .velocities import RhombOrientation

__all__ = ["PitTracks", "track_pits"]


@dataclass
class PitTracks:
    """The pits and tracks of a movie (:func:`track_pits`).

    Attributes
    ----------
    pits : list of dict
        One row per pit and frame (the columns of ``pits.csv``:
        :data:`~.pits.PIT_COLUMNS`, then ``touches_border``, ``bottom_y_nm``,
        ``bottom_x_nm``, ``n_px``).
    tracks : list of dict
        One row per track (the columns of ``tracks.csv``:
        :data:`~.track_table.TRACK_COLUMNS`, then ``children``, ``fate``,
        ``rhomb_fill``).
    components : numpy.ndarray
        int32 ``(frames, rows, cols)``: the track id of each pit pixel, 0 elsewhere.
    orientation : RhombOrientation
        The movie's pit orientation (NaN when no pit was large enough).
    obtuse_sides : tuple of int
        Indices of the obtuse sides among ``orientation.normals()``.
    velocity_ratio : float
        The movie's obtuse/acute step velocity ratio: its multilayer tracks' when any has
        velocities, else its monolayer tracks' (NaN when not measurable).
    velocity_ratio_by_class : dict
        The ratio of each class's tracks (class -> ratio, NaN where not measurable).
    settings : PitSettings
        The settings used.
    """

    pits: list[dict]
    tracks: list[dict]
    components: np.ndarray
    orientation: RhombOrientation
    obtuse_sides: tuple[int, int] = (0, 1)
    velocity_ratio: float = math.nan
    velocity_ratio_by_class: dict = field(default_factory=dict)
    settings: PitSettings = field(default_factory=PitSettings)

    def write_pits_csv(self, path: str | Path) -> Path:
        """Write ``pits.csv`` atomically (NaN as empty cells); returns the path."""
        return write_pits_csv(path, self.pits)

    def write_tracks_csv(self, path: str | Path) -> Path:
        """Write ``tracks.csv`` atomically (NaN as empty cells); returns the path."""
        return write_tracks_csv(path, self.tracks)

    def summary(self) -> dict:
        """Movie-level figures: counts, orientation, obtuse sides, velocity ratio."""
        return {
            "n_pits": len(self.pits),
            "n_tracks": len(self.tracks),
            "orientation": self.orientation.to_dict(),
            "obtuse_sides": list(self.obtuse_sides),
            "velocity_ratio": float(self.velocity_ratio),
            "velocity_ratio_by_class": {
                str(k): float(v) for k, v in self.velocity_ratio_by_class.items()
            },
            "settings": self.settings.to_dict(),
        }


def _check_movie(heights, labels, frame_times_s) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Heights and labels as stacks of one shape, and the frame times (s)."""
    z = np.asarray(heights)
    lab = np.asarray(labels)
    if z.ndim == 2:
        z = z[None]
    if lab.ndim == 2:
        lab = lab[None]
    if z.ndim != 3:
        raise CalciteAFMError(f"heights must be a stack (frames, rows, cols), got shape {z.shape}")
    if lab.shape != z.shape:
        raise CalciteAFMError(
            f"labels of shape {lab.shape} do not match the heights' shape {z.shape}"
        )
    n = z.shape[0]
    if frame_times_s is None:
        warnings.warn(
            "no frame times: pit rates are per frame (frame numbers used as times)",
            stacklevel=3,
        )
        return z, lab, np.arange(n, dtype=float)
    t = np.asarray(frame_times_s, float).reshape(-1)
    if t.size != n:
        raise CalciteAFMError(f"{t.size} frame times for {n} frames")
    if not np.isfinite(t).all() or np.any(np.diff(t) <= 0):
        raise CalciteAFMError("frame times must be finite and increasing (s)")
    return z, lab, t


def _overlaps(a: FramePits, b: FramePits) -> dict[tuple[int, int], int]:
    """Pixels shared by pit ``i`` of ``a`` and pit ``j`` of ``b`` (0-based), same class."""
    both = (a.components > 0) & (b.components > 0)
    if not both.any():
        return {}
    ia = a.components[both].astype(np.int64) - 1
    ib = b.components[both].astype(np.int64) - 1
    codes, counts = np.unique(ia * (b.n + 1) + ib, return_counts=True)
    out = {}
    for code, cnt in zip(codes.tolist(), counts.tolist()):
        i, j = divmod(code, b.n + 1)
        if a.rows[i]["class"] == b.rows[j]["class"]:
            out[(i, j)] = cnt
    return out


def _strong(ov: dict, a: FramePits, b: FramePits, s: PitSettings) -> list[tuple[int, int]]:
    """The overlaps that link (at least ``min_overlap`` of the smaller pit)."""
    return [
        (i, j)
        for (i, j), cnt in ov.items()
        if cnt >= s.min_overlap * min(a.rows[i]["n_px"], b.rows[j]["n_px"])
    ]


def _nearest(prev: FramePits, cur: FramePits, free_i, free_j, s: PitSettings):
    """One-to-one links by nearest centroid (same class, within the link distance)."""
    pairs = []
    for i in free_i:
        for j in free_j:
            a, b = prev.rows[i], cur.rows[j]
            if a["class"] != b["class"]:
                continue
            d = math.hypot(a["y_nm"] - b["y_nm"], a["x_nm"] - b["x_nm"])
            if d <= s.link_distance_nm:
                pairs.append((d, i, j))
    used_i, used_j, links = set(), set(), []
    for _, i, j in sorted(pairs):
        if i not in used_i and j not in used_j:
            used_i.add(i)
            used_j.add(j)
            links.append((i, j))
    return links


class _Linker:
    """Track ids of the pits, frame by frame (see the module docstring)."""

    def __init__(self, settings: PitSettings, pixel_size_nm: float) -> None:
        self.s = settings
        self.p = float(pixel_size_nm)
        self.frames: list[FramePits] = []
        self.track_of: list[list[int]] = []  # per frame, per pit: track id
        self.tracks: dict[int, dict] = {}  # id -> class, parents, children, fate, last

    def _new(self, row: dict, t: int, parents: list[int]) -> int:
        tid = len(self.tracks) + 1
        self.tracks[tid] = {
            "class": row["class"],
            "parents": parents,
            "children": [],
            "fate": "",
            "last": t,
            "source": (row["bottom_y_nm"], row["bottom_x_nm"]),
        }
        for p in parents:
            self.tracks[p]["children"].append(tid)
        return tid

    def _groups(self, cur: FramePits) -> dict[int, list[int]]:
        """The pits that :func:`separate_touching` looks into (their parents to come)."""
        return {j: [] for j, r in enumerate(cur.rows) if r["class"] in self.s.separate_classes}

    def add(self, cur: FramePits, z: np.ndarray, lab: np.ndarray) -> None:
        """Link the pits of the next frame (heights ``z``, labels ``lab``)."""
        t = len(self.frames)
        if t == 0:
            groups = self._groups(cur)
            if groups:
                cur = separate_touching(z, lab, None, cur, groups, self.p, self.s)[0]
            ids = [self._new(r, t, []) for r in cur.rows]
        else:
            cur, ids = self._link(cur, t, z, lab)
        self.frames.append(cur)
        self.track_of.append(ids)

    def _links(self, prev: FramePits, cur: FramePits, z, lab):
        """Links by overlap (touching multilayer pits divided first), then by centroid:
        ``(cur, links, absorbed)``."""
        links = _strong(_overlaps(prev, cur), prev, cur, self.s)
        groups = self._groups(cur)
        for i, j in links:
            if j in groups:
                groups[j].append(i)
        absorbed: dict[int, int | None] = {}
        if groups:
            n_before = cur.n
            ids = self.track_of[-1]
            sources = {i: self.tracks[ids[i]]["source"] for i in range(prev.n)}
            cur, forced, absorbed = separate_touching(
                z, lab, prev, cur, groups, self.p, self.s, sources
            )
            if forced or cur.n != n_before:
                done_j = set(forced.values())
                links = [
                    (i, j)
                    for i, j in _strong(_overlaps(prev, cur), prev, cur, self.s)
                    if i not in forced and i not in absorbed and j not in done_j
                ]
                links += sorted(forced.items())
        linked_i = {i for i, _ in links} | set(absorbed)
        linked_j = {j for _, j in links}
        free_i = [i for i in range(prev.n) if i not in linked_i]
        free_j = [j for j in range(cur.n) if j not in linked_j]
        links += _nearest(prev, cur, free_i, free_j, self.s)
        return cur, links, absorbed

    def _link(self, cur: FramePits, t: int, z, lab) -> tuple[FramePits, list[int]]:
        prev = self.frames[t - 1]
        cur, links, absorbed = self._links(prev, cur, z, lab)
        ids = [0] * cur.n
        parents: dict[int, list[int]] = {j: [] for j in range(cur.n)}
        children: dict[int, list[int]] = {i: [] for i in range(prev.n)}
        for i, j in links:
            parents[j].append(i)
            children[i].append(j)
        prev_ids = self.track_of[t - 1]
        for i in range(prev.n):
            kids = children[i]
            tr = self.tracks[prev_ids[i]]
            if not kids:
                tr["fate"] = "merged" if i in absorbed else "lost"
            elif len(kids) > 1:
                tr["fate"] = "split"
            elif len(parents[kids[0]]) > 1:
                tr["fate"] = "merged"
        revived = self._close_gaps(cur, t, [j for j in range(cur.n) if not parents[j]])
        for j in range(cur.n):
            ps = parents[j]
            if len(ps) == 1 and len(children[ps[0]]) == 1:
                ids[j] = prev_ids[ps[0]]
            elif j in revived:
                ids[j] = revived[j]
                self.tracks[ids[j]]["fate"] = ""
            else:
                par = sorted({prev_ids[i] for i in ps})
                ids[j] = self._new(cur.rows[j], t, par)
            self.tracks[ids[j]]["last"] = t
        for i, k in absorbed.items():  # absorbed pits: merged into the one that goes on
            if k is not None:
                lost, into = prev_ids[i], prev_ids[k]
                self.tracks[lost]["children"].append(into)
                self.tracks[into]["parents"] = sorted({*self.tracks[into]["parents"], lost})
        return cur, ids

    def _close_gaps(self, cur: FramePits, t: int, free_j: list[int]) -> dict[int, int]:
        """Unlinked pits of frame ``t`` that continue a track lost a few frames before."""
        if not free_j or self.s.max_gap < 1:
            return {}
        cands = []
        overlaps: dict[int, dict] = {}  # per frame of a lost track's last pit
        for tid, tr in self.tracks.items():
            last = tr["last"]
            if tr["fate"] != "lost" or not (t - 1 - self.s.max_gap <= last < t - 1):
                continue
            old = self.frames[last]
            if last not in overlaps:
                overlaps[last] = _overlaps(old, cur)
            i = self.track_of[last].index(tid)
            for (ii, j), cnt in overlaps[last].items():
                if ii != i or j not in free_j:
                    continue
                if cnt >= self.s.min_overlap * min(old.rows[i]["n_px"], cur.rows[j]["n_px"]):
                    cands.append((-cnt, tid, j))
        out: dict[int, int] = {}
        for _, tid, j in sorted(cands):
            if j not in out and tid not in out.values():
                out[j] = tid
        return out

    def finish(self) -> None:
        """Fate ``"end"`` for the tracks alive at the last frame."""
        last = len(self.frames) - 1
        for tr in self.tracks.values():
            if tr["last"] == last and not tr["fate"]:
                tr["fate"] = "end"


def track_pits(
    heights,
    labels,
    pixel_size_nm: float,
    frame_times_s=None,
    *,
    settings: PitSettings | None = None,
    progress: ProgressFn | None = None,
    stop: StopFlag | None = None,
) -> PitTracks:
    """Find, track and measure the etch pits of a registered movie.

    Parameters
    ----------
    heights : array_like
        ``(frames, rows, cols)`` registered heights, nm (all frames on frame 0's pixel
        grid), NaN outside the data.
    labels : array_like
        ``(frames, rows, cols)`` labels 0-3 on the same grid (1 multilayer pit,
        2 terrace, 3 monolayer pit, 0 unlabelled).
    pixel_size_nm : float
        Pixel size, nm.
    frame_times_s : array_like, optional
        Time of each frame, s (increasing). Without it, frame numbers are used (rates
        per frame) and a warning says so.
    settings : PitSettings, optional
        Pit finding, linking and fitting settings.
    progress : callable, optional
        Called after each frame with ``{"stage": "pits", "done": k, "total": n}``.
    stop : callable or threading.Event, optional
        Checked before each frame; when set, :class:`~napari_calcite_afm.errors.Cancelled`
        is raised.

    Returns
    -------
    PitTracks
        ``pits`` (rows of ``pits.csv``), ``tracks`` (rows of ``tracks.csv``), the
        track-id image per frame, the orientation and the velocity ratio.

    Examples
    --------
    >>> lab = np.full((3, 40, 40), 2, np.uint8)
    >>> for k, half in enumerate((3, 5, 7)):        # one pit growing
    ...     lab[k, 20 - half:20 + half, 20 - half:20 + half] = 1
    >>> z = np.where(lab == 1, -2.0, 0.0)
    >>> res = track_pits(z, lab, 10.0, [0.0, 60.0, 120.0])
    >>> [(r["track_id"], r["frame"], r["area_nm2"]) for r in res.pits]
    [(1, 0, 3600.0), (1, 1, 10000.0), (1, 2, 19600.0)]
    >>> res.tracks[0]["n_frames"], round(res.tracks[0]["area_growth_nm2_s"], 1)
    (3, 133.3)
    """
    settings = PitSettings() if settings is None else settings
    z, lab, times = _check_movie(heights, labels, frame_times_s)
    n = z.shape[0]
    linker = _Linker(settings, pixel_size_nm)
    for k in range(n):
        if stop_requested(stop):
            raise Cancelled("pit tracking stopped")
        zk, labk = _check_frame(z[k], lab[k], float(pixel_size_nm))
        comps, classes = _components(labk, settings)
        linker.add(measure_components(zk, labk, comps, classes, pixel_size_nm, settings), zk, labk)
        if progress is not None:
            progress({"stage": "pits", "done": k + 1, "total": n})
    linker.finish()
    comps = np.zeros(z.shape, np.int32)
    pit_rows: list[dict] = []
    for k, (fp, ids) in enumerate(zip(linker.frames, linker.track_of)):
        lut = np.array([0, *ids], np.int32)
        comps[k] = lut[fp.components]
        for tid, row in zip(ids, fp.rows):
            pit_rows.append({"track_id": tid, "frame": k, "time_s": float(times[k]), **row})
    pit_rows.sort(key=lambda r: (r["track_id"], r["frame"]))
    nodata = [~np.isfinite(np.asarray(z[k], float)) | (lab[k] == 0) for k in range(n)]
    kin = track_kinetics(pit_rows, linker.tracks, comps, nodata, float(pixel_size_nm), settings)
    return PitTracks(
        pits=pit_rows,
        tracks=kin["tracks"],
        components=comps,
        orientation=kin["orientation"],
        obtuse_sides=kin["obtuse_sides"],
        velocity_ratio=kin["velocity_ratio"],
        velocity_ratio_by_class=kin["velocity_ratio_by_class"],
        settings=settings,
    )
