"""Etch pits of one frame: connected components of a pit class, measured in nm.

:func:`find_pits` finds the multilayer pits (label 1) and, when the labels have them,
the monolayer pits (label 3) of one registered frame, and measures each: centroid,
area, depth below the surrounding terrace, dissolved volume, the position of its
bottom, and whether it touches the border of the data (NaN or unlabelled pixels, or
the edge of the frame), where its area is not measurable. :class:`PitSettings` holds
the settings of pit finding and tracking (:func:`~.tracking.track_pits`).

Depth and volume follow one reference: the *surrounding terrace* is the median height
of the terrace pixels (label 2) in a ring ``ring_px`` wide around the pit (all the
non-pit pixels of the ring when it holds fewer than :data:`_MIN_RING` terrace pixels).
The depth is that height minus the pit's robust lowest height (its
``bottom_percentile`` percentile); the volume is the integral over the pit of the
height below the surrounding terrace (pixels above it count zero).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from .._util import settings_from_dict
from ..errors import CalciteAFMError
from ..labels import (
    LABEL_MONOLAYER,
    LABEL_MULTILAYER,
    LABEL_TERRACE,
    LABEL_UNLABELLED,
    check_labels,
)

__all__ = ["PIT_COLUMNS", "FramePits", "PitSettings", "find_pits", "measure_components"]

#: The columns of ``pits.csv`` that every consumer can rely on, in this order (extra
#: columns follow them: ``touches_border``, ``bottom_y_nm``, ``bottom_x_nm``, ``n_px``).
PIT_COLUMNS = (
    "track_id",
    "frame",
    "time_s",
    "y_nm",
    "x_nm",
    "area_nm2",
    "depth_nm",
    "volume_nm3",
    "class",
)
_MIN_RING = 4  # terrace pixels a ring needs before the other non-pit pixels are used
_FOUR = ndimage.generate_binary_structure(2, 1)
_EIGHT = np.ones((3, 3), bool)


@dataclass
class PitSettings:
    """Settings of pit finding (:func:`find_pits`) and tracking (:func:`track_pits`).

    Attributes
    ----------
    classes : tuple of int
        Label values whose connected components are pits: 1 (multilayer) and 3
        (monolayer, when the labels have them).
    min_area_px : int
        Smallest pit kept, pixels (smaller components are segmentation noise).
    connectivity : int
        1: pixels sharing a side form one pit; 2: corners too.
    ring_px : int
        Width of the ring of surrounding terrace, pixels.
    bottom_percentile : float
        Percentile of the pit's heights taken as its lowest point (robust to noise).
    min_overlap : float
        Two pits of consecutive frames are linked when they share at least this
        fraction of the smaller one's pixels.
    link_distance_nm : float
        A pit without any overlap is linked to the nearest unlinked pit of the frame
        before within this distance of its centroid, nm (small pits, residual drift).
    max_gap : int
        Frames a pit may be missed (segmentation) and keep its track.
    min_fit_frames : int
        Frames (not touching the border) a track needs for its rates.
    min_rhomb_fill : float
        Pit area over its enclosing rhombus (the movie's orientation) a pit needs, as a
        median over its track, for step velocities (merged pits are not rhombic).
    separate_classes : tuple of int
        Classes whose touching pits are kept apart by a watershed of the heights from
        their bottoms (multilayer pits: each has its own deepest point) rather than
        merged (:mod:`~napari_calcite_afm.kinetics.separation`).
    min_keep : float
        A pit kept apart needs a basin of at least this fraction of its area in the
        frame before; one with less has been absorbed (its track ends, merged).
    new_basin_nm : float
        A minimum of the heights inside a pit of ``separate_classes``, at least this
        deep below the saddle to its neighbours (nm) and not the basin of a known pit,
        is a new pit (one that nucleated against or inside another); 0 turns this off.

    Examples
    --------
    >>> s = PitSettings(min_area_px=20)
    >>> PitSettings.from_dict(s.to_dict()) == s
    True
    """

    classes: tuple[int, ...] = (LABEL_MULTILAYER, LABEL_MONOLAYER)
    min_area_px: int = 9
    connectivity: int = 1
    ring_px: int = 3
    bottom_percentile: float = 2.0
    min_overlap: float = 0.2
    link_distance_nm: float = 60.0
    max_gap: int = 1
    min_fit_frames: int = 3
    min_rhomb_fill: float = 0.7
    separate_classes: tuple[int, ...] = (LABEL_MULTILAYER,)
    min_keep: float = 0.5
    new_basin_nm: float = 1.0

    def __post_init__(self) -> None:
        self.classes = tuple(int(c) for c in self.classes)
        self.separate_classes = tuple(int(c) for c in self.separate_classes)
        bad = [c for c in self.classes if c not in (LABEL_MULTILAYER, LABEL_MONOLAYER)]
        if not self.classes or bad:
            raise CalciteAFMError(
                f"pit classes must be 1 (multilayer) and/or 3 (monolayer), got {self.classes}"
            )
        for name in ("min_area_px", "ring_px", "min_fit_frames"):
            if int(getattr(self, name)) < 1:
                raise CalciteAFMError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.connectivity not in (1, 2):
            raise CalciteAFMError(f"connectivity must be 1 or 2, got {self.connectivity}")
        if int(self.max_gap) < 0:
            raise CalciteAFMError(f"max_gap must be 0 or more frames, got {self.max_gap}")
        if not 0 <= float(self.bottom_percentile) <= 50:
            raise CalciteAFMError(
                f"bottom_percentile must be in [0, 50], got {self.bottom_percentile}"
            )
        if not 0 < float(self.min_overlap) <= 1:
            raise CalciteAFMError(f"min_overlap must be in (0, 1], got {self.min_overlap}")
        if not float(self.link_distance_nm) >= 0:
            raise CalciteAFMError(
                f"link_distance_nm must be 0 or more, got {self.link_distance_nm}"
            )
        if not set(self.separate_classes) <= {LABEL_MULTILAYER, LABEL_MONOLAYER}:
            raise CalciteAFMError(
                f"separate_classes must be among 1 and 3, got {self.separate_classes}"
            )
        if not float(self.new_basin_nm) >= 0:
            raise CalciteAFMError(f"new_basin_nm must be 0 or more, got {self.new_basin_nm}")
        if not 0 <= float(self.min_keep) <= 1:
            raise CalciteAFMError(f"min_keep must be in [0, 1], got {self.min_keep}")
        if not 0 <= float(self.min_rhomb_fill) <= 1:
            raise CalciteAFMError(f"min_rhomb_fill must be in [0, 1], got {self.min_rhomb_fill}")

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-serialisable dict (inverse of :meth:`from_dict`)."""
        return {
            "classes": list(self.classes),
            "min_area_px": int(self.min_area_px),
            "connectivity": int(self.connectivity),
            "ring_px": int(self.ring_px),
            "bottom_percentile": float(self.bottom_percentile),
            "min_overlap": float(self.min_overlap),
            "link_distance_nm": float(self.link_distance_nm),
            "max_gap": int(self.max_gap),
            "min_fit_frames": int(self.min_fit_frames),
            "min_rhomb_fill": float(self.min_rhomb_fill),
            "separate_classes": list(self.separate_classes),
            "min_keep": float(self.min_keep),
            "new_basin_nm": float(self.new_basin_nm),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PitSettings:
        """Settings from :meth:`to_dict`'s dict; unknown keys raise a
        :class:`~napari_calcite_afm.errors.CalciteAFMError`."""
        return settings_from_dict(cls, d, CalciteAFMError, "pit tracking")


@dataclass
class FramePits:
    """The pits of one frame.

    Attributes
    ----------
    components : numpy.ndarray
        int32 ``(rows, cols)``: 0 outside pits, ``i + 1`` on the pixels of pit ``i``.
    rows : list of dict
        One dict per pit, in the order of ``components``: ``y_nm``, ``x_nm`` (centroid,
        nm from the centre of pixel (0, 0); ``x`` along columns, ``y`` along rows),
        ``area_nm2``, ``depth_nm``, ``volume_nm3`` (NaN where no surrounding height is
        known), ``class``, ``touches_border`` (bool), ``bottom_y_nm``, ``bottom_x_nm``
        (the pit's lowest point, smoothed), ``n_px``.
    """

    components: np.ndarray
    rows: list[dict] = field(default_factory=list)

    @property
    def n(self) -> int:
        """Number of pits."""
        return len(self.rows)


def _check_frame(heights, labels, pixel_size_nm: float) -> tuple[np.ndarray, np.ndarray]:
    """Heights (float64, NaN kept) and labels (uint8) of one frame, checked."""
    z = np.asarray(heights)
    lab = np.asarray(labels)
    if z.ndim != 2:
        raise CalciteAFMError(f"a frame of heights must be 2D (rows, cols), got shape {z.shape}")
    if lab.shape != z.shape:
        raise CalciteAFMError(
            f"labels of shape {lab.shape} do not match the heights' shape {z.shape}"
        )
    if not np.issubdtype(z.dtype, np.number) or np.iscomplexobj(z):
        raise CalciteAFMError(f"heights must be real numbers, got dtype {z.dtype}")
    if not (np.isfinite(pixel_size_nm) and pixel_size_nm > 0):
        raise CalciteAFMError(f"pixel_size_nm must be a positive number, got {pixel_size_nm}")
    return z.astype(np.float64, copy=False), check_labels(lab)


def _touches(mask: np.ndarray, box: tuple[slice, slice], nodata: np.ndarray, shape) -> bool:
    """Whether a pit (``mask`` over ``box``) lies next to missing data or on the frame's
    edge: its area there is not measurable."""
    if (ndimage.binary_dilation(mask, _EIGHT) & nodata[box]).any():
        return True
    rs, cs = box
    return bool(
        (rs.start == 0 and mask[0].any())
        or (rs.stop == shape[0] and mask[-1].any())
        or (cs.start == 0 and mask[:, 0].any())
        or (cs.stop == shape[1] and mask[:, -1].any())
    )


def _measure(
    z: np.ndarray,
    lab: np.ndarray,
    mask: np.ndarray,
    box: tuple[slice, slice],
    settings: PitSettings,
) -> tuple[float, float, float, float, float]:
    """Depth, volume (nm, nm^3 per px^2), bottom row and column, surrounding height of
    the pit ``mask`` (a bool array over ``box`` of the frame, padded by the ring)."""
    zb = z[box]
    pit_z = zb[mask]
    pit_z = pit_z[np.isfinite(pit_z)]
    ring = ndimage.binary_dilation(mask, _EIGHT, iterations=int(settings.ring_px)) & ~mask
    ring &= np.isfinite(zb)
    terrace = ring & (lab[box] == LABEL_TERRACE)
    use = terrace if terrace.sum() >= _MIN_RING else ring & (lab[box] != LABEL_UNLABELLED)
    if pit_z.size == 0 or not use.any():
        return np.nan, np.nan, np.nan, np.nan, np.nan
    surround = float(np.median(zb[use]))
    bottom = float(np.percentile(pit_z, settings.bottom_percentile))
    volume = float(np.clip(surround - pit_z, 0.0, None).sum())
    # the bottom's position: the lowest point of the smoothed heights in the pit
    filled = np.where(mask & np.isfinite(zb), zb, surround)
    smooth = ndimage.gaussian_filter(filled, 1.0)
    smooth[~mask] = np.inf
    r, c = np.unravel_index(int(np.argmin(smooth)), smooth.shape)
    return surround - bottom, volume, float(r + box[0].start), float(c + box[1].start), surround


def find_pits(
    heights,
    labels,
    pixel_size_nm: float,
    *,
    settings: PitSettings | None = None,
) -> FramePits:
    """Find and measure the etch pits of one frame.

    Pits are connected components of each class of ``settings.classes`` present in
    ``labels`` (multilayer pits, label 1; monolayer pits, label 3) of at least
    ``settings.min_area_px`` pixels.

    Parameters
    ----------
    heights : array_like
        ``(rows, cols)`` heights, nm; NaN where there is no data (outside the overlap
        of a registered movie).
    labels : array_like
        ``(rows, cols)`` labels 0-3 on the same grid (1 multilayer pit, 2 terrace,
        3 monolayer pit, 0 unlabelled).
    pixel_size_nm : float
        Pixel size, nm.
    settings : PitSettings, optional
        Minimum area, ring width, bottom percentile, connectivity.

    Returns
    -------
    FramePits
        The component image and one row per pit: centroid ``y_nm, x_nm`` (nm),
        ``area_nm2`` (nm^2), ``depth_nm`` (nm below the surrounding terrace),
        ``volume_nm3`` (nm^3), ``class``, ``touches_border`` (area not measurable),
        ``bottom_y_nm, bottom_x_nm`` (nm), ``n_px``.

    Examples
    --------
    >>> z = np.zeros((32, 32), np.float32)
    >>> lab = np.full((32, 32), 2, np.uint8)
    >>> lab[8:16, 10:20] = 1
    >>> z[8:16, 10:20] = -3.0                      # a pit 3 nm deep
    >>> pits = find_pits(z, lab, 10.0)
    >>> row = pits.rows[0]
    >>> pits.n, row["area_nm2"], row["depth_nm"], row["volume_nm3"]
    (1, 8000.0, 3.0, 24000.0)
    >>> row["y_nm"], row["x_nm"], row["class"], row["touches_border"]
    (115.0, 145.0, 1, False)
    """
    settings = PitSettings() if settings is None else settings
    z, lab = _check_frame(heights, labels, float(pixel_size_nm))
    comps, classes = _components(lab, settings)
    return measure_components(z, lab, comps, classes, float(pixel_size_nm), settings)


def _components(lab: np.ndarray, settings: PitSettings) -> tuple[np.ndarray, list[int]]:
    """Pit component image (int32, ids from 1, class after class, raster order within a
    class; components under ``min_area_px`` left out) and the class of each id."""
    structure = _FOUR if settings.connectivity == 1 else _EIGHT
    comps = np.zeros(lab.shape, np.int32)
    classes: list[int] = []
    for cls in settings.classes:
        comp, n = ndimage.label(lab == cls, structure)
        if n == 0:
            continue
        sizes = np.bincount(comp.ravel(), minlength=n + 1)
        keep = np.flatnonzero(sizes[1:] >= settings.min_area_px) + 1
        lut = np.zeros(n + 1, np.int32)
        lut[keep] = np.arange(len(classes) + 1, len(classes) + 1 + keep.size, dtype=np.int32)
        new = lut[comp]
        comps[new > 0] = new[new > 0]
        classes.extend([int(cls)] * keep.size)
    return comps, classes


def measure_components(
    z: np.ndarray,
    lab: np.ndarray,
    comps: np.ndarray,
    classes: list[int],
    pixel_size_nm: float,
    settings: PitSettings,
) -> FramePits:
    """Measure the pits of a component image (ids ``1..len(classes)``).

    Parameters
    ----------
    z : numpy.ndarray
        float ``(rows, cols)`` heights, nm (NaN where there is no data).
    lab : numpy.ndarray
        uint8 ``(rows, cols)`` labels 0-3.
    comps : numpy.ndarray
        int ``(rows, cols)``: pit ``i`` on the pixels of value ``i + 1``, 0 elsewhere.
    classes : list of int
        The class of each pit.
    pixel_size_nm : float
        Pixel size, nm.
    settings : PitSettings
        Ring width, bottom percentile.

    Returns
    -------
    FramePits
        As :func:`find_pits` returns it (``components`` is ``comps`` as int32).

    Examples
    --------
    >>> lab = np.full((20, 20), 2, np.uint8)
    >>> comps = np.zeros((20, 20), np.int32)
    >>> comps[5:9, 5:9] = 1
    >>> lab[5:9, 5:9] = 1
    >>> pits = measure_components(np.where(comps > 0, -1.0, 0.0), lab, comps, [1], 2.0,
    ...                           PitSettings())
    >>> pits.rows[0]["area_nm2"], pits.rows[0]["depth_nm"]
    (64.0, 1.0)
    """
    p = float(pixel_size_nm)
    nodata = ~np.isfinite(z) | (lab == LABEL_UNLABELLED)
    pad = int(settings.ring_px) + 2
    rows: list[dict] = []
    for i, sl in enumerate(ndimage.find_objects(comps, max_label=len(classes)), start=1):
        if sl is None:  # an id with no pixel left (cannot happen from find_pits)
            sl = (slice(0, 1), slice(0, 1))
        box = tuple(
            slice(max(s.start - pad, 0), min(s.stop + pad, dim)) for s, dim in zip(sl, z.shape)
        )
        mask = comps[box] == i
        rr, cc = np.nonzero(mask)
        touches = _touches(mask, box, nodata, z.shape)
        depth, volume, br, bc, _ = _measure(z, lab, mask, box, settings)
        n_px = int(rr.size)
        rows.append(
            {
                "y_nm": float((rr.mean() + box[0].start) * p) if n_px else np.nan,
                "x_nm": float((cc.mean() + box[1].start) * p) if n_px else np.nan,
                "area_nm2": float(n_px * p * p),
                "depth_nm": depth,
                "volume_nm3": volume * p * p,
                "class": int(classes[i - 1]),
                "touches_border": touches,
                "bottom_y_nm": br * p,
                "bottom_x_nm": bc * p,
                "n_px": n_px,
            }
        )
    return FramePits(components=np.asarray(comps, np.int32), rows=rows)
