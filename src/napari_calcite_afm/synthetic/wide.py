"""The "wide" variety of the standard generator: every setting drawn from a wide range.

``SeriesParams(variety="wide")`` (and ``make_frame(..., variety="wide")``,
``make_frames(..., variety="wide")``) draws, from a stream of its own, what the
"standard" variety fixes or draws narrowly, so that training data span what real
calcite movies look like:

* pixel size 2-20 nm (log-uniform; pits and steps keep their physical sizes, so they
  span more or fewer pixels);
* vicinal steps: density 0.3-15 per µm, waviness amplitude and correlation length,
  fine waviness; step velocity 0.06-1 nm/s, obtuse-to-acute ratio 1.6-3.2;
* pits: monolayer nucleation 0.05-20 per µm² per 300 s, 0-10 multilayer pits per
  36 µm² (none in about one frame in seven), their ages (sizes), loop intervals, speed
  spread; aspect ratio (the two pairs of sides retreating at different rates) and
  corner rounding; wall profiles: terraced by single steps as in "standard" (V-shaped,
  pointed), terraced by bunches of 2-5 steps, or smooth, each with a concave or convex
  profile and sometimes a flat bottom; wavy pit edges;
* roughness 0.005-0.15 nm, its correlation lengths and the pit-to-terrace ratio;
* the scan: noise 0.01-0.3 nm, tilt, bow, scan-line offsets 0.03-3 nm, scars, and a
  blur by the tip.

Every value is recorded in ``params["drawn"]["wide"]`` (and the filled settings in
``params["drawn"]``), and the seed remakes them: ``SeriesParams.from_dict(params)``
gives the same movie. The "standard" variety is untouched by all this: same seed, same
numbers as before the switch existed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from .params import SeriesParams

#: The spawn key of the wide draws' stream (apart from the model, drift, roughness and
#: artifact streams, so that a wide series draws its model the usual way).
_WIDE_KEY = 7

VARIETIES = ("standard", "wide")

#: Wall profiles of multilayer pits: single steps, bunches of steps, smooth.
WALL_KINDS = ("terraced", "bunched", "smooth")


def _lu(rng: np.random.Generator, lo: float, hi: float) -> float:
    """One number drawn log-uniformly in ``[lo, hi]``."""
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


@dataclass
class _Wide:
    """The draws of a wide series (see the module docstring); JSON-serialisable."""

    pixel_size_nm: float
    fill: dict[str, Any]  # values for the SeriesParams fields left to None
    obtuse_to_acute: float
    aspect: float  # velocity factor of the second pair of sides
    corner_rounding_nm: float
    waviness: dict[str, float]
    edge: dict[str, float]
    multilayer: dict[str, float]
    walls: dict[str, float]
    mono_speed_spread: float
    roughness: dict[str, float]
    scan: dict[str, float]
    extra: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """What was drawn, for ``params["drawn"]["wide"]``."""
        return {
            "pixel_size_nm": self.pixel_size_nm,
            "fill": dict(self.fill),
            "obtuse_to_acute": self.obtuse_to_acute,
            "aspect": self.aspect,
            "corner_rounding_nm": self.corner_rounding_nm,
            "waviness": dict(self.waviness),
            "edge": dict(self.edge),
            "multilayer": dict(self.multilayer),
            "walls": dict(self.walls),
            "mono_speed_spread": self.mono_speed_spread,
            "roughness": dict(self.roughness),
            "scan": dict(self.scan),
        }


def _wide_rng(seed: int | None) -> np.random.Generator:
    """The generator of the wide draws of ``seed``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_WIDE_KEY,)))


