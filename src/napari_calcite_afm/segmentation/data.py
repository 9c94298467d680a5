"""Training data: labelled frames, their input features, patches and splits.

The steps between raw frames and the batches of a training step:

* :func:`prepare_labels` checks label arrays (0 unlabelled, 1 multilayer pit,
  2 terrace, 3 monolayer pit) and maps them to the model's classes;
* frames are levelled (on threads) and the input normalisation (``center_nm``,
  ``scale_nm``, both in nm) is measured once over the training frames;
* each frame becomes a ``_Frame``: the network's input features (channels last) and
  the int64 targets (label - 1, -1 for unlabelled or NaN pixels), padded to at least one
  patch;
* frames are split into training and validation sets (by frame), within a cap on the
  validation pixels;
* ``_sample_batch`` draws square patches around labelled pixels, with flips and
  90 degree rotations;
* :func:`class_weights` gives median-frequency class weights for the loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .._util import StopFlag, thread_map
from .._util import stop_requested as _stopped
from ..errors import TrainError
from ..labels import labels_to_n_classes
from ..level import LevelSettings, level_frame
from .model import SegmentationModel

__all__ = ["class_weights", "prepare_labels"]


def prepare_labels(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Check a label array and map it to ``n_classes`` (3 -> 2 for two classes).

    Parameters
    ----------
    labels : numpy.ndarray
        Integer labels 0..3 (0 = unlabelled); floats that are whole numbers also work.
    n_classes : int
        2 or 3.

    Returns
    -------
    numpy.ndarray
        uint8 labels in 0..n_classes.

    Raises
    ------
    TrainError
        Booleans, non-numbers, NaN, fractions or values outside 0..3.

    Examples
    --------
    >>> prepare_labels(np.array([0, 1, 2, 3]), 2)  # monolayer pits count as terrace
    array([0, 1, 2, 2], dtype=uint8)
    >>> prepare_labels(np.array([0, 1, 2, 3]), 3)
    array([0, 1, 2, 3], dtype=uint8)
    """
    return labels_to_n_classes(labels, n_classes, error=TrainError)


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

    Examples
    --------
    >>> class_weights([np.array([1, 2, 2, 2, 0, 0])], 2)  # label 0 is not counted
    array([2.       , 0.6666667], dtype=float32)
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
    shape: tuple[int, int] | None = None  # (rows, cols) before padding
    nan_mask: np.ndarray | None = None  # pixels not recorded (unpadded), or None


def _level_all(
    frames: list[np.ndarray], settings: LevelSettings, stop: StopFlag | None, workers: int = 1
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
    return _Frame(
        x=x,
        y=y,
        labelled=np.flatnonzero(y >= 0),
        by_class=by_class,
        shape=(rows, cols),
        nan_mask=nan_mask,
    )


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


def _labelled_pairs(images, labels, val_images, val_labels, n_classes: int):
    """Training and validation frames (2D) with checked labels; unlabelled frames dropped.

    Returns ``(train_images, train_labels, val_images, val_labels)``, lists of 2D
    arrays (the validation lists empty when no validation pairs are given).
    """
    tr_img, tr_lab = _as_frames(images, labels, "training pair")
    if (val_images is None) != (val_labels is None):
        raise TrainError("give both val_images and val_labels, or neither")
    va_img: list[np.ndarray] = []
    va_lab: list[np.ndarray] = []
    if val_images is not None:
        va_img, va_lab = _as_frames(val_images, val_labels, "validation pair")
    tr_lab = [prepare_labels(lb, n_classes) for lb in tr_lab]
    va_lab = [prepare_labels(lb, n_classes) for lb in va_lab]
    keep = [i for i, lb in enumerate(tr_lab) if (lb > 0).any()]
    if not keep:
        raise TrainError("the training labels hold no labelled pixel (all 0)")
    tr_img = [tr_img[i] for i in keep]
    tr_lab = [tr_lab[i] for i in keep]
    return tr_img, tr_lab, va_img, va_lab


def _hold_out(
    tr_img: list[np.ndarray],
    tr_lab: list[np.ndarray],
    fraction: float,
    max_val_pixels: int,
    seed: int,
    rng: np.random.Generator,
):
    """Split validation frames off the training frames, by frame.

    ``rng`` draws the split; the frames held out beyond ``max_val_pixels`` (a cap drawn
    with a generator seeded ``seed + 1``) would be neither validated on nor trained on,
    so they go back to training. Returns ``(train_images, train_labels, val_images,
    val_labels)``.
    """
    tr_idx, va_idx = _split(len(tr_img), fraction, rng)
    kept = _cap_val(
        [tr_img[i].size for i in va_idx],
        max_val_pixels,
        np.random.default_rng(seed + 1),
    )
    tr_idx = sorted(tr_idx + [i for k, i in enumerate(va_idx) if k not in kept])
    va_idx = [va_idx[k] for k in sorted(kept)]
    va_img = [tr_img[i] for i in va_idx]
    va_lab = [tr_lab[i] for i in va_idx]
    return [tr_img[i] for i in tr_idx], [tr_lab[i] for i in tr_idx], va_img, va_lab


def _training_frames(
    model: SegmentationModel,
    net: nn.Module,
    tr_z: list[np.ndarray],
    tr_lab: list[np.ndarray],
    va_z: list[np.ndarray],
    va_lab: list[np.ndarray],
    cfg,
    val_on_train: bool,
) -> tuple[list[_Frame], list[_Frame], np.ndarray]:
    """The training frames, the validation frames and the frames' drawing probabilities.

    ``tr_z`` and ``va_z`` are levelled frames (nm); ``cfg`` the
    :class:`~.config.TrainConfig`. With ``val_on_train`` the validation frames are
    training frames (under the pixel cap).
    """
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
    return frames, val_frames, fw
