"""Statistics of one frame at one lag: pair sums, ``rho_i(s)``, ``p_ij(s)``, model ``g``.

:func:`~napari_calcite_afm.stats.fit_frame` builds, once per frame, a stack of per-class
rows (indicator ``m_i``, region-centred ``u_i = (Z' - mu_i) m_i`` and ``u_i^2``) laid out
with ``max(lag)`` zero columns of padding (a :class:`_FrameRows`). The pairs at lag ``s``
along x are then the flattened stack against itself shifted by ``s``, along y shifted by
``s`` rows, so every pair sum of a lag is one Gram matrix (:func:`_lagged_gram`).
:func:`_fit_lag` turns it into a :class:`~.results.LagStats`.

Examples
--------
>>> flat = np.arange(6.0).reshape(1, 6)
>>> _lagged_gram(flat, 1)  # sum of x[i] * x[i + 1]
array([[40.]])
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._workspace import _Workspace
from .goodness import _binned_distances, _binned_ks
from .mixtures import _increment_components, _model_cdfs
from .results import LagStats, RegionParams
from .sample import _Binned, _pair_slices

_GEMM_CHUNK = 200_000  # multiply-adds per BLAS call in the pair sums (single-threaded)


@dataclass
class _FrameRows:
    """What the lags of one frame share (built by ``fit_frame``, read-only here).

    Attributes
    ----------
    znan : numpy.ndarray
        ``(rows, cols)`` ``Z'`` in nm, NaN at the invalid (non-finite or unlabelled) pixels.
    flat : numpy.ndarray
        ``(3 k, rows * width)`` pair-sum rows ``m_i``, ``u_i``, ``u_i^2`` (zero padded).
    width : int
        Columns of a padded row of ``flat`` (frame columns plus padding).
    regions : list of RegionParams
        The frame's regions, in class order.
    axis : str
        ``"x"``, ``"y"`` or ``"both"``.
    pixel_size_nm : float
        Pixel size, nm per pixel.
    min_pixels : int
        Fewer same-region pairs leave ``rho`` NaN.
    all_valid : bool
        Whether every pixel is valid (no NaN in ``znan``).
    histograms : bool
        Keep the increment histogram in the result.
    """

    znan: np.ndarray
    flat: np.ndarray
    width: int
    regions: list[RegionParams]
    axis: str
    pixel_size_nm: float
    min_pixels: int
    all_valid: bool
    histograms: bool


def _lagged_gram(flat: np.ndarray, offset: int) -> np.ndarray:
    """``flat[:, :-offset] @ flat[:, offset:].T`` in column chunks.

    Chunks keep each BLAS call small enough to run on one thread (OpenBLAS threads a GEMM
    only above about 2.6e5 multiply-adds); see docs/statistics.md, "Speed", for why.
    """
    rows, n = flat.shape
    n -= offset
    step = max(1024, _GEMM_CHUNK // (rows * rows))
    g = np.zeros((rows, rows))
    for start in range(0, n, step):
        stop = min(n, start + step)
        g += flat[:, start:stop] @ flat[:, start + offset : stop + offset].T
    return g


def _nan_lag(s, lag_nm, axis, k, labels_k, flags) -> LagStats:
    """The statistics of a lag without any valid pair: NaN everywhere, ``flags`` kept."""
    nan = np.full(k * k, np.nan)
    return LagStats(
        lag_px=s,
        lag_nm=lag_nm,
        axis=axis,
        rho={lab: math.nan for lab in labels_k},
        p=np.full((k, k), np.nan),
        n_pairs=0,
        n_same_pairs={lab: 0 for lab in labels_k},
        weights=nan,
        means=nan.copy(),
        sigmas=nan.copy(),
        flags=list(flags),
    )


def _lag_offsets(s: int, frame: _FrameRows, flags: list[str]) -> list[int]:
    """Offsets in ``frame.flat`` of the x and y pairs at lag ``s`` (flags a direction left out)."""
    rows, cols = frame.znan.shape
    offsets = []
    if frame.axis in ("x", "both"):
        if s < cols:
            offsets.append(s)
        else:
            flags.append(f"lag {s} px not shorter than the frame width ({cols} px): no x pairs")
    if frame.axis in ("y", "both"):
        if s < rows:
            offsets.append(s * frame.width)
        else:
            flags.append(f"lag {s} px not shorter than the frame height ({rows} px): no y pairs")
    return offsets


def _lag_rho(s, g, n_ij, regions, min_pixels, flags) -> tuple[dict[int, float], dict[int, int]]:
    """``rho_i(s)`` and the same-region pair counts by label, from the pair sums ``g``."""
    k = len(regions)
    rho: dict[int, float] = {}
    n_same: dict[int, int] = {}
    for i, r in enumerate(regions):
        n = float(n_ij[i, i])
        n_same[r.label] = int(n_ij[i, i])
        value = math.nan
        if math.isnan(r.sigma):
            pass  # region parameters already NaN and flagged
        elif r.sigma == 0.0:
            if n > 0:
                flags.append(f"lag {s} px: rho_{r.name} undefined (region {r.name} constant)")
        elif n < min_pixels:
            flags.append(
                f"lag {s} px: rho_{r.name} undefined ({int(n)} same-region pairs < "
                f"min_pixels ({min_pixels}))"
            )
        else:
            sa, sb = g[k + i, i], g[i, k + i]
            saa, sbb, sab = g[2 * k + i, i], g[i, 2 * k + i], g[k + i, k + i]
            va = saa - sa * sa / n
            vb = sbb - sb * sb / n
            if va <= 1e-14 * saa or vb <= 1e-14 * sbb or va <= 0 or vb <= 0:
                flags.append(f"lag {s} px: rho_{r.name} undefined (constant pair ends)")
            else:
                value = float(np.clip((sab - sa * sb / n) / math.sqrt(va * vb), -1.0, 1.0))
        rho[r.label] = value
    return rho, n_same


def _increment_sample(s: int, frame: _FrameRows, n_pairs: int, work: _Workspace) -> np.ndarray:
    """Increments (nm) of the pairs with both ends valid, in ``work``'s scratch array."""
    znan = frame.znan
    parts = []
    for a, b in _pair_slices(znan.shape, s, frame.axis):
        parts.append((znan[b], znan[a]))
    total = sum(pa.size for pa, _ in parts)
    buf = work.get("d", total, np.float64)
    pos = 0
    for hi_end, lo_end in parts:
        out = buf[pos : pos + hi_end.size].reshape(hi_end.shape)
        np.subtract(hi_end, lo_end, out=out)
        pos += hi_end.size
    d = buf if frame.all_valid else buf[np.isfinite(buf)]
    if d.size != n_pairs:  # pragma: no cover - internal consistency
        raise RuntimeError(f"pair count mismatch at lag {s}: {d.size} != {n_pairs}")
    return d


