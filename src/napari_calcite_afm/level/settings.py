"""The settings of the default levelling pipeline, :class:`LevelSettings`."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .._util import settings_from_dict
from ..errors import LevelError
from ._input import MAX_ORDER

__all__ = ["MAX_ORDER", "ROW_METHODS", "LevelSettings"]

#: Row-alignment methods understood by :func:`.align_rows` and :class:`LevelSettings`.
ROW_METHODS = ("none", "median", "median_diff", "polynomial")


@dataclass
class LevelSettings:
    """Settings of the default levelling pipeline (:func:`~napari_calcite_afm.level.level_frame`).

    JSON-serialisable through :meth:`to_dict` / :meth:`from_dict`; stored inside trained
    models, so that new frames are levelled exactly as the training frames were.

    Parameters
    ----------
    background_order : int
        Order of the polynomial background: 0 constant offset, 1 plane (tilt),
        2 plane + bow, 3 and above for stronger scanner bow; at most :data:`MAX_ORDER`
        (8: higher orders fit noise, take minutes and overflow).
    row_method : str
        Row (scan line) alignment: ``"none"``, ``"median"``, ``"median_diff"`` (median of
        row-to-row differences, the default: robust to pits and steps) or
        ``"polynomial"`` (a polynomial of ``row_order`` subtracted from each row).
    row_order : int
        Polynomial order for ``row_method="polynomial"`` (0 to :data:`MAX_ORDER`).
    scars : bool
        Detect and repair scars (short streaks along a scan line).
    robust_iterations : int
        Refits of the robust background after the first fit (0: plain least squares).
    outlier_sigma : float
        Pixels further than this many robust standard deviations (MAD based) from the
        background are excluded from the next fit and from the second row alignment.
    zero_mean : bool
        Subtract the mean height (over valid pixels) at the end.

    Examples
    --------
    >>> s = LevelSettings(background_order=1)
    >>> LevelSettings.from_dict(s.to_dict()) == s
    True
    >>> LevelSettings(background_order=99)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    napari_calcite_afm.errors.LevelError: LevelSettings.background_order must be at most 8 ...
    """

    background_order: int = 2
    row_method: str = "median_diff"
    row_order: int = 1
    scars: bool = True
    robust_iterations: int = 3
    outlier_sigma: float = 2.5
    zero_mean: bool = True

    def __post_init__(self) -> None:
        for name in ("background_order", "row_order", "robust_iterations"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise LevelError(f"LevelSettings.{name} must be an integer >= 0, got {value!r}")
            setattr(self, name, int(value))
        for name in ("background_order", "row_order"):
            if getattr(self, name) > MAX_ORDER:
                raise LevelError(
                    f"LevelSettings.{name} must be at most {MAX_ORDER} (no scanner needs a "
                    f"higher polynomial order), got {getattr(self, name)!r}"
                )
        if self.row_method not in ROW_METHODS:
            raise LevelError(
                f"LevelSettings.row_method must be one of {', '.join(ROW_METHODS)}; "
                f"got {self.row_method!r}"
            )
        try:
            sigma = float(self.outlier_sigma)
        except (TypeError, ValueError):
            sigma = float("nan")
        if not np.isfinite(sigma) or sigma <= 0:
            raise LevelError(
                f"LevelSettings.outlier_sigma must be a number > 0, got {self.outlier_sigma!r}"
            )
        self.outlier_sigma = sigma
        self.scars = bool(self.scars)
        self.zero_mean = bool(self.zero_mean)

    def to_dict(self) -> dict:
        """Plain ``dict`` of the settings (JSON-serialisable)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> LevelSettings:
        """Settings from a ``dict``; missing keys take their defaults.

        Raises
        ------
        LevelError
            If ``d`` holds a key that is not a setting, or a value is invalid.
        """
        return settings_from_dict(cls, d, LevelError, "levelling")
