"""Fixed multiscale input features of a height image (the U-Net's first layer).

:class:`MultiscaleFeatures` computes smoothed heights, roughness, slopes and curvatures
at several scales (pixels) with fixed Gaussian convolutions: nothing is trained and
nothing is stored in model files. :class:`~.networks.UNet` uses it as its first layer
when built with ``multiscale=True`` (the training default).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..errors import CalciteAFMError

__all__ = ["MultiscaleFeatures"]


def _gaussian_kernel(sigma: float) -> torch.Tensor:
    """Normalised 1D Gaussian kernel of radius ``ceil(3 sigma)`` pixels."""
    radius = int(np.ceil(3.0 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / float(sigma)) ** 2)
    return k / k.sum()


class MultiscaleFeatures(nn.Module):
    """Fixed multiscale features of a height image: the first layer of :class:`~.networks.UNet`.

    A random-forest pixel classifier on scikit-image's multiscale features beat the
    U-Net trained on bare heights (``docs/segmentation.md``); its most used features
    were the slope at 4 px, the heights smoothed at 1 and 16 px and the curvature at 2
    and 8 px. Features that a network would have to learn over many iterations are
    given to it instead, computed by fixed convolutions (no trainable weights, nothing
    added to the model file). With ``G_s`` the Gaussian smoothing at ``s`` pixels and
    ``x`` the normalised heights:

    * ``x`` and ``G_1 x``;
    * ``G_s x - x`` for ``s`` in ``heights``: how far the surroundings stand above the
      pixel (positive inside a pit) at the scale ``s``;
    * ``sqrt(G_s (x - G_1 x)**2)`` for ``s`` in ``roughness``: local roughness (pits are
      rougher than terraces);
    * ``s |grad G_s x|`` for ``s`` in ``slopes``: the slope (walls of pits);
    * the two eigenvalues of ``s**2`` times the Hessian of ``G_s x`` for ``s`` in
      ``curvatures``: rims and floors of pits.

    Derivatives are central differences. Fixed gains (2 for the smoothed heights, 10 for
    the roughness, 5 for the slopes, 10 for the curvatures) bring each channel to order 1
    on the asinh-scaled input. Every feature is isotropic, so flips and 90 degree rotations
    of the image commute with it (training augments precomputed features). Frame edges
    are extended with their edge values.

    Parameters
    ----------
    heights, roughness, slopes, curvatures : sequence of float
        Scales (pixels) of each kind of feature.

    Examples
    --------
    >>> feats = MultiscaleFeatures()
    >>> feats.n_channels
    15
    >>> feats(torch.zeros(2, 1, 40, 50)).shape
    torch.Size([2, 15, 40, 50])
    """

    def __init__(
        self,
        heights: Sequence[float] = (2, 4, 8, 16),
        roughness: Sequence[float] = (2,),
        slopes: Sequence[float] = (1, 2, 4, 8),
        curvatures: Sequence[float] = (2, 8),
    ) -> None:
        super().__init__()
        self.heights = tuple(float(s) for s in heights)
        self.roughness = tuple(float(s) for s in roughness)
        self.slopes = tuple(float(s) for s in slopes)
        self.curvatures = tuple(float(s) for s in curvatures)
        every = (*self.heights, *self.roughness, *self.slopes, *self.curvatures)
        if any(s <= 0 for s in every):
            raise CalciteAFMError("feature scales must be positive")
        self._scales = sorted({1.0, *every})
        for i, s in enumerate(self._scales):
            self.register_buffer(f"kernel{i}", _gaussian_kernel(s), persistent=False)

    @property
    def n_channels(self) -> int:
        """Number of feature channels."""
        return (
            2 + len(self.heights) + len(self.roughness) + len(self.slopes)
            + 2 * len(self.curvatures)
        )  # fmt: skip

    @property
    def halo(self) -> int:
        """Pixels of context the features read on each side (widest kernel, plus 1)."""
        return int(np.ceil(3.0 * max(self._scales))) + 1

    def smooth(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        """Gaussian smoothing of ``(batch, channels, rows, cols)`` with edge extension."""
        k = getattr(self, f"kernel{self._scales.index(float(sigma))}")
        r = (k.numel() - 1) // 2
        n, c, h, w = x.shape
        y = x.reshape(n * c, 1, h, w)
        y = nn.functional.pad(y, (r, r, 0, 0), mode="replicate")
        y = nn.functional.conv2d(y, k.view(1, 1, 1, -1))
        y = nn.functional.pad(y, (0, 0, r, r), mode="replicate")
        y = nn.functional.conv2d(y, k.view(1, 1, -1, 1))
        return y.reshape(n, c, h, w)

    def smooth_many(self, x: torch.Tensor, sigmas: Sequence[float]) -> list[torch.Tensor]:
        """:meth:`smooth` at several scales; scales above 2 px through one FFT.

        Direct convolutions with kernels longer than about 20 taps are slow on a CPU;
        the FFT of the edge-extended image (extended by the widest kernel's radius, so
        the circular convolution never wraps into the result) gives the same values to
        float rounding (about 1e-6) in a fraction of the time.
        """
        out = {s: self.smooth(x, s) for s in sigmas if s <= 2.0}
        wide = [s for s in sigmas if s > 2.0]
        if wide:
            kernels = [getattr(self, f"kernel{self._scales.index(float(s))}") for s in wide]
            r = max((k.numel() - 1) // 2 for k in kernels)
            rows, cols = x.shape[-2:]
            y = nn.functional.pad(x, (r, r, r, r), mode="replicate")
            big_r, big_c = y.shape[-2:]
            spectrum = torch.fft.rfft2(y)
            for s, k in zip(wide, kernels):
                kr = (k.numel() - 1) // 2
                k_rows = torch.zeros(big_r, dtype=x.dtype, device=x.device)
                k_cols = torch.zeros(big_c, dtype=x.dtype, device=x.device)
                k_rows[: kr + 1], k_rows[big_r - kr :] = k[kr:], k[:kr]
                k_cols[: kr + 1], k_cols[big_c - kr :] = k[kr:], k[:kr]
                transfer = torch.fft.fft(k_rows)[:, None] * torch.fft.rfft(k_cols)[None, :]
                z = torch.fft.irfft2(spectrum * transfer, s=(big_r, big_c))
                out[s] = z[..., r : r + rows, r : r + cols].contiguous()
        return [out[s] for s in sigmas]

    @staticmethod
    def _d_rows(g: torch.Tensor) -> torch.Tensor:
        p = nn.functional.pad(g, (0, 0, 1, 1), mode="replicate")
        return 0.5 * (p[..., 2:, :] - p[..., :-2, :])

    @staticmethod
    def _d_cols(g: torch.Tensor) -> torch.Tensor:
        p = nn.functional.pad(g, (1, 1, 0, 0), mode="replicate")
        return 0.5 * (p[..., :, 2:] - p[..., :, :-2])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        smoothed = dict(zip(self._scales, self.smooth_many(x, self._scales)))
        g1 = smoothed[1.0]
        feats = [x, g1]
        feats += [2.0 * (smoothed[s] - x) for s in self.heights]
        if self.roughness:
            hp2 = (x - g1) ** 2
            feats += [10.0 * torch.sqrt(self.smooth(hp2, s) + 1e-6) for s in self.roughness]
        # first derivatives once per scale: slopes and curvatures share scales (2, 8 px)
        grads = {
            s: (self._d_rows(smoothed[s]), self._d_cols(smoothed[s]))
            for s in {*self.slopes, *self.curvatures}
        }
        for s in self.slopes:
            gr, gc = grads[s]
            feats.append(5.0 * s * torch.sqrt(gr * gr + gc * gc + 1e-6))
        for s in self.curvatures:
            gr, gc = grads[s]
            hrr, hcc, hrc = self._d_rows(gr), self._d_cols(gc), self._d_cols(gr)
            mean = 0.5 * (hrr + hcc)
            dev = torch.sqrt(0.25 * (hrr - hcc) ** 2 + hrc * hrc + 1e-12)
            feats += [10.0 * s * s * (mean + dev), 10.0 * s * s * (mean - dev)]
        return torch.cat(feats, dim=1)
