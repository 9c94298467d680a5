"""Checks of the numbers a user gives, shared by the pipeline, the CLI and the widgets.

Each raises a :class:`~napari_calcite_afm.errors.CalciteAFMError` whose message names the
setting, the bound and the value, so that nonsense (a lag longer than the frame, a
negative or NaN frame interval, a zero pixel size) stops a run before any work instead
of producing empty rows, infinities or a silent default.

Examples
--------
>>> check_lags((1, 2, 4), (10, 64, 48))
(1, 2, 4)
>>> check_seconds("2.5")
2.5
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .errors import CalciteAFMError

__all__ = ["check_lags", "check_positive", "check_seconds", "holds_numbers", "is_whole"]


def holds_numbers(array: np.ndarray) -> bool:
    """Whether an array's dtype is real numbers (floats or integers; not bool, complex
    or objects), as heights, rates and fields must be.

    Examples
    --------
    >>> holds_numbers(np.zeros(2)), holds_numbers(np.arange(2)), holds_numbers(np.ones(2, bool))
    (True, True, False)
    """
    return bool(np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer))


def is_whole(value) -> bool:
    """Whether ``value`` is an integer (Python or numpy; not a bool).

    Examples
    --------
    >>> is_whole(3), is_whole(np.int64(3)), is_whole(3.0), is_whole(True)
    (True, True, False, False)
    """
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _whole_number(value) -> int | None:
    """``value`` as an int when it is one (``3``, ``3.0``, ``"3"``), else None."""
    if is_whole(value):
        return int(value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def check_positive(value, name: str, unit: str) -> float:
    """``value`` as a positive finite float, else an error naming ``name`` and ``unit``.

    Examples
    --------
    >>> check_positive(11.7, "pixel_size_nm", "nm")
    11.7
    >>> check_positive(0, "pixel_size_nm", "nm")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    napari_calcite_afm.errors.CalciteAFMError: pixel_size_nm must be a positive finite ...
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not (math.isfinite(number) and number > 0):
        raise CalciteAFMError(f"{name} must be a positive finite number of {unit}, got {value!r}")
    return number


def check_seconds(value, name: str = "frame_interval_s") -> float | None:
    """``value`` as a positive finite number of seconds (None stays None).

    Examples
    --------
    >>> check_seconds(2), check_seconds(None)
    (2.0, None)
    >>> check_seconds(float("nan"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    napari_calcite_afm.errors.CalciteAFMError: frame_interval_s must be a positive finite ...
    """
    return None if value is None else check_positive(value, name, "seconds")


def check_lags(
    lags: Sequence[int], shape: Sequence[int] | None = None, axis: str = "both", *,
    name: str = "lags",
) -> tuple[int, ...]:  # fmt: skip
    """The lags as a tuple of ints, each positive and smaller than the frame along it.

    Parameters
    ----------
    lags : sequence of int
        Lags in pixels (whole numbers; ``2.0`` and ``"2"`` are read as 2).
    shape : sequence of int, optional
        The shape of the frames or the stack; the last two are (rows, cols). None checks
        the lags alone.
    axis : {"both", "x", "y"}
        The lag direction: along the columns (x), the rows (y) or both.
    name : str
        How the message names the lags (``"--lags"`` on the command line).

    Returns
    -------
    tuple of int

    Raises
    ------
    CalciteAFMError
        For no lag, a lag that is not a positive whole number, or one not smaller than
        the frame (the message gives the frame size).

    Examples
    --------
    >>> check_lags([1, 2, 4], (10, 64, 48))
    (1, 2, 4)
    >>> check_lags((1, 1000000000), (10, 64, 48))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    napari_calcite_afm.errors.CalciteAFMError: lags must be smaller than the frame (64 x 48 ...
    """
    items = (lags,) if is_whole(lags) else lags
    try:
        values = tuple(_whole_number(v) for v in items)
    except TypeError:
        values = ()
    if not values or any(v is None or v < 1 for v in values):
        raise CalciteAFMError(f"{name} must be positive whole numbers of pixels, got {lags!r}")
    if shape is None:
        return values
    rows, cols = (int(v) for v in tuple(shape)[-2:])
    where, extent = {"x": ("x", cols), "y": ("y", rows)}.get(axis, ("x and y", min(rows, cols)))
    too_long = [s for s in values if s >= extent]
    if too_long:
        raise CalciteAFMError(
            f"{name} must be smaller than the frame ({rows} x {cols} pixels: at most "
            f"{extent - 1} px along {where}), got {', '.join(map(str, too_long))}"
        )
    return values
