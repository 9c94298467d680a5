"""Training settings: :class:`TrainConfig`, the arithmetic of a step, the GPU budget.

:class:`TrainConfig` holds every setting of
:func:`~napari_calcite_afm.segmentation.training.train_model` (network, optimiser,
schedule, patches, validation, device, precision, checkpoints) and validates them; it
round-trips through a plain dict (:meth:`TrainConfig.to_dict` /
:meth:`TrainConfig.from_dict`), which trained models store. :func:`step_dtype` decides
the autocast dtype of a training step from ``TrainConfig.precision``.

Examples
--------
>>> cfg = TrainConfig(iterations=200, n_classes=3)
>>> cfg.architecture, cfg.class_weighting, cfg.decoder
('unet', True, 'add')
>>> TrainConfig.from_dict(cfg.to_dict()) == cfg
True

Fine-tuning a shipped or saved model (``init``) takes fewer iterations of fewer patches
unless told otherwise (:data:`FINE_TUNE`):

>>> tune, new = TrainConfig(init="default"), TrainConfig()
>>> tune.iterations, tune.lr, tune.batch_size, new.iterations, new.lr, new.batch_size
(300, 0.003, 4, 1500, 0.003, 8)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from .._util import settings_from_dict
from ..errors import TrainError
from ..level import LevelSettings
from .networks import UNET_DECODERS

__all__ = [
    "FINE_TUNE",
    "GPU_BUDGET",
    "NEW_NETWORK",
    "PRECISIONS",
    "RECOMMENDED_DILATIONS",
    "TrainConfig",
    "native_bfloat16",
    "step_dtype",
]


#: Dilations of the dilated CNN when none are given (63 px); the study's are (1, 2, 4).
RECOMMENDED_DILATIONS: tuple[int, ...] = (1, 2, 4, 8, 16)

#: Training budget for a GPU: 16 times the patches of 800 x 8 (``docs/segmentation.md``
#: gives what it trained to). ``calcite-afm train`` uses it when it trains on a GPU and
#: neither ``--iterations`` nor ``--batch-size`` is given.
GPU_BUDGET: dict[str, int] = {"iterations": 3200, "batch_size": 32}

#: Budget, learning rate and validation split of a new network when ``TrainConfig`` is
#: not told them.
NEW_NETWORK: dict[str, float] = {
    "iterations": 1500,
    "lr": 3e-3,
    "batch_size": 8,
    "val_fraction": 0.15,
}
#: The same for a fine-tuning run (``TrainConfig.init`` set), measured on three scribbled
#: frames (``benchmarks/finetune.py``; ``docs/segmentation.md``, "Fine-tuning"): fewer
#: iterations of fewer patches, and every scribbled frame trains (none is held out: with
#: three frames, holding one out costs more than it tells). The rate stays 3e-3: lower
#: rates (3e-4, 1e-3) left the shipped model short of the user's frames in 300 steps.
FINE_TUNE: dict[str, float] = {
    "iterations": 300,
    "lr": 3e-3,
    "batch_size": 4,
    "val_fraction": 0.0,
}


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

    Examples
    --------
    >>> isinstance(native_bfloat16(), bool)
    True
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
    """Settings of :func:`~napari_calcite_afm.segmentation.training.train_model`.

    Every field has a default; the settings are checked on construction (a bad value
    raises :class:`~napari_calcite_afm.errors.TrainError`) and round-trip through a
    JSON-serialisable dict (:meth:`to_dict`, :meth:`from_dict`). ``docs/segmentation.md``
    ("Why the training defaults") gives the measurements behind the defaults.

    Parameters
    ----------
    iterations : int or None
        Optimiser steps. None (default): 1500 for a new network, 300 when fine-tuning
        (``init``; :data:`NEW_NETWORK`, :data:`FINE_TUNE`).
    batch_size : int or None
        Patches per step. None (default): 8 for a new network, 4 when fine-tuning.
    patch_size : int
        Side of the square training patches, pixels (frames smaller than this are
        padded with unlabelled pixels). With ``context_margin`` it must exceed twice the
        receptive-field radius (31 px for the dilated CNN with dilations up to 16).
    lr : float or None
        Peak learning rate. None (default): 3e-3, for a new network as when fine-tuning
        (:data:`NEW_NETWORK`, :data:`FINE_TUNE`).
    weight_decay : float
        Weight decay (L2 for SGD, decoupled for AdamW).
    optimizer : {"adamw", "sgd"}
        AdamW, or SGD with momentum 0.9 (the study's).
    schedule : {"onecycle", "cosine", "constant"}
        Learning-rate schedule over ``iterations``.
    n_classes : int
        2 (multilayer pit / terrace; label 3 is merged into 2) or 3.
    architecture : {"unet", "dilated"}
        ``"unet"`` (default): :class:`~napari_calcite_afm.segmentation.networks.UNet`, a
        small U-Net with a dilated bottleneck that sees about 130 px (230 px with
        ``multiscale``); ``"dilated"``: the study's
        :class:`~napari_calcite_afm.segmentation.networks.DilatedNet`.
    width : int or None
        Filters per convolution of the dilated network (the study's: 32), or of the
        U-Net's first stage. None: 8 for the U-Net, 16 for the dilated network.
    dilations : tuple of int or None
        Dilations of the 3x3 convolutions: of every layer of the dilated network
        (``(1, 2, 4)`` is the study's, receptive field 15 px; None gives
        ``(1, 2, 4, 8, 16)``, 63 px), or of the U-Net's bottleneck (None: ``(1, 2)``).
    levels : int
        Downsamplings of the U-Net, 1 to 5 (ignored by the dilated network).
    decoder : {"add", "concat"} or None
        How the U-Net's decoder joins its skip connections (see
        :class:`~napari_calcite_afm.segmentation.networks.UNet`). None (default):
        ``"add"``, cheaper per step than the classic ``"concat"``. Ignored by the
        dilated network.
    multiscale : bool or None
        U-Net only: fixed multiscale input features
        (:class:`~napari_calcite_afm.segmentation.features.MultiscaleFeatures`) as the
        network's first layer. None (default): on for the U-Net, off for the dilated
        network. They are computed once per training frame and kept in memory as
        float16, 15 x 2 bytes per pixel (7.9 MB per 512 x 512 frame).
    seed : int
        Seed of the weights, the split and the patch sampling. On the CPU the same seed
        gives the same model bit for bit; on a GPU runs differ in the last bits.
    val_fraction : float or None
        Fraction of the labelled frames held out for validation when no validation
        pairs are given (at least one frame when there are two or more frames), at most
        as many as ``max_val_pixels`` holds: the others train. With a single labelled
        frame, or 0, validation uses the training frames themselves. None (default):
        0.15 for a new network, 0 when fine-tuning.
    level : dict or None
        :class:`~napari_calcite_afm.level.LevelSettings` as a dict. None:
        :data:`~napari_calcite_afm.segmentation.model.MODEL_LEVEL_DEFAULTS`, the package
        defaults without the final zero mean, so that terraces sit at 0 nm.
    input_transform : {"asinh", "linear"}
        Input normalisation, fixed in nm and measured over the training frames:
        ``asinh((z - center_nm) / scale_nm)`` with ``scale_nm`` the MAD-based spread
        (linear over monolayer steps, logarithmic over deep pits), or the linear
        ``(z - center_nm) / scale_nm`` with ``scale_nm`` half the 1-99 % spread.
    class_weighting : bool or None
        Weight the loss by median-frequency class balancing (weight of class c =
        median class frequency / frequency of c, capped at 20), as the study did. None
        (default): on for three classes, off for two. :meth:`study_reference` turns it
        on.
    augment : bool
        Random flips and 90 degree rotations of the patches.
    balance_patches : bool
        Centre the patches on pixels of each class in turn (a class drawn uniformly among
        those a frame holds), instead of on labelled pixels drawn uniformly, so that rare
        classes are seen more often without weighting the loss. Off by default.
    context_margin : bool
        Compute the loss only on patch pixels whose whole receptive field lies inside
        the patch (or inside the frame, at frame edges), as at whole-frame inference.
        The margin is the receptive-field radius in pixels (31 px for dilations up to
        16). Off by default; :meth:`study_reference` turns it on.
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
        (AVX512-BF16 or AMX), float32 elsewhere (see :func:`step_dtype`). Validation and
        inference always run in float32.
    checkpoint_path : str or None
        Where to write the best model so far during training (at each evaluation that
        improves the validation accuracy), and the returned model at the end. Beside it,
        ``<stem>.latest<suffix>`` (:meth:`latest_checkpoint_path`, e.g. ``m.latest.pt``)
        receives the latest weights at every evaluation, with ``info["iteration"]`` and
        the history so far, so that a killed or crashed training loses at most
        ``eval_every`` iterations; it is removed when training runs to its end (and kept
        after a stop). Both are written atomically (a temporary file renamed over the
        old one): either file is always a complete model that
        :func:`~napari_calcite_afm.segmentation.model.load_model` reads.
    checkpoint_every : int or None
        Minimum iterations between writes of each checkpoint file (None: the best at
        every improvement, the latest at every evaluation).
    threads : int or None
        CPU threads for torch during training (None: all cores available to the
        process). Restored afterwards.
    init : str or None
        Start from a trained model instead of a new network (fine-tuning): ``"default"``
        or ``"default3"`` (the shipped models) or a model file (``.pt``). The network's
        architecture, levelling and input normalisation (``center_nm``, ``scale_nm``,
        transform) then come from that model, overriding the settings here
        (``architecture``, ``width``, ``dilations``, ``levels``, ``decoder``,
        ``multiscale``, ``level``, ``input_transform``), and ``n_classes`` must equal
        its class count. None (default): a new network.
    keep : {"auto", "best", "last"}
        Which weights training returns: ``"best"``, those of the highest validation
        pixel accuracy; ``"last"``, those at the end of the schedule; ``"auto"``
        (default), ``"last"`` when the schedule anneals the learning rate to zero
        (``"onecycle"``, ``"cosine"``) and ``"best"`` with a constant rate. A stopped
        run always returns the best so far, and the checkpoint file always holds the
        best so far while training runs.

    Examples
    --------
    >>> TrainConfig().to_dict()["dilations"]  # the U-Net's bottleneck
    [1, 2]
    >>> study = TrainConfig.study_reference(iterations=500)
    >>> study.architecture, study.width, study.dilations, study.optimizer
    ('dilated', 32, (1, 2, 4), 'sgd')
    >>> TrainConfig(n_classes=4)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    napari_calcite_afm.errors.TrainError: TrainConfig.n_classes must be 2 or 3, got 4
    """

    iterations: int | None = None
    batch_size: int | None = None
    patch_size: int = 160
    lr: float | None = None
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
    val_fraction: float | None = None
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
    init: str | None = None

    def __post_init__(self) -> None:
        def positive_int(name: str) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise TrainError(f"TrainConfig.{name} must be a positive integer, got {v!r}")
            setattr(self, name, int(v))

        if self.init is not None:
            if not isinstance(self.init, (str, Path)) or not str(self.init).strip():
                raise TrainError(
                    "TrainConfig.init must be 'default', 'default3' or a model file, "
                    f"got {self.init!r}"
                )
            self.init = str(self.init)
        budget = FINE_TUNE if self.init is not None else NEW_NETWORK
        for name, kind in (("iterations", int), ("lr", float), ("batch_size", int),
                           ("val_fraction", float)):  # fmt: skip
            if getattr(self, name) is None:
                setattr(self, name, kind(budget[name]))
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
        try:
            lr = float(self.lr)
        except (TypeError, ValueError):
            lr = float("nan")
        if isinstance(self.lr, bool) or not (np.isfinite(lr) and lr > 0):
            raise TrainError(f"TrainConfig.lr must be > 0, got {self.lr!r}")
        self.lr = lr
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

    def latest_checkpoint_path(self) -> str | None:
        """Where the latest weights are checkpointed: ``<stem>.latest<suffix>`` beside
        ``checkpoint_path`` (None without a checkpoint path).

        Examples
        --------
        >>> TrainConfig(checkpoint_path="runs/m.pt").latest_checkpoint_path()
        'runs/m.latest.pt'
        """
        if self.checkpoint_path is None:
            return None
        path = Path(self.checkpoint_path)
        return str(path.with_name(f"{path.stem}.latest{path.suffix or '.pt'}"))

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
