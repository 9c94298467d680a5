"""The surface model of one series: every random property, drawn once from the seed.

:func:`_build_model` draws, in a fixed order from one generator, the crystal and its
kinetics (:mod:`.crystal`), the vicinal steps, the pit-edge waviness, the multilayer
and monolayer pits (:mod:`.pits`) and the roughness, and gathers them in a
:class:`_Model`; :mod:`.render` turns a model into heights and labels at any time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .crystal import OBTUSE_TO_ACUTE_VELOCITY, _draw_crystal, _draw_vicinal_steps
from .pits import _draw_edge_noise, _draw_monolayer, _draw_multilayer, _Pits
from .wide import _draw_walls, _draw_wide, _Walls, _Wide

if TYPE_CHECKING:  # pragma: no cover
    from .params import SeriesParams


@dataclass
class _Model:
    size: int
    pad: int
    pixel_size_nm: float
    step_height_nm: float
    # vicinal steps
    normal: tuple[float, float]  # (x, y) unit vector pointing downhill
    spacing_nm: float
    step_velocity_nm_s: float
    xi_offset_nm: float
    waviness_nm: np.ndarray  # padded canvas, nm added to the downhill coordinate
    # crystal
    n1: tuple[float, float]
    n2: tuple[float, float]
    m1: tuple[float, float]
    m2: tuple[float, float]
    v_obtuse: float
    v_acute: float
    edge_noise_s: np.ndarray  # padded canvas, s added to the pit gauge (wavy pit steps)
    multi: _Pits
    mono: _Pits
    mono_max_age_s: float  # monolayer pits stop growing at this age (bounds the cost)
    # roughness
    rough_terrace_nm: float
    rough_pit_nm: float
    rough_terrace_px: float
    rough_pit_px: float
    # the wide variety (:mod:`.wide`); the defaults are the standard variety's
    aspect: float = 1.0  # velocity factor of the sides of normal n2 (pit aspect ratio)
    corner_rounding_s: float = 0.0  # smooth maximum of the gauge's two pairs, s
    walls: _Walls | None = None  # wall profiles of the multilayer pits (None: terraced)

    @property
    def canvas_size(self) -> int:
        """Side of the padded canvas, pixels (the frame plus ``pad`` on every side)."""
        return self.size + 2 * self.pad

    def terrace_index(self, xi: np.ndarray, t: float) -> np.ndarray:
        """Step-flow terrace index (float, integer valued) at downhill coordinate ``xi``."""
        return np.floor((xi + self.step_velocity_nm_s * t) / self.spacing_nm)

    def corners_extent(self, ext_lo: float, ext_hi: float) -> tuple[float, float, float, float]:
        """Bounding box (dx_min, dx_max, dy_min, dy_max), nm, of a pit around its source."""
        xs, ys = [], []
        for a in (-ext_lo, ext_hi):
            for b in (-ext_lo * self.aspect, ext_hi * self.aspect):
                xs.append(a * self.m1[0] + b * self.m2[0])
                ys.append(a * self.m1[1] + b * self.m2[1])
        return min(xs), max(xs), min(ys), max(ys)


def _draw_roughness(
    rng: np.random.Generator, roughness: float | None, pixel_size_nm: float, wide=None
) -> dict[str, float]:
    """Draw the roughness of terraces and pits: RMS heights (nm) and correlation lengths
    (pixels), as ``_Model`` fields (``wide``: the wide variety's draws)."""
    if roughness is None:
        roughness = float(rng.uniform(0.015, 0.05))
    rough_terrace = float(roughness)
    if wide is not None:
        r = wide.roughness
        return {
            "rough_terrace_nm": rough_terrace,
            "rough_pit_nm": rough_terrace * r["pit_ratio"],
            "rough_terrace_px": r["terrace_corr_nm"] / pixel_size_nm,
            "rough_pit_px": r["pit_corr_nm"] / pixel_size_nm,
        }
    rough_pit = rough_terrace * float(rng.uniform(1.6, 3.0))
    rough_terrace_px = float(rng.uniform(8.0, 18.0)) / pixel_size_nm
    rough_pit_px = float(rng.uniform(15.0, 35.0)) / pixel_size_nm
    return {
        "rough_terrace_nm": rough_terrace,
        "rough_pit_nm": rough_pit,
        "rough_terrace_px": rough_terrace_px,
        "rough_pit_px": rough_pit_px,
    }


def _build_model(
    rng: np.random.Generator,
    params: SeriesParams,
    *,
    duration_s: float,
    pad: int,
    wide: _Wide | None = None,
) -> tuple[_Model, dict]:
    """Draw every random property of a series (deterministic for a given ``rng``).

    Parameters
    ----------
    rng : numpy.random.Generator
        The model's generator (its draws follow a fixed order).
    params : SeriesParams
        The series' settings; ``None`` fields are drawn.
    duration_s : float
        Time from the first to the last frame, s.
    pad : int
        Pixels of canvas around the frame (drift and border margin).
    wide : _Wide, optional
        The wide variety's draws (:func:`~.wide._draw_wide`); made from ``params`` when
        its variety is "wide" and none is given.

    Returns
    -------
    model : _Model
        The surface model.
    drawn : dict
        The values drawn for the ``None`` settings and the pits (JSON-serialisable).
    """
    if wide is None:
        wide = _draw_wide(params)
    if wide is not None:
        params = replace(params, pixel_size_nm=wide.pixel_size_nm, **wide.fill)
    size = int(params.size)
    p = float(params.pixel_size_nm)
    n_canvas = size + 2 * pad
    extent_nm = size * p
    drawn: dict[str, Any] = {}
    crystal = _draw_crystal(
        rng,
        params.orientation_deg,
        params.step_velocity_nm_s,
        drawn,
        ratio=OBTUSE_TO_ACUTE_VELOCITY if wide is None else wide.obtuse_to_acute,
    )
    v_obtuse, v_acute = crystal["v_obtuse"], crystal["v_acute"]
    steps = _draw_vicinal_steps(
        rng,
        size=size,
        pad=pad,
        pixel_size_nm=p,
        step_density_per_um=params.step_density_per_um,
        v_obtuse=v_obtuse,
        v_acute=v_acute,
        drawn=drawn,
        wide=wide,
    )
    edge_noise_s = _draw_edge_noise(rng, n_canvas, p, v_acute, wide=wide)
    multi = _draw_multilayer(
        rng,
        params.n_multilayer,
        extent_nm=extent_nm,
        duration_s=duration_s,
        drawn=drawn,
        wide=wide,
    )
    mono, max_age = _draw_monolayer(
        rng,
        params.monolayer_density_per_um2,
        extent_nm=extent_nm,
        pad_nm=pad * p,
        duration_s=duration_s,
        spacing_nm=steps["spacing_nm"],
        v_step=steps["step_velocity_nm_s"],
        v_obtuse=v_obtuse,
        v_acute=v_acute,
        drawn=drawn,
        wide=wide,
    )
    rough = _draw_roughness(rng, params.roughness, p, wide)
    drawn.update(
        roughness_terrace_nm=rough["rough_terrace_nm"],
        roughness_pit_nm=rough["rough_pit_nm"],
        n_multilayer=int(multi.x.size),
    )
    extra = {}
    if wide is not None:
        walls, record = _draw_walls(rng, int(multi.x.size), wide)
        for pit, wall in zip(drawn["multilayer_pits"], record):
            pit.update(wall)
        extra = {
            "aspect": wide.aspect,
            "corner_rounding_s": wide.corner_rounding_nm / math.sqrt(v_obtuse * v_acute),
            "walls": walls,
        }
        drawn.update(pixel_size_nm=p, wide=wide.record())
    model = _Model(
        size=size,
        pad=pad,
        pixel_size_nm=p,
        step_height_nm=float(params.step_height_nm),
        **steps,
        **crystal,
        edge_noise_s=edge_noise_s,
        multi=multi,
        mono=mono,
        mono_max_age_s=max_age,
        **rough,
        **extra,
    )
    return model, drawn
