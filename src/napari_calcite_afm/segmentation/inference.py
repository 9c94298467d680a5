"""Segment frames and stacks with a :class:`~.model.SegmentationModel`.

Each frame is levelled and normalised as a whole (exactly as in training), then run
through the network either whole or in tiles. Tiles overlap by ``overlap`` pixels on
each side and only their centres are kept: with ``overlap >= model.halo`` (the
receptive-field radius, 7 pixels for the study's network) the dilated network's tiled
and whole-frame predictions agree everywhere up to float rounding, because a kept pixel
never sees a tile edge that is not also a frame edge. The U-Net's agree closely but not
bit for bit (its pooling grid moves with the tile). Inference runs under ``torch.inference_mode``
with batch norms folded into the convolutions and channels-last memory on the CPU.

Outputs: labels ``uint8`` with values 1..n_classes (0 where the input is NaN) and
class probabilities ``float32 (n_classes, rows, cols)`` (NaN where the input is NaN).
Channel ``k`` of the probabilities is label ``k + 1``. :func:`uncertainty` turns the
probabilities into a 0..1 map.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Literal

import numpy as np
import torch

from .._util import ProgressFn, StopFlag
from .._util import stop_requested as _stopped
from ..errors import CalciteAFMError
from .closed import remove_open_pits
from .model import SegmentationModel
from .networks import resolve_device

__all__ = [
    "AUTO_TILE",
    "AUTO_TILE_PIXELS",
    "class_weight_prior",
    "predict_frame",
    "predict_stack",
    "uncertainty",
]

#: Frames with more pixels than this are tiled automatically when ``tile`` is None.
AUTO_TILE_PIXELS = 1024 * 1024
#: Tile size used for automatic tiling, in pixels.
AUTO_TILE = 512


def _tile_windows(
    rows: int, cols: int, tile: int, overlap: int
) -> Iterator[tuple[slice, slice, slice, slice]]:
    """Windows of one size covering the frame; yields (in_r, in_c, keep_r, keep_c).

    ``in_*`` index the frame (the network input), ``keep_*`` index the window (the part
    of the window's output to keep); the kept parts tile the frame exactly.
    """

    def axis(n: int) -> list[tuple[slice, slice]]:
        if n <= tile:
            return [(slice(0, n), slice(0, n))]
        core = tile - 2 * overlap
        out = []
        start = 0
        while start < n:
            stop = min(start + core, n)
            w0 = min(max(start - overlap, 0), n - tile)
            out.append((slice(w0, w0 + tile), slice(start - w0, stop - w0)))
            start = stop
        return out

    for in_r, keep_r in axis(rows):
        for in_c, keep_c in axis(cols):
            yield in_r, in_c, keep_r, keep_c


def _check_tiling(tile: int | None, overlap: int) -> None:
    if tile is None:
        return
    if overlap < 0:
        raise CalciteAFMError(f"overlap must be >= 0 pixels, got {overlap}")
    if tile - 2 * overlap < 1:
        raise CalciteAFMError(
            f"tile ({tile} px) must be larger than twice the overlap ({overlap} px)"
        )


def _run_windows(
    module: torch.nn.Module,
    x: np.ndarray,
    tile: int | None,
    overlap: int,
    device: torch.device,
    batch_size: int,
) -> np.ndarray:
    """Softmax probabilities ``(n, C, rows, cols)`` for normalised frames ``x (n, rows, cols)``."""
    n, rows, cols = x.shape
    cl = torch.channels_last if device.type == "cpu" else torch.contiguous_format
    if tile is None:
        windows = [(slice(0, rows), slice(0, cols), slice(0, rows), slice(0, cols))]
    else:
        windows = list(_tile_windows(rows, cols, tile, overlap))
    out: np.ndarray | None = None
    # all (frame, window) pairs, batched; windows all have one shape
    jobs = [(i, w) for i in range(n) for w in windows]
    for b0 in range(0, len(jobs), batch_size):
        chunk = jobs[b0 : b0 + batch_size]
        batch = np.stack([x[i, w[0], w[1]] for i, w in chunk])[:, None]
        tb = torch.from_numpy(batch).to(device).to(memory_format=cl)
        prob = torch.softmax(module(tb), dim=1).float().cpu().numpy()
        if out is None:
            out = np.empty((n, prob.shape[1], rows, cols), dtype=np.float32)
        for k, (i, w) in enumerate(chunk):
            in_r, in_c, keep_r, keep_c = w
            r0 = in_r.start + keep_r.start
            c0 = in_c.start + keep_c.start
            out[
                i, :, r0 : r0 + (keep_r.stop - keep_r.start), c0 : c0 + (keep_c.stop - keep_c.start)
            ] = prob[k, :, keep_r, keep_c]
    assert out is not None
    return out


def _auto_tile(rows: int, cols: int, tile: int | None) -> int | None:
    if tile is not None:
        return int(tile)
    if rows * cols > AUTO_TILE_PIXELS:
        return AUTO_TILE
    return None


def predict_frame(
    model: SegmentationModel,
    frame: np.ndarray,
    *,
    tile: int | None = None,
    overlap: int | None = None,
    device: str | torch.device | None = None,
    levelled: bool = False,
    closed: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Segment one frame.

    Parameters
    ----------
    model : SegmentationModel
        The trained model (its level settings and nm normalisation are applied).
    frame : numpy.ndarray
        2D heights in nm ``(rows, cols)``, any size; NaN = not recorded.
    tile : int or None
        Side of the square windows fed to the network, in pixels. None: the whole
        frame, or 512-pixel tiles for frames above 1024 x 1024 pixels.
    overlap : int or None
        Pixels discarded on each inner side of a tile. None: ``max(32, model.halo)``.
        With ``overlap >= model.halo`` the result equals whole-frame prediction (the
        U-Net's to within its pooling grid, see the module notes).
    device : str, torch.device or None
        None / ``"auto"``: the GPU if present, else the CPU.
    levelled : bool
        True when ``frame`` was already levelled with ``model.level_settings``.
    closed : bool
        Pits are closed depressions: a region labelled pit whose surroundings do not
        stand above it all round is relabelled terrace
        (:func:`~napari_calcite_afm.segmentation.closed.remove_open_pits`, on the
        levelled heights). The probabilities are the network's either way.

    Returns
    -------
    labels : numpy.ndarray
        uint8 ``(rows, cols)``, values 1..n_classes; 0 where ``frame`` is NaN.
    probabilities : numpy.ndarray
        float32 ``(n_classes, rows, cols)``; channel ``k`` is label ``k + 1``; NaN where
        ``frame`` is NaN.

    Examples
    --------
    >>> from napari_calcite_afm.segmentation import load_default_model
    >>> model = load_default_model()
    >>> frame = np.zeros((96, 96), np.float32)  # heights in nm
    >>> frame[30:60, 30:60] = -5.0
    >>> frame[0, :4] = np.nan  # not recorded
    >>> labels, prob = predict_frame(model, frame, device="cpu")
    >>> labels.shape, labels.dtype, int(labels[0, 0])  # label 0 where not recorded
    ((96, 96), dtype('uint8'), 0)
    >>> set(np.unique(labels[1:])) <= {1, 2}  # 1 multilayer pit, 2 terrace
    True
    >>> prob.shape, bool(np.isnan(prob[:, 0, 0]).all())
    ((2, 96, 96), True)
    """
    frame = np.asarray(frame)
    if frame.ndim != 2:
        raise CalciteAFMError(f"predict_frame expects a 2D frame, got shape {frame.shape}")
    labels, prob = predict_stack(
        model,
        frame[None],
        batch_size=4,
        tile=tile,
        overlap=overlap,
        device=device,
        levelled=levelled,
        closed=closed,
    )
    assert prob is not None
    return labels[0], prob[0]


def predict_stack(
    model: SegmentationModel,
    stack: np.ndarray,
    *,
    batch_size: int = 4,
    tile: int | None = None,
    overlap: int | None = None,
    device: str | torch.device | None = None,
    levelled: bool = False,
    closed: bool = True,
    return_probabilities: bool = True,
    progress: ProgressFn | None = None,
    stop: StopFlag | None = None,
    uncertainty_out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Segment every frame of a stack.

    Parameters
    ----------
    model : SegmentationModel
        The trained model.
    stack : numpy.ndarray
        Heights in nm, ``(frames, rows, cols)`` (a 2D frame is treated as one frame).
    batch_size : int
        Frames (or tiles) per network call.
    tile, overlap, device, levelled, closed
        As in :func:`predict_frame`.
    return_probabilities : bool
        False saves the memory of the ``(frames, n_classes, rows, cols)`` array.
    progress : callable or None
        Called after each batch with ``dict(frame, n_frames, elapsed_s)`` (``frame`` =
        frames done).
    stop : callable or threading.Event or None
        Checked before each batch; when set, the frames not yet segmented keep label 0
        (and probability NaN) and the function returns.
    uncertainty_out : numpy.ndarray, optional
        A float array ``(frames,)`` that receives each frame's mean uncertainty (the
        normalised entropy of :func:`uncertainty` averaged over the recorded pixels;
        :func:`~napari_calcite_afm.segmentation.depth.frame_uncertainty`), also without
        ``return_probabilities``. Frames not segmented are left as they are.

    Returns
    -------
    labels : numpy.ndarray
        uint8 ``(frames, rows, cols)``, values 1..n_classes, 0 where the input is NaN:
        the most probable class once half the tilt of the class weights of training is
        taken back (:func:`class_weight_prior`; three-class models), then the
        closed-depression check (``closed``).
    probabilities : numpy.ndarray or None
        float32 ``(frames, n_classes, rows, cols)``, NaN where the input is NaN; None
        when ``return_probabilities`` is False.

    Examples
    --------
    >>> from napari_calcite_afm.segmentation import load_default_model
    >>> stack = np.zeros((3, 64, 80), np.float32)  # three frames, heights in nm
    >>> done = []
    >>> labels, prob = predict_stack(load_default_model(), stack, batch_size=2,
    ...                              device="cpu", return_probabilities=False,
    ...                              progress=lambda d: done.append(d["frame"]))
    >>> labels.shape, labels.dtype, prob, done
    ((3, 64, 80), dtype('uint8'), None, [2, 3])
    >>> unsure = np.full(3, np.nan)  # each frame's mean uncertainty, 0 to 1
    >>> _ = predict_stack(load_default_model(), stack, device="cpu", uncertainty_out=unsure)
    >>> bool(np.all((unsure >= 0) & (unsure <= 1)))
    True
    """
    stack = np.asarray(stack)
    if stack.ndim == 2:
        stack = stack[None]
    if stack.ndim != 3:
        raise CalciteAFMError(
            f"expected a stack (frames, rows, cols) or a frame (rows, cols), got shape "
            f"{stack.shape}"
        )
    if not np.issubdtype(stack.dtype, np.number) or np.iscomplexobj(stack):
        raise CalciteAFMError(f"heights must be real numbers, got dtype {stack.dtype}")
    n, rows, cols = stack.shape
    if rows < 1 or cols < 1:
        raise CalciteAFMError(f"empty frames of shape {(rows, cols)}")
    if uncertainty_out is not None and np.shape(uncertainty_out) != (n,):
        raise CalciteAFMError(
            f"uncertainty_out must have one value per frame, shape ({n},), got "
            f"{np.shape(uncertainty_out)}"
        )
    batch_size = max(1, int(batch_size))
    overlap = max(32, model.halo) if overlap is None else int(overlap)
    tile = _auto_tile(rows, cols, tile)
    _check_tiling(tile, overlap)
    dev = resolve_device(device)
    module = model.inference_module(dev)
    nc = model.n_classes

    labels = np.zeros((n, rows, cols), dtype=np.uint8)
    probs = np.full((n, nc, rows, cols), np.nan, dtype=np.float32) if return_probabilities else None
    prior = class_weight_prior(model)
    t0 = time.perf_counter()
    # a tiled frame already holds several windows: one frame per batch then
    frames_per_batch = batch_size if tile is None else 1
    with torch.inference_mode():
        for f0 in range(0, n, frames_per_batch):
            if _stopped(stop):
                break
            idx = range(f0, min(f0 + frames_per_batch, n))
            xs, masks, zs = [], [], []
            for i in idx:
                z = np.asarray(stack[i], np.float32) if levelled else model.level(stack[i])
                x, nan_mask = model.normalise(z)
                xs.append(x)
                masks.append(nan_mask)
                zs.append(z)
            p = _run_windows(module, np.stack(xs), tile, overlap, dev, batch_size)
            for k, i in enumerate(idx):
                lab = _labels_of(p[k], prior)
                if masks[k] is not None:
                    lab[masks[k]] = 0
                    p[k][:, masks[k]] = np.nan
                if closed:
                    lab = remove_open_pits(lab, zs[k])
                labels[i] = lab
                if probs is not None:
                    probs[i] = p[k]
                if uncertainty_out is not None:
                    uncertainty_out[i] = _mean_uncertainty(p[k])
            if progress is not None:
                progress(
                    {
                        "frame": idx.stop,
                        "n_frames": n,
                        "elapsed_s": time.perf_counter() - t0,
                    }
                )
    return labels, probs


def class_weight_prior(model: SegmentationModel) -> np.ndarray | None:
    """The class weights a model was trained with, when they were not all equal.

    A network trained with class weights ``w`` (median-frequency balancing, the default
    for three classes) learns probabilities tilted by ``w`` towards the rare classes; its
    labels are taken as the argmax of ``p / sqrt(w)`` (:func:`predict_stack`): half the
    tilt taken back. The whole of it (``p / w``, the untilted posterior) suits a
    well-trained network, but on a briefly trained one it shrank the monolayer pits until
    the closed-depression check removed them (docs/segmentation.md). Returns None for
    unweighted models (the shipped two-class model, older files without the record).

    Examples
    --------
    >>> from napari_calcite_afm.segmentation import load_default_model
    >>> class_weight_prior(load_default_model(2)) is None
    True
    >>> [round(float(w), 2) for w in class_weight_prior(load_default_model(3))]
    [1.0, 0.14, 1.72]
    """
    w = model.info.get("class_weights")
    if w is None or len(w) != model.n_classes:
        return None
    w = np.asarray(w, dtype=np.float32)
    if not (np.all(np.isfinite(w)) and np.all(w > 0)) or np.allclose(w, w[0]):
        return None
    return w


def _labels_of(p: np.ndarray, prior: np.ndarray | None) -> np.ndarray:
    """uint8 labels 1..n_classes of ``(n_classes, rows, cols)`` probabilities, half the
    tilt of the class weights of training (``prior``) taken back."""
    if prior is not None:
        p = p / np.sqrt(prior)[:, None, None]
    return (np.argmax(p, axis=0) + 1).astype(np.uint8)


def _mean_uncertainty(probabilities: np.ndarray) -> float:
    """Mean of :func:`uncertainty` over the finite pixels of one frame (NaN if none)."""
    u = uncertainty(probabilities)
    ok = np.isfinite(u)
    return float(u[ok].astype(np.float64).mean()) if ok.any() else float("nan")


def uncertainty(
    probabilities: np.ndarray, kind: Literal["entropy", "margin"] = "entropy"
) -> np.ndarray:
    """Per-pixel uncertainty of a segmentation, from 0 (certain) to 1.

    Parameters
    ----------
    probabilities : numpy.ndarray
        Class probabilities with the class axis third from last:
        ``(n_classes, rows, cols)`` or ``(frames, n_classes, rows, cols)``.
    kind : {"entropy", "margin"}
        ``"entropy"``: Shannon entropy divided by ``log(n_classes)``; ``"margin"``:
        ``1 - (p_first - p_second)``, one minus the gap between the two most probable
        classes.

    Returns
    -------
    numpy.ndarray
        float32 map without the class axis; NaN where the probabilities are NaN.

    Examples
    --------
    >>> p = np.array([[[0.5, 1.0]], [[0.5, 0.0]]])  # 2 classes, 1 x 2 pixels
    >>> uncertainty(p, "margin")  # undecided, then certain
    array([[1., 0.]], dtype=float32)
    """
    p = np.asarray(probabilities, dtype=np.float32)
    if p.ndim < 3:
        raise CalciteAFMError(
            f"probabilities need a class axis: (n_classes, rows, cols), got shape {p.shape}"
        )
    nc = p.shape[-3]
    if nc < 2:
        raise CalciteAFMError(f"need at least 2 classes, got {nc}")
    if kind == "entropy":
        with np.errstate(divide="ignore", invalid="ignore"):
            plogp = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
        plogp = np.where(np.isnan(p), np.nan, plogp)
        u = -plogp.sum(axis=-3) / np.log(nc)
    elif kind == "margin":
        s = np.sort(p, axis=-3)
        u = 1.0 - (np.take(s, -1, axis=-3) - np.take(s, -2, axis=-3))
    else:
        raise CalciteAFMError(f"kind must be 'entropy' or 'margin', got {kind!r}")
    return np.clip(u, 0.0, 1.0).astype(np.float32)
