"""Train the segmentation network on labelled AFM frames.

:func:`train_model` is a plain function (no Qt): give it raw height frames in nm and
label arrays (0 unlabelled, 1 multilayer pit, 2 terrace, 3 monolayer pit; dense ground
truth or sparse scribbles), get back a :class:`~napari_calcite_afm.model.SegmentationModel`.

What it does

* levels every frame with the configuration's :class:`~napari_calcite_afm.level.LevelSettings`
  (exactly as :mod:`~napari_calcite_afm.predict` will) and measures the input
  normalisation once over the training frames: ``center_nm`` = median levelled height,
  ``scale_nm`` = half the 1-99 % spread of the levelled heights (both in nm, stored in
  the model);
* splits the frames into training and validation sets (by frame, ``val_fraction``), or
  uses the validation pairs given;
* draws random square patches around labelled pixels (so every patch carries labels,
  also with sparse scribbles), with random flips and 90 degree rotations;
* minimises the pixel cross-entropy over the labelled pixels only (label 0 is ignored),
  weighted by median-frequency class balancing when ``class_weighting`` is on;
* evaluates pixel accuracy and mean class accuracy (mean per-class recall, Matlab's
  "mean accuracy") on the validation frames every ``eval_every`` iterations, keeps the
  best model (by validation pixel accuracy) and writes it atomically to
  ``checkpoint_path`` whenever it improves;
* honours ``stop`` at every iteration and reports through ``progress``.

The default optimiser is AdamW with a one-cycle learning-rate schedule; the study's
reference, SGD with momentum 0.9, learning rate 1e-3 and L2 1e-4, is
``TrainConfig.study_reference()`` (with patches instead of batches of 64 whole images).
``benchmarks/segmentation.py`` compares the two, and the study's 15-pixel network with
the default 63-pixel one (results in ``benchmarks/results/segmentation.md``).

Reproducibility: the same configuration, data and seed give the same history on the CPU
(same torch version and thread count).
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from ._util import available_cpus, settings_from_dict, thread_map
from ._util import stop_requested as _stopped
from .errors import TrainError
from .level import LevelSettings, level_frame
from .model import (
    MODEL_LEVEL_DEFAULTS,
    UNET_DECODERS,
    SegmentationModel,
    build_network,
    resolve_device,
)
from .predict import confusion_matrix, mean_class_accuracy, pixel_accuracy

__all__ = [
    "GPU_BUDGET",
    "PRECISIONS",
    "RECOMMENDED_DILATIONS",
    "TrainConfig",
    "TrainError",
    "TrainResult",
    "class_weights",
    "native_bfloat16",
    "prepare_labels",
    "step_dtype",
    "train_model",
]

ProgressFn = Callable[[dict], None]
StopFlag = Callable[[], bool] | threading.Event


#: Dilations of the dilated CNN when none are given (63 px); the study's are (1, 2, 4).
RECOMMENDED_DILATIONS: tuple[int, ...] = (1, 2, 4, 8, 16)

#: Training budget for a GPU: 16 times the patches of the CPU default of the time (800 x
#: 8). On an H200 it trained the U-Net with the classic decoder in 199 s to pit IoU 0.895
#: on the benchmark's test frames, against 0.847 for 800 x 8
#: (``benchmarks/results/training_budget.md``); not yet measured with the additive
#: decoder, the default since. ``calcite-afm train`` uses it when it trains on a GPU and
#: neither ``--iterations`` nor ``--batch-size`` is given.
GPU_BUDGET: dict[str, int] = {"iterations": 3200, "batch_size": 32}


_OPTIMIZERS = ("adamw", "sgd")
_ARCHITECTURES = ("unet", "dilated")
_SCHEDULES = ("onecycle", "cosine", "constant")
#: ``TrainConfig.precision`` values.
PRECISIONS = ("auto", "float32", "bfloat16")


def native_bfloat16() -> bool:
    """Whether this CPU has bfloat16 instructions (AVX512-BF16 or AMX tiles).

    Without them torch emulates bfloat16 on a CPU, slower than float32.

    Returns
    -------
    bool
    """
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    for name in checks:
        check = getattr(torch.cpu, name, None)
        try:
            if check is not None and check():
                return True
        except Exception:  # a private torch API: absent or failing means "no"
            continue
    return False


def step_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The autocast dtype of a training step's forward pass (see ``TrainConfig.precision``).

    Parameters
    ----------
    precision : {"auto", "float32", "bfloat16"}
    device : torch.device

    Returns
    -------
    torch.dtype
        ``torch.bfloat16`` or ``torch.float32``.

    Examples
    --------
    >>> step_dtype("float32", torch.device("cpu"))
    torch.float32
    >>> step_dtype("auto", torch.device("cuda"))  # GPUs: float32 unless asked
    torch.float32
    >>> step_dtype("auto", torch.device("cpu")) in (torch.float32, torch.bfloat16)
    True
    """
    if precision == "bfloat16":
        return torch.bfloat16
    if precision == "auto" and device.type == "cpu" and native_bfloat16():
        return torch.bfloat16
    return torch.float32


