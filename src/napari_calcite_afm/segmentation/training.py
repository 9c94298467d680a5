"""Train the segmentation network on labelled AFM frames.

:func:`train_model` is a plain function (no Qt): give it raw height frames in nm and
label arrays (0 unlabelled, 1 multilayer pit, 2 terrace, 3 monolayer pit; dense ground
truth or sparse scribbles), get back a :class:`TrainResult` holding a
:class:`~napari_calcite_afm.segmentation.model.SegmentationModel`.

What it does

* levels every frame with the configuration's :class:`~napari_calcite_afm.level.LevelSettings`
  (exactly as :mod:`~napari_calcite_afm.segmentation.inference` will) and measures the
  input normalisation once over the training frames: ``center_nm`` = median levelled
  height, ``scale_nm`` = the spread of the levelled heights (both in nm, stored in the
  model);
* splits the frames into training and validation sets (by frame, ``val_fraction``), or
  uses the validation pairs given;
* draws random square patches around labelled pixels (so every patch carries labels,
  also with sparse scribbles), with random flips and 90 degree rotations;
* minimises the pixel cross-entropy over the labelled pixels only (label 0 is ignored),
  weighted by median-frequency class balancing when ``class_weighting`` is on;
* evaluates pixel accuracy and mean class accuracy (mean per-class recall, Matlab's
  "mean accuracy") on the validation frames every ``eval_every`` iterations, keeps the
  best model (by validation pixel accuracy) and writes it atomically to
  ``checkpoint_path`` whenever it improves, and the latest weights to
  ``TrainConfig.latest_checkpoint_path()`` at every evaluation (so an interrupted
  training keeps a loadable, recent model);
* honours ``stop`` at every iteration and reports through ``progress``;
* at the end, measures the model's frame uncertainty on the validation frames and stores
  the threshold above which a movie looks unlike them
  (``info["uncertainty_threshold"]``, :mod:`~napari_calcite_afm.segmentation.depth`).

Fine-tuning: with ``TrainConfig.init`` (or the ``init`` argument) the run starts from a
shipped or saved model (:mod:`~napari_calcite_afm.segmentation.finetune`): its network,
levelling and input normalisation are kept, and the budget defaults to
:data:`~napari_calcite_afm.segmentation.config.FINE_TUNE`.

The default optimiser is AdamW with a one-cycle learning-rate schedule; the study's
reference, SGD with momentum 0.9, learning rate 1e-3 and L2 1e-4, is
``TrainConfig.study_reference()`` (with patches instead of batches of 64 whole images).

Reproducibility: the same configuration, data and seed give the same history on the CPU
(same torch version and thread count).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .._util import ProgressFn, StopFlag, available_cpus
from .._util import stop_requested as _stopped
from ..errors import TrainError
from ..level import LevelSettings
from .config import TrainConfig, step_dtype
from .data import (
    _Frame,
    _hold_out,
    _labelled_pairs,
    _level_all,
    _normalisation,
    _sample_batch,
    _training_frames,
    class_weights,
)
from .depth import _calibration
from .finetune import _describe, _init_of, _origin, fine_tune_config, initial_model
from .metrics import confusion_matrix, mean_class_accuracy, pixel_accuracy
from .model import MODEL_LEVEL_DEFAULTS, SegmentationModel
from .networks import build_network, resolve_device

__all__ = ["TrainResult", "Trainer", "train_model"]


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


def _forward(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Class scores from :func:`_input_features` output (float32, on the net's device)."""
    return getattr(net, "forward_features", net)(x)


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


