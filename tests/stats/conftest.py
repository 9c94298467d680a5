"""Frames drawn from the multimodal Gaussian model, for the tests of napari_calcite_afm.stats.

The synthetic frames are drawn from the model itself: two independent stationary Gaussian
fields (Gaussian-filtered white noise, periodic, so their correlation is known exactly)
laid over a thresholded smooth random indicator with c = 0.3. Tolerances on the recovered
parameters are a few standard errors computed from the known correlation (integral scale
for means and standard deviations, Bartlett's formula for correlation coefficients).

The tests get the helpers through the :func:`fields` fixture (``fields.model_frame()``,
``fields.direct_pairs(...)``, ``fields.MU`` ...): with ``--import-mode=importlib`` a test
module cannot import this file. :func:`model_fit` is one 512 x 512 frame and its fit.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_calcite_afm.stats import fit_frame

MU = (-8.0, 0.0)  # mu_A (pits, low), mu_B (terrace)
SIG = (1.0, 0.5)
ELL = 3.0  # Gaussian kernel std of the fields, pixels
C_TRUE = 0.3
LAGS = (1, 2, 4, 8)


def _kernel(ell: float, n: int = 257) -> np.ndarray:
    delta = np.zeros(n)
    delta[n // 2] = 1.0
    return ndi.gaussian_filter1d(delta, ell, mode="wrap", truncate=4.0)


def field_corr(ell: float, smax: int = 64) -> np.ndarray:
    """Exact correlation along one axis of 2D Gaussian-filtered white noise (periodic)."""
    k = _kernel(ell)
    return np.array([np.dot(k, np.roll(k, s)) for s in range(smax + 1)]) / np.dot(k, k)


def unit_field(shape, ell, rng) -> np.ndarray:
    """Stationary zero-mean Gaussian field with unit variance and known correlation."""
    f = ndi.gaussian_filter(rng.normal(size=shape), ell, mode="wrap", truncate=4.0)
    k = _kernel(ell)
    return f / np.dot(k, k)  # variance of the filtered noise is (sum k^2)^2


def model_frame(shape=(512, 512), seed=0, mu=MU, sig=SIG, ell=ELL, c=C_TRUE):
    """A float32 frame (nm) drawn from the two-region model, and its uint8 labels."""
    rng = np.random.default_rng(seed)
    fa = unit_field(shape, ell, rng)
    fb = unit_field(shape, ell, rng)
    smooth = ndi.gaussian_filter(rng.normal(size=shape), 15.0, mode="wrap")
    mask_a = smooth < np.quantile(smooth, c)
    z = np.where(mask_a, mu[0] + sig[0] * fa, mu[1] + sig[1] * fb).astype(np.float32)
    labels = np.where(mask_a, 1, 2).astype(np.uint8)
    return z, labels


def bartlett_se(rho: np.ndarray, s: int, n: float, kmax: int = 40) -> float:
    """Bartlett's standard error of a lag-s correlation estimate from n pairs (2D field)."""
    k = np.arange(-kmax, kmax + 1)
    kx, ky = np.meshgrid(k, k, indexing="ij")

    def r2(dx, dy):
        dx, dy = np.abs(dx), np.abs(dy)
        ok = (dx <= kmax) & (dy <= kmax)
        out = np.zeros(dx.shape)
        out[ok] = rho[dx[ok]] * rho[dy[ok]]
        return out

    rs = rho[s]
    terms = (
        r2(kx, ky) ** 2
        + r2(kx + s, ky) * r2(kx - s, ky)
        - 4 * rs * r2(kx, ky) * r2(kx - s, ky)
        + 2 * rs**2 * r2(kx, ky) ** 2
    )
    return math.sqrt(terms.sum() / n)


def brute_ks(x, cdf, cdf_left=None) -> float:
    """KS distance by sorting the whole sample (reference implementation)."""
    x = np.sort(np.asarray(x, float))
    n = x.size
    lo = np.searchsorted(x, x, "left")
    hi = np.searchsorted(x, x, "right")
    f = cdf(x)
    fl = cdf_left(x) if cdf_left else f
    return float(max(np.max(np.abs(hi / n - f)), np.max(np.abs(lo / n - fl))))


def direct_pairs(zp, lab, cls, s, axis):
    """Both ends of the pairs (x, x + s) lying in class `cls` (reference implementation)."""
    a_parts, b_parts = [], []
    if axis in ("x", "both"):
        m = (lab[:, :-s] == cls) & (lab[:, s:] == cls)
        a_parts.append(zp[:, :-s][m])
        b_parts.append(zp[:, s:][m])
    if axis in ("y", "both"):
        m = (lab[:-s] == cls) & (lab[s:] == cls)
        a_parts.append(zp[:-s][m])
        b_parts.append(zp[s:][m])
    return np.concatenate(a_parts), np.concatenate(b_parts)


def check_identities(fit, z, labels):
    """The science notes' identities: sum w_i mu_i = 0 and the variance decomposition."""
    w, mu, sig = fit.height_components()
    ok = np.isfinite(mu)
    valid = np.isfinite(z) & (labels > 0)
    zp = z.astype(np.float64)[valid] - fit.mean_height_nm
    scale = max(1.0, float(np.abs(zp).max()))
    assert abs(np.sum(w[ok] * mu[ok])) < 1e-12 * scale
    var_total = zp.var()
    assert np.sum(w[ok] * (sig[ok] ** 2 + mu[ok] ** 2)) == pytest.approx(var_total, rel=1e-11)


@pytest.fixture(scope="session")
def fields() -> SimpleNamespace:
    """The model-frame generator, reference implementations and true parameters."""
    return SimpleNamespace(
        MU=MU,
        SIG=SIG,
        ELL=ELL,
        C_TRUE=C_TRUE,
        LAGS=LAGS,
        field_corr=field_corr,
        unit_field=unit_field,
        model_frame=model_frame,
        bartlett_se=bartlett_se,
        brute_ks=brute_ks,
        direct_pairs=direct_pairs,
        check_identities=check_identities,
    )


@pytest.fixture(scope="session")
def model_fit():
    """A 512 x 512 model frame, its labels and its fit at LAGS (11.7 nm pixels)."""
    z, labels = model_frame()
    fit = fit_frame(z, labels, LAGS, pixel_size_nm=11.7)
    return z, labels, fit
