"""Fine-tuning: start a training run from a shipped or saved model instead of a new network.

A few scribbled frames of a user's movie are too few to train a network from scratch,
but enough to adapt one that already knows calcite: :func:`initial_model` loads the
model to start from (``"default"``, ``"default3"`` or a model file), and
:func:`fine_tune_config` takes its architecture, levelling and input normalisation into
the training settings, so that the fine-tuned network sees its inputs exactly as the
initial one did. :func:`~napari_calcite_afm.segmentation.training.train_model` does
both when ``TrainConfig.init`` (or its ``init`` argument) is set; a fine-tuning run takes
:data:`~napari_calcite_afm.segmentation.config.FINE_TUNE` (fewer iterations of fewer
patches, no frame held out) unless told otherwise. :func:`labelled_fraction` and
:func:`sparse_labels` tell scribbles from dense labels (the Train widget starts from the
shipped model for scribbles).

Examples
--------
>>> model = initial_model("default")
>>> cfg = fine_tune_config(TrainConfig(init="default"), model)
>>> cfg.architecture, cfg.decoder, cfg.iterations, cfg.batch_size
('unet', 'concat', 300, 4)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import numpy as np

from ..errors import TrainError
from .config import TrainConfig
from .model import SegmentationModel
from .networks import UNet

__all__ = [
    "INIT_NAMES",
    "SPARSE_FRACTION",
    "fine_tune_config",
    "initial_model",
    "labelled_fraction",
    "sparse_labels",
]

#: Names of the shipped models to start from, with their class count.
INIT_NAMES: dict[str, int] = {"default": 2, "default2": 2, "default3": 3}
#: Labels covering less than this fraction of their frames' pixels count as scribbles.
SPARSE_FRACTION = 0.2


def initial_model(init: SegmentationModel | str | os.PathLike | None) -> SegmentationModel | None:
    """The model a training run starts from.

    Parameters
    ----------
    init : SegmentationModel, str, path or None
        ``"default"`` (the shipped two-class model), ``"default3"`` (three classes), a
        model file, or a model; None: none (a new network).

    Returns
    -------
    SegmentationModel or None

    Raises
    ------
    napari_calcite_afm.errors.AFMFileError
        The file is missing or not a model (the message names it).

    Examples
    --------
    >>> initial_model("default3").n_classes, initial_model(None)
    (3, None)
    """
    if init is None:
        return None
    from .shipped import resolve_model  # "default", "default3", a file or a model

    return resolve_model(init if isinstance(init, SegmentationModel) else str(init))


def _describe(init, model: SegmentationModel) -> str:
    if isinstance(init, (str, os.PathLike)):
        return str(init)
    return model.source or "the model in memory"


def fine_tune_config(
    cfg: TrainConfig, model: SegmentationModel, init: object = None
) -> TrainConfig:
    """``cfg`` with the architecture, levelling and input transform of ``model``.

    Parameters
    ----------
    cfg : TrainConfig
        The settings asked for (their budget, optimiser and patches are kept).
    model : SegmentationModel
        The model to start from.
    init : object, optional
        How the model was named (for the messages and ``TrainConfig.init``); default
        ``cfg.init``.

    Returns
    -------
    TrainConfig
        A new configuration; ``init`` names the initial model.

    Raises
    ------
    TrainError
        When ``cfg.n_classes`` differs from the model's class count.

    Examples
    --------
    >>> fine_tune_config(TrainConfig(init="x.pt", n_classes=3), initial_model("default"))
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    napari_calcite_afm.errors.TrainError: cannot fine-tune x.pt: it has 2 classes but ...
    """
    init = cfg.init if init is None else init
    what = _describe(init, model)
    if cfg.n_classes != model.n_classes:
        shipped = "default3" if cfg.n_classes == 3 else "default"
        raise TrainError(
            f"cannot fine-tune {what}: it has {model.n_classes} classes but the training "
            f"asks for {cfg.n_classes} (start from a {cfg.n_classes}-class model, e.g. "
            f"{shipped}, or train a new network)"
        )
    net = model.net
    unet = isinstance(net, UNet)
    return dataclasses.replace(
        cfg,
        architecture="unet" if unet else "dilated",
        width=int(net.width),
        dilations=tuple(int(d) for d in net.dilations),
        levels=int(net.levels) if unet else cfg.levels,
        multiscale=bool(net.multiscale) if unet else False,
        decoder=str(net.decoder_kind) if unet else cfg.decoder,
        level=model.level_settings.to_dict(),
        input_transform=model.transform,
        init=what,
    )


def labelled_fraction(labels: Sequence[np.ndarray] | np.ndarray) -> float:
    """Fraction of the pixels labelled (non-zero) in the frames that hold any label.

    Parameters
    ----------
    labels : array or sequence of arrays
        Label frames or stacks (0 = unlabelled).

    Returns
    -------
    float
        0 to 1 (0 when nothing is labelled).

    Examples
    --------
    >>> lab = np.zeros((2, 10, 10), np.uint8)
    >>> lab[0, 0, :5] = 2  # 5 pixels of one frame; the empty frame does not count
    >>> labelled_fraction(lab)
    0.05
    """
    arrays = [labels] if isinstance(labels, np.ndarray) else list(labels)
    done = total = 0
    for a in arrays:
        a = np.asarray(a)
        frames = a.reshape((-1, *a.shape[-2:])) if a.ndim >= 2 else a.reshape(1, 1, -1)
        for f in frames:
            n = int(np.count_nonzero(f))
            if n:
                done += n
                total += f.size
    return done / total if total else 0.0


def sparse_labels(labels: Sequence[np.ndarray] | np.ndarray) -> bool:
    """True when the labels are scribbles: under :data:`SPARSE_FRACTION` of the pixels.

    Examples
    --------
    >>> sparse_labels(np.ones((8, 8), np.uint8)), sparse_labels(np.eye(8, dtype=np.uint8))
    (False, True)
    """
    return labelled_fraction(labels) < SPARSE_FRACTION


def _init_of(config) -> str | None:
    """``init`` of settings given as a TrainConfig or a dict (None otherwise)."""
    if isinstance(config, dict):
        return config.get("init")
    return getattr(config, "init", None)


def _origin(start: SegmentationModel, name: str | None) -> dict:
    """What a fine-tuned model records of the model it started from."""
    from .depth import uncertainty_threshold
    from .scale import model_pixel_size_range

    span = model_pixel_size_range(start)
    keys = ("description", "generator", "pixel_size_nm", "training_seeds")
    return {
        "source": name,
        **{k: start.info[k] for k in keys if k in start.info},
        "pixel_size_range_nm": None if span is None else list(span),
        "uncertainty_threshold": uncertainty_threshold(start)[0],
    }