class Trainer:
    """One training run: the optimiser loop of :func:`train_model`, with its record.

    Built by :func:`train_model` once the frames are ready; :meth:`run` trains and
    returns the :class:`TrainResult`. It holds what the loop updates: the iteration
    ``it``, the running loss, the latest and the best validation accuracies, the best
    weights, the history and the time spent in ``monitor``.

    Parameters
    ----------
    cfg : TrainConfig
        The settings.
    model : SegmentationModel
        The model being trained (its ``info`` receives the run's notes).
    net : torch.nn.Module
        ``model.net``.
    frames, val_frames : list of _Frame
        Training and validation frames (see :mod:`~.data`).
    frame_p : numpy.ndarray
        Probability of drawing each training frame for a patch.
    weights : numpy.ndarray
        Class weights of the loss, float32 ``(n_classes,)``.
    device : torch.device
        Where to train.
    val_on_train : bool
        Whether the validation frames are training frames.
    progress, stop, monitor
        As in :func:`train_model`.
    t_start : float
        ``time.perf_counter()`` at the start of :func:`train_model`.
    rng : numpy.random.Generator
        Draws the patches (after the split has used it).
    """

    def __init__(
        self,
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
    ) -> None:
        self.cfg, self.model, self.net = cfg, model, net
        self.frames, self.frame_p, self.val_frames = frames, frame_p, val_frames
        self.device, self.progress, self.stop, self.monitor = device, progress, stop, monitor
        self.t_start, self.rng = t_start, rng
        self.n_it = cfg.iterations
        net.to(device)
        self.cl = torch.channels_last if device.type == "cpu" else torch.contiguous_format
        net.to(memory_format=self.cl)
        net.train()
        self.loss_fn = nn.CrossEntropyLoss(
            weight=torch.as_tensor(weights, device=device), ignore_index=-1, reduction="mean"
        )
        self.opt, self.sched = _optimiser(cfg, net)
        self.history: list[dict] = []
        self.best_acc = float("nan")
        self.best_macc = float("nan")
        self.best_it = 0
        self.best_state: dict | None = None
        self.last_ckpt_it: int | None = None
        self.last_latest_it: int | None = None
        self.monitor_s = 0.0
        self.loss_sum, self.loss_n = 0.0, 0
        self.last_val: tuple[float | None, float | None] = (None, None)
        self.stopped = False
        self.it = 0
        model.info["val_on_train"] = val_on_train
        model.info["n_train_frames"] = len(frames)
        model.info["n_val_frames"] = 0 if val_on_train else len(val_frames)
        model.info["class_weights"] = [float(w) for w in weights]

    def elapsed(self) -> float:
        """Seconds since the start of training, without the time spent in ``monitor``."""
        return time.perf_counter() - self.t_start - self.monitor_s

    def mean_loss(self) -> float | None:
        """Mean training loss since the last evaluation (None before any step)."""
        return self.loss_sum / self.loss_n if self.loss_n else None

    def report(self) -> None:
        """Call ``progress`` with the current state (see :func:`train_model`)."""
        if self.progress is None:
            return
        self.progress(
            {
                "iteration": self.it,
                "n_iterations": self.n_it,
                "loss": self.mean_loss(),
                "val_accuracy": self.last_val[0],
                "val_mean_accuracy": self.last_val[1],
                "best_val_accuracy": None if math.isnan(self.best_acc) else self.best_acc,
                "elapsed_s": self.elapsed(),
            }
        )

    def evaluate(self) -> None:
        """Validate, record a history entry, keep the best weights, write a checkpoint."""
        net = self.net
        acc, macc = _evaluate(net, self.val_frames, self.cfg.n_classes, self.device)
        self.last_val = (acc, macc)
        entry = {
            "iteration": self.it,
            "loss": self.mean_loss(),
            "val_accuracy": acc,
            "val_mean_accuracy": macc,
            "lr": self.opt.param_groups[0]["lr"],
            "elapsed_s": self.elapsed(),
        }
        improved = self.best_state is None or acc > self.best_acc
        if improved:
            self.best_acc, self.best_it, self.best_macc = acc, self.it, macc
            self.best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        if self.monitor is not None:
            t0 = time.perf_counter()
            net.eval()
            entry.update(self.monitor(self.model))
            net.train()
            self.monitor_s += time.perf_counter() - t0
        self.history.append(entry)
        self.report()
        self.loss_sum, self.loss_n = 0.0, 0
        if self.cfg.checkpoint_path is None:
            return
        if improved and self._checkpoint_due(self.last_ckpt_it):
            snap = _snapshot(self.model, net, self.best_state, self.history)
            snap.save(self.cfg.checkpoint_path)
            self.last_ckpt_it = self.it
        if self._checkpoint_due(self.last_latest_it):
            self.save_latest()

    def save_latest(self) -> None:
        """Write the current weights to ``cfg.latest_checkpoint_path()``, atomically."""
        snap = _snapshot(self.model, self.net, None, self.history)
        snap.info.update(iteration=self.it, checkpoint="latest")
        snap.save(self.cfg.latest_checkpoint_path())
        self.last_latest_it = self.it

    def _checkpoint_due(self, last: int | None) -> bool:
        every = self.cfg.checkpoint_every
        return every is None or last is None or self.it - last >= every or self.it == self.n_it

    def step(self, dtype: torch.dtype, margin: int) -> None:
        """One optimiser step on a fresh batch of patches."""
        cfg, device = self.cfg, self.device
        xs, ys = _sample_batch(
            self.frames,
            self.frame_p,
            self.rng,
            cfg.batch_size,
            cfg.patch_size,
            cfg.augment,
            margin,
            cfg.balance_patches,
        )
        # (batch, rows, cols, channels) viewed as NCHW: channels-last strides, no copy
        x = torch.from_numpy(xs).permute(0, 3, 1, 2).to(device).float().to(memory_format=self.cl)
        y = torch.from_numpy(ys).to(device)
        self.opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            scores = _forward(self.net, x)
        loss = self.loss_fn(scores.float(), y)
        loss.backward()
        self.opt.step()
        if self.sched is not None:
            self.sched.step()
        self.it += 1
        self.loss_sum += float(loss.detach())
        self.loss_n += 1

    def run(self) -> TrainResult:
        """Train for ``cfg.iterations`` steps (or until ``stop``); the result."""
        cfg = self.cfg
        dtype = step_dtype(cfg.precision, self.device)
        self.model.info["step_dtype"] = str(dtype).removeprefix("torch.")
        margin = self.net.halo if cfg.context_margin else 0
        margin = min(margin, (cfg.patch_size - 1) // 2)
        if not self.frames:  # stopped while the frames were being levelled
            self.stopped = True
        while self.it < self.n_it and not self.stopped:
            if _stopped(self.stop):
                self.stopped = True
                break
            self.step(dtype, margin)
            if self.it % cfg.eval_every == 0 or self.it == self.n_it:
                self.evaluate()
            elif self.it % 10 == 0:
                self.report()
        if self.stopped and (not self.history or self.history[-1]["iteration"] != self.it):
            self.evaluate()
        if self.best_state is None:  # stopped before the first step
            self.evaluate()
        if cfg.keep_final() and not self.stopped and self.history:
            # the annealed end of the schedule: steadier than the best of a few noisy
            # validations (see TrainConfig.keep)
            self.best_acc, self.best_macc = self.last_val
            self.best_it = self.it
            self.best_state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
        return self._result()

    def _result(self) -> TrainResult:
        final = _snapshot(self.model, self.net, self.best_state, self.history)
        final.info["best_iteration"] = self.best_it
        final.info["best_val_accuracy"] = self.best_acc
        final.info["stopped"] = self.stopped
        on = "training frames" if self.model.info.get("val_on_train") else "validation frames"
        _calibration(final, self.val_frames, on)
        if self.cfg.checkpoint_path is not None:
            final.save(self.cfg.checkpoint_path)
            if not self.stopped:  # the run is complete: the checkpoint holds all of it
                Path(self.cfg.latest_checkpoint_path()).unlink(missing_ok=True)
        return TrainResult(
            model=final,
            history=self.history,
            best_val_accuracy=float(self.best_acc),
            best_val_mean_accuracy=float(self.best_macc),
            best_iteration=self.best_it,
            stopped=self.stopped,
            elapsed_s=self.elapsed(),
            config=self.cfg,
        )


def _optimiser(cfg: TrainConfig, net: nn.Module):
    """The optimiser and the learning-rate scheduler (None for a constant rate)."""
    if cfg.optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(
            net.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay
        )
    else:
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.schedule == "onecycle":
        sched: torch.optim.lr_scheduler.LRScheduler | None = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=cfg.lr, total_steps=cfg.iterations, pct_start=0.15
        )
    elif cfg.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.iterations)
    else:
        sched = None
    return opt, sched


