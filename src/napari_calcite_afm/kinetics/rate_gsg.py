"""Generalized sub-Gaussian (GSG) models of the local dissolution rates.

Siena et al. (2021) treat the local dissolution rates of calcite as a GSG field. For
each frame pair, :func:`rate_gsg_rows` fits :func:`napari_calcite_afm.stats.fit_gsg_field`
to the rate map as a whole (unimodal) and
:func:`napari_calcite_afm.stats.fit_gsg_regions` to its pits (multilayer or monolayer
pit in either frame) and terraces (terrace in both frames): the shape ``alpha``
(2: Gaussian; lower: heavier tails), the scale ``sigma`` (nm/s) of the Gaussian field,
the mean (nm/s), ``rho(s)`` of the first lag and the KS distances of the unimodal fit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..labels import LABEL_MONOLAYER, LABEL_MULTILAYER, LABEL_TERRACE
from ..stats import fit_gsg_field, fit_gsg_regions

__all__ = ["RATE_GSG_COLUMNS", "rate_gsg_rows"]

#: Columns :func:`rate_gsg_rows` adds to the rate table (rates.csv), per frame pair.
RATE_GSG_COLUMNS = (
    "rate_gsg_alpha",
    "rate_gsg_sigma_nm_s",
    "rate_gsg_mu_nm_s",
    "rate_gsg_rho",
    "rate_ks_gsg",
    "rate_ks_increment_gsg",
    "rate_gsg_alpha_pits",
    "rate_gsg_sigma_pits_nm_s",
    "rate_gsg_alpha_terrace",
    "rate_gsg_sigma_terrace_nm_s",
)
_PITS, _TERRACE = 1, 2  # region codes of the pair


def _regions(lab0: np.ndarray, lab1: np.ndarray) -> np.ndarray:
    pit = np.isin(lab0, (LABEL_MULTILAYER, LABEL_MONOLAYER)) | np.isin(
        lab1, (LABEL_MULTILAYER, LABEL_MONOLAYER)
    )
    out = np.zeros(lab0.shape, np.int32)
    out[(lab0 == LABEL_TERRACE) & (lab1 == LABEL_TERRACE)] = _TERRACE
    out[pit] = _PITS
    return out


def _pair_row(rate: np.ndarray, regions: np.ndarray | None, lags: Sequence[int]) -> dict:
    nan = math.nan
    row = dict.fromkeys(RATE_GSG_COLUMNS, nan)
    whole = fit_gsg_field(rate, lags=lags)
    first = int(lags[0])
    row.update(
        rate_gsg_alpha=whole.alpha,
        rate_gsg_sigma_nm_s=whole.sigma,
        rate_gsg_mu_nm_s=whole.mu,
        rate_gsg_rho=whole.rho.get(first, nan),
        rate_ks_gsg=whole.ks_height,
        rate_ks_increment_gsg=whole.ks_increment.get(first, nan),
    )
    if regions is not None:
        fits = fit_gsg_regions(rate, regions, lags=lags, goodness=False)
        for code, name in ((_PITS, "pits"), (_TERRACE, "terrace")):
            if code in fits:
                row[f"rate_gsg_alpha_{name}"] = fits[code].alpha
                row[f"rate_gsg_sigma_{name}_nm_s"] = fits[code].sigma
    return {k: float(v) for k, v in row.items()}


def rate_gsg_rows(rates, labels=None, lags: Sequence[int] = (1, 2, 4, 8)) -> list[dict]:
    """GSG parameters of each rate map, whole and by region (one dict per frame pair).

    Parameters
    ----------
    rates : array_like
        ``(frames - 1, rows, cols)`` rate maps, nm/s (NaN ignored).
    labels : array_like, optional
        ``(frames, rows, cols)`` labels 0-3 (for the pit and terrace fits).
    lags : sequence of int
        Lags of ``rho(s)``, pixels (the first is reported).

    Returns
    -------
    list of dict
        The columns :data:`RATE_GSG_COLUMNS`; NaN where a fit was impossible (too few
        pixels, no spread: the GSG fit's flags).

    Examples
    --------
    >>> from napari_calcite_afm.stats import simulate_gsg_field
    >>> rates = simulate_gsg_field((96, 96), 1.4, 0.01, 3.0, seed=4)[None]
    >>> row = rate_gsg_rows(rates, lags=(1, 2))[0]
    >>> bool(1.0 < row["rate_gsg_alpha"] < 1.8), math.isnan(row["rate_gsg_alpha_pits"])
    (True, True)
    """
    r = np.asarray(rates, dtype=float)
    lab = None if labels is None else np.asarray(labels)
    rows = []
    for k in range(r.shape[0]):
        regions = None if lab is None else _regions(lab[k], lab[k + 1])
        rows.append(_pair_row(r[k], regions, tuple(int(v) for v in lags)))
    return rows
