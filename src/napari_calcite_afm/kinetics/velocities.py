"""Step retreat velocities of rhombic etch pits.

Calcite {10-14} etch pits are rhombi (angles about 78 and 102 degrees) of one crystal
orientation per movie; each side is a step that retreats along its normal at a constant
velocity, the two obtuse steps about 2.3 times faster than the two acute ones (Liang,
Baer, Lea 1995; ``docs/science.md``). The method:

1. **Orientation, once per movie** (:func:`fit_orientation`): the rhombus whose sides
   make ``angle_deg`` (78) degrees and which encloses the pits most tightly. For each
   candidate direction ``a`` of the first side normal (a 0.25 degree grid over 180
   degrees, refined by a parabola), the smallest parallelogram with side normals ``a``
   and ``a + 78`` around a pit has area ``w(a) w(a + 78) / sin 78``, where ``w`` is the
   pit's width along a direction (from its convex hull, pixel corners included); the
   orientation minimises the sum over pits of the log of that area.
2. **Side distances** (:func:`side_distances`): for each of the four outward normals
   ``u_k`` (``a``, ``a + 78``, ``a + 180``, ``a + 258`` degrees), the distance of the
   pit's supporting line from the track's fixed source point (the deepest point of its
   first frame): ``max over the pit of (p - source) . u_k``. A side whose supporting
   pixels touch the border of the data is not measured (NaN).
3. **Velocities** (:func:`side_velocities`): the robust (Theil-Sen) slope of each side's
   distance against time. The slope does not depend on the source point: it is the
   side's normal retreat velocity.
4. **Obtuse and acute, once per movie** (:func:`obtuse_sides`): the two adjacent sides
   that move fastest over all the movie's pits are the obtuse steps; the opposite two are
   the acute ones. The movie's ratio is :func:`velocity_ratio`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage, spatial, stats

from ..errors import CalciteAFMError

__all__ = [
    "RHOMB_ANGLE_DEG",
    "RhombOrientation",
    "fit_orientation",
    "obtuse_sides",
    "rhomb_fill",
    "robust_slope",
    "side_distances",
    "side_velocities",
    "velocity_ratio",
]

#: Angle between the two side normals of a calcite etch pit, degrees (its acute angle).
RHOMB_ANGLE_DEG = 78.0
_STEP_DEG = 0.25  # grid of candidate orientations
_N_GRID = round(180.0 / _STEP_DEG)
_EIGHT = np.ones((3, 3), bool)
_FOUR = ndimage.generate_binary_structure(2, 1)


@dataclass
class RhombOrientation:
    """The orientation of a movie's rhombic pits.

    Attributes
    ----------
    normal_deg : float
        Direction of the first side normal, degrees in [0, 180), in image axes: ``x``
        along columns, ``y`` along rows (downwards), angle from ``x`` towards ``y``.
    angle_deg : float
        Angle between the two side normals, degrees (78 for calcite).
    fill : float
        Median over the pits used of the pit's area over its enclosing rhombus area
        (1 for perfect rhombi; NaN when no pit was used).
    n_pits : int
        Pits the fit used.

    Examples
    --------
    >>> o = RhombOrientation(normal_deg=0.0)
    >>> np.round(o.normals(), 3).tolist()[:2]
    [[1.0, 0.0], [0.208, 0.978]]
    """

    normal_deg: float
    angle_deg: float = RHOMB_ANGLE_DEG
    fill: float = math.nan
    n_pits: int = 0

    def normal_angles_deg(self) -> np.ndarray:
        """The four outward side normals' directions, degrees, in order around the pit."""
        a, b = float(self.normal_deg), float(self.angle_deg)
        return np.array([a, a + b, a + 180.0, a + 180.0 + b])

    def normals(self) -> np.ndarray:
        """The four outward unit normals ``(x, y)`` of :meth:`normal_angles_deg`, (4, 2)."""
        ang = np.radians(self.normal_angles_deg())
        return np.stack([np.cos(ang), np.sin(ang)], axis=1)

    def to_dict(self) -> dict:
        """JSON-serialisable record of the orientation."""
        return {
            "normal_deg": float(self.normal_deg),
            "angle_deg": float(self.angle_deg),
            "fill": float(self.fill),
            "n_pits": int(self.n_pits),
        }


