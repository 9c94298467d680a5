"""Input checks shared by the levelling functions (frames, stacks, masks, orders).

Every public function of :mod:`napari_calcite_afm.level` validates its arguments here,
so the messages and the error class (:class:`~napari_calcite_afm.errors.LevelError`)
are the same everywhere.
"""

from __future__ import annotations

import numpy as np

from ..checks import holds_numbers
from ..errors import LevelError

#: Highest polynomial order of a background or row fit: 8 already follows any scanner
#: bow; higher orders only fit noise, run for minutes and overflow to +-inf.
MAX_ORDER = 8


def _as_frame(image, name: str = "image") -> np.ndarray:
    """A float64 copy of a 2-D frame (heights in nm)."""
    a = np.asarray(image)
    if a.ndim != 2:
        raise LevelError(f"{name} must be a 2-D frame (rows, cols), got shape {a.shape}")
    if not holds_numbers(a):
        raise LevelError(f"{name} must hold numbers, got dtype {a.dtype}")
    return a.astype(np.float64, copy=True)


def _as_stack(stack, name: str = "stack") -> np.ndarray:
    a = np.asarray(stack)
    if a.ndim != 3:
        raise LevelError(f"{name} must be a 3-D stack (frames, rows, cols), got shape {a.shape}")
    if not holds_numbers(a):
        raise LevelError(f"{name} must hold numbers, got dtype {a.dtype}")
    return a


def _usable(z: np.ndarray, mask) -> np.ndarray:
    """Finite pixels that the mask allows (mask True = use)."""
    ok = np.isfinite(z)
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != z.shape:
            raise LevelError(f"mask shape {m.shape} does not match image shape {z.shape}")
        ok &= m.astype(bool)
    return ok


def _check_order(order, name: str = "order", maximum: int | None = None) -> int:
    """``order`` as an int in 0..``maximum`` (no upper bound when None), else a LevelError."""
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 0:
        raise LevelError(f"{name} must be an integer >= 0, got {order!r}")
    if maximum is not None and order > maximum:
        raise LevelError(f"{name} must be at most {maximum} (no scanner needs more), got {order!r}")
    return int(order)
