"""Local dissolution rates between registered frames: maps, a table, a TIFF.

The local rate between frames t and t+1 is ``r(x) = -(Z_{t+1}(x) - Z_t(x)) / dt`` in
nm/s, positive where material was removed (``docs/science.md``, Kinetics). Levelling
removes each frame's own mean and plane, so the two frames are first put on one height
reference, :func:`~.reference.height_reference` (:mod:`.reference`: the surface that
did not change between the two frames, with what their levellings left different,
:mod:`.residue`).

Units: heights nm, times s, rates nm/s, molar rates mol m^-2 s^-1 (calcite molar volume
36.93 cm^3/mol: 1 nm/s = 2.708e-5 mol m^-2 s^-1), volumes nm^3.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from .._util import stop_requested
from ..errors import Cancelled, KineticsError
from ..labels import LABEL_MONOLAYER, LABEL_MULTILAYER, LABEL_TERRACE
from .reference import HeightReference, _as_labels, _as_movie, height_reference

__all__ = [
    "MOLAR_VOLUME_CM3_MOL",
    "NM_S_TO_MOL_M2_S",
    "RATE_COLUMNS",
    "HeightReference",
    "KineticsError",
    "RateTable",
    "height_reference",
    "rate_maps",
    "rate_table",
    "write_rates_tif",
]

#: Molar volume of calcite, cm^3/mol.
MOLAR_VOLUME_CM3_MOL = 36.93
#: 1 nm/s of surface retreat in mol m^-2 s^-1: 1e-9 m/s / (36.93e-6 m^3/mol).
NM_S_TO_MOL_M2_S = 1e-9 / (MOLAR_VOLUME_CM3_MOL * 1e-6)
#: The columns of :class:`RateTable`, in order.
RATE_COLUMNS = (
    "frame",
    "time_s",
    "dt_s",
    "rate_nm_s",
    "rate_pits_nm_s",
    "rate_terrace_nm_s",
    "rate_mol_m2_s",
    "rate_pits_mol_m2_s",
    "rate_terrace_mol_m2_s",
    "dissolved_volume_nm3",
    "levelling_residue_nm",
)


def _as_times(times_s, n: int) -> np.ndarray:
    """Frame times (s) from a sequence of ``n`` times or one frame interval."""
    t = np.asarray(times_s, dtype=np.float64)
    if t.ndim == 0:
        t = np.arange(n, dtype=np.float64) * float(t)
    if t.shape != (n,):
        raise KineticsError(f"times_s must hold one time per frame ({n}), got shape {t.shape}")
    dt = np.diff(t)
    if not (np.isfinite(t).all() and (dt > 0).all()):
        raise KineticsError(
            f"frame times must be finite and increase from frame to frame, got {t.tolist()}"
        )
    return t


def rate_maps(
    aligned,
    times_s,
    labels=None,
    *,
    reference: HeightReference | None = None,
    smooth_px: float = 0.0,
    progress: Callable[[dict], None] | None = None,
    stop: Callable[[], bool] | threading.Event | None = None,
) -> np.ndarray:
    """Local dissolution rate between successive registered frames, nm/s.

    ``r = -(Z_{t+1} - ref_t - Z_t) / (t_{t+1} - t_t)`` with ``ref_t`` the height
    reference of the pair (:func:`height_reference`: the assumption that part of the
    surface did not change; an offset, plus a map of what the two levellings left
    different where that was fitted, :meth:`HeightReference.surface_nm`), so that the
    unchanged surface has rate 0 and dissolved material a positive rate.

    Parameters
    ----------
    aligned : array_like, shape (frames, rows, cols)
        Registered heights, nm, on frame 0's pixel grid (NaN outside each frame's data).
    times_s : float or sequence of float
        Frame times, s (one per frame, increasing), or the frame interval.
    labels : array_like of int, optional
        Labels on the same grid, used for the height reference (terrace in both frames).
    reference : HeightReference, optional
        A reference already computed for these frames (saves computing it again).
    smooth_px : float
        Standard deviation of a Gaussian that smooths each rate map, pixels (0: none).
        The pixel noise of the two frames is in every rate; a light smoothing (0.5-1
        px) averages it at the cost of sharp step edges. Pixels outside the data stay
        NaN and do not enter their neighbours (normalised convolution), so a map's
        mean, and the dissolved volume, hardly change.
    progress : callable, optional
        Called after each pair with ``{"stage": "rates", "frame": t, "n_frames": n - 1}``.
    stop : callable or threading.Event, optional
        Checked before each pair; when set, raises
        :class:`~napari_calcite_afm.errors.Cancelled`.

    Returns
    -------
    numpy.ndarray, float32, shape (frames - 1, rows, cols)
        Rates in nm/s, positive where material was removed; NaN where the two frames do
        not both cover the pixel, or where the pair has no height reference.

    Raises
    ------
    KineticsError
        Fewer than 2 frames, bad times, labels of another shape.

    Examples
    --------
    >>> z0 = np.zeros((32, 32)); z1 = np.full((32, 32), 5.0)   # instrument offset 5 nm
    >>> z1[:8] -= 0.31                                          # a step lost on a quarter
    >>> r = rate_maps(np.stack([z0, z1]), [0.0, 300.0])
    >>> r.shape, r.dtype.name, round(float(r[0, 0, 0]), 6), abs(round(float(r[0, -1, 0]), 6))
    ((1, 32, 32), 'float32', 0.001033, 0.0)
    >>> soft = rate_maps(np.stack([z0, z1]), [0.0, 300.0], smooth_px=1.0)  # 1 px Gaussian
    >>> bool(soft[0, 7, 0] < r[0, 7, 0]), bool(np.isclose(soft.mean(), r.mean()))
    (True, True)
    """
    a = _as_movie(aligned)
    t = _as_times(times_s, a.shape[0])
    ref = reference if reference is not None else height_reference(a, labels)
    if ref.offsets_nm.shape != (a.shape[0] - 1,):
        raise KineticsError(
            f"the height reference has {ref.offsets_nm.shape[0]} pairs, the stack {a.shape[0] - 1}"
        )
    if not (np.isfinite(smooth_px) and smooth_px >= 0):
        raise KineticsError(f"smooth_px must be a length of 0 pixels or more, got {smooth_px}")
    n = a.shape[0]
    out = np.full((n - 1, *a.shape[1:]), np.nan, dtype=np.float32)
    for k in range(n - 1):
        if stop_requested(stop):
            raise Cancelled(f"stopped after {k} of {n - 1} rate maps")
        if np.isfinite(ref.offsets_nm[k]):
            d = np.asarray(a[k + 1], np.float64) - np.asarray(a[k], np.float64)
            ref_k = ref.surface_nm(k, d.shape)
            out[k] = _smoothed(-(d - ref_k) / (t[k + 1] - t[k]), smooth_px)
        if progress is not None:
            progress({"stage": "rates", "frame": k, "n_frames": n - 1})
    return out


def _smoothed(rate: np.ndarray, sigma_px: float) -> np.ndarray:
    """``rate`` smoothed by a Gaussian of ``sigma_px`` pixels over its finite pixels
    (normalised convolution); NaN stays NaN. ``sigma_px`` 0 returns it as it is."""
    if sigma_px <= 0:
        return rate
    ok = np.isfinite(rate)
    num = ndimage.gaussian_filter(np.where(ok, rate, 0.0), sigma_px, mode="nearest")
    den = ndimage.gaussian_filter(ok.astype(np.float64), sigma_px, mode="nearest")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, num / den, np.nan)


@dataclass
class RateTable:
    """Per frame pair: mean rates overall, in pits and on terraces, and dissolved volume.

    Attributes
    ----------
    rows : list of dict
        One dict per pair with the keys :data:`RATE_COLUMNS`: ``frame`` (the first frame
        of the pair, the index of its rate map), ``time_s`` (that frame's time),
        ``dt_s``; mean rates in nm/s and mol m^-2 s^-1 over all valid pixels
        (``rate_*``), over pit pixels (``rate_pits_*``: multilayer or monolayer pit in
        either frame) and terrace pixels (``rate_terrace_*``: terrace in both frames);
        ``dissolved_volume_nm3``, the sum of ``r * dt`` times the pixel area over the
        valid pixels (net: material gained counts negative). NaN where not measurable
        (the pit and terrace columns without labels).
    messages : list of str
        The height reference's messages.

    Examples
    --------
    >>> table = rate_table(np.full((1, 4, 4), 0.01, np.float32), [0.0, 300.0], 10.0)
    >>> row = table.to_rows()[0]
    >>> round(row["rate_nm_s"], 6), round(row["dissolved_volume_nm3"], 3)
    (0.01, 4800.0)
    >>> f"{row['rate_mol_m2_s']:.4g}"
    '2.708e-07'
    """

    rows: list[dict[str, Any]]
    messages: list[str] = field(default_factory=list)

    def to_rows(self) -> list[dict[str, Any]]:
        """The rows as plain dicts of Python numbers (for CSV and JSON)."""
        return [{k: row[k] for k in RATE_COLUMNS} for row in self.rows]

    def to_dict(self) -> dict[str, Any]:
        """Columns and rows, JSON-serialisable (NaN stays NaN: use ``json_safe``)."""
        return {
            "columns": list(RATE_COLUMNS),
            "rows": self.to_rows(),
            "messages": list(self.messages),
        }


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else float("nan")


def rate_table(
    rates,
    times_s,
    pixel_size_nm: float,
    labels=None,
    *,
    reference: HeightReference | None = None,
) -> RateTable:
    """The per-pair table of :class:`RateTable` from the rate maps of :func:`rate_maps`.

    Parameters
    ----------
    rates : array_like, shape (frames - 1, rows, cols)
        Rate maps, nm/s.
    times_s : float or sequence of float
        Frame times of the *frames* (one more than rate maps), s, or the frame interval.
    pixel_size_nm : float
        Pixel size, nm per pixel.
    labels : array_like of int, shape (frames, rows, cols), optional
        Labels of the frames (for the pit and terrace columns).
    reference : HeightReference, optional
        Its messages are carried into the table, and the range of the levelling residue
        it removed from each pair (``levelling_residue_nm``; NaN without it).

    Returns
    -------
    RateTable

    Examples
    --------
    >>> lab = np.full((2, 4, 4), 2, np.uint8); lab[1, :2] = 1   # a pit grew over half
    >>> r = np.zeros((1, 4, 4), np.float32); r[0, :2] = 0.002
    >>> row = rate_table(r, 300.0, 10.0, lab).to_rows()[0]
    >>> [round(row[k], 6) for k in ("rate_pits_nm_s", "rate_terrace_nm_s", "rate_nm_s")]
    [0.002, 0.0, 0.001]
    """
    r = np.asarray(rates)
    if r.ndim != 3:
        raise KineticsError(f"rates must be a 3-D stack (pairs, rows, cols), got {r.shape}")
    t = _as_times(times_s, r.shape[0] + 1)
    if not (np.isfinite(pixel_size_nm) and pixel_size_nm > 0):
        raise KineticsError(f"pixel_size_nm must be a positive number, got {pixel_size_nm!r}")
    lab = _as_labels(labels, (r.shape[0] + 1, *r.shape[1:]))
    area = float(pixel_size_nm) ** 2
    residue = (
        reference.residue_range_nm()
        if reference is not None and reference.offsets_nm.shape == (r.shape[0],)
        else np.full(r.shape[0], np.nan)
    )
    rows = []
    for k in range(r.shape[0]):
        rk = np.asarray(r[k], np.float64)
        valid = np.isfinite(rk)
        dt = float(t[k + 1] - t[k])
        row = {"frame": k, "time_s": float(t[k]), "dt_s": dt, "rate_nm_s": _mean(rk[valid])}
        pits = terrace = None
        if lab is not None:
            is_pit = np.isin(lab[k], (LABEL_MULTILAYER, LABEL_MONOLAYER)) | np.isin(
                lab[k + 1], (LABEL_MULTILAYER, LABEL_MONOLAYER)
            )
            pits = _mean(rk[valid & is_pit])
            terrace = _mean(rk[valid & (lab[k] == LABEL_TERRACE) & (lab[k + 1] == LABEL_TERRACE)])
        row["rate_pits_nm_s"] = float("nan") if pits is None else pits
        row["rate_terrace_nm_s"] = float("nan") if terrace is None else terrace
        for key in ("", "_pits", "_terrace"):
            row[f"rate{key}_mol_m2_s"] = row[f"rate{key}_nm_s"] * NM_S_TO_MOL_M2_S
        row["dissolved_volume_nm3"] = float(rk[valid].sum() * dt * area)
        row["levelling_residue_nm"] = residue[k]
        rows.append(row)
    return RateTable(rows, list(reference.messages) if reference is not None else [])


def write_rates_tif(
    path: str | Path,
    rates,
    pixel_size_nm: float,
    *,
    frame_interval_s: float | None = None,
    metadata: dict | None = None,
) -> Path:
    """Write rate maps as a float32 ImageJ TIFF (value unit nm/s), atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Output file (``rates.tif``).
    rates : array_like, shape (frames - 1, rows, cols)
        Rate maps, nm/s (:func:`rate_maps`).
    pixel_size_nm : float
        Pixel size, nm per pixel.
    frame_interval_s : float, optional
        Time between frames, s.
    metadata : dict, optional
        Extra JSON-serialisable metadata (e.g. the height reference's messages).

    Returns
    -------
    pathlib.Path
        The file written.

    Examples
    --------
    >>> import tempfile, pathlib, tifffile
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "rates.tif"
    >>> _ = write_rates_tif(out, np.zeros((2, 8, 8), np.float32), 11.7, frame_interval_s=300.0)
    >>> tifffile.imread(out).dtype.name, tifffile.imread(out).shape
    ('float32', (2, 8, 8))
    """
    from ..io import write_tiff

    r = np.asarray(rates)
    if r.ndim != 3:
        raise KineticsError(f"rates must be a 3-D stack (pairs, rows, cols), got {r.shape}")
    meta: dict[str, Any] = {"quantity": "local dissolution rate", "unit": "nm/s"}
    if metadata:
        meta.update(metadata)
    return write_tiff(
        path,
        r.astype(np.float32),
        pixel_size_nm,
        frame_interval_s=frame_interval_s,
        unit="nm/s",
        metadata=meta,
    )