def _as_config(config: TrainConfig | dict | None, init: str | None = None) -> TrainConfig:
    """A private copy of the settings (None: the defaults, fine-tuning ``init`` if given)."""
    if config is None:
        return TrainConfig(init=init)
    if isinstance(config, dict):
        return TrainConfig.from_dict(config)
    if isinstance(config, TrainConfig):
        return copy.deepcopy(config)
    raise TrainError(f"config must be a TrainConfig or dict, got {type(config).__name__}")


def train_model(
    images: Sequence[np.ndarray] | np.ndarray,
    labels: Sequence[np.ndarray] | np.ndarray,
    config: TrainConfig | dict | None = None,
    *,
    init: SegmentationModel | str | Path | None = None,
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
        Settings (None: ``TrainConfig()``, or ``TrainConfig(init=...)`` with ``init``).
    init : SegmentationModel, str, path or None
        Fine-tune this model (``"default"``, ``"default3"``, a model file or a model)
        instead of ``config.init``; see :mod:`~napari_calcite_afm.segmentation.finetune`.
        Its class count must equal ``config.n_classes``.
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

    Examples
    --------
    A few steps of a tiny dilated network on one 48 x 48 px frame (heights in nm):

    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(0.0, 0.1, (48, 48)).astype(np.float32)
    >>> lab = np.full((48, 48), 2, np.uint8)  # terrace...
    >>> z[10:30, 10:30] -= 3.0
    >>> lab[10:30, 10:30] = 1  # ...and a multilayer pit 3 nm deep
    >>> cfg = TrainConfig(architecture="dilated", width=4, dilations=(1, 2),
    ...                   iterations=4, eval_every=2, batch_size=2, patch_size=32,
    ...                   device="cpu", threads=1)
    >>> result = train_model(z, lab, cfg)
    >>> [h["iteration"] for h in result.history], result.model.n_classes
    ([2, 4], 2)

    Fine-tuning that model, with its architecture and normalisation:

    >>> tuned = train_model(z, lab, TrainConfig(iterations=2, eval_every=2, batch_size=2,
    ...                     patch_size=32, device="cpu", threads=1), init=result.model)
    >>> tuned.model.architecture() == result.model.architecture()
    True
    >>> tuned.model.scale_nm == result.model.scale_nm, tuned.config.init
    (True, 'the model in memory')
    """
    t_start = time.perf_counter()
    init = init if init is not None else _init_of(config)
    start = initial_model(init)
    name = None if start is None else _describe(init, start)
    cfg = _as_config(config, name)
    if start is not None:
        cfg = fine_tune_config(cfg, start, name)
    tr_img, tr_lab, va_img, va_lab = _labelled_pairs(
        images, labels, val_images, val_labels, cfg.n_classes
    )
    rng = np.random.default_rng(cfg.seed)
    if not va_img:
        tr_img, tr_lab, va_img, va_lab = _hold_out(
            tr_img, tr_lab, cfg.val_fraction, cfg.max_val_pixels, cfg.seed, rng
        )
    val_on_train = not va_img

    level = LevelSettings.from_dict(
        cfg.level if cfg.level is not None else dict(MODEL_LEVEL_DEFAULTS)
    )
    workers = cfg.threads or available_cpus()
    tr_z = _level_all(tr_img, level, stop, workers)
    va_z = _level_all(va_img, level, stop, workers)
    if start is not None:  # the initial model's normalisation: its network expects it
        center_nm, scale_nm = start.center_nm, start.scale_nm
    else:
        center_nm, scale_nm = _normalisation(tr_z, cfg.input_transform) if tr_z else (0.0, 1.0)

    device = resolve_device(cfg.device)
    old_threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(cfg.threads or available_cpus())
    try:
        torch.manual_seed(cfg.seed)
        if start is not None:
            net = copy.deepcopy(start.net).to("cpu")
        else:
            net = build_network(
                cfg.architecture,
                cfg.n_classes,
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
            info=None if start is None else {"fine_tuned_from": _origin(start, name)},
        )
        frames, val_frames, fw = _training_frames(
            model, net, tr_z, tr_lab, va_z, va_lab, cfg, val_on_train
        )
        nc = cfg.n_classes
        weights = class_weights(tr_lab, nc) if cfg.class_weighting else np.ones(nc, np.float32)
        trainer = Trainer(
            cfg, model, net, frames, fw, val_frames, weights, device,
            val_on_train, progress, stop, monitor, t_start, rng,
        )  # fmt: skip
        return trainer.run()
    finally:
        torch.set_num_threads(old_threads)
