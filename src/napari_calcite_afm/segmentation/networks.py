"""The segmentation networks: the study's dilated CNN and a small U-Net.

The study's network (Siena et al. 2021; the Matlab example "Semantic Segmentation Using
Dilated Convolutions" whose 13 layers the poster's match) is::

    image input (normalisation)
    conv 3x3 dilation 1, batch norm, ReLU
    conv 3x3 dilation 2, batch norm, ReLU
    conv 3x3 dilation 4, batch norm, ReLU
    conv 1x1 to the class scores, softmax, pixel classification (cross-entropy)

with 'same' padding (padding = dilation), so the output has the size of the input for
any input size. :class:`DilatedNet` is the torch module (it returns the class *scores*;
the softmax is applied by :mod:`~napari_calcite_afm.segmentation.inference`, the
cross-entropy by :mod:`~napari_calcite_afm.segmentation.training`). Width and dilations
are arguments: ``DilatedNet()`` is the study's design (32 filters, dilations
``(1, 2, 4)``, receptive field 15 pixels).

Its receptive field is small next to a multilayer pit, and the science notes offer "a
coarser input scale" beside the study's design. :class:`UNet` takes that option: a small
encoder-decoder (three 2x downsamplings, skip connections) whose bottleneck is a stack of
dilated convolutions, 130 pixels of context with sharp boundaries. By default its
first layer is :class:`~.features.MultiscaleFeatures`. It is the training default
(:class:`~napari_calcite_afm.segmentation.config.TrainConfig`) and the shipped models'
network (``docs/segmentation.md`` gives the benchmark).

Networks take ``(batch, 1, rows, cols)`` normalised heights (see
:class:`~.model.SegmentationModel`) and return ``(batch, n_classes, rows, cols)``
scores; output channel ``k`` is label ``k + 1``. :func:`build_network` builds one by
the name stored in model files; ``fused()`` gives an inference copy with the batch
norms folded into the convolutions.

Examples
--------
>>> net = build_network("dilated", n_classes=2, width=8)
>>> net.receptive_field, net(torch.zeros(1, 1, 20, 30)).shape
(15, torch.Size([1, 2, 20, 30]))
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..errors import CalciteAFMError
from .features import MultiscaleFeatures

__all__ = [
    "ARCHITECTURES",
    "DEFAULT_DILATIONS",
    "UNET_DECODERS",
    "DilatedNet",
    "UNet",
    "build_network",
    "resolve_device",
]

#: The study's dilations (receptive field 15 pixels).
DEFAULT_DILATIONS: tuple[int, ...] = (1, 2, 4)


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

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    >>> resolve_device("auto").type in ("cpu", "cuda")
    True
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

    Examples
    --------
    >>> net = DilatedNet(n_classes=3, width=8, dilations=(1, 2, 4, 8))
    >>> net.receptive_field, net.halo
    (31, 15)
    >>> net.eval()(torch.zeros(1, 1, 25, 40)).shape
    torch.Size([1, 3, 25, 40])
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

    Examples
    --------
    >>> net = build_network("unet", n_classes=3, width=4, levels=2, decoder="add")
    >>> type(net).__name__, net.n_classes, net(torch.zeros(1, 1, 30, 41)).shape
    ('UNet', 3, torch.Size([1, 3, 30, 41]))
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