def _fit_lag(s: int, frame: _FrameRows, work: _Workspace, keep: dict | None = None) -> LagStats:
    """The :class:`~.results.LagStats` of lag ``s`` (pixels): pair statistics, model, fit.

    ``keep``, when given, receives the binned increment sample as ``keep[s]`` (for the
    GSG fit; ``work`` must then not be reused by another task).
    """
    regions = frame.regions
    k = len(regions)
    px, axis = frame.pixel_size_nm, frame.axis
    labels_k = [r.label for r in regions]
    flags: list[str] = []
    offsets = _lag_offsets(s, frame, flags)
    # pair sums: G[a, b] = sum_x row_a(x) row_b(x + s), rows m_i, u_i, u_i^2
    g = np.zeros((3 * k, 3 * k))
    for o in offsets:
        g += _lagged_gram(frame.flat, o)
    n_ij = np.rint(g[:k, :k]).astype(np.int64)
    n_pairs = int(n_ij.sum())
    if n_pairs == 0:
        flags.append(f"lag {s} px: no valid pairs")
        return _nan_lag(s, s * px, axis, k, labels_k, flags)
    p = n_ij / n_pairs
    rho, n_same = _lag_rho(s, g, n_ij, regions, frame.min_pixels, flags)
    w_g, m_g, s_g = _increment_components(regions, rho, p)
    ls = LagStats(s, s * px, axis, rho, p, n_pairs, n_same, w_g, m_g, s_g, flags=flags)

    dbin = _Binned(_increment_sample(s, frame, n_pairs, work), work=work)
    if keep is not None:
        keep[s] = dbin
    model = _model_cdfs(w_g, m_g, s_g)
    if model is None:
        flags.append(f"lag {s} px: increment model undefined (a weighted mode has NaN parameters)")
    else:
        ls.ks_increment = _binned_ks(dbin, *model)
        ls.l1_increment, ls.js_increment = _binned_distances(dbin, model[0])
    if frame.histograms:
        ls.hist = dbin.histogram()
    return ls
