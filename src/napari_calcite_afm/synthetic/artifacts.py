"""Scan artifacts: what an AFM adds on top of the surface, frame by frame.

:func:`add_artifacts` adds tilt (a plane), bow (second order), scan-line offsets (a
random walk plus occasional jumps and one-line glitches), scars (short bright or dark
streaks along the fast scan axis) and white noise to one frame. A series also drifts
between frames (:func:`_draw_drift`, a smooth sub-pixel random walk); its artifact
settings are drawn once per series (:func:`_draw_scan_settings`) and jittered per frame
(:func:`_frame_artifacts`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import CalciteAFMError
from .fields import _as_rng

__all__ = ["add_artifacts"]


def add_artifacts(
    surface: np.ndarray,
    rng: np.random.Generator | int | None,
    *,
    tilt_nm: float | None = None,
    bow_nm: float | None = None,
    row_offset_nm: float | None = None,
    n_scars: int | None = None,
    noise_nm: float | None = None,
    tilt_direction_deg: float | None = None,
) -> np.ndarray:
    """Add AFM scan artifacts to one frame.

    Parameters
    ----------
    surface : numpy.ndarray
        One frame ``(rows, cols)`` of heights, nm. NaN stays NaN.
    rng : numpy.random.Generator or int or None
        Random generator or seed.
    tilt_nm : float, optional
        Sample tilt: the rise of the plane across the frame along its direction, nm.
        Default: drawn in [10, 40] nm. 0 disables it.
    bow_nm : float, optional
        Peak-to-peak height of the second-order (bow) background, nm. Default: drawn in
        [1, 5] nm. 0 disables it.
    row_offset_nm : float, optional
        Typical size of the occasional jumps of the scan-line offsets, nm (the offsets
        also follow a random walk with steps of ``row_offset_nm / 15``). Default: drawn
        in [0.2, 1] nm. 0 disables row offsets.
    n_scars : int, optional
        Number of scars (streaks along a row, 1-3 rows thick, 10-100 pixels long,
        bright or dark, 1-4 nm). Default: drawn in [2, 12].
    noise_nm : float, optional
        Standard deviation of the white noise, nm. Default: drawn in [0.03, 0.08] nm.
    tilt_direction_deg : float, optional
        Direction of the tilt's gradient in the image (0 = along columns, i.e. to the
        right; 90 = down the rows). Default: random.

    Returns
    -------
    numpy.ndarray
        float32 ``(rows, cols)``: the raw frame, nm.

    Examples
    --------
    >>> import numpy as np
    >>> raw = add_artifacts(np.zeros((64, 64), np.float32), 0, tilt_nm=20.0, n_scars=0)
    >>> raw.dtype, float(raw.max() - raw.min()) > 10
    (dtype('float32'), True)
    """
    surface = np.asarray(surface)
    if surface.ndim != 2:
        raise CalciteAFMError(
            f"add_artifacts expects one frame (rows, cols), got shape {surface.shape}"
        )
    rng = _as_rng(rng)
    rows, cols = surface.shape
    if tilt_nm is None:
        tilt_nm = float(rng.uniform(10.0, 40.0))
    if bow_nm is None:
        bow_nm = float(rng.uniform(1.0, 5.0))
    if row_offset_nm is None:
        row_offset_nm = float(rng.uniform(0.2, 1.0))
    if n_scars is None:
        n_scars = int(rng.integers(2, 13))
    if noise_nm is None:
        noise_nm = float(rng.uniform(0.03, 0.08))
    if tilt_direction_deg is None:
        tilt_direction_deg = float(rng.uniform(0.0, 360.0))

    yn = (np.arange(rows, dtype=np.float64) / max(rows - 1, 1) - 0.5)[:, None]
    xn = (np.arange(cols, dtype=np.float64) / max(cols - 1, 1) - 0.5)[None, :]
    ang = math.radians(tilt_direction_deg)
    bg = float(tilt_nm) * (xn * math.cos(ang) + yn * math.sin(ang))
    if bow_nm:
        a, b = rng.uniform(0.6, 1.0, 2)
        c = rng.uniform(-0.4, 0.4)
        bow = a * xn**2 + b * yn**2 + c * xn * yn
        bow = bow - bow.min()
        bow *= float(bow_nm) / max(float(bow.max()), 1e-12)
        bg = bg + (bow if rng.random() < 0.5 else -bow)

    offsets = np.zeros(rows)
    if row_offset_nm:
        walk = np.cumsum(rng.normal(0.0, row_offset_nm / 15.0, rows))
        jumps = np.where(
            rng.random(rows) < rng.uniform(0.005, 0.03),
            rng.choice([-1.0, 1.0], rows) * rng.uniform(0.4, 1.2, rows) * row_offset_nm,
            0.0,
        )
        glitches = np.where(
            rng.random(rows) < 0.01,
            rng.choice([-1.0, 1.0], rows) * rng.uniform(0.5, 1.5, rows) * row_offset_nm,
            0.0,
        )
        offsets = walk + np.cumsum(jumps) + glitches
        offsets -= offsets.mean()
    out = surface.astype(np.float64) + bg + offsets[:, None]

    for _ in range(int(n_scars)):
        thick = int(rng.integers(1, 4))
        length = int(rng.integers(10, 101))
        r = int(rng.integers(0, max(rows - thick, 1)))
        c = int(rng.integers(-length // 2, cols))
        amp = float(rng.choice([-1.0, 1.0]) * rng.uniform(1.0, 4.0))
        c0, c1 = max(c, 0), min(c + length, cols)
        if c1 <= c0:
            continue
        profile = amp * (1.0 + 0.15 * rng.standard_normal(c1 - c0))
        out[r : r + thick, c0:c1] += profile[None, :]

    if noise_nm:
        out += rng.normal(0.0, float(noise_nm), out.shape)
    return out.astype(np.float32)


def _draw_drift(rng: np.random.Generator, n_frames: int, scale_px: float) -> np.ndarray:
    """Smooth random walk of the frame position, ``(frames, 2)`` pixels."""
    drift = np.zeros((n_frames, 2))
    if n_frames < 2 or scale_px <= 0:
        return drift
    v_const = rng.normal(0.0, 0.8 * scale_px, 2)
    v = np.zeros(2)
    for k in range(1, n_frames):
        v = 0.7 * v + rng.normal(0.0, 0.6 * scale_px, 2)
        drift[k] = drift[k - 1] * 0.98 + v + v_const
    return drift


@dataclass
class _ScanSettings:
    """Artifact settings of a whole series (nm, degrees), jittered frame by frame."""

    noise_nm: Any  # as given, or drawn
    tilt_nm: float
    tilt_direction_deg: float
    bow_nm: float
    row_offset_nm: float
    scar_rate: float  # mean number of scars per frame

    def record(self) -> dict[str, float]:
        """The settings as recorded in ``SyntheticSeries.params["drawn"]``."""
        return {
            "noise_nm": float(self.noise_nm),
            "tilt_nm": self.tilt_nm,
            "tilt_direction_deg": self.tilt_direction_deg,
            "bow_nm": self.bow_nm,
            "row_offset_nm": self.row_offset_nm,
        }


def _draw_scan_settings(rng: np.random.Generator, noise_nm: float | None) -> _ScanSettings:
    """Draw the series-level artifact settings (``noise_nm`` None draws the noise too)."""
    if noise_nm is None:
        noise_nm = float(rng.uniform(0.03, 0.08))
    tilt = float(rng.uniform(10.0, 40.0))
    tilt_dir = float(rng.uniform(0.0, 360.0))
    bow = float(rng.uniform(1.0, 5.0))
    row_off = float(rng.uniform(0.2, 1.0))
    scar_rate = float(rng.uniform(2.0, 10.0))
    return _ScanSettings(noise_nm, tilt, tilt_dir, bow, row_off, scar_rate)


def _frame_artifacts(
    surface: np.ndarray, rng: np.random.Generator, scan: _ScanSettings, scars: bool
) -> np.ndarray:
    """:func:`add_artifacts` with the series' settings, jittered for this frame."""
    return add_artifacts(
        surface,
        rng,
        tilt_nm=scan.tilt_nm * float(rng.uniform(0.95, 1.05)),
        tilt_direction_deg=scan.tilt_direction_deg + float(rng.normal(0.0, 2.0)),
        bow_nm=scan.bow_nm * float(rng.uniform(0.9, 1.1)),
        row_offset_nm=scan.row_offset_nm,
        n_scars=int(rng.poisson(scan.scar_rate)) if scars else 0,
        noise_nm=scan.noise_nm,
    )
