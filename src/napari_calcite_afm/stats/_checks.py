"""Argument checks shared by the statistics functions.

Every check raises :class:`~napari_calcite_afm.errors.StatsError` (a
:class:`~napari_calcite_afm.errors.CalciteAFMError`, so a ``ValueError``) with the
problem in words.

Examples
--------
>>> _check_lags((1, 2, 2, 4.0))
[1, 2, 4]
>>> _class_codes(np.array([[0, 1, 2, 3]]), (1, 4), 2).tolist()
[[2, 0, 1, 1]]
"""

from __future__ import annotations

import math

import numpy as np

from ..checks import holds_numbers
from ..errors import StatsError
from ..labels import check_labels

#: Accepted values of ``axis``: ``"x"`` pairs along a row (columns), ``"y"`` along a
#: column (rows), ``"both"`` pools the pairs of the two directions.
AXES = ("x", "y", "both")


def _check_n_classes(n_classes: int) -> int:
    """``n_classes`` as an int, 2 or 3."""
    if n_classes not in (2, 3) or isinstance(n_classes, bool):
        raise StatsError(f"n_classes must be 2 or 3, got {n_classes!r}")
    return int(n_classes)


def _check_axis(axis: str) -> str:
    """``axis``, one of :data:`AXES`."""
    if axis not in AXES:
        raise StatsError(f"axis must be one of {AXES}, got {axis!r}")
    return axis


def _check_lag(lag) -> int:
    """One lag as a positive whole number of pixels."""
    try:
        value = float(lag)
    except (TypeError, ValueError):
        raise StatsError(f"a lag must be a positive whole number of pixels, got {lag!r}") from None
    if not math.isfinite(value) or value != int(value) or value < 1 or isinstance(lag, bool):
        raise StatsError(f"a lag must be a positive whole number of pixels, got {lag!r}")
    return int(value)


def _check_lags(lags) -> list[int]:
    """One lag or several, checked, duplicates dropped, order kept (pixels)."""
    if np.ndim(lags) == 0:
        lags = [lags]
    out: list[int] = []
    for lag in lags:
        s = _check_lag(lag)
        if s not in out:
            out.append(s)
    return out


def _as_frame(z, name: str = "z") -> np.ndarray:
    """A new ``float64`` copy of one 2D frame of heights (nm)."""
    arr = np.asarray(z)
    if arr.ndim != 2:
        raise StatsError(
            f"{name} must be one frame (rows, cols), got an array of shape {arr.shape}"
            + ("; use fit_stack for a stack" if arr.ndim == 3 else "")
        )
    if not holds_numbers(arr):
        raise StatsError(f"{name} must hold heights in nm (numbers), got dtype {arr.dtype}")
    return np.array(arr, dtype=np.float64)


def _class_codes(labels, shape: tuple[int, ...], n_classes: int) -> np.ndarray:
    """Class index per pixel (0 = A, 1 = B, 2 = M) and ``n_classes`` for unlabelled.

    The labels go through :func:`~napari_calcite_afm.labels.check_labels` (whole numbers
    0..3; a boolean mask is refused), with :class:`StatsError` as the error.
    """
    lab = np.asarray(labels)
    if lab.shape != tuple(shape):
        raise StatsError(
            f"labels shape {lab.shape} does not match the height frame shape {tuple(shape)}"
        )
    lab = check_labels(lab, error=StatsError)
    k = n_classes
    lut = np.array([k, 0, 1, 1 if k == 2 else 2], dtype=np.uint8)
    return lut[lab]
