"""Roughness, noise and scan artifacts of the cellular generator (:mod:`.cellular`).

Written apart from :mod:`.artifacts` and :mod:`.fields` on purpose: a network trained on
one generator and tested on the other must not meet the same noise model twice. The
models here:

* roughness: a von Karman random field (power spectrum ``(1 + (k xi)^2)^-(1 + H)``,
  Hurst exponent ``H``), rougher inside pits than on terraces, partly kept from frame to
  frame;
* the tip: a paraboloid of radius ``R`` (grey dilation), which widens steps and fills
  narrow pits at small pixel sizes;
* feedback lag along the fast axis (a first-order low-pass run along each scan line);
* background: a plane, a cubic bow and piezo creep at the start of the slow scan;
* scan-line offsets: an AR(1) process over lines plus telegraph jumps, and a small slope
  per line;
* streaks: segments where the feedback lost the surface (a held value) or rang (a jump
  decaying along the line);
* noise: white, a part correlated along the fast axis, and a faint periodic ripple.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import ndimage, signal


def _von_karman(
    rng: np.random.Generator, shape: tuple[int, int], corr_px: float, hurst: float
) -> np.ndarray:
    """A von Karman random field (unit standard deviation, float64) on a grid ``shape``."""
    noise = rng.standard_normal(shape)
    kr = np.fft.fftfreq(shape[0])[:, None]
    kc = np.fft.rfftfreq(shape[1])[None, :]
    k2 = (2 * math.pi) ** 2 * (kr**2 + kc**2) * max(float(corr_px), 0.5) ** 2
    amplitude = (1.0 + k2) ** (-(1.0 + float(hurst)) / 2.0)
    field = np.fft.irfft2(np.fft.rfft2(noise) * amplitude, s=shape)
    std = field.std()
    return field / std if std > 0 else field


def _draw_roughness(
    rng: np.random.Generator, roughness_nm: float, pixel_size_nm: float
) -> dict[str, float]:
    """Roughness settings: RMS on terraces and in pits (nm), correlation (pixels), Hurst."""
    return {
        "terrace_nm": float(roughness_nm),
        "pit_nm": float(roughness_nm) * float(rng.uniform(1.2, 2.5)),
        "corr_px": float(math.exp(rng.uniform(math.log(5.0), math.log(60.0)))) / pixel_size_nm,
        "hurst": float(rng.uniform(0.3, 0.9)),
    }


def _roughness_fields(
    rng: np.random.Generator, shape: tuple[int, int], rough: dict, previous=None
) -> tuple[np.ndarray, np.ndarray]:
    """The (terrace, pit) roughness fields of a frame, 70 % kept from ``previous``."""
    new = tuple(_von_karman(rng, shape, rough["corr_px"], rough["hurst"]) for _ in range(2))
    if previous is None:
        return new
    return tuple(0.7 * p + 0.714 * n for p, n in zip(previous, new))


def _draw_scan(
    rng: np.random.Generator, noise_nm: float, pixel_size_nm: float, scars: bool
) -> dict[str, Any]:
    """Series-level scan settings (JSON-serialisable), jittered frame by frame."""
    return {
        "noise_nm": float(noise_nm),
        "noise_fast_axis_correlation": float(rng.uniform(0.0, 0.8)),
        "ripple_fraction": float(rng.uniform(0.0, 0.4)) if rng.random() < 0.3 else 0.0,
        "ripple_period_px": float(rng.uniform(4.0, 40.0)),
        "tip_radius_nm": float(math.exp(rng.uniform(math.log(3.0), math.log(40.0)))),
        "feedback_lag": float(rng.uniform(0.3, 0.9)) if rng.random() < 0.5 else 1.0,
        "tilt_nm": float(rng.uniform(0.0, 60.0)),
        "tilt_direction_deg": float(rng.uniform(0.0, 360.0)),
        "bow_nm": float(rng.uniform(-8.0, 8.0)),
        "creep_nm": float(rng.uniform(0.0, 10.0)) if rng.random() < 0.5 else 0.0,
        "creep_rows": float(rng.uniform(5.0, 80.0)),
        "line_offset_nm": float(math.exp(rng.uniform(math.log(0.05), math.log(2.0)))),
        "line_memory": float(rng.uniform(0.5, 0.98)),
        "line_jump_rate": float(rng.uniform(0.0, 0.03)),
        "streak_rate": float(rng.uniform(0.0, 15.0)) if scars else 0.0,
        "pixel_size_nm": float(pixel_size_nm),
    }


def _tip(surface: np.ndarray, radius_nm: float, pixel_size_nm: float) -> np.ndarray:
    """Grey dilation by a paraboloid tip (what the apex of an AFM tip records)."""
    reach = int(min(3, math.floor(math.sqrt(2.0 * radius_nm * 2.0) / pixel_size_nm)))
    if reach < 1:
        return surface
    r = np.arange(-reach, reach + 1) * pixel_size_nm
    drop = (r[:, None] ** 2 + r[None, :] ** 2) / (2.0 * radius_nm)
    return ndimage.grey_dilation(surface, structure=-drop, mode="nearest")


def _background(rng: np.random.Generator, shape: tuple[int, int], s: dict) -> np.ndarray:
    """Plane, cubic bow and creep along the slow axis, nm."""
    rows, cols = shape
    y = (np.arange(rows) / max(rows - 1, 1) - 0.5)[:, None]
    x = (np.arange(cols) / max(cols - 1, 1) - 0.5)[None, :]
    ang = math.radians(s["tilt_direction_deg"] + rng.normal(0.0, 3.0))
    tilt = s["tilt_nm"] * rng.uniform(0.9, 1.1)
    bg = tilt * (x * math.cos(ang) + y * math.sin(ang))
    a, b, c = rng.uniform(-1.0, 1.0, 3)
    bg = bg + s["bow_nm"] * (x**2 + 0.6 * y**2 + 0.4 * a * x**3 + 0.4 * b * y**3 + 0.3 * c * x * y)
    if s["creep_nm"]:
        rr = np.arange(rows)[:, None]
        bg = bg + s["creep_nm"] * np.exp(-rr / s["creep_rows"])
    return bg


def _line_offsets(rng: np.random.Generator, shape: tuple[int, int], s: dict) -> np.ndarray:
    """Per-line offsets (AR(1) plus telegraph jumps) and a small slope per line, nm."""
    rows, cols = shape
    sigma = s["line_offset_nm"]
    phi = s["line_memory"]
    innov = rng.normal(0.0, sigma * math.sqrt(1.0 - phi**2), rows)
    ar = signal.lfilter([1.0], [1.0, -phi], innov)
    jumps = np.cumsum((rng.random(rows) < s["line_jump_rate"]) * rng.normal(0.0, 2.0 * sigma, rows))
    off = ar + jumps
    slope = rng.normal(0.0, 0.1 * sigma, rows)[:, None] * np.linspace(-1.0, 1.0, cols)[None, :]
    return (off - off.mean())[:, None] + slope


def _streaks(rng: np.random.Generator, z: np.ndarray, rate: float) -> np.ndarray:
    """Lost-contact segments (a held value) and ringing (a decaying jump) along lines."""
    rows, cols = z.shape
    for _ in range(int(rng.poisson(rate))):
        r = int(rng.integers(0, rows))
        c0 = int(rng.integers(0, cols - 2))
        length = int(rng.integers(5, max(6, cols // 4)))
        c1 = min(cols, c0 + length)
        thick = int(rng.integers(1, 3))
        sl = (slice(r, min(rows, r + thick)), slice(c0, c1))
        if rng.random() < 0.5:
            z[sl] = z[r, c0] + rng.normal(0.0, 0.5)
        else:
            decay = np.exp(-np.arange(c1 - c0) / rng.uniform(3.0, 30.0))
            z[sl] += rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 3.0) * decay[None, :]
    return z


def _noise(rng: np.random.Generator, shape: tuple[int, int], s: dict) -> np.ndarray:
    """White noise, partly correlated along the fast axis, and a faint ripple, nm."""
    rho = s["noise_fast_axis_correlation"]
    white = rng.standard_normal(shape)
    corr = signal.lfilter([math.sqrt(1.0 - rho**2)], [1.0, -rho], white, axis=1)
    out = s["noise_nm"] * corr
    if s["ripple_fraction"]:
        rows, cols = shape
        phase = rng.uniform(0, 2 * math.pi, rows)[:, None]
        wave = np.sin(2 * math.pi * np.arange(cols)[None, :] / s["ripple_period_px"] + phase)
        out += s["ripple_fraction"] * s["noise_nm"] * wave
    return out


def _scan(surface: np.ndarray, rng: np.random.Generator, s: dict) -> np.ndarray:
    """A raw frame (float32, nm) from an artifact-free one with the settings ``s``."""
    z = _tip(surface.astype(np.float64), s["tip_radius_nm"], s["pixel_size_nm"])
    if s["feedback_lag"] < 1.0:
        a = s["feedback_lag"]
        start = z[:, :1]
        z = signal.lfilter([a], [1.0, a - 1.0], z - start, axis=1) + start
    z = z + _background(rng, z.shape, s) + _line_offsets(rng, z.shape, s)
    z = _streaks(rng, z, s["streak_rate"])
    z = z + _noise(rng, z.shape, s)
    return z.astype(np.float32)