def robust_slope(times_s, values, *, min_points: int = 2) -> float:
    """Theil-Sen slope of ``values`` against ``times_s`` (NaN values left out).

    Parameters
    ----------
    times_s : array_like
        Times, s.
    values : array_like
        Values at those times (any unit ``U``).
    min_points : int
        Fewest finite points that give a slope; fewer give NaN.

    Returns
    -------
    float
        Slope, ``U`` per s (NaN when not measurable).

    Examples
    --------
    >>> robust_slope([0, 1, 2, 3, 4], [0.0, 2.0, 4.0, 60.0, 8.0])  # one outlier
    2.0
    """
    t = np.asarray(times_s, float)
    v = np.asarray(values, float)
    ok = np.isfinite(t) & np.isfinite(v)
    if ok.sum() < max(int(min_points), 2) or np.ptp(t[ok]) == 0:
        return math.nan
    return float(stats.theilslopes(v[ok], t[ok]).slope)


def _hull(mask: np.ndarray) -> np.ndarray:
    """``(x, y)`` pixel coordinates of the convex hull of the pixel squares of ``mask``."""
    edge = mask & ~ndimage.binary_erosion(mask, _EIGHT, border_value=0)
    r, c = np.nonzero(edge)
    if r.size == 0:
        return np.zeros((0, 2))
    # the corners of the edge pixels' squares, each once, in (x, y) lexicographic order
    # (one integer key per corner: np.unique on rows is ten times slower)
    cols = np.concatenate([c, c + 1, c, c + 1]).astype(np.int64)  # corner x + 0.5
    rows = np.concatenate([r, r, r + 1, r + 1]).astype(np.int64)  # corner y + 0.5
    span = int(rows.max()) + 1
    key = np.unique(cols * span + rows)
    pts = np.stack([key // span - 0.5, key % span - 0.5], axis=1)
    try:
        return pts[spatial.ConvexHull(pts).vertices]
    except spatial.QhullError:  # pragma: no cover - pixel squares are never degenerate
        return pts


def _widths(hull: np.ndarray) -> np.ndarray:
    """Width of a hull along the grid directions ``k * _STEP_DEG``, k < _N_GRID."""
    ang = np.radians(np.arange(_N_GRID) * _STEP_DEG)
    proj = hull @ np.stack([np.cos(ang), np.sin(ang)])
    return proj.max(axis=0) - proj.min(axis=0)


def fit_orientation(
    masks: Iterable[np.ndarray], *, angle_deg: float = RHOMB_ANGLE_DEG, min_px: int = 30
) -> RhombOrientation:
    """The rhombus orientation that encloses a movie's pits most tightly.

    Parameters
    ----------
    masks : iterable of numpy.ndarray
        One boolean mask per pit observation (a pit in one frame; a crop around it is
        enough), pixels of the registered grid. Pits touching the border should be
        left out.
    angle_deg : float
        Angle between the two side normals, degrees (78 for calcite).
    min_px : int
        Pits smaller than this (pixels) are left out: their outline is mostly pixels.

    Returns
    -------
    RhombOrientation
        ``normal_deg`` NaN when no pit was large enough.

    Examples
    --------
    >>> yy, xx = np.mgrid[-40:41, -40:41].astype(float)
    >>> o = RhombOrientation(normal_deg=20.0)
    >>> n = o.normals()
    >>> p1, p2 = xx * n[0, 0] + yy * n[0, 1], xx * n[1, 0] + yy * n[1, 1]
    >>> mask = (np.abs(p1) <= 20) & (np.abs(p2) <= 12)
    >>> round(fit_orientation([mask]).normal_deg)
    20
    """
    k = round(float(angle_deg) / _STEP_DEG)
    total = np.zeros(_N_GRID)
    fills_w = []
    n_used = 0
    for m in masks:
        m = np.asarray(m, bool)
        n_px = int(m.sum())
        if n_px < max(int(min_px), 3):
            continue
        w = _widths(_hull(m))
        total += np.log(w) + np.log(np.roll(w, -k) if k < _N_GRID else w)
        fills_w.append((n_px, w))
        n_used += 1
    if n_used == 0:
        return RhombOrientation(math.nan, float(angle_deg))
    i = int(np.argmin(total))
    y0, y1, y2 = total[i - 1], total[i], total[(i + 1) % _N_GRID]
    curv = y0 - 2 * y1 + y2
    frac = 0.5 * (y0 - y2) / curv if curv > 0 else 0.0
    normal = ((i + float(np.clip(frac, -0.5, 0.5))) * _STEP_DEG) % 180.0
    s = math.sin(math.radians(angle_deg))
    fills = [n_px / (w[i] * w[(i + k) % _N_GRID] / s) for n_px, w in fills_w]
    return RhombOrientation(normal, float(angle_deg), float(np.median(fills)), n_used)


def rhomb_fill(mask: np.ndarray, orientation: RhombOrientation) -> float:
    """Area of a pit over the area of its enclosing rhombus of the given orientation.

    Parameters
    ----------
    mask : numpy.ndarray
        Boolean pixels of one pit.
    orientation : RhombOrientation
        The movie's orientation.

    Returns
    -------
    float
        About 1 for a rhombic pit, less for merged or irregular ones; NaN for an empty
        mask or an unknown orientation.

    Examples
    --------
    >>> rhomb_fill(np.ones((10, 10), bool), RhombOrientation(0.0, 90.0))
    1.0
    """
    m = np.asarray(mask, bool)
    if not m.any() or not np.isfinite(orientation.normal_deg):
        return math.nan
    hull = _hull(m)
    n = orientation.normals()[:2]
    proj = hull @ n.T
    w = proj.max(axis=0) - proj.min(axis=0)
    area = w[0] * w[1] / abs(math.sin(math.radians(orientation.angle_deg)))
    return float(m.sum() / area) if area > 0 else math.nan


def side_distances(
    mask: np.ndarray,
    orientation: RhombOrientation,
    pixel_size_nm: float,
    *,
    source_nm: tuple[float, float] = (0.0, 0.0),
    offset_px: tuple[int, int] = (0, 0),
    border: np.ndarray | None = None,
) -> np.ndarray:
    """Distances of a pit's four supporting lines from a source point, nm.

    Parameters
    ----------
    mask : numpy.ndarray
        Boolean pixels of the pit (or a crop of the frame around it).
    orientation : RhombOrientation
        The movie's orientation (outward normals in order, :meth:`RhombOrientation.normals`).
    pixel_size_nm : float
        Pixel size, nm.
    source_nm : tuple of float
        ``(y_nm, x_nm)`` of the source point on the full frame's grid, nm.
    offset_px : tuple of int
        ``(row, col)`` of ``mask[0, 0]`` on the full frame (when ``mask`` is a crop).
    border : numpy.ndarray, optional
        Boolean, same shape as ``mask``: pixels where the data end (NaN, unlabelled,
        outside the frame: pad the crop). A side gives NaN when a border pixel next to
        the pit reaches beyond it (the pit may go on there).

    Returns
    -------
    numpy.ndarray
        float ``(4,)``: ``max over the pit of (p - source) . u_k`` for each outward
        normal ``u_k``, nm (pixel squares included: half a pixel beyond the centres).

    Examples
    --------
    >>> m = np.zeros((20, 20), bool)
    >>> m[5:10, 4:16] = True                      # 12 columns, 5 rows
    >>> o = RhombOrientation(0.0, 90.0)            # normals +x, +y, -x, -y
    >>> np.round(side_distances(m, o, 1.0, source_nm=(7.0, 10.0)), 6).tolist()
    [5.5, 2.5, 6.5, 2.5]
    """
    m = np.asarray(mask, bool)
    if not m.any() or not np.isfinite(orientation.normal_deg):
        return np.full(4, np.nan)
    n = orientation.normals()
    hull = _hull(m)
    r0, c0 = offset_px
    origin = np.array([source_nm[1] / pixel_size_nm - c0, source_nm[0] / pixel_size_nm - r0])
    extent = ((hull - origin) @ n.T).max(axis=0)  # (4,), pixels
    out = extent * float(pixel_size_nm)
    if border is not None:
        # border pixels next to the pit that reach beyond a side could hide its extent
        cand = np.asarray(border, bool) & ndimage.binary_dilation(m, _FOUR) & ~m
        if cand.any():
            rr, cc = np.nonzero(cand)
            pts = np.stack([cc, rr], axis=1).astype(float) - origin
            reach = (pts @ n.T).max(axis=0) + 0.5 * np.abs(n).sum(axis=1)
            out[reach > extent + 1e-6] = np.nan
    return out


def side_velocities(distances_nm, times_s, *, min_frames: int = 3) -> np.ndarray:
    """Retreat velocity of each side: the robust slope of its distance against time.

    Parameters
    ----------
    distances_nm : array_like
        ``(frames, 4)`` side distances of one track (:func:`side_distances`), NaN where
        not measured.
    times_s : array_like
        ``(frames,)`` times, s.
    min_frames : int
        Fewest measured frames a side needs.

    Returns
    -------
    numpy.ndarray
        float ``(4,)`` velocities, nm/s (NaN where not measurable).

    Examples
    --------
    >>> t = np.array([0.0, 300.0, 600.0])
    >>> d = np.outer(t, [0.3, 0.13, 0.3, 0.13]) + 5.0
    >>> np.round(side_velocities(d, t), 3).tolist()
    [0.3, 0.13, 0.3, 0.13]
    """
    d = np.asarray(distances_nm, float).reshape(-1, 4)
    t = np.asarray(times_s, float)
    if t.shape != (d.shape[0],):
        raise CalciteAFMError(f"{d.shape[0]} frames of distances but {t.size} times")
    return np.array([robust_slope(t, d[:, k], min_points=min_frames) for k in range(4)])


def obtuse_sides(velocities, weights: Sequence[float] | None = None) -> tuple[int, int]:
    """The two adjacent sides (indices into the four normals) that retreat fastest.

    Parameters
    ----------
    velocities : array_like
        ``(tracks, 4)`` side velocities, nm/s; tracks with a NaN side are left out.
    weights : sequence of float, optional
        One weight per track (e.g. its number of frames).

    Returns
    -------
    tuple of int
        ``(i, (i + 1) % 4)``: the obtuse sides; the other two are the acute ones.
        ``(0, 1)`` when no track has all four sides.

    Examples
    --------
    >>> obtuse_sides([[0.1, 0.3, 0.3, 0.1], [0.12, 0.25, 0.28, 0.1]])
    (1, 2)
    """
    v = np.asarray(velocities, float).reshape(-1, 4)
    w = np.ones(v.shape[0]) if weights is None else np.asarray(weights, float)
    ok = np.isfinite(v).all(axis=1) & np.isfinite(w)
    if not ok.any():
        return (0, 1)
    mean = (w[ok, None] * v[ok]).sum(axis=0) / w[ok].sum()
    scores = [mean[i] + mean[(i + 1) % 4] for i in range(4)]
    i = int(np.argmax(scores))
    return (i, (i + 1) % 4)


def velocity_ratio(obtuse_nm_s, acute_nm_s, weights: Sequence[float] | None = None) -> float:
    """The movie's obtuse/acute velocity ratio: weighted sums over its tracks.

    Parameters
    ----------
    obtuse_nm_s, acute_nm_s : array_like
        Per-track obtuse and acute velocities, nm/s (tracks with a NaN or a
        non-positive velocity are left out).
    weights : sequence of float, optional
        One weight per track (e.g. its number of frames).

    Returns
    -------
    float
        ``sum(w * obtuse) / sum(w * acute)``; NaN when no track has both.

    Examples
    --------
    >>> velocity_ratio([0.46, 0.23], [0.2, 0.1])
    2.3
    """
    vo = np.asarray(obtuse_nm_s, float)
    va = np.asarray(acute_nm_s, float)
    w = np.ones(vo.shape) if weights is None else np.asarray(weights, float)
    ok = np.isfinite(vo) & np.isfinite(va) & (vo > 0) & (va > 0) & np.isfinite(w)
    if not ok.any():
        return math.nan
    return float(round((w[ok] * vo[ok]).sum() / (w[ok] * va[ok]).sum(), 12))
