"""The settings of a cellular synthetic movie (:func:`~.cellular.make_cellular_series`).

:class:`CellularParams` holds every argument that shapes the data; fields left to
``None`` are drawn with the seed from the ranges their documentation gives, and what
was drawn is recorded in ``SyntheticSeries.params["drawn"]``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from .._util import settings_from_dict
from ..errors import CalciteAFMError
from .crystal import OBTUSE_TO_ACUTE_VELOCITY

__all__ = ["CellularParams"]

PIT_LABELS = ("basin", "footprint")  # what label 1 covers (CellularParams.pit_labels)


@dataclass
class CellularParams:
    """Settings of a cellular calcite dissolution movie (:func:`make_cellular_series`).

    Attributes
    ----------
    n_frames : int
        Number of frames.
    size : int
        Frame size, pixels (square frames).
    pixel_size_nm : float, optional
        Pixel size, nm. Default: drawn in [2, 20] nm (log-uniform).
    frame_interval_s : float
        Time between frames, s.
    seed : int or None
        Seed; the same seed gives the same movie.
    cell_px : float
        Side of a lattice cell (a crystal column), pixels. Smaller is finer and slower.
    step_velocity_nm_s : float, optional
        Retreat velocity of a straight obtuse step, nm/s. Default: drawn in
        [0.12, 0.6] nm/s (log-uniform).
    obtuse_to_acute : float
        Velocity ratio of straight obtuse and acute steps (calcite: 2.3).
    kink_probability : float, optional
        Probability per sweep that a kink cell goes (1: sharp rhombi, lower: rounder
        corners and slower kinked steps). Default: drawn in [0.5, 1].
    step_density_per_um : float, optional
        Vicinal steps per µm. Default: drawn in [0.3, 10] (log-uniform); at least one
        step crosses the simulated lattice.
    step_waviness : float, optional
        Amplitude of the initial waviness of the vicinal steps, as a fraction of the
        terrace width. Default: drawn in [0.05, 0.35].
    monolayer_density_per_um2 : float, optional
        Monolayer nuclei per µm² per 300 s. Default: drawn in [0.2, 8] (log-uniform).
    n_multilayer : int, optional
        Dislocation (multilayer) pits. Default: 1-4 per 36 µm² (Poisson), at least 1.
    history : float, optional
        How long the surface dissolved before the first frame, as the distance a
        straight obtuse step travels in that time over the frame side. Default: drawn
        in [0.15, 0.6].
    reactivity_sigma : float, optional
        Log-normal spread of the local reactivity (impurities, strain: wavy steps,
        irregular pits). Default: drawn in [0.1, 0.7].
    roughness_nm : float, optional
        RMS roughness of the terraces, nm (pits are 1.2-2.5 times rougher). Default:
        drawn in [0.01, 0.08] nm (log-uniform).
    noise_nm : float, optional
        Noise of the raw frames, nm. Default: drawn in [0.02, 0.15] nm (log-uniform).
    orientation_deg : float, optional
        Direction of the lattice axis ``e1`` (a step direction) in the image, degrees.
        Default: random.
    artifacts : bool
        Add the scan artifacts (:mod:`.scan_model`) to ``raw``.
    drift : bool
        Displace the raw frames by a smooth random walk.
    scars : bool
        Add streaks (lost contact, ringing) to the raw frames.
    drift_px_per_frame : float
        Scale of the drift, pixels per frame.
    pit_labels : {"basin", "footprint"}
        What label 1 (multilayer pit) covers. ``"basin"``: the closed-depression part of
        what a dislocation pit's loops dissolved (a flank that a retreating step opened
        onto the terrace below is terrace). ``"footprint"``: everything those loops
        dissolved, as :func:`~.generators.make_series` labels its pits (monolayer pits
        inside it included). The heights are the same either way.

    Examples
    --------
    >>> from napari_calcite_afm.synthetic import CellularParams
    >>> p = CellularParams(n_frames=2, size=64, seed=3, pixel_size_nm=10.0)
    >>> CellularParams.from_dict(p.to_dict()) == p
    True
    """

    n_frames: int = 10
    size: int = 512
    pixel_size_nm: float | None = None
    frame_interval_s: float = 300.0
    seed: int | None = 0
    cell_px: float = 1.5
    step_velocity_nm_s: float | None = None
    obtuse_to_acute: float = OBTUSE_TO_ACUTE_VELOCITY
    kink_probability: float | None = None
    step_density_per_um: float | None = None
    step_waviness: float | None = None
    monolayer_density_per_um2: float | None = None
    n_multilayer: int | None = None
    history: float | None = None
    reactivity_sigma: float | None = None
    roughness_nm: float | None = None
    noise_nm: float | None = None
    orientation_deg: float | None = None
    artifacts: bool = True
    drift: bool = True
    scars: bool = True
    drift_px_per_frame: float = 1.5
    pit_labels: str = "basin"

    def check(self) -> None:
        """Raise a :class:`~napari_calcite_afm.errors.CalciteAFMError` for a setting out
        of range."""
        if int(self.n_frames) < 1:
            raise CalciteAFMError(f"cellular series: n_frames must be >= 1, got {self.n_frames}")
        if int(self.size) < 16:
            raise CalciteAFMError(f"cellular series: size must be >= 16 pixels, got {self.size}")
        positive = ("pixel_size_nm", "frame_interval_s", "step_velocity_nm_s")
        for name in positive:
            value = getattr(self, name)
            if value is not None and not float(value) > 0:
                raise CalciteAFMError(f"cellular series: {name} must be positive, got {value}")
        if not 0.5 <= float(self.cell_px) <= 4.0:
            raise CalciteAFMError(
                f"cellular series: cell_px must be in [0.5, 4], got {self.cell_px}"
            )
        if not 1.0 <= float(self.obtuse_to_acute) <= 6.0:
            raise CalciteAFMError(
                f"cellular series: obtuse_to_acute must be in [1, 6], got {self.obtuse_to_acute}"
            )
        if self.pit_labels not in PIT_LABELS:
            raise CalciteAFMError(
                f"cellular series: pit_labels must be one of {', '.join(PIT_LABELS)}, "
                f"got {self.pit_labels!r}"
            )
        pk = self.kink_probability
        if pk is not None and not 0.3 <= float(pk) <= 1.0:
            raise CalciteAFMError(
                f"cellular series: kink_probability must be in [0.3, 1], got {pk}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-serialisable dict (``SyntheticSeries.params``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CellularParams:
        """Inverse of :meth:`to_dict`; a whole ``SyntheticSeries.params`` record works too
        (its ``"drawn"`` and ``"generator"`` entries are left out)."""
        if isinstance(d, dict):
            d = {k: v for k, v in d.items() if k not in ("drawn", "generator")}
        return settings_from_dict(cls, d, CalciteAFMError, "cellular series")


_CELLULAR_FIELDS = tuple(f.name for f in fields(CellularParams))


def _loguniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _draw_cellular(rng: np.random.Generator, p: CellularParams) -> dict[str, Any]:
    """Every ``None`` setting drawn (in a fixed order, each draw made whether needed or
    not, so a given setting does not shift the others)."""
    draws = {
        "pixel_size_nm": _loguniform(rng, 2.0, 20.0),
        "step_velocity_nm_s": _loguniform(rng, 0.12, 0.6),
        "kink_probability": float(rng.uniform(0.5, 1.0)),
        "step_density_per_um": _loguniform(rng, 0.3, 10.0),
        "step_waviness": float(rng.uniform(0.05, 0.35)),
        "monolayer_density_per_um2": _loguniform(rng, 0.2, 8.0),
        "multilayer_per_36um2": float(rng.uniform(1.0, 4.0)),
        "history": float(rng.uniform(0.15, 0.6)),
        "reactivity_sigma": float(rng.uniform(0.1, 0.7)),
        "roughness_nm": _loguniform(rng, 0.01, 0.08),
        "noise_nm": _loguniform(rng, 0.02, 0.15),
        "orientation_deg": float(rng.uniform(0.0, 360.0)),
        "waviness_length_nm": _loguniform(rng, 100.0, 800.0),
    }
    out = {k: (v if getattr(p, k, None) is None else getattr(p, k)) for k, v in draws.items()}
    out["waviness_length_nm"] = draws["waviness_length_nm"]
    side_um = int(p.size) * float(out["pixel_size_nm"]) / 1000.0
    mean = draws["multilayer_per_36um2"] * side_um**2 / 36.0
    n_multi = max(1, int(rng.poisson(mean)))
    out["n_multilayer"] = int(p.n_multilayer) if p.n_multilayer is not None else n_multi
    del out["multilayer_per_36um2"]
    return out
