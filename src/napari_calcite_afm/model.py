"""The segmentation networks, with their input normalisation.

The study's network (Siena et al. 2021; the Matlab example "Semantic Segmentation Using
Dilated Convolutions" whose 13 layers the poster's match) is::

    image input (normalisation)
    conv 3x3 dilation 1, batch norm, ReLU
    conv 3x3 dilation 2, batch norm, ReLU
    conv 3x3 dilation 4, batch norm, ReLU
    conv 1x1 to the class scores, softmax, pixel classification (cross-entropy)

with 'same' padding (padding = dilation), so the output has the size of the input for
any input size. :class:`DilatedNet` is the torch module (it returns the class *scores*;
the softmax is applied by :mod:`~napari_calcite_afm.predict`, the cross-entropy by
:mod:`~napari_calcite_afm.train`). Width and dilations are arguments: ``DilatedNet()``
is the study's design (32 filters, dilations ``(1, 2, 4)``, receptive field 15 pixels).

Its receptive field is small next to a multilayer pit, and the science notes offer "a
coarser input scale" beside the study's design. :class:`UNet` takes that option: a small
encoder-decoder (three 2x downsamplings, skip connections) whose bottleneck is a stack of
dilated convolutions, 130 pixels of context with sharp boundaries. By default its
first layer is :class:`MultiscaleFeatures`: fixed (untrained) smoothed heights, roughness,
slopes and curvatures at 1-16 pixels, the features a random-forest pixel classifier
relies on. It is the training default (:class:`~napari_calcite_afm.train.TrainConfig`)
and the shipped models' network (``docs/segmentation.md`` gives the benchmark).

The "image input" layer is :class:`SegmentationModel`'s job. Heights in nm are levelled
with the :class:`~napari_calcite_afm.level.LevelSettings` stored in the model (by
default :data:`MODEL_LEVEL_DEFAULTS`: the package's levelling without the final zero
mean, so that terraces sit at 0 nm whatever the pit area), then scaled with two numbers
fixed **in nm** and measured once over the training set::

    x = (z_levelled - center_nm) / scale_nm            # transform "linear"
    x = asinh((z_levelled - center_nm) / scale_nm)     # transform "asinh" (default)

never with each frame's own spread (a frame with one deep pit must not look like a frame
of shallow ones). ``asinh`` is linear over a few monolayer steps and logarithmic over
deep pits, so monolayer steps stay visible next to pits tens of nm deep. Pixels the
instrument did not record (NaN) are filled with the nearest recorded height before the
network (so the network sees a continuation of the surface, not an artificial step);
the predictions mark them as label 0 and probability NaN.

Class indices: network output channel ``k`` is label ``k + 1`` (1 multilayer pit,
2 terrace, 3 monolayer pit); label 0 means unlabelled / not recorded.

Model files (``.pt``) hold a plain dictionary that ``torch.load(path, weights_only=True)``
reads without running any pickled code: the network's ``state_dict`` and a JSON string
with the metadata (format name and version, architecture, level settings,
normalisation, class names and colours, training history and configuration, package
version). They are written atomically and always loaded with ``weights_only=True``;
a file that is not such a model raises :class:`~napari_calcite_afm.io.AFMFileError`.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .colormap import LABEL_COLORS, LABEL_NAMES
from .io import AFMFileError, CalciteAFMError
from .level import LevelSettings, level_frame

__all__ = [
    "DEFAULT_DILATIONS",
    "DEFAULT_MODEL_FILES",
    "MODEL_FORMAT",
    "MODEL_FORMAT_VERSION",
    "INPUT_TRANSFORMS",
    "MODEL_LEVEL_DEFAULTS",
    "UNET_DECODERS",
    "ARCHITECTURES",
    "MultiscaleFeatures",
    "DilatedNet",
    "SegmentationModel",
    "UNet",
    "build_network",
    "class_names",
    "default_model_path",
    "fill_nan_nearest",
    "load_default_model",
    "load_model",
    "resolve_device",
]

#: Name stored in every model file (``"format"`` key).
MODEL_FORMAT = "napari-calcite-afm/segmentation-model"
#: Version of the model file layout; files with a larger number are refused. A file is
#: written with the lowest version that can read it: 2 only for a U-Net with
#: ``decoder="add"``, which readers of version 1 would build as the wrong network.
MODEL_FORMAT_VERSION = 2
#: The study's dilations (receptive field 15 pixels).
DEFAULT_DILATIONS: tuple[int, ...] = (1, 2, 4)
#: Levelling used by segmentation models unless told otherwise: the package defaults but
#: without the final zero mean, so that the terraces (the inliers of the robust background
#: fit) sit at 0 nm in every frame instead of shifting with the area of the pits.
MODEL_LEVEL_DEFAULTS: dict[str, Any] = {"zero_mean": False}
#: Input transforms: ``"linear"`` ``x = (z - center_nm) / scale_nm``; ``"asinh"``
#: ``x = asinh((z - center_nm) / scale_nm)``, linear for small heights (monolayer steps)
#: and logarithmic for deep pits, so one deep pit does not dominate the input's range.
INPUT_TRANSFORMS = ("linear", "asinh")
#: Shipped models by number of classes (files in the package's ``models`` folder).
DEFAULT_MODEL_FILES: dict[int, str] = {2: "default.pt", 3: "default3.pt"}


def class_names(n_classes: int) -> dict[int, str]:
    """Names of the labels a model with ``n_classes`` classes predicts.

    Parameters
    ----------
    n_classes : int
        2 (multilayer pit / terrace) or 3 (multilayer pit / terrace / monolayer pit).

    Returns
    -------
    dict of int to str
        Label value (1..n_classes) to name. With two classes, label 2 "terrace" also
        holds the monolayer pits.
    """
    _check_n_classes(n_classes)
    names = {k: LABEL_NAMES[k] for k in range(1, n_classes + 1)}
    if n_classes == 2:
        names[2] = LABEL_NAMES[2] + " incl. monolayer pits"
    return names


def _check_n_classes(n_classes: int) -> None:
    if n_classes not in (2, 3):
        raise CalciteAFMError(f"n_classes must be 2 or 3, got {n_classes!r}")


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn a device name into a :class:`torch.device`.

    Parameters
    ----------
    device : str, torch.device or None
        ``"auto"`` or None: the first CUDA GPU when present, else the CPU; otherwise any
        name torch accepts (``"cpu"``, ``"cuda:1"``...).

    Returns
    -------
    torch.device
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise CalciteAFMError(f"unknown device {device!r}: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CalciteAFMError(f"device {device!r} requested but no CUDA GPU is available")
    return dev


def _check_width_dilations(width, dilations) -> tuple[int, tuple[int, ...]]:
    """Validated (width, dilations) of a network."""
    dilations = tuple(int(d) for d in dilations)
    if not dilations or any(d < 1 for d in dilations):
        raise CalciteAFMError(f"dilations must be positive integers, got {dilations!r}")
    if int(width) < 1:
        raise CalciteAFMError(f"width must be a positive integer, got {width!r}")
    return int(width), dilations


class DilatedNet(nn.Module):
    """The study's dilated CNN: class scores for every pixel of a height image.

    Parameters
    ----------
    n_classes : int
        Number of output classes (2 or 3).
    width : int
        Filters per convolution (the Matlab example uses 32).
    dilations : sequence of int
        Dilation of each 3x3 convolution block (conv, batch norm, ReLU); ``(1, 2, 4)``
        is the study's design. Padding equals the dilation, so the output keeps the
        input's size.

    Notes
    -----
    ``forward`` takes ``(batch, 1, rows, cols)`` normalised heights and returns
    ``(batch, n_classes, rows, cols)`` unnormalised scores (logits). The receptive field
    is ``1 + 2 * sum(dilations)`` pixels.
    """

    def __init__(
        self,
        n_classes: int = 2,
        width: int = 32,
        dilations: Sequence[int] = DEFAULT_DILATIONS,
    ) -> None:
        super().__init__()
        width, dilations = _check_width_dilations(width, dilations)
        self.n_classes = int(n_classes)
        self.width = int(width)
        self.dilations = dilations
        layers: list[nn.Module] = []
        channels = 1
        for d in dilations:
            layers += [
                nn.Conv2d(channels, self.width, 3, padding=d, dilation=d, bias=False),
                nn.BatchNorm2d(self.width),
                nn.ReLU(inplace=True),
            ]
            channels = self.width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Conv2d(self.width, self.n_classes, 1)

    @property
    def receptive_field(self) -> int:
        """Receptive field in pixels (``1 + 2 * sum(dilations)``)."""
        return 1 + 2 * sum(self.dilations)

    @property
    def halo(self) -> int:
        """Receptive-field radius in pixels (``sum(dilations)``)."""
        return sum(self.dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))

    def fused(self) -> nn.Sequential:
        """An inference copy with each batch norm folded into its convolution.

        Returns
        -------
        torch.nn.Sequential
            Same outputs as the module in eval mode (to float rounding), about 30 %
            faster on a CPU. Not trainable.
        """
        seq = _fold_batch_norms(nn.Sequential(*self.features, self.classifier)).eval()
        for p in seq.parameters():
            p.requires_grad_(False)
        return seq


def _conv_block(c_in: int, c_out: int, dilation: int = 1) -> list[nn.Module]:
    """3x3 convolution (padding = dilation), batch norm, ReLU."""
    return [
        nn.Conv2d(c_in, c_out, 3, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    ]


def _fold_batch_norms(seq: nn.Sequential) -> nn.Sequential:
    """A copy of ``seq`` with each (Conv2d, BatchNorm2d) pair folded into one Conv2d."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    mods = list(seq)
    out: list[nn.Module] = []
    i = 0
    while i < len(mods):
        if (
            isinstance(mods[i], nn.Conv2d)
            and i + 1 < len(mods)
            and isinstance(mods[i + 1], nn.BatchNorm2d)
        ):
            out.append(fuse_conv_bn_eval(copy.deepcopy(mods[i]).eval(), mods[i + 1].eval()))
            i += 2
        else:
            out.append(copy.deepcopy(mods[i]))
            i += 1
    return nn.Sequential(*out)