def _draw_wide(params: SeriesParams) -> _Wide | None:
    """The wide draws of ``params`` (None for the standard variety).

    Every number is drawn whatever the settings (fixed order); a setting given in
    ``params`` replaces its draw.
    """
    if params.variety != "wide":
        return None
    rng = _wide_rng(params.seed)
    pixel = _lu(rng, 2.0, 20.0)
    if params.pixel_size_nm is not None:
        pixel = float(params.pixel_size_nm)
    extent_um = int(params.size) * pixel / 1000.0
    per_36 = _lu(rng, 0.3, 10.0)
    n_multi = 0 if rng.random() < 0.15 else max(1, int(rng.poisson(per_36 * extent_um**2 / 36)))
    draws = {
        "step_density_per_um": _lu(rng, 0.3, 15.0),
        "step_velocity_nm_s": _lu(rng, 0.06, 1.0),
        "monolayer_density_per_um2": _lu(rng, 0.05, 20.0),
        "n_multilayer": n_multi,
        "roughness": _lu(rng, 0.005, 0.15),
        "noise_nm": _lu(rng, 0.01, 0.3),
    }
    fill = {k: v for k, v in draws.items() if getattr(params, k) is None}
    return _Wide(
        pixel_size_nm=pixel,
        fill=fill,
        obtuse_to_acute=float(rng.uniform(1.6, 3.2)),
        aspect=1.0 if rng.random() < 0.5 else _lu(rng, 0.6, 1.7),
        corner_rounding_nm=0.0 if rng.random() < 0.3 else _lu(rng, 5.0, 150.0),
        waviness={
            "length_nm": _lu(rng, 60.0, 1500.0),
            "amplitude": float(rng.uniform(0.0, 0.45)),
            "fine_nm": float(rng.uniform(0.0, 12.0)),
            "fine_length_nm": _lu(rng, 15.0, 80.0),
        },
        edge={"amplitude_nm": _lu(rng, 0.5, 12.0), "length_nm": _lu(rng, 10.0, 150.0)},
        multilayer={
            "max_age_s": _lu(rng, 1500.0, 12000.0),
            "late_fraction": float(rng.uniform(0.0, 0.4)),
            "tau_lo_s": _lu(rng, 10.0, 60.0),
            "tau_hi_s": _lu(rng, 100.0, 800.0),
            "speed_spread": float(rng.uniform(0.05, 0.4)),
        },
        walls={
            "p_terraced": float(rng.uniform(0.2, 0.6)),
            "p_bunched": float(rng.uniform(0.1, 0.4)),
            "gamma_lo": float(rng.uniform(0.5, 1.0)),
            "gamma_hi": float(rng.uniform(1.0, 2.0)),
            "flat_fraction": float(rng.uniform(0.0, 0.5)),
        },
        mono_speed_spread=float(rng.uniform(0.0, 0.35)),
        roughness={
            "pit_ratio": float(rng.uniform(1.0, 4.0)),
            "terrace_corr_nm": _lu(rng, 3.0, 80.0),
            "pit_corr_nm": _lu(rng, 5.0, 120.0),
        },
        scan={
            "tilt_nm": float(rng.uniform(0.0, 80.0)),
            "bow_nm": float(rng.uniform(0.0, 15.0)),
            "row_offset_nm": _lu(rng, 0.03, 3.0),
            "scar_rate": float(rng.uniform(0.0, 25.0)),
            "tip_blur_nm": 0.0 if rng.random() < 0.4 else float(rng.uniform(1.0, 12.0)),
        },
    )


@dataclass
class _Walls:
    """Per multilayer pit: wall kind (index in :data:`WALL_KINDS`), profile exponent,
    steps per bunch, and the depth (layers) of a flat bottom (inf: pointed)."""

    kind: np.ndarray
    gamma: np.ndarray
    bunch: np.ndarray
    cap: np.ndarray

    @property
    def smooth(self) -> bool:
        """True when some pit has smooth walls (fractional depths)."""
        return bool(np.any(self.kind == WALL_KINDS.index("smooth")))


def _draw_walls(rng: np.random.Generator, n: int, wide: _Wide) -> tuple[_Walls, list[dict]]:
    """Wall profiles of ``n`` multilayer pits, and their record."""
    w = wide.walls
    u = rng.random(n)
    kind = np.where(u < w["p_terraced"], 0, np.where(u < w["p_terraced"] + w["p_bunched"], 1, 2))
    gamma = rng.uniform(w["gamma_lo"], w["gamma_hi"], n)
    bunch = rng.integers(2, 6, n).astype(np.float64)
    cap = np.where(rng.random(n) < w["flat_fraction"], rng.integers(3, 21, n), np.inf)
    walls = _Walls(kind=kind, gamma=gamma, bunch=bunch, cap=cap.astype(np.float64))
    record = [
        {
            "wall": WALL_KINDS[int(k)],
            "profile_exponent": float(g),
            "steps_per_bunch": int(b),
            "flat_bottom_layers": None if not np.isfinite(c) else int(c),
        }
        for k, g, b, c in zip(kind, gamma, bunch, cap)
    ]
    return walls, record


def _wall_levels(walls: _Walls, k: int, loops: np.ndarray) -> np.ndarray:
    """Layers removed by multilayer pit ``k`` where ``loops`` = (age - gauge) / tau.

    ``loops < 0`` lies outside the pit (0 layers); inside, the profile of the pit's kind:
    ``floor(x) + 1`` (terraced, ``x = loops ** gamma``), bunches of ``b`` steps
    ``b (floor(x / b) + 1)``, or smooth ``1 + x``, capped by a flat bottom.
    """
    x = np.power(np.maximum(loops, 0.0), walls.gamma[k])
    kind = int(walls.kind[k])
    if kind == 0:
        levels = np.floor(x) + 1.0
    elif kind == 1:
        b = walls.bunch[k]
        levels = b * (np.floor(x / b) + 1.0)
    else:
        levels = 1.0 + x
    levels = np.minimum(levels, walls.cap[k])
    return np.where(loops >= 0.0, levels, 0.0)
