"""The settings of a synthetic series, in one dataclass, and their checks.

:class:`SeriesParams` holds every argument of :func:`~.generators.make_series` that
shapes the data (``progress`` and ``stop`` are not part of it). Fields left to ``None``
are drawn from realistic ranges with the seed.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from .._util import settings_from_dict
from ..errors import CalciteAFMError
from .crystal import STEP_HEIGHT_NM
from .wide import VARIETIES

__all__ = ["SeriesParams"]

#: Pixel size of the standard variety, nm (a 6 µm frame of 512 pixels).
STANDARD_PIXEL_SIZE_NM = 11.7


@dataclass
class SeriesParams:
    """Settings of a synthetic calcite dissolution movie (see :func:`make_series`).

    Attributes
    ----------
    n_frames : int
        Number of frames.
    size : int
        Frame size, pixels (frames are square ``size x size``).
    pixel_size_nm : float, optional
        Pixel size, nm. Default (None): 11.7 nm (a 6 µm frame of 512 pixels) with the
        standard variety, drawn in [2, 20] nm with the wide one.
    frame_interval_s : float
        Time between frames, s.
    seed : int or None
        Seed of the random generator; the same seed gives the same series.
    n_multilayer : int, optional
        Number of multilayer (dislocation) pits. Default: 1-4 per 36 µm² (at least 1).
    monolayer_density_per_um2 : float, optional
        Monolayer pits nucleated per µm² per 300 s (whatever ``frame_interval_s``).
        Default: drawn in [0.5, 5] (log-uniform).
    step_height_nm : float
        Height of one monolayer step, nm.
    noise_nm : float, optional
        White noise of the raw frames (standard deviation), nm. Default: drawn in
        [0.03, 0.08] nm.
    artifacts : bool
        Add tilt, bow, scan-line offsets, scars and noise to ``raw``. If False (and no
        drift), ``raw`` equals ``clean``.
    drift : bool
        Displace the raw frames by a smooth random walk (``drift_px``).
    scars : bool
        Add scars to the raw frames (only with ``artifacts``).
    roughness : float, optional
        RMS roughness of the terraces, nm (pits are 1.6-3 times rougher). 0 gives a
        surface made only of whole steps. Default: drawn in [0.015, 0.05] nm.
    step_density_per_um : float, optional
        Vicinal steps per µm. Default: drawn in [0.8, 5] (log-uniform).
    orientation_deg : float, optional
        Direction of one rhombus side in the image, degrees. Default: random.
    step_velocity_nm_s : float, optional
        Retreat velocity of obtuse steps, nm/s (acute steps are 2.3 times slower).
        Default: drawn in [0.12, 0.45] nm/s (log-uniform).
    drift_px_per_frame : float
        Scale of the drift, pixels per frame.
    variety : str
        ``"standard"`` (the ranges above) or ``"wide"``: every setting left to None, and
        many the standard variety fixes (pit shapes and walls, waviness, roughness
        lengths, scan artifacts), drawn from wide ranges (:mod:`.wide`).

    Examples
    --------
    >>> from napari_calcite_afm.synthetic import SeriesParams, make_series
    >>> params = SeriesParams(n_frames=2, size=32, seed=4, artifacts=False)
    >>> make_series(params=params).raw.shape
    (2, 32, 32)
    >>> SeriesParams.from_dict(params.to_dict()) == params
    True
    >>> SeriesParams().pixel_size_nm, SeriesParams(variety="wide").pixel_size_nm is None
    (11.7, True)
    """

    n_frames: int = 10
    size: int = 512
    pixel_size_nm: float | None = None
    frame_interval_s: float = 300.0
    seed: int | None = 0
    n_multilayer: int | None = None
    monolayer_density_per_um2: float | None = None
    step_height_nm: float = STEP_HEIGHT_NM
    noise_nm: float | None = None
    artifacts: bool = True
    drift: bool = True
    scars: bool = True
    roughness: float | None = None
    step_density_per_um: float | None = None
    orientation_deg: float | None = None
    step_velocity_nm_s: float | None = None
    drift_px_per_frame: float = 1.5
    variety: str = "standard"

    def __post_init__(self) -> None:
        # the standard variety's pixel size is fixed: None means 11.7 nm there
        if self.pixel_size_nm is None and self.variety == "standard":
            self.pixel_size_nm = STANDARD_PIXEL_SIZE_NM

    def check(self) -> None:
        """Raise a :class:`~napari_calcite_afm.errors.CalciteAFMError` for a bad
        frame count, size, pixel size, frame interval or variety."""
        if self.variety not in VARIETIES:
            raise CalciteAFMError(
                f"variety must be one of {', '.join(VARIETIES)}, got {self.variety!r}"
            )
        px = STANDARD_PIXEL_SIZE_NM if self.pixel_size_nm is None else self.pixel_size_nm
        _check_args(self.n_frames, self.size, px, self.frame_interval_s)

    def to_dict(self) -> dict[str, Any]:
        """The settings as ``SyntheticSeries.params`` records them (JSON-serialisable)."""
        return {
            "n_frames": int(self.n_frames),
            "size": int(self.size),
            "pixel_size_nm": None if self.pixel_size_nm is None else float(self.pixel_size_nm),
            "frame_interval_s": float(self.frame_interval_s),
            "seed": self.seed,
            "n_multilayer": self.n_multilayer,
            "monolayer_density_per_um2": self.monolayer_density_per_um2,
            "step_height_nm": float(self.step_height_nm),
            "noise_nm": self.noise_nm,
            "artifacts": bool(self.artifacts),
            "drift": bool(self.drift),
            "scars": bool(self.scars),
            "roughness": self.roughness,
            "step_density_per_um": self.step_density_per_um,
            "orientation_deg": self.orientation_deg,
            "step_velocity_nm_s": self.step_velocity_nm_s,
            "drift_px_per_frame": float(self.drift_px_per_frame),
            "variety": str(self.variety),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SeriesParams:
        """Inverse of :meth:`to_dict`; also takes a whole ``SyntheticSeries.params``
        record (its ``"drawn"`` entry is left out), so a series can be made again.
        Unknown keys raise a :class:`~napari_calcite_afm.errors.CalciteAFMError`."""
        if isinstance(d, dict) and "drawn" in d:
            d = {k: v for k, v in d.items() if k != "drawn"}
        return settings_from_dict(cls, d, CalciteAFMError, "synthetic series")


# names of the SeriesParams fields (the settings keywords of make_series)
_SERIES_FIELDS = tuple(f.name for f in fields(SeriesParams))


def _check_args(n_frames: int, size: int, pixel_size_nm: float, frame_interval_s: float):
    """Raise a :class:`~napari_calcite_afm.errors.CalciteAFMError` for bad sizes."""
    if int(n_frames) < 1:
        raise CalciteAFMError(f"n_frames must be at least 1, got {n_frames}")
    if int(size) < 8:
        raise CalciteAFMError(f"size must be at least 8 pixels, got {size}")
    if not pixel_size_nm > 0:
        raise CalciteAFMError(f"pixel_size_nm must be positive, got {pixel_size_nm}")
    if not frame_interval_s > 0:
        raise CalciteAFMError(f"frame_interval_s must be positive, got {frame_interval_s}")
