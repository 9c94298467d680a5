"""Artifact removal for AFM height frames: background, row alignment, scars, drift.

Every function takes heights in **nm** (a frame ``(rows, cols)`` or a stack
``(frames, rows, cols)``), ignores NaN pixels (lines the instrument did not record) in
every fit and keeps them NaN in its output. Masks follow one convention throughout:
``mask`` True marks a pixel that may be *used* by a fit (False excludes it, e.g. a pit the
user outlined); the correction is still applied to every pixel.

The package holds one concept per module:

- :mod:`~napari_calcite_afm.level.settings`: :class:`LevelSettings`, the settings of the
  default pipeline (stored in trained models), and :data:`ROW_METHODS`;
- :mod:`~napari_calcite_afm.level.frame`: the default pipeline, :func:`level_frame` and
  :func:`level_stack`, and :func:`zero_mean`;
- :mod:`~napari_calcite_afm.level.background`: :func:`polynomial_background` and the
  robust :func:`remove_background` (tilt, bow);
- :mod:`~napari_calcite_afm.level.rows`: scan-line alignment, :func:`row_offsets` and
  :func:`align_rows`, and the depressions along rows found before it;
- :mod:`~napari_calcite_afm.level.lines`: scan lines that failed as a whole (garbage,
  or offset far beyond the surface), :func:`find_bad_lines` (returns :class:`BadLines`);
- :mod:`~napari_calcite_afm.level.scars`: :func:`detect_scars` and :func:`remove_scars`;
- :mod:`~napari_calcite_afm.level.drift`: drift between frames, :func:`register_stack`
  (returns a :class:`Registration`) and :func:`shift_stack`;
- :mod:`~napari_calcite_afm.level.robust`: the robust statistics and polynomial fits
  they share.

The algorithms follow the published descriptions of Gwyddion's "align rows" and "remove
scars" and TopoStats' flattening; the code is original.

Examples
--------
>>> import numpy as np
>>> from napari_calcite_afm.level import LevelSettings, level_frame
>>> yy, xx = np.mgrid[0:32, 0:48].astype(float)
>>> raw = 0.2 * xx - 0.1 * yy + 5.0                  # tilt (nm)
>>> raw[1::2] += 0.4                                 # scan-line offsets (nm)
>>> out = level_frame(raw, LevelSettings(background_order=1))
>>> out.shape, bool(np.abs(out).max() < 1e-3)
((32, 48), True)
"""

from __future__ import annotations

from ..errors import Cancelled, LevelError

# ``_x_background`` and ``_row_depressions`` (the pits found before any row alignment)
# are private, but imported from here by the tests: the redundant aliases re-export them
from .background import _x_background as _x_background
from .background import polynomial_background, remove_background
from .drift import Registration, register_stack, shift_stack
from .frame import level_frame, level_stack, zero_mean
from .lines import BadLines, find_bad_lines
from .rows import _row_depressions as _row_depressions
from .rows import align_rows, row_offsets
from .scars import detect_scars, remove_scars
from .settings import ROW_METHODS, LevelSettings

__all__ = [
    "ROW_METHODS",
    "BadLines",
    "Cancelled",
    "LevelError",
    "LevelSettings",
    "Registration",
    "align_rows",
    "detect_scars",
    "find_bad_lines",
    "level_frame",
    "level_stack",
    "polynomial_background",
    "register_stack",
    "remove_background",
    "remove_scars",
    "row_offsets",
    "shift_stack",
    "zero_mean",
]