@dataclass
class TrainConfig:
    """Settings of :func:`train_model` (JSON-serialisable via :meth:`to_dict`).

    Parameters
    ----------
    iterations : int
        Optimiser steps.
    batch_size : int
        Patches per step.
    patch_size : int
        Side of the square training patches, pixels (frames smaller than this are
        padded with unlabelled pixels). With ``context_margin`` it must exceed twice the
        receptive-field radius (31 px for the dilated CNN with dilations up to 16).
    lr : float
        Peak learning rate.
    weight_decay : float
        Weight decay (L2 for SGD, decoupled for AdamW).
    optimizer : {"adamw", "sgd"}
        AdamW, or SGD with momentum 0.9 (the study's).
    schedule : {"onecycle", "cosine", "constant"}
        Learning-rate schedule over ``iterations``.
    n_classes : int
        2 (multilayer pit / terrace; label 3 is merged into 2) or 3.
    architecture : {"unet", "dilated"}
        ``"unet"`` (default): :class:`~napari_calcite_afm.model.UNet`, a small U-Net
        with a dilated bottleneck, which sees the whole of a pit's terraced wall (about
        130 px; 230 px with ``multiscale``) and keeps boundaries sharp
        (docs/segmentation.md compares the two).
        ``"dilated"``: the study's :class:`~napari_calcite_afm.model.DilatedNet`.
    width : int or None
        Filters per convolution of the dilated network (the study's Matlab reference:
        32), or of the U-Net's first stage. None: 8 for the U-Net, 16 for the dilated
        network.
    dilations : tuple of int or None
        Dilations of the 3x3 convolutions: of every layer of the dilated network
        (``(1, 2, 4)`` is the study's, receptive field 15 px; None gives
        ``(1, 2, 4, 8, 16)``, 63 px), or of the U-Net's bottleneck (None: ``(1, 2)``).
    levels : int
        Downsamplings of the U-Net (ignored by the dilated network).
    decoder : {"add", "concat"} or None
        How the U-Net's decoder joins its skip connections
        (:class:`~napari_calcite_afm.model.UNet`). None (default): ``"add"`` (a 1x1
        projection, nearest upsampling, addition, one conv block per stage), whose
        steps are about 1.8 times cheaper than the classic ``"concat"`` on a CPU, so
        the same minutes train more steps (docs/segmentation.md). Ignored by the
        dilated network.
    multiscale : bool or None
        U-Net only: fixed multiscale input features (smoothed heights, roughness, slope
        and curvature at 1-16 px, :class:`~napari_calcite_afm.model.MultiscaleFeatures`)
        as the network's first layer. None (default): on for the U-Net, off for the
        dilated network. Computed once per training frame and kept in memory as float16:
        15 x 2 bytes per pixel, 7.9 MB per 512 x 512 frame (1.9 GB for 240 frames).
    seed : int
        Seed of the weights, the split and the patch sampling. On the CPU the same seed
        gives the same model bit for bit; on a GPU, atomic additions in the backward
        pass (bilinear upsampling, cuDNN) make runs differ in the last bits, so the
        histories agree closely but not exactly.
    val_fraction : float
        Fraction of the labelled frames held out for validation when no validation
        pairs are given (at least one frame when there are two or more frames), at most
        as many as ``max_val_pixels`` holds: the others train. With a single labelled
        frame, validation uses the training frame itself.
    level : dict or None
        :class:`~napari_calcite_afm.level.LevelSettings` as a dict. None:
        :data:`~napari_calcite_afm.model.MODEL_LEVEL_DEFAULTS`, the package defaults
        without the final zero mean, so that terraces sit at 0 nm whatever the pit area.
    input_transform : {"asinh", "linear"}
        Input normalisation, fixed in nm and measured over the training frames:
        ``asinh((z - center_nm) / scale_nm)`` with ``scale_nm`` the MAD-based spread
        (linear over monolayer steps, logarithmic over deep pits), or the linear
        ``(z - center_nm) / scale_nm`` with ``scale_nm`` half the 1-99 % spread.
    class_weighting : bool or None
        Weight the loss by median-frequency class balancing (weight of class c =
        median class frequency / frequency of c, capped at 20), as the study did. None
        (default): on for three classes, off for two. With two classes the U-Net's pixel
        accuracy and pit IoU are higher without it (weights push ambiguous pit rims into
        the pit class) and its mean class accuracy is no lower; with three, the rare
        monolayer-pit class is hardly learnt without it. :meth:`study_reference` turns
        it on.
    augment : bool
        Random flips and 90 degree rotations of the patches.
    balance_patches : bool
        Centre the patches on pixels of each class in turn (a class drawn uniformly among
        those a frame holds), instead of on labelled pixels drawn uniformly: the rarer
        multilayer pits are seen more often, without weighting the loss. Off by default
        (docs/segmentation.md gives what it did on development frames).
    context_margin : bool
        Compute the loss only on patch pixels whose whole receptive field lies inside
        the patch (or inside the frame, at frame edges), as at whole-frame inference.
        Costs compute (the margin is the receptive-field radius, e.g. 31 px for dilations
        up to 16) but trains what inference uses. Off by default: the U-Net's field
        (130-230 px) would leave little of a patch, and it learns well from the whole
        patch; :meth:`study_reference` turns it on.
    eval_every : int
        Iterations between validations (and progress reports with accuracies).
    max_val_pixels : int
        Cap on the validation pixels per evaluation (a fixed subset of given validation
        frames is used above it; frames split off the training set beyond it train).
    device : str
        ``"auto"`` (GPU if present), ``"cpu"``, ``"cuda"``...
    precision : {"auto", "float32", "bfloat16"}
        Arithmetic of the training steps' forward pass (bfloat16 through
        ``torch.autocast``; the loss, the weights and the optimiser stay float32).
        ``"auto"`` (default): bfloat16 on a CPU with native bfloat16 instructions
        (AVX512-BF16 or AMX), where a step is about 1.4 times faster, float32
        elsewhere (other CPUs would emulate bfloat16, slower; GPUs are untested).
        Validation and inference always run in float32.
    checkpoint_path : str or None
        Where to write the best model so far (atomically) during training.
    checkpoint_every : int or None
        Minimum iterations between checkpoint writes (None: every improvement).
    threads : int or None
        CPU threads for torch during training (None: all cores available to the
        process). Restored afterwards.
    keep : {"auto", "best", "last"}
        Which weights training returns: ``"best"``, those of the highest validation
        pixel accuracy; ``"last"``, those at the end of the schedule; ``"auto"``
        (default), ``"last"`` when the schedule anneals the learning rate to zero
        (``"onecycle"``, ``"cosine"``) and ``"best"`` with a constant rate. A validation
        of a few frames is noisy (one pit-dominated frame swings it by points), and the
        best of eight such values was often an early, worse model; the annealed end is
        steadier. A stopped run always returns the best so far, and the checkpoint file
        always holds the best so far while training runs.
    """

    iterations: int = 1500
    batch_size: int = 8
    patch_size: int = 160
    lr: float = 3e-3
    weight_decay: float = 1e-4
    optimizer: str = "adamw"
    schedule: str = "onecycle"
    n_classes: int = 2
    architecture: str = "unet"
    width: int | None = None
    dilations: tuple[int, ...] | None = None
    levels: int = 3
    decoder: str | None = None
    multiscale: bool | None = None
    seed: int = 0
    val_fraction: float = 0.15
    level: dict | None = None
    input_transform: str = "asinh"
    class_weighting: bool | None = None
    augment: bool = True
    balance_patches: bool = False
    context_margin: bool = False
    eval_every: int = 100
    max_val_pixels: int = 1_500_000
    device: str = "auto"
    precision: str = "auto"
    checkpoint_path: str | None = None
    checkpoint_every: int | None = None
    threads: int | None = None
    keep: str = "auto"

    def __post_init__(self) -> None:
        def positive_int(name: str) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise TrainError(f"TrainConfig.{name} must be a positive integer, got {v!r}")
            setattr(self, name, int(v))

        if self.architecture not in _ARCHITECTURES:
            raise TrainError(
                f"TrainConfig.architecture must be one of {', '.join(_ARCHITECTURES)}, "
                f"got {self.architecture!r}"
            )
        if self.class_weighting is None:
            self.class_weighting = self.n_classes == 3
        self.class_weighting = bool(self.class_weighting)
        unet = self.architecture == "unet"
        if self.width is None:
            self.width = 8 if unet else 16
        if self.dilations is None:
            self.dilations = (1, 2) if unet else RECOMMENDED_DILATIONS
        if self.multiscale is None:
            self.multiscale = unet
        self.multiscale = bool(self.multiscale)
        if self.multiscale and not unet:
            raise TrainError("TrainConfig.multiscale is available for the U-Net only")
        if self.decoder is None:
            self.decoder = "add"
        if self.decoder not in UNET_DECODERS:
            raise TrainError(
                f"TrainConfig.decoder must be one of {', '.join(UNET_DECODERS)}, "
                f"got {self.decoder!r}"
            )
        if self.precision not in PRECISIONS:
            raise TrainError(
                f"TrainConfig.precision must be one of {', '.join(PRECISIONS)}, "
                f"got {self.precision!r}"
            )
        for name in ("iterations", "batch_size", "patch_size", "width", "eval_every", "levels"):
            positive_int(name)
        if not 1 <= self.levels <= 5:
            raise TrainError(f"TrainConfig.levels must be 1 to 5, got {self.levels!r}")
        positive_int("max_val_pixels")
        if self.n_classes not in (2, 3):
            raise TrainError(f"TrainConfig.n_classes must be 2 or 3, got {self.n_classes!r}")
        try:
            self.dilations = tuple(int(d) for d in self.dilations)
        except (TypeError, ValueError):
            raise TrainError(
                f"TrainConfig.dilations must be integers, got {self.dilations!r}"
            ) from None
        if not self.dilations or min(self.dilations) < 1:
            raise TrainError(f"TrainConfig.dilations must be >= 1, got {self.dilations!r}")
        if not (np.isfinite(self.lr) and self.lr > 0):
            raise TrainError(f"TrainConfig.lr must be > 0, got {self.lr!r}")
        if not (np.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise TrainError(f"TrainConfig.weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.optimizer not in _OPTIMIZERS:
            raise TrainError(f"TrainConfig.optimizer must be one of {_OPTIMIZERS}")
        if self.input_transform not in ("asinh", "linear"):
            raise TrainError("TrainConfig.input_transform must be 'asinh' or 'linear'")
        if self.schedule not in _SCHEDULES:
            raise TrainError(f"TrainConfig.schedule must be one of {_SCHEDULES}")
        if not (0.0 <= float(self.val_fraction) < 1.0):
            raise TrainError(f"TrainConfig.val_fraction must be in [0, 1), got {self.val_fraction}")
        self.val_fraction = float(self.val_fraction)
        if self.level is not None:
            if isinstance(self.level, LevelSettings):
                self.level = self.level.to_dict()
            LevelSettings.from_dict(dict(self.level))  # validate
            self.level = dict(self.level)
        if self.checkpoint_path is not None:
            self.checkpoint_path = str(self.checkpoint_path)
        if self.checkpoint_every is not None:
            positive_int("checkpoint_every")
        if self.threads is not None:
            positive_int("threads")
        if self.keep not in ("auto", "best", "last"):
            raise TrainError(
                f"TrainConfig.keep must be 'auto', 'best' or 'last', got {self.keep!r}"
            )
        self.seed = int(self.seed)

    def keep_final(self) -> bool:
        """Whether a completed run returns its final weights (see ``keep``)."""
        if self.keep == "auto":
            return self.schedule in ("onecycle", "cosine")
        return self.keep == "last"

    def to_dict(self) -> dict:
        """Plain ``dict`` of the settings (JSON-serialisable)."""
        d = asdict(self)
        d["dilations"] = list(self.dilations)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Settings from a ``dict``; missing keys take their defaults.

        Raises
        ------
        TrainError
            Unknown key or invalid value.
        """
        return settings_from_dict(cls, d, TrainError, "training")

    @classmethod
    def study_reference(cls, **overrides) -> TrainConfig:
        """The study's design: its dilated network (32 filters, dilations 1, 2, 4) and
        its optimiser (SGD, momentum 0.9, lr 1e-3, L2 1e-4, constant rate).

        (The study's batches were 64 whole images; here ``batch_size`` patches of
        ``patch_size`` pixels, with the loss on the pixels whose receptive field lies
        inside the patch.)
        """
        base = {
            "architecture": "dilated",
            "width": 32,
            "dilations": (1, 2, 4),
            "patch_size": 128,
            "context_margin": True,
            "class_weighting": True,
            "optimizer": "sgd",
            "lr": 1e-3,
            "weight_decay": 1e-4,
            "schedule": "constant",
        }
        base.update(overrides)
        return cls(**base)


@dataclass
class TrainResult:
    """What :func:`train_model` returns.

    Attributes
    ----------
    model : SegmentationModel
        The trained model, in eval mode: the final weights or those of the highest
        validation pixel accuracy (``TrainConfig.keep``).
    history : list of dict
        One entry per evaluation: ``iteration``, ``loss`` (mean training loss since the
        previous entry), ``val_accuracy``, ``val_mean_accuracy``, ``lr``, ``elapsed_s``
        (plus what ``monitor`` returned).
    best_val_accuracy : float
        Validation pixel accuracy of ``model`` (the name is kept for compatibility).
    best_val_mean_accuracy : float
        Validation mean class accuracy (mean per-class recall) of ``model``.
    best_iteration : int
        Iteration at which ``model`` was taken.
    stopped : bool
        True when ``stop`` ended training early.
    elapsed_s : float
        Wall time of the training, s (without ``monitor`` calls).
    config : TrainConfig
        The configuration used.
    """

    model: SegmentationModel
    history: list[dict]
    best_val_accuracy: float
    best_iteration: int
    stopped: bool
    elapsed_s: float
    config: TrainConfig = field(default_factory=TrainConfig)
    best_val_mean_accuracy: float = float("nan")


# -- data --------------------------------------------------------------------------------


def prepare_labels(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Check a label array and map it to ``n_classes`` (3 -> 2 for two classes).

    Parameters
    ----------
    labels : numpy.ndarray
        Integer labels 0..3 (0 = unlabelled).
    n_classes : int
        2 or 3.

    Returns
    -------
    numpy.ndarray
        uint8 labels in 0..n_classes.

    Examples
    --------
    >>> prepare_labels(np.array([0, 1, 2, 3]), 2)  # monolayer pits count as terrace
    array([0, 1, 2, 2], dtype=uint8)
    >>> prepare_labels(np.array([0, 1, 2, 3]), 3)
    array([0, 1, 2, 3], dtype=uint8)
    """
    lab = np.asarray(labels)
    if lab.dtype.kind == "f":
        if not np.all(np.isfinite(lab)) or np.any(lab != np.round(lab)):
            raise TrainError("labels must be whole numbers 0..3")
    elif lab.dtype.kind not in "iub":
        raise TrainError(f"labels must be integers, got dtype {lab.dtype}")
    if lab.size and (lab.min() < 0 or lab.max() > 3):
        raise TrainError(
            f"labels must be 0 (unlabelled) or 1..3, found values {lab.min()}..{lab.max()}"
        )
    lab = lab.astype(np.uint8)
    if n_classes == 2:
        lab = np.where(lab == 3, np.uint8(2), lab)
    return lab


def _as_frames(images: Sequence[np.ndarray] | np.ndarray, labels, what: str):
    """Flatten lists of 2D / 3D arrays into matching lists of 2D frames."""
    if isinstance(images, np.ndarray):
        images = [images]
    if isinstance(labels, np.ndarray):
        labels = [labels]
    images = list(images)
    labels = list(labels)
    if len(images) != len(labels):
        raise TrainError(f"{what}: {len(images)} image array(s) but {len(labels)} label array(s)")
    out_i, out_l = [], []
    for k, (im, lb) in enumerate(zip(images, labels)):
        im = np.asarray(im)
        lb = np.asarray(lb)
        if im.shape != lb.shape:
            raise TrainError(
                f"{what} #{k}: image shape {im.shape} differs from labels shape {lb.shape}"
            )
        if im.ndim == 2:
            im, lb = im[None], lb[None]
        if im.ndim != 3:
            raise TrainError(f"{what} #{k}: expected 2D or 3D arrays, got shape {im.shape}")
        for f in range(im.shape[0]):
            out_i.append(im[f])
            out_l.append(lb[f])
    return out_i, out_l


def class_weights(labels: Sequence[np.ndarray], n_classes: int, cap: float = 20.0) -> np.ndarray:
    """Median-frequency class weights from label arrays.

    Parameters
    ----------
    labels : sequence of numpy.ndarray
        Labels 0..n_classes (0 ignored).
    n_classes : int
        Number of classes.
    cap : float
        Largest weight.

    Returns
    -------
    numpy.ndarray
        float32 ``(n_classes,)``: ``median(freq) / freq_c`` over the classes present,
        1 for absent classes.
    """
    counts = np.zeros(n_classes, dtype=np.float64)
    for lb in labels:
        counts += np.bincount(lb.ravel(), minlength=n_classes + 1)[1 : n_classes + 1]
    w = np.ones(n_classes, dtype=np.float64)
    present = counts > 0
    if present.any():
        freq = counts[present] / counts.sum()
        w[present] = np.median(freq) / freq
    return np.clip(w, 1.0 / cap, cap).astype(np.float32)


@dataclass
class _Frame:
    x: np.ndarray  # (rows, cols, channels) network input features, padded to >= patch size
    y: np.ndarray  # int64 targets: label - 1, -1 for unlabelled / NaN
    labelled: np.ndarray  # flat indices of labelled pixels (in the padded frame)
    by_class: list[np.ndarray] | None = None  # flat indices per class (balanced patches)


def _level_all(
    frames: list[np.ndarray], settings: LevelSettings, stop, workers: int = 1
) -> list[np.ndarray]:
    """Level frames (on ``workers`` threads), checking ``stop`` between frames."""

    def one(f: np.ndarray) -> np.ndarray:
        return np.asarray(level_frame(f, settings), dtype=np.float32)

    out: list[np.ndarray] = []
    levelled = thread_map(one, frames, workers)
    try:
        for z in levelled:
            if _stopped(stop):
                break
            out.append(z)
    finally:
        levelled.close()
    return out


def _normalisation(levelled: list[np.ndarray], transform: str) -> tuple[float, float]:
    """(center_nm, scale_nm) from the levelled training frames (subsampled).

    ``center_nm`` is the median height. ``scale_nm`` is half the 1-99 % spread for the
    linear transform, and the MAD-based standard deviation (mostly the terraces' spread)
    for ``asinh``, whose logarithmic tails take care of the deep pits.
    """
    rng = np.random.default_rng(12345)
    samples = []
    per = max(1000, 2_000_000 // max(1, len(levelled)))
    for z in levelled:
        v = z[np.isfinite(z)].ravel()
        if v.size > per:
            v = v[rng.choice(v.size, per, replace=False)]
        samples.append(v)
    v = np.concatenate(samples) if samples else np.zeros(0, np.float32)
    if v.size == 0:
        raise TrainError("the training frames hold no finite heights")
    center = float(np.median(v))
    if transform == "asinh":
        scale = 1.4826 * float(np.median(np.abs(v - center)))
    else:
        q1, q99 = np.percentile(v, [1.0, 99.0])
        scale = float(q99 - q1) / 2.0
    if not np.isfinite(scale) or scale <= 1e-6:
        scale = float(np.std(v)) or 1.0
    return center, scale


def _input_features(net: nn.Module, x: np.ndarray) -> np.ndarray:
    """``(rows, cols, channels)`` input of the network's trainable part for a frame.

    Networks with a fixed first layer (:meth:`UNet.features_of`) get it computed once
    on the whole frame, so patches near their edges see what whole-frame inference
    sees; many channels are stored as float16 to halve the memory. Channels come last,
    the memory layout of the training steps (``torch.channels_last``), so a batch of
    patches needs no transposition.
    """
    features_of = getattr(net, "features_of", None)
    if features_of is None:
        return x[:, :, None]
    f = features_of(torch.from_numpy(np.ascontiguousarray(x))[None, None])[0].numpy()
    dtype = np.float32 if f.shape[0] == 1 else np.float16
    return np.ascontiguousarray(np.moveaxis(f, 0, -1), dtype=dtype)


def _forward(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Class scores from :func:`_input_features` output (float32, on the net's device)."""
    return getattr(net, "forward_features", net)(x)


def _make_frame(
    model: SegmentationModel,
    net: nn.Module,
    z: np.ndarray,
    lab: np.ndarray,
    patch: int,
    balance: bool = False,
) -> _Frame:
    x, nan_mask = model.normalise(z)
    y = lab.astype(np.int64) - 1
    if nan_mask is not None:
        y[nan_mask] = -1
    rows, cols = x.shape
    x = _input_features(net, x)
    pr, pc = max(0, patch - rows), max(0, patch - cols)
    if pr or pc:
        x = np.pad(x, ((0, pr), (0, pc), (0, 0)), mode="constant")
        y = np.pad(y, ((0, pr), (0, pc)), mode="constant", constant_values=-1)
    by_class = None
    if balance:
        by_class = [np.flatnonzero(y == k).astype(np.int32) for k in range(int(y.max()) + 1)]
    return _Frame(x=x, y=y, labelled=np.flatnonzero(y >= 0), by_class=by_class)


def _sample_batch(
    frames: list[_Frame],
    weights: np.ndarray,
    rng: np.random.Generator,
    batch: int,
    patch: int,
    augment: bool,
    margin: int = 0,
    balance: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """A batch of patches, each holding labelled pixels in its loss region.

    Returns the features, ``(batch, patch, patch, channels)`` in the frames' dtype, and
    the int64 targets, ``(batch, patch, patch)``.

    Each patch is placed around a random labelled pixel; with ``balance`` (frames made
    with ``balance=True``), around a random pixel of a class drawn uniformly among the
    classes the frame holds.

    Targets closer than ``margin`` pixels to a patch edge that is not also a frame edge
    are set to -1 (ignored): their receptive field would reach past the patch into zero
    padding that whole-frame inference does not see.
    """
    # the features' own dtype (float16 for the multiscale layer): the strided copies of
    # flipped and rotated patches move half the bytes; torch converts the whole batch
    xs = np.empty((batch, patch, patch, frames[0].x.shape[-1]), dtype=frames[0].x.dtype)
    ys = np.empty((batch, patch, patch), dtype=np.int64)
    which = rng.choice(len(frames), size=batch, p=weights)
    inner = patch - 2 * margin
    for b, fi in enumerate(which):
        fr = frames[fi]
        rows, cols = fr.y.shape
        if balance and fr.by_class is not None:
            present = [idx for idx in fr.by_class if idx.size]
            idx = present[rng.integers(len(present))]
            flat = idx[rng.integers(idx.size)]
        else:
            flat = fr.labelled[rng.integers(fr.labelled.size)]
        r, c = divmod(int(flat), cols)
        r0 = int(np.clip(r - margin - rng.integers(inner), 0, rows - patch))
        c0 = int(np.clip(c - margin - rng.integers(inner), 0, cols - patch))
        xp = fr.x[r0 : r0 + patch, c0 : c0 + patch]
        yp = fr.y[r0 : r0 + patch, c0 : c0 + patch]
        if margin:
            yp = yp.copy()
            if r0 > 0:
                yp[:margin] = -1
            if r0 + patch < rows:
                yp[patch - margin :] = -1
            if c0 > 0:
                yp[:, :margin] = -1
            if c0 + patch < cols:
                yp[:, patch - margin :] = -1
        if augment:
            k = int(rng.integers(4))
            flip = bool(rng.integers(2))
            # the input features are isotropic: they commute with these transforms
            xp, yp = np.rot90(xp, k), np.rot90(yp, k)
            if flip:
                xp, yp = xp[:, ::-1], yp[:, ::-1]
        xs[b] = xp
        ys[b] = yp
    return xs, ys


def _split(n: int, fraction: float, rng: np.random.Generator) -> tuple[list[int], list[int]]:
    if n < 2 or fraction <= 0:
        return list(range(n)), []
    n_val = min(n - 1, max(1, round(fraction * n)))
    perm = rng.permutation(n)
    return sorted(perm[n_val:].tolist()), sorted(perm[:n_val].tolist())


def _evaluate(
    net: nn.Module, frames: list[_Frame], n_classes: int, device: torch.device
) -> tuple[float, float]:
    """Validation (pixel accuracy, mean class accuracy) over labelled pixels."""
    was = net.training
    net.eval()
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    cl = torch.channels_last if device.type == "cpu" else torch.contiguous_format
    with torch.inference_mode():
        for fr in frames:
            if fr.labelled.size == 0:
                continue
            x = torch.from_numpy(fr.x[None]).permute(0, 3, 1, 2).to(device, torch.float32)
            pred = _forward(net, x.to(memory_format=cl)).argmax(dim=1)[0].cpu().numpy() + 1
            cm += confusion_matrix(fr.y + 1, pred, n_classes)
    net.train(was)
    return pixel_accuracy(cm), mean_class_accuracy(cm)


def _cap_val(sizes: list[int], max_pixels: int, rng: np.random.Generator) -> list[int]:
    """Indices of the validation frames (of ``sizes`` pixels) kept under the pixel cap."""
    if sum(sizes) <= max_pixels:
        return list(range(len(sizes)))
    order = rng.permutation(len(sizes))
    out, n = [], 0
    for i in order:
        if out and n + sizes[i] > max_pixels:
            continue
        out.append(int(i))
        n += sizes[i]
    return out


def train_model(
    images: Sequence[np.ndarray] | np.ndarray,
    labels: Sequence[np.ndarray] | np.ndarray,
    config: TrainConfig | dict | None = None,
    *,
    val_images: Sequence[np.ndarray] | np.ndarray | None = None,
    val_labels: Sequence[np.ndarray] | np.ndarray | None = None,
    progress: ProgressFn | None = None,
    stop: StopFlag | None = None,
    monitor: Callable[[SegmentationModel], dict] | None = None,
) -> TrainResult:
    """Train a segmentation model.

    Parameters
    ----------
    images : array or sequence of arrays
        Raw heights in nm: 2D frames ``(rows, cols)`` and/or stacks
        ``(frames, rows, cols)`` of any sizes. They are levelled here with
        ``config.level`` exactly as at inference; NaN pixels are allowed.
    labels : array or sequence of arrays
        Matching label arrays (same shapes): 0 unlabelled (ignored), 1 multilayer pit,
        2 terrace, 3 monolayer pit (merged into 2 when ``n_classes`` is 2). Sparse
        scribbles work: only labelled pixels count in the loss and the accuracies.
    config : TrainConfig, dict or None
        Settings (None: ``TrainConfig()``).
    val_images, val_labels : optional
        Validation pairs, same forms as ``images`` / ``labels``. When given, no frame
        of ``images`` is held out.
    progress : callable or None
        Called every 10 iterations and after each evaluation with
        ``dict(iteration, n_iterations, loss, val_accuracy, val_mean_accuracy,
        best_val_accuracy, elapsed_s)`` (accuracies of the latest evaluation, None
        before the first).
    stop : callable or threading.Event or None
        Checked before every iteration; when set, training ends after a last
        evaluation and the best model so far is returned with ``stopped=True``.
    monitor : callable or None
        Called with the current model (eval mode) at each evaluation; the dict it
        returns is merged into the history entry. Its run time is not counted in
        ``elapsed_s`` (the benchmark uses it to follow test accuracy).

    Returns
    -------
    TrainResult

    Raises
    ------
    TrainError
        No labelled pixels, mismatched shapes, bad labels or bad settings.
    """
    t_start = time.perf_counter()
    if config is None:
        cfg = TrainConfig()
    elif isinstance(config, dict):
        cfg = TrainConfig.from_dict(config)
    elif isinstance(config, TrainConfig):
        cfg = copy.deepcopy(config)
    else:
        raise TrainError(f"config must be a TrainConfig or dict, got {type(config).__name__}")
    nc = cfg.n_classes

    tr_img, tr_lab = _as_frames(images, labels, "training pair")
    if (val_images is None) != (val_labels is None):
        raise TrainError("give both val_images and val_labels, or neither")
    va_img: list[np.ndarray] = []
    va_lab: list[np.ndarray] = []
    if val_images is not None:
        va_img, va_lab = _as_frames(val_images, val_labels, "validation pair")
    tr_lab = [prepare_labels(lb, nc) for lb in tr_lab]
    va_lab = [prepare_labels(lb, nc) for lb in va_lab]
    keep = [i for i, lb in enumerate(tr_lab) if (lb > 0).any()]
    if not keep:
        raise TrainError("the training labels hold no labelled pixel (all 0)")
    tr_img = [tr_img[i] for i in keep]
    tr_lab = [tr_lab[i] for i in keep]

    rng = np.random.default_rng(cfg.seed)
    if not va_img:
        tr_idx, va_idx = _split(len(tr_img), cfg.val_fraction, rng)
        # held-out frames beyond the validation cap would be neither validated on nor
        # trained on: they go back to training
        kept = _cap_val(
            [tr_img[i].size for i in va_idx],
            cfg.max_val_pixels,
            np.random.default_rng(cfg.seed + 1),
        )
        tr_idx = sorted(tr_idx + [i for k, i in enumerate(va_idx) if k not in kept])
        va_idx = [va_idx[k] for k in sorted(kept)]
        va_img = [tr_img[i] for i in va_idx]
        va_lab = [tr_lab[i] for i in va_idx]
        tr_img = [tr_img[i] for i in tr_idx]
        tr_lab = [tr_lab[i] for i in tr_idx]
    val_on_train = not va_img

    level = LevelSettings.from_dict(
        cfg.level if cfg.level is not None else dict(MODEL_LEVEL_DEFAULTS)
    )
    workers = cfg.threads or available_cpus()
    tr_z = _level_all(tr_img, level, stop, workers)
    va_z = _level_all(va_img, level, stop, workers)
    center_nm, scale_nm = _normalisation(tr_z, cfg.input_transform) if tr_z else (0.0, 1.0)

    device = resolve_device(cfg.device)
    old_threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(cfg.threads or available_cpus())
    try:
        torch.manual_seed(cfg.seed)
        net = build_network(
            cfg.architecture,
            nc,
            cfg.width,
            cfg.dilations,
            cfg.levels,
            cfg.multiscale,
            cfg.decoder,
        )
        model = SegmentationModel(
            net,
            level=level,
            center_nm=center_nm,
            scale_nm=scale_nm,
            transform=cfg.input_transform,
            train_config=cfg.to_dict(),
        )
        frames = [
            _make_frame(model, net, z, lb, cfg.patch_size, cfg.balance_patches)
            for z, lb in zip(tr_z, tr_lab)
        ]
        cap_rng = np.random.default_rng(cfg.seed + 1)
        if val_on_train:
            keep = _cap_val([f.y.size for f in frames], cfg.max_val_pixels, cap_rng)
            val_frames = [frames[i] for i in keep]
        else:
            # cap first, so that only the validation frames used get their input features
            keep = _cap_val([z.size for z in va_z], cfg.max_val_pixels, cap_rng)
            val_frames = [_make_frame(model, net, va_z[i], va_lab[i], 1) for i in keep]
        n_lab = np.array([f.labelled.size for f in frames], dtype=np.float64)
        # frames drawn in proportion to the square root of their labelled pixels: dense
        # frames dominate less than in proportion, sparse frames still get drawn
        fw = np.sqrt(n_lab)
        fw = fw / fw.sum() if fw.sum() > 0 else np.full(len(frames), 1.0 / max(1, len(frames)))
        weights = class_weights(tr_lab, nc) if cfg.class_weighting else np.ones(nc, np.float32)
        return _fit(
            cfg, model, net, frames, fw, val_frames, weights, device,
            val_on_train, progress, stop, monitor, t_start, rng,
        )  # fmt: skip
    finally:
        torch.set_num_threads(old_threads)


def _fit(
    cfg: TrainConfig,
    model: SegmentationModel,
    net: nn.Module,
    frames: list[_Frame],
    frame_p: np.ndarray,
    val_frames: list[_Frame],
    weights: np.ndarray,
    device: torch.device,
    val_on_train: bool,
    progress: ProgressFn | None,
    stop: StopFlag | None,
    monitor: Callable[[SegmentationModel], dict] | None,
    t_start: float,
    rng: np.random.Generator,
) -> TrainResult:
    nc = cfg.n_classes
    n_it = cfg.iterations
    net.to(device)
    cl = torch.channels_last if device.type == "cpu" else torch.contiguous_format
    net.to(memory_format=cl)
    net.train()
    loss_fn = nn.CrossEntropyLoss(
        weight=torch.as_tensor(weights, device=device), ignore_index=-1, reduction="mean"
    )
    if cfg.optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(
            net.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay
        )
    else:
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.schedule == "onecycle":
        sched: torch.optim.lr_scheduler.LRScheduler | None = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=cfg.lr, total_steps=n_it, pct_start=0.15
        )
    elif cfg.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=n_it)
    else:
        sched = None

    history: list[dict] = []
    best_acc = float("nan")
    best_macc = float("nan")
    best_it = 0
    best_state: dict | None = None
    last_ckpt_it: int | None = None
    monitor_s = 0.0
    loss_sum, loss_n = 0.0, 0
    last_val: tuple[float | None, float | None] = (None, None)
    stopped = False
    it = 0
    model.info["val_on_train"] = val_on_train
    model.info["n_train_frames"] = len(frames)
    model.info["n_val_frames"] = 0 if val_on_train else len(val_frames)
    model.info["class_weights"] = [float(w) for w in weights]

    def elapsed() -> float:
        return time.perf_counter() - t_start - monitor_s

    def report(extra: dict | None = None) -> None:
        if progress is None:
            return
        d = {
            "iteration": it,
            "n_iterations": n_it,
            "loss": loss_sum / loss_n if loss_n else None,
            "val_accuracy": last_val[0],
            "val_mean_accuracy": last_val[1],
            "best_val_accuracy": None if math.isnan(best_acc) else best_acc,
            "elapsed_s": elapsed(),
        }
        if extra:
            d.update(extra)
        progress(d)

    def evaluate() -> None:
        nonlocal best_acc, best_it, best_macc, best_state, last_val, loss_sum, loss_n, monitor_s
        nonlocal last_ckpt_it
        acc, macc = _evaluate(net, val_frames, nc, device)
        last_val = (acc, macc)
        entry = {
            "iteration": it,
            "loss": loss_sum / loss_n if loss_n else None,
            "val_accuracy": acc,
            "val_mean_accuracy": macc,
            "lr": opt.param_groups[0]["lr"],
            "elapsed_s": elapsed(),
        }
        improved = best_state is None or acc > best_acc
        if improved:
            best_acc, best_it, best_macc = acc, it, macc
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        if monitor is not None:
            t0 = time.perf_counter()
            net.eval()
            entry.update(monitor(model))
            net.train()
            monitor_s += time.perf_counter() - t0
        history.append(entry)
        report()
        loss_sum, loss_n = 0.0, 0
        if improved and cfg.checkpoint_path is not None:
            due = (
                cfg.checkpoint_every is None
                or last_ckpt_it is None
                or it - last_ckpt_it >= cfg.checkpoint_every
                or it == n_it
            )
            if due:
                _snapshot(model, net, best_state, history).save(cfg.checkpoint_path)
                last_ckpt_it = it

    dtype = step_dtype(cfg.precision, device)
    model.info["step_dtype"] = str(dtype).removeprefix("torch.")
    margin = net.halo if cfg.context_margin else 0
    margin = min(margin, (cfg.patch_size - 1) // 2)
    if not frames:  # stopped while the frames were being levelled
        stopped = True
    while it < n_it and not stopped:
        if _stopped(stop):
            stopped = True
            break
        xs, ys = _sample_batch(
            frames,
            frame_p,
            rng,
            cfg.batch_size,
            cfg.patch_size,
            cfg.augment,
            margin,
            cfg.balance_patches,
        )
        # (batch, rows, cols, channels) viewed as NCHW: channels-last strides, no copy
        x = torch.from_numpy(xs).permute(0, 3, 1, 2).to(device).float().to(memory_format=cl)
        y = torch.from_numpy(ys).to(device)
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            scores = _forward(net, x)
        loss = loss_fn(scores.float(), y)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        it += 1
        loss_sum += float(loss.detach())
        loss_n += 1
        if it % cfg.eval_every == 0 or it == n_it:
            evaluate()
        elif it % 10 == 0:
            report()
    if stopped and (not history or history[-1]["iteration"] != it):
        evaluate()
    if best_state is None:  # stopped before the first step
        evaluate()
    if cfg.keep_final() and not stopped and history:
        # the annealed end of the schedule: steadier than the best of a few noisy
        # validations (see TrainConfig.keep)
        best_acc, best_macc = last_val
        best_it = it
        best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    final = _snapshot(model, net, best_state, history)
    final.info["best_iteration"] = best_it
    final.info["best_val_accuracy"] = best_acc
    final.info["stopped"] = stopped
    if cfg.checkpoint_path is not None:
        final.save(cfg.checkpoint_path)
    return TrainResult(
        model=final,
        history=history,
        best_val_accuracy=float(best_acc),
        best_val_mean_accuracy=float(best_macc),
        best_iteration=best_it,
        stopped=stopped,
        elapsed_s=elapsed(),
        config=cfg,
    )


def _snapshot(
    model: SegmentationModel, net: nn.Module, state: dict | None, history: list[dict]
) -> SegmentationModel:
    """A CPU copy of ``model`` holding ``state`` (the best weights), in eval mode."""
    snap = model.copy()
    snap.net.to("cpu").to(memory_format=torch.contiguous_format)
    if state is not None:
        snap.net.load_state_dict({k: v.cpu() for k, v in state.items()})
    snap.net.eval()
    snap.history = copy.deepcopy(history)
    return snap