def _gaussian_kernel(sigma: float) -> torch.Tensor:
    """Normalised 1D Gaussian kernel of radius ``ceil(3 sigma)`` pixels."""
    radius = int(np.ceil(3.0 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / float(sigma)) ** 2)
    return k / k.sum()


class MultiscaleFeatures(nn.Module):
    """Fixed multiscale features of a height image: the first layer of :class:`UNet`.

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


#: Ways a :class:`UNet` decoder stage joins the skip connection (``UNet(decoder=...)``).
UNET_DECODERS: tuple[str, ...] = ("concat", "add")


class UNet(nn.Module):
    """A small U-Net whose bottleneck is a stack of dilated convolutions.

    The study's network sees 15 pixels (63 with dilations up to 16): less than the wall of
    one multilayer pit. The science notes offer "a coarser input scale" beside the
    study's exact design; this network takes that option all the way. An encoder of
    ``levels`` stages (two conv 3x3 + batch norm + ReLU blocks, then 2x2 max pooling;
    ``width * 2**i`` filters at stage ``i``) brings the frame to 1/8 of its size, where
    dilated convolutions (``dilations``, the study's idea) see a hundred pixels or more;
    a decoder brings the result back up, each stage joined with the encoder's features
    of the same scale (skip connections), so the boundaries stay sharp to the pixel.
    A final 1x1 convolution gives the class scores, as in the study's network.

    Parameters
    ----------
    n_classes : int
        Number of output classes (2 or 3).
    width : int
        Filters of the first stage (doubled at each stage down).
    dilations : sequence of int
        Dilations of the bottleneck's 3x3 convolutions.
    levels : int
        Number of 2x downsamplings (1 to 5).
    multiscale : bool
        First layer :class:`MultiscaleFeatures` (fixed smoothed heights, roughness,
        slopes and curvatures at 1-16 px) instead of the bare heights. The training
        default: it raises the pit IoU on the benchmark's test frames from 0.79 to 0.84
        (same settings) and halves the gap to the random-forest baseline
        (``docs/segmentation.md``).
    decoder : {"concat", "add"}
        How each decoder stage joins the encoder's features of its scale.
        ``"concat"`` (the classic U-Net, and the layout of model files written before
        this option): bilinear 2x upsampling, concatenation with the skip, two conv
        blocks. ``"add"`` (the training default): a 1x1 convolution to the skip's width,
        nearest 2x upsampling, addition to the skip, one conv block. ``"add"`` has 27 %
        fewer parameters; on a 2-core CPU its training step is 1.8 times cheaper in
        float32, 2.2 times with bfloat16 (``docs/segmentation.md``), so the same
        minutes train more steps.

    Notes
    -----
    Any input size works: frames are padded (edge values) to a multiple of
    ``2**levels`` pixels and the output is cropped back. ``halo`` is an estimate of the
    receptive-field radius; tiled prediction with at least that overlap matches
    whole-frame prediction closely but, because the pooling grid moves with the tile, not
    bit for bit.

    Examples
    --------
    >>> net = UNet(n_classes=2, width=4, levels=2).eval()
    >>> net(torch.zeros(1, 1, 30, 41)).shape
    torch.Size([1, 2, 30, 41])
    """

    def __init__(
        self,
        n_classes: int = 2,
        width: int = 8,
        dilations: Sequence[int] = (1, 2),
        levels: int = 3,
        multiscale: bool = False,
        decoder: str = "concat",
    ) -> None:
        super().__init__()
        width, dilations = _check_width_dilations(width, dilations)
        if not 1 <= int(levels) <= 5:
            raise CalciteAFMError(f"levels must be 1 to 5, got {levels!r}")
        if decoder not in UNET_DECODERS:
            raise CalciteAFMError(f"decoder must be one of {UNET_DECODERS}, got {decoder!r}")
        self.decoder_kind = str(decoder)
        self.n_classes = int(n_classes)
        self.width = int(width)
        self.dilations = dilations
        self.levels = int(levels)
        self.input_features = MultiscaleFeatures() if multiscale else None
        widths = [self.width * 2**i for i in range(self.levels + 1)]
        self.encoder = nn.ModuleList()
        c = 1 if self.input_features is None else self.input_features.n_channels
        for w in widths[:-1]:
            self.encoder.append(nn.Sequential(*_conv_block(c, w), *_conv_block(w, w)))
            c = w
        bottom: list[nn.Module] = []
        for d in dilations:
            bottom += _conv_block(c, widths[-1], d)
            c = widths[-1]
        self.bottleneck = nn.Sequential(*bottom)
        self.decoder = nn.ModuleList()
        # "add": 1x1 projections of the coarser features to the skip's width
        self.project = nn.ModuleList()
        for w in reversed(widths[:-1]):
            if self.decoder_kind == "add":
                self.project.append(nn.Conv2d(c, w, 1, bias=False))
                self.decoder.append(nn.Sequential(*_conv_block(w, w)))
            else:
                self.decoder.append(nn.Sequential(*_conv_block(c + w, w), *_conv_block(w, w)))
            c = w
        self.classifier = nn.Conv2d(c, self.n_classes, 1)

    @property
    def stride(self) -> int:
        """Total downsampling factor (``2**levels``)."""
        return 2**self.levels

    @property
    def halo(self) -> int:
        """Receptive-field radius in pixels (an estimate, see the class notes)."""
        halo = 6 * (self.stride - 1) + self.stride * sum(self.dilations)
        if self.input_features is not None:
            halo += self.input_features.halo
        return halo

    @property
    def multiscale(self) -> bool:
        """Whether the first layer is :class:`MultiscaleFeatures`."""
        return self.input_features is not None

    @property
    def receptive_field(self) -> int:
        """Receptive field in pixels (``2 * halo + 1``)."""
        return 2 * self.halo + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_features is not None:
            x = self.input_features(x)
        return self.forward_features(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores from the first layer's output (see :meth:`features_of`)."""
        rows, cols = x.shape[-2:]
        pr, pc = (-rows) % self.stride, (-cols) % self.stride
        if pr or pc:
            x = nn.functional.pad(x, (0, pc, 0, pr), mode="replicate")
        skips = []
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
            x = nn.functional.max_pool2d(x, 2)
        x = self.bottleneck(x)
        if self.decoder_kind == "add":
            for stage, project, skip in zip(self.decoder, self.project, reversed(skips)):
                x = nn.functional.interpolate(project(x), size=skip.shape[-2:], mode="nearest")
                x = stage(x + skip)
        else:
            for stage, skip in zip(self.decoder, reversed(skips)):
                x = nn.functional.interpolate(x, size=skip.shape[-2:], mode="bilinear")
                x = stage(torch.cat([x, skip], dim=1))
        return self.classifier(x)[..., :rows, :cols]

    @torch.no_grad()
    def features_of(self, x: torch.Tensor) -> torch.Tensor:
        """The fixed first layer's output (the input itself without ``multiscale``).

        Training computes it once per whole frame and feeds patches of it to
        :meth:`forward_features`, so the features near a patch edge are those that
        whole-frame inference sees.
        """
        return x if self.input_features is None else self.input_features(x)

    def fused(self) -> UNet:
        """An inference copy with each batch norm folded into its convolution."""
        out = copy.deepcopy(self).eval()
        out.encoder = nn.ModuleList(_fold_batch_norms(m) for m in self.encoder)
        out.bottleneck = _fold_batch_norms(self.bottleneck)
        out.decoder = nn.ModuleList(_fold_batch_norms(m) for m in self.decoder)
        for p in out.parameters():
            p.requires_grad_(False)
        return out.eval()


#: Network classes by the name stored in model files.
ARCHITECTURES: dict[str, type[nn.Module]] = {"DilatedNet": DilatedNet, "UNet": UNet}


def build_network(
    architecture: str,
    n_classes: int = 2,
    width: int | None = None,
    dilations: Sequence[int] | None = None,
    levels: int = 3,
    multiscale: bool = False,
    decoder: str = "concat",
) -> nn.Module:
    """A fresh network by architecture name.

    Parameters
    ----------
    architecture : {"unet", "dilated"} or a stored name ("UNet", "DilatedNet")
        ``"dilated"``: the study's :class:`DilatedNet`; ``"unet"``: :class:`UNet`.
    n_classes : int
        2 or 3.
    width, dilations : optional
        As in the network classes (None: each class's default).
    levels : int
        Downsamplings of :class:`UNet` (ignored by :class:`DilatedNet`).
    multiscale : bool
        :class:`UNet` only: fixed :class:`MultiscaleFeatures` as first layer.
    decoder : {"concat", "add"}
        :class:`UNet` only: how a decoder stage joins its skip connection.

    Returns
    -------
    torch.nn.Module
    """
    name = {"unet": "UNet", "dilated": "DilatedNet"}.get(architecture, architecture)
    if name not in ARCHITECTURES:
        raise CalciteAFMError(f"unknown architecture {architecture!r}; use 'unet' or 'dilated'")
    kw: dict[str, Any] = {"n_classes": n_classes}
    if width is not None:
        kw["width"] = width
    if dilations is not None:
        kw["dilations"] = tuple(dilations)
    if name == "UNet":
        kw["levels"] = levels
        kw["multiscale"] = bool(multiscale)
        kw["decoder"] = decoder
    elif multiscale:
        raise CalciteAFMError("multiscale input features are available for the U-Net only")
    return ARCHITECTURES[name](**kw)


def fill_nan_nearest(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Fill NaN pixels with the value of the nearest recorded pixel.

    Parameters
    ----------
    image : numpy.ndarray
        2D float array; NaN marks unrecorded pixels.

    Returns
    -------
    filled : numpy.ndarray
        float32 copy without NaN (all zeros when nothing is recorded).
    nan_mask : numpy.ndarray or None
        Boolean mask of the filled pixels, or None when there were none.
    """
    image = np.asarray(image, dtype=np.float32)
    bad = ~np.isfinite(image)
    if not bad.any():
        return image, None
    if bad.all():
        return np.zeros_like(image), bad
    from scipy.ndimage import distance_transform_edt

    idx = distance_transform_edt(bad, return_distances=False, return_indices=True)
    return image[tuple(idx)].astype(np.float32, copy=False), bad


class SegmentationModel:
    """A trained segmentation network with everything needed to apply it.

    Bundles the network (:class:`UNet` or :class:`DilatedNet`), the input normalisation
    (levelling settings and the fixed nm scaling), class names and colours, and the
    training record. Save it with
    :meth:`save`, read it back with :func:`load_model`; segment with
    :func:`napari_calcite_afm.predict.predict_frame` / ``predict_stack``.

    Parameters
    ----------
    net : UNet or DilatedNet
        The network (its ``n_classes``, ``width`` and ``dilations`` are the model's).
    level : LevelSettings, dict or None
        How raw heights are levelled before the network (None:
        ``LevelSettings(**MODEL_LEVEL_DEFAULTS)``, i.e. no final zero mean).
        Training and inference use the same settings.
    center_nm, scale_nm : float
        Input normalisation ``(z_levelled - center_nm) / scale_nm``, in nm, measured
        once over the training set.
    transform : {"linear", "asinh"}
        Applied after the scaling (see the module docstring).
    history : list of dict, optional
        Training record (one entry per evaluation).
    train_config : dict, optional
        The :class:`~napari_calcite_afm.train.TrainConfig` used, as a dict.
    info : dict, optional
        Free JSON-serialisable notes (training data description, metrics...).
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        level: LevelSettings | dict | None = None,
        center_nm: float = 0.0,
        scale_nm: float = 1.0,
        transform: str = "linear",
        history: list[dict] | None = None,
        train_config: dict | None = None,
        info: dict | None = None,
    ) -> None:
        _check_n_classes(net.n_classes)
        if not (np.isfinite(scale_nm) and scale_nm > 0):
            raise CalciteAFMError(f"scale_nm must be a positive number, got {scale_nm!r}")
        if not np.isfinite(center_nm):
            raise CalciteAFMError(f"center_nm must be finite, got {center_nm!r}")
        if transform not in INPUT_TRANSFORMS:
            raise CalciteAFMError(
                f"transform must be one of {', '.join(INPUT_TRANSFORMS)}, got {transform!r}"
            )
        self.net = net
        if level is None:
            level = LevelSettings(**MODEL_LEVEL_DEFAULTS)
        elif isinstance(level, dict):
            level = LevelSettings.from_dict(level)
        self.level_settings: LevelSettings = level
        self.center_nm = float(center_nm)
        self.scale_nm = float(scale_nm)
        self.transform = str(transform)
        self.history: list[dict] = list(history or [])
        self.train_config: dict = dict(train_config or {})
        self.info: dict = dict(info or {})
        self.package_version = _package_version()
        self.source: str | None = None  # file it was loaded from
        self._fused_cache: tuple[Any, nn.Module] | None = None

    # -- architecture -------------------------------------------------------------
    @property
    def n_classes(self) -> int:
        """Number of classes (labels 1..n_classes)."""
        return self.net.n_classes

    @property
    def width(self) -> int:
        """Filters per convolution."""
        return self.net.width

    @property
    def dilations(self) -> tuple[int, ...]:
        """Dilations of the 3x3 convolutions."""
        return self.net.dilations

    @property
    def receptive_field(self) -> int:
        """Receptive field of the network, in pixels."""
        return self.net.receptive_field

    @property
    def halo(self) -> int:
        """Receptive-field radius in pixels: the tile overlap that makes tiling exact."""
        return self.net.halo

    @property
    def class_names(self) -> dict[int, str]:
        """Label value to class name."""
        return class_names(self.n_classes)

    @property
    def class_colors(self) -> dict[int, tuple[float, float, float, float]]:
        """Label value to RGBA colour (0..1), as in :mod:`~napari_calcite_afm.colormap`."""
        return {k: LABEL_COLORS[k] for k in range(1, self.n_classes + 1)}

    @property
    def n_parameters(self) -> int:
        """Number of trainable parameters of the network."""
        return sum(p.numel() for p in self.net.parameters())

    def __repr__(self) -> str:
        return (
            f"SegmentationModel(n_classes={self.n_classes}, width={self.width}, "
            f"dilations={self.dilations}, center_nm={self.center_nm:.4g}, "
            f"scale_nm={self.scale_nm:.4g}, transform={self.transform!r}, "
            f"source={self.source!r})"
        )

    # -- input normalisation --------------------------------------------------------
    def level(self, frame: np.ndarray) -> np.ndarray:
        """Level one raw frame with the model's settings.

        Parameters
        ----------
        frame : numpy.ndarray
            2D raw heights in nm (NaN = not recorded).

        Returns
        -------
        numpy.ndarray
            float32 levelled heights in nm, NaN kept.
        """
        return np.asarray(level_frame(frame, self.level_settings), dtype=np.float32)

    def normalise(self, levelled: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Scale levelled heights to the network's input and fill NaN pixels.

        Parameters
        ----------
        levelled : numpy.ndarray
            2D levelled heights in nm.

        Returns
        -------
        x : numpy.ndarray
            float32 ``(levelled - center_nm) / scale_nm`` with NaN pixels filled with the
            nearest recorded value.
        nan_mask : numpy.ndarray or None
            Pixels that were NaN, or None when there were none.
        """
        filled, nan_mask = fill_nan_nearest(levelled)
        x = (filled - np.float32(self.center_nm)) / np.float32(self.scale_nm)
        if self.transform == "asinh":
            x = np.arcsinh(x)
        return x.astype(np.float32, copy=False), nan_mask

    def prepare(
        self, frame: np.ndarray, *, levelled: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Raw frame (nm) to network input: level, scale, fill NaN.

        Parameters
        ----------
        frame : numpy.ndarray
            2D heights in nm.
        levelled : bool
            True when ``frame`` was already levelled with :attr:`level_settings` (the
            levelling step is then skipped).

        Returns
        -------
        x, nan_mask
            See :meth:`normalise`.
        """
        frame = np.asarray(frame)
        if frame.ndim != 2:
            raise CalciteAFMError(f"expected a 2D frame (rows, cols), got shape {frame.shape}")
        z = np.asarray(frame, dtype=np.float32) if levelled else self.level(frame)
        return self.normalise(z)

    # -- devices / inference ----------------------------------------------------------
    def inference_module(self, device: torch.device | str | None = None) -> nn.Module:
        """The network for inference on ``device`` (batch norms folded, channels-last).

        Cached, and rebuilt automatically after the network's weights change.

        Parameters
        ----------
        device : torch.device, str or None
            None: ``"auto"`` (GPU if present).

        Returns
        -------
        torch.nn.Module
            In eval mode, without gradients.
        """
        dev = resolve_device(device)
        tensors = [*self.net.parameters(), *self.net.buffers()]
        key = (str(dev), tuple(t._version for t in tensors), tuple(id(t) for t in tensors))
        if self._fused_cache is not None and self._fused_cache[0] == key:
            return self._fused_cache[1]
        was_training = self.net.training
        self.net.eval()
        module = self.net.fused()
        self.net.train(was_training)
        module = module.to(dev)
        if dev.type == "cpu":
            module = module.to(memory_format=torch.channels_last)
        self._fused_cache = (key, module)
        return module

    # -- persistence -----------------------------------------------------------------
    def architecture(self) -> dict:
        """The network's class name and arguments (JSON-serialisable)."""
        arch = {
            "name": type(self.net).__name__,
            "n_classes": self.n_classes,
            "width": self.width,
            "dilations": list(self.dilations),
            "receptive_field_px": self.receptive_field,
        }
        if isinstance(self.net, UNet):
            arch["levels"] = self.net.levels
            arch["multiscale"] = self.net.multiscale
            arch["decoder"] = self.net.decoder_kind
        return arch

    def format_version(self) -> int:
        """The lowest model-file version that can read this model (1 or 2)."""
        return 2 if getattr(self.net, "decoder_kind", "concat") != "concat" else 1

    def metadata(self) -> dict:
        """JSON-serialisable description of the model (everything except the weights)."""
        return {
            "format": MODEL_FORMAT,
            "format_version": self.format_version(),
            "package_version": self.package_version,
            "architecture": self.architecture(),
            "class_names": {str(k): v for k, v in self.class_names.items()},
            "class_colors": {str(k): list(v) for k, v in self.class_colors.items()},
            "label_mapping": "network output k is label k + 1; label 0 = unlabelled / NaN",
            "level": self.level_settings.to_dict(),
            "normalisation": {
                "center_nm": self.center_nm,
                "scale_nm": self.scale_nm,
                "transform": self.transform,
            },
            "history": self.history,
            "train_config": self.train_config,
            "info": self.info,
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model to a ``.pt`` file, atomically.

        The file is first written next to ``path`` under a temporary name and then
        renamed over it, so a crash never leaves a half-written model.

        Parameters
        ----------
        path : str or os.PathLike
            Destination file (its folder is created if needed).

        Returns
        -------
        pathlib.Path
            The path written.
        """
        path = Path(path)
        try:
            meta = json.dumps(self.metadata(), allow_nan=True, default=_json_default)
        except (TypeError, ValueError) as exc:
            raise CalciteAFMError(f"model metadata is not JSON-serialisable: {exc}") from None
        state = {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()}
        payload = {
            "format": MODEL_FORMAT,
            "format_version": self.format_version(),
            "metadata": meta,
            "state_dict": state,
        }
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        except OSError as exc:
            raise AFMFileError(path, f"cannot write the model: {exc}") from None
        try:
            with os.fdopen(fd, "wb") as fh:
                torch.save(payload, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files
            os.replace(tmp, path)
        except BaseException as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            if isinstance(exc, OSError):
                raise AFMFileError(path, f"cannot write the model: {exc}") from None
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, *, device: str | None = None) -> SegmentationModel:
        """Read a model written by :meth:`save` (see :func:`load_model`)."""
        return load_model(path, device=device)

    def copy(self) -> SegmentationModel:
        """A deep copy (independent weights)."""
        other = SegmentationModel(
            copy.deepcopy(self.net),
            level=self.level_settings.to_dict(),
            center_nm=self.center_nm,
            scale_nm=self.scale_nm,
            transform=self.transform,
            history=copy.deepcopy(self.history),
            train_config=copy.deepcopy(self.train_config),
            info=copy.deepcopy(self.info),
        )
        other.source = self.source
        return other


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (tuple, set)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _umask() -> int:
    """The process umask, read without changing it (os.umask is not thread-safe)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def _package_version() -> str:
    from . import __version__

    return str(__version__)


def load_model(path: str | os.PathLike, *, device: str | None = None) -> SegmentationModel:
    """Read a segmentation model file.

    Always uses ``torch.load(..., weights_only=True)``: no pickled code is run.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.pt`` file written by :meth:`SegmentationModel.save`.
    device : str or None
        Where to put the network (None: the CPU; ``"auto"``: GPU if present).

    Returns
    -------
    SegmentationModel
        In eval mode.

    Raises
    ------
    napari_calcite_afm.io.AFMFileError
        The file is missing, unreadable, truncated, not a PyTorch file, a PyTorch file
        that is not a napari-calcite-afm model, from a newer format version, or its
        weights do not match its architecture.
    """
    path = Path(path)
    if not path.is_file():
        raise AFMFileError(path, "model file not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad files
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AFMFileError(
            path, f"not a readable segmentation model (corrupt, truncated or foreign file: {msg})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise AFMFileError(path, "a PyTorch file, but not a napari-calcite-afm segmentation model")
    version = payload.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise AFMFileError(path, f"invalid model format version {version!r}")
    if version > MODEL_FORMAT_VERSION:
        raise AFMFileError(
            path,
            f"model format version {version} is newer than this napari-calcite-afm "
            f"supports ({MODEL_FORMAT_VERSION}); update the package",
        )
    try:
        meta = json.loads(payload["metadata"])
        arch = meta["architecture"]
        name = str(arch.get("name", "DilatedNet"))
        if name not in ARCHITECTURES:
            raise AFMFileError(
                path, f"unknown network architecture {name!r} (a newer napari-calcite-afm?)"
            )
        net = build_network(
            name,
            n_classes=int(arch["n_classes"]),
            width=int(arch["width"]),
            dilations=tuple(int(d) for d in arch["dilations"]),
            levels=int(arch.get("levels", 3)),
            multiscale=bool(arch.get("multiscale", False)),
            decoder=str(arch.get("decoder", "concat")),
        )
        norm = meta["normalisation"]
        state = payload["state_dict"]
        if not isinstance(state, dict):
            raise TypeError("state_dict is not a dictionary")
        net.load_state_dict(state, strict=True)
        model = SegmentationModel(
            net,
            level=meta.get("level"),
            center_nm=float(norm["center_nm"]),
            scale_nm=float(norm["scale_nm"]),
            transform=str(norm.get("transform", "linear")),
            history=meta.get("history") or [],
            train_config=meta.get("train_config") or {},
            info=meta.get("info") or {},
        )
    except AFMFileError:
        raise
    except Exception as exc:
        raise AFMFileError(path, f"damaged model metadata or weights: {exc}") from None
    model.package_version = str(meta.get("package_version", "unknown"))
    model.source = str(path)
    net.eval()
    if device is not None:
        net.to(resolve_device(device))
    return model


def default_model_path(n_classes: int = 2) -> Path:
    """Path of the shipped default model.

    Parameters
    ----------
    n_classes : int
        2 (``models/default.pt``) or 3 (``models/default3.pt``).

    Returns
    -------
    pathlib.Path
    """
    _check_n_classes(n_classes)
    ref = resources.files("napari_calcite_afm") / "models" / DEFAULT_MODEL_FILES[n_classes]
    return Path(str(ref))


def load_default_model(n_classes: int = 2, *, device: str | None = None) -> SegmentationModel:
    """Load the model shipped with the package.

    It was trained on synthetic calcite frames by ``scripts/train_default_model.py``
    (see its docstring for the data, seeds and accuracy).

    Parameters
    ----------
    n_classes : int
        2 (multilayer pit / terrace) or 3 (also monolayer pits).
    device : str or None
        See :func:`load_model`.

    Returns
    -------
    SegmentationModel
    """
    path = default_model_path(n_classes)
    if not path.is_file():
        raise AFMFileError(path, f"no shipped {n_classes}-class default model in this install")
    return load_model(path, device=device)
