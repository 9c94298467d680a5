"""Crystal geometry of calcite {10-14}: step height, rhombic pits, vicinal steps.

Every etch pit is a rhombus with angles of 78 and 102 degrees, one crystal orientation
per series. Its sides have normals ``n1``, ``n2``; the dual vectors ``m1``, ``m2``
(``n_i . m_j = delta_ij``) run along the sides. Obtuse steps retreat
:data:`OBTUSE_TO_ACUTE_VELOCITY` times faster than acute ones, so a pit of age ``a`` is
the set of offsets ``(dx, dy)`` from its source where :func:`_gauge` is at most ``a``.

The vicinal surface is a staircase of monolayer steps a few per µm, slightly wavy, that
retreat uphill with time (step flow); its *downhill coordinate* ``xi`` (nm) sets the
terrace index of every point (:meth:`~.surface_model._Model.terrace_index`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from .fields import _loguniform, _smooth_noise

if TYPE_CHECKING:  # pragma: no cover
    from .surface_model import _Model

#: Height of one monolayer step of calcite {10-14}, nm.
STEP_HEIGHT_NM = 0.31
#: Acute angle of the rhombic etch pits, degrees (the obtuse one is 180 minus it).
RHOMB_ACUTE_ANGLE_DEG = 78.0
#: Ratio of the retreat velocities of obtuse and acute steps (Liang, Baer, Lea 1995).
OBTUSE_TO_ACUTE_VELOCITY = 2.3


def _crystal_axes(orientation_deg: float):
    """Normals and dual vectors of the rhombus sides for a crystal orientation.

    Parameters
    ----------
    orientation_deg : float
        Direction of one rhombus side in the image, degrees.

    Returns
    -------
    n1, n2, m1, m2 : tuple of float
        ``(x, y)`` unit normals of the two pairs of sides, and their dual vectors
        (``n_i . m_j = delta_ij``), which run along the sides.
    """
    phi = math.radians(orientation_deg)
    theta = math.radians(RHOMB_ACUTE_ANGLE_DEG)
    e1 = np.array([math.cos(phi), math.sin(phi)])
    e2 = np.array([math.cos(phi + theta), math.sin(phi + theta)])
    n1 = np.array([-e2[1], e2[0]])  # perpendicular to e2
    if n1 @ e1 < 0:
        n1 = -n1
    n2 = np.array([-e1[1], e1[0]])  # perpendicular to e1
    if n2 @ e2 < 0:
        n2 = -n2
    m = np.linalg.inv(np.array([n1, n2]))  # columns: m1, m2 with n_i . m_j = delta_ij
    m1, m2 = m[:, 0], m[:, 1]
    return tuple(n1), tuple(n2), tuple(m1), tuple(m2)


def _gauge(model: _Model, dx: np.ndarray, dy: np.ndarray, v_obtuse: float, v_acute: float):
    """Time (s) a pit's steps need to reach offset ``(dx, dy)`` nm from its source.

    The rhombus of age ``a`` is ``gauge <= a``: its two acute (slow) sides meet at the
    78 degree corner, its two obtuse (fast) sides at the opposite one. With the wide
    variety the sides of normal ``n2`` retreat ``model.aspect`` times faster, and the
    corners are rounded by a smooth maximum (``model.corner_rounding_s``).
    """
    dt = dx.dtype
    p1 = dx * dt.type(model.n1[0]) + dy * dt.type(model.n1[1])
    p2 = dx * dt.type(model.n2[0]) + dy * dt.type(model.n2[1])
    fo = dt.type(1.0 / v_obtuse)
    fa = dt.type(-1.0 / v_acute)
    fo2 = dt.type(1.0 / (v_obtuse * model.aspect))
    fa2 = dt.type(-1.0 / (v_acute * model.aspect))
    first = np.maximum(p1 * fo, p1 * fa)
    second = np.maximum(p2 * fo2, p2 * fa2)
    if model.corner_rounding_s > 0:
        return _smooth_max(first, second, model.corner_rounding_s)
    return np.maximum(first, second)


def _smooth_max(a: np.ndarray, b: np.ndarray, width: float) -> np.ndarray:
    """``max(a, b)`` with the corner rounded over ``width``: ``(a + b + hypot(a - b, w)) / 2``."""
    return 0.5 * (a + b + np.hypot(a - b, a.dtype.type(width)))


def _gauge_outer(model: _Model, dy: np.ndarray, dx: np.ndarray, v_obtuse: float, v_acute: float):
    """:func:`_gauge` on the grid ``dy (rows) x dx (cols)``: the largest of four linear
    functions, each an outer sum (float32, few passes over the box)."""
    f32 = np.float32
    g = None
    pairs = []
    for n, f in (
        (model.n1, 1.0 / v_obtuse),
        (model.n1, -1.0 / v_acute),
        (model.n2, 1.0 / (v_obtuse * model.aspect)),
        (model.n2, -1.0 / (v_acute * model.aspect)),
    ):
        term = np.add.outer(dy * f32(n[1] * f), dx * f32(n[0] * f))
        if model.corner_rounding_s > 0:
            pairs.append(term)
            continue
        g = term if g is None else np.maximum(g, term, out=g)
    if pairs:
        first = np.maximum(pairs[0], pairs[1])
        second = np.maximum(pairs[2], pairs[3])
        return _smooth_max(first, second, model.corner_rounding_s)
    return g


def _draw_crystal(
    rng: np.random.Generator,
    orientation_deg: float | None,
    step_velocity_nm_s: float | None,
    drawn: dict[str, Any],
    ratio: float = OBTUSE_TO_ACUTE_VELOCITY,
) -> dict[str, Any]:
    """Draw the crystal orientation and step kinetics (the ``_Model`` fields they set).

    ``None`` arguments are drawn from ``rng``; what was used is recorded in ``drawn``.
    ``ratio`` is the obtuse-to-acute velocity ratio.
    """
    if orientation_deg is None:
        orientation_deg = float(rng.uniform(0.0, 360.0))
    n1, n2, m1, m2 = _crystal_axes(orientation_deg)
    if step_velocity_nm_s is None:
        step_velocity_nm_s = _loguniform(rng, 0.12, 0.45)
    v_obtuse = float(step_velocity_nm_s)
    v_acute = v_obtuse / ratio
    drawn["orientation_deg"] = float(orientation_deg)
    drawn["obtuse_step_velocity_nm_s"] = v_obtuse
    drawn["acute_step_velocity_nm_s"] = v_acute
    return {"n1": n1, "n2": n2, "m1": m1, "m2": m2, "v_obtuse": v_obtuse, "v_acute": v_acute}


def _draw_vicinal_steps(
    rng: np.random.Generator,
    *,
    size: int,
    pad: int,
    pixel_size_nm: float,
    step_density_per_um: float | None,
    v_obtuse: float,
    v_acute: float,
    drawn: dict[str, Any],
    wide=None,
) -> dict[str, Any]:
    """Draw the vicinal staircase: direction, spacing, retreat velocity, waviness.

    Returns the ``_Model`` fields it sets (``normal``, ``spacing_nm``,
    ``step_velocity_nm_s``, ``xi_offset_nm``, ``waviness_nm``, a padded canvas in nm);
    what was drawn is recorded in ``drawn``. ``wide`` (the wide variety's draws) sets
    the waviness.
    """
    p = pixel_size_nm
    n_canvas = size + 2 * pad
    if step_density_per_um is None:
        step_density_per_um = _loguniform(rng, 0.8, 5.0)
    spacing = 1000.0 / float(step_density_per_um)
    downhill = float(rng.uniform(0.0, 2 * math.pi))
    normal = (math.cos(downhill), math.sin(downhill))
    v_step = float(rng.uniform(v_acute, 0.5 * (v_acute + v_obtuse)))
    if wide is None:
        wav_len = float(rng.uniform(120.0, 450.0))  # nm, correlation length of the waviness
        wav_amp = float(rng.uniform(0.12, 0.3)) * min(wav_len, 1.5 * spacing)
        waviness = wav_amp * _smooth_noise(rng, (n_canvas, n_canvas), wav_len / p)
        fine_len = float(rng.uniform(25.0, 60.0))
        waviness += float(rng.uniform(2.0, 6.0)) * _smooth_noise(
            rng, (n_canvas, n_canvas), fine_len / p
        )
    else:
        w = wide.waviness
        wav_len = w["length_nm"]
        wav_amp = w["amplitude"] * min(wav_len, 1.5 * spacing)
        waviness = wav_amp * _smooth_noise(rng, (n_canvas, n_canvas), wav_len / p)
        waviness += w["fine_nm"] * _smooth_noise(rng, (n_canvas, n_canvas), w["fine_length_nm"] / p)
    centre = 0.5 * (size - 1) * p
    xi_offset = -(centre * normal[0] + centre * normal[1]) + float(rng.uniform(0, spacing))
    drawn.update(
        step_density_per_um=float(step_density_per_um),
        step_downhill_deg=math.degrees(downhill),
        step_retreat_velocity_nm_s=v_step,
        step_waviness_nm=wav_amp,
        step_waviness_length_nm=wav_len,
    )
    return {
        "normal": normal,
        "spacing_nm": spacing,
        "step_velocity_nm_s": v_step,
        "xi_offset_nm": xi_offset,
        "waviness_nm": waviness,
    }
