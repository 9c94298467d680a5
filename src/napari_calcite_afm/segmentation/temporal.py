"""Time-consistent segmentation: a temporal prior on the class probabilities of a movie.

Etch pits do not vanish from one frame to the next. On a *registered* movie (every
frame on frame 0's pixel grid, :func:`napari_calcite_afm.level.register_stack`) the
class probabilities of :func:`~napari_calcite_afm.segmentation.predict_stack` are
averaged over the frames ``t - h .. t + h`` (NaN-aware: a frame that did not record a
pixel does not vote there) before the argmax. Optionally a *monotone* prior holds a
pixel that was a multilayer pit in the ``monotone`` frames before ``t`` as a pit at
``t`` (dissolution deepens pits, it does not fill them).

The measured effect on held-out movies is in docs/kinetics.md ("Time-consistent
segmentation") and ``benchmarks/temporal_segmentation.py``.
"""

from __future__ import annotations

import numpy as np

from ..errors import CalciteAFMError
from .closed import remove_open_pits

__all__ = ["temporal_prior"]

_METHODS = ("mean", "geometric")


def _check(probabilities, window: int, method: str, monotone: int) -> np.ndarray:
    p = np.asarray(probabilities)
    if p.ndim != 4:
        raise CalciteAFMError(
            f"expected probabilities (frames, classes, rows, cols), got shape {p.shape}"
        )
    if p.shape[1] < 2:
        raise CalciteAFMError(f"expected at least 2 classes, got {p.shape[1]}")
    if not np.issubdtype(p.dtype, np.floating):
        raise CalciteAFMError(f"probabilities must be floats, got dtype {p.dtype}")
    if int(window) != window or window < 1 or window % 2 == 0:
        raise CalciteAFMError(f"window must be an odd number of frames >= 1, got {window}")
    if method not in _METHODS:
        raise CalciteAFMError(f"method must be one of {_METHODS}, got {method!r}")
    if int(monotone) != monotone or monotone < 0:
        raise CalciteAFMError(f"monotone must be a number of frames >= 0, got {monotone}")
    return p


def _window_mean(p: np.ndarray, half: int, geometric: bool) -> np.ndarray:
    """NaN-aware mean (of the logs, when ``geometric``) over frames ``t-half..t+half``."""
    n = p.shape[0]
    vals = np.log(np.clip(p, 1e-6, 1.0)) if geometric else p
    total = np.zeros(p.shape, np.float64)
    count = np.zeros(p.shape, np.float32)
    for d in range(-half, half + 1):
        lo, hi = max(0, -d), min(n, n - d)
        if lo >= hi:
            continue
        src = vals[lo + d : hi + d]
        ok = np.isfinite(src)
        total[lo:hi] += np.where(ok, src, 0.0)
        count[lo:hi] += ok
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (total / count).astype(np.float32)
    if geometric:
        out = np.exp(out)
        out /= out.sum(axis=1, keepdims=True)
    return out


def temporal_prior(
    probabilities: np.ndarray,
    *,
    window: int = 3,
    method: str = "mean",
    monotone: int = 0,
    pit_label: int = 1,
    heights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Labels of a registered movie from class probabilities averaged over time.

    Parameters
    ----------
    probabilities : numpy.ndarray
        float ``(frames, n_classes, rows, cols)``, class ``k`` is label ``k + 1``, NaN
        where a frame did not record the pixel (as
        :func:`~napari_calcite_afm.segmentation.predict_stack` returns them), on one
        pixel grid (a registered movie).
    window : int
        Odd number of frames averaged, centred on each frame (1: no temporal prior).
        Frames at the ends average the frames that exist.
    method : {"mean", "geometric"}
        Arithmetic mean of the probabilities, or their geometric mean renormalised
        over the classes (a product of the frames' evidence).
    monotone : int
        0: off. ``k >= 1``: a pixel labelled ``pit_label`` in each of the ``k`` frames
        before ``t`` (after the averaging and this rule) is labelled ``pit_label`` at
        ``t`` where frame ``t`` recorded it.
    pit_label : int
        The label the monotone prior holds (1: multilayer pit).
    heights : numpy.ndarray, optional
        The registered, levelled heights (nm, ``(frames, rows, cols)``): the labels then
        pass the closed-depression check of ``predict_stack``
        (:func:`~napari_calcite_afm.segmentation.closed.remove_open_pits`). None: the
        averaged probabilities' labels as they are.

    Returns
    -------
    labels : numpy.ndarray
        uint8 ``(frames, rows, cols)``, 1..n_classes; 0 where frame ``t`` did not
        record the pixel (its own probabilities are NaN), whatever its neighbours say.
    probabilities : numpy.ndarray
        float32, the averaged probabilities, NaN where ``labels`` is 0.

    Examples
    --------
    A pit pixel (label 1) that flickers to terrace in frame 1 is restored:

    >>> import numpy as np
    >>> p = np.zeros((3, 2, 1, 1), np.float32)
    >>> p[:, 0] = np.array([0.9, 0.4, 0.9]).reshape(3, 1, 1)  # P(pit) per frame
    >>> p[:, 1] = 1 - p[:, 0]
    >>> labels, smooth = temporal_prior(p)
    >>> labels.ravel().tolist(), round(float(smooth[1, 0, 0, 0]), 3)
    ([1, 1, 1], 0.733)
    >>> temporal_prior(p, window=1)[0].ravel().tolist()  # no prior: the flicker stays
    [1, 2, 1]
    """
    p = _check(probabilities, window, method, monotone)
    recorded = np.isfinite(p).all(axis=1)
    smooth = _window_mean(p, int(window) // 2, method == "geometric")
    smooth[np.broadcast_to(~recorded[:, None], smooth.shape)] = np.nan
    filled = np.where(np.isfinite(smooth), smooth, -np.inf)
    labels = (np.argmax(filled, axis=1) + 1).astype(np.uint8)
    labels[~recorded] = 0
    k = int(monotone)
    if k:
        held = np.zeros(labels.shape[1:], np.int32)  # consecutive pit frames so far
        for t in range(labels.shape[0]):
            if t >= k:
                labels[t][(held >= k) & recorded[t]] = pit_label
            is_pit = labels[t] == pit_label
            held = np.where(is_pit, held + 1, np.where(recorded[t], 0, held))
    if heights is not None:
        z = np.asarray(heights)
        if z.shape != labels.shape:
            raise CalciteAFMError(
                f"heights {z.shape} do not match the probabilities' frames {labels.shape}"
            )
        labels = np.stack([remove_open_pits(lab, f) for lab, f in zip(labels, z)])
    return labels, smooth
