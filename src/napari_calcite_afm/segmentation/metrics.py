"""Segmentation metrics over labelled pixels.

:func:`confusion_matrix` counts the pixels labelled in both the truth and the
prediction (label 0, unlabelled or not recorded, is left out); :func:`pixel_accuracy`
(Matlab's GlobalAccuracy), :func:`mean_class_accuracy` (Matlab's "mean accuracy", the
mean per-class recall) and :func:`iou_per_class` read it; :func:`segmentation_metrics`
gives them all at once.
"""

from __future__ import annotations

import numpy as np

from ..errors import CalciteAFMError

__all__ = [
    "confusion_matrix",
    "iou_per_class",
    "mean_class_accuracy",
    "pixel_accuracy",
    "segmentation_metrics",
]


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Pixel confusion matrix over the labelled pixels.

    Parameters
    ----------
    truth, predicted : numpy.ndarray
        Label arrays of one shape, values 0..n_classes. Pixels where either is 0
        (unlabelled / not recorded) are left out.
    n_classes : int
        Number of classes (labels 1..n_classes).

    Returns
    -------
    numpy.ndarray
        int64 ``(n_classes, n_classes)``; row = true label - 1, column = predicted
        label - 1.

    Examples
    --------
    >>> confusion_matrix(np.array([1, 1, 2, 0]), np.array([1, 2, 2, 2]), 2)
    array([[1, 1],
           [0, 1]])
    """
    t = np.asarray(truth)
    p = np.asarray(predicted)
    if t.shape != p.shape:
        raise CalciteAFMError(f"truth shape {t.shape} differs from prediction shape {p.shape}")
    t = t.astype(np.int64).ravel()
    p = p.astype(np.int64).ravel()
    keep = (t > 0) & (p > 0) & (t <= n_classes) & (p <= n_classes)
    idx = (t[keep] - 1) * n_classes + (p[keep] - 1)
    return np.bincount(idx, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def pixel_accuracy(cm: np.ndarray) -> float:
    """Fraction of labelled pixels classified correctly (Matlab's GlobalAccuracy).

    Parameters
    ----------
    cm : numpy.ndarray
        Confusion matrix from :func:`confusion_matrix`.

    Returns
    -------
    float
        NaN when there are no labelled pixels.

    Examples
    --------
    >>> pixel_accuracy(np.array([[1, 1], [0, 2]]))  # 3 of 4 pixels right
    0.75
    """
    total = cm.sum()
    return float(np.trace(cm) / total) if total else float("nan")


def mean_class_accuracy(cm: np.ndarray) -> float:
    """Per-class recall averaged over the classes present (Matlab's "mean accuracy").

    Parameters
    ----------
    cm : numpy.ndarray
        Confusion matrix from :func:`confusion_matrix`.

    Returns
    -------
    float
        NaN when there are no labelled pixels.

    Examples
    --------
    >>> mean_class_accuracy(np.array([[1, 1], [0, 2]]))  # recalls 1/2 and 2/2
    0.75
    """
    support = cm.sum(axis=1)
    present = support > 0
    if not present.any():
        return float("nan")
    recall = np.diag(cm)[present] / support[present]
    return float(recall.mean())


def iou_per_class(cm: np.ndarray) -> np.ndarray:
    """Intersection over union of each class.

    Parameters
    ----------
    cm : numpy.ndarray
        Confusion matrix from :func:`confusion_matrix`.

    Returns
    -------
    numpy.ndarray
        float64 ``(n_classes,)``; entry ``k`` is label ``k + 1``; NaN for a class neither
        present nor predicted.

    Examples
    --------
    >>> iou_per_class(np.array([[1, 1], [0, 2]]))  # 1 / (1 + 1), 2 / (2 + 1)
    array([0.5       , 0.66666667])
    """
    tp = np.diag(cm).astype(np.float64)
    denom = cm.sum(axis=0) + cm.sum(axis=1) - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom > 0, tp / np.maximum(denom, 1), np.nan)


def segmentation_metrics(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> dict:
    """All metrics at once.

    Parameters
    ----------
    truth, predicted : numpy.ndarray
        Label arrays (see :func:`confusion_matrix`).
    n_classes : int
        Number of classes.

    Returns
    -------
    dict
        ``pixel_accuracy``, ``mean_accuracy`` (mean class recall), ``iou`` (list per
        label 1..n_classes), ``mean_iou``, ``confusion`` (nested list), ``n_pixels``.

    Examples
    --------
    >>> truth = np.array([[1, 1, 2, 2], [0, 2, 2, 2]])  # 0: unlabelled, not scored
    >>> pred = np.array([[1, 2, 2, 2], [1, 2, 2, 2]])
    >>> m = segmentation_metrics(truth, pred, 2)
    >>> m["n_pixels"], round(m["pixel_accuracy"], 3), float(m["mean_accuracy"])
    (7, 0.857, 0.75)
    >>> [round(v, 3) for v in m["iou"]]  # multilayer pit, terrace
    [0.5, 0.833]
    """
    cm = confusion_matrix(truth, predicted, n_classes)
    iou = iou_per_class(cm)
    return {
        "pixel_accuracy": pixel_accuracy(cm),
        "mean_accuracy": mean_class_accuracy(cm),
        "iou": [float(v) for v in iou],
        "mean_iou": float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan"),
        "confusion": cm.tolist(),
        "n_pixels": int(cm.sum()),
    }
