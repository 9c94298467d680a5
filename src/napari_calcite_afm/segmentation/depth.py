"""Say when a model is out of its depth: frame uncertainty and the training pixel sizes.

A network trained on synthetic frames can meet a movie unlike anything it learnt from
(other surfaces, noise, pixel sizes). Two signs of it are measured on every movie:

* the **frame uncertainty**, :func:`frame_uncertainty`: the mean normalised entropy of
  the class probabilities over the frame's recorded pixels (0 certain, 1 undecided; see
  :func:`~napari_calcite_afm.segmentation.inference.uncertainty`). It is compared with
  the model's **uncertainty threshold**, :func:`uncertainty_threshold`: the 99th
  percentile (with few frames, the largest) of the frame uncertainties of the frames it
  was validated on, times :data:`CALIBRATION_FACTOR` (:func:`calibrated_threshold`,
  stored in ``model.info["uncertainty_threshold"]`` at training time, or later by
  :func:`calibrate_uncertainty`), and never below :data:`DEFAULT_UNCERTAINTY_THRESHOLD`,
  which also serves model files from before the calibration;
* the **pixel size** against the model's training range
  (:func:`~napari_calcite_afm.segmentation.scale.model_pixel_size_range`; the factor-of-two
  rule of :func:`~napari_calcite_afm.segmentation.scale.pixel_size_warning` applies
  outside it).

:func:`assess_depth` weighs both for a movie and returns a :class:`DepthReport`; the
one-click pipeline puts each frame's uncertainty in its table (column ``uncertainty``)
and the report in its summary JSON, and the command line and the widgets warn once
(:meth:`DepthReport.warn`). Frames smaller than the network's receptive field (231 px
for the shipped U-Net) are not judged: the network sees mostly padding there and is
less sure of itself than on the frames its threshold was measured on.

Examples
--------
>>> p = np.stack([np.full((4, 4), 0.9), np.full((4, 4), 0.1)])  # 2 classes, 4 x 4 px
>>> round(float(frame_uncertainty(p)), 3)  # entropy of (0.9, 0.1) / log 2
0.469
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import CalciteAFMError
from .inference import _mean_uncertainty

__all__ = [
    "CALIBRATION_FACTOR",
    "DEFAULT_UNCERTAINTY_THRESHOLD",
    "DepthReport",
    "assess_depth",
    "calibrate_uncertainty",
    "calibrated_threshold",
    "frame_uncertainty",
    "uncertainty_threshold",
]

#: Frame uncertainty above which a movie looks unlike the training data, by class count,
#: for models that do not record their own (``info["uncertainty_threshold"]``): 1.25
#: times the largest frame uncertainty of the shipped models on 24 standard frames of
#: 512 px (seeds 98,480,000+): 0.082 (2 classes) and 0.19 (3 classes).
DEFAULT_UNCERTAINTY_THRESHOLD: dict[int, float] = {2: 0.10, 3: 0.24}
#: Margin over the in-distribution frames: threshold = factor x their 99th percentile.
CALIBRATION_FACTOR = 1.25


def frame_uncertainty(probabilities: np.ndarray) -> float | np.ndarray:
    """Mean normalised entropy of a frame's class probabilities over its recorded pixels.

    Parameters
    ----------
    probabilities : numpy.ndarray
        ``(n_classes, rows, cols)`` or ``(frames, n_classes, rows, cols)``; NaN where
        nothing was recorded.

    Returns
    -------
    float or numpy.ndarray
        0 (certain) to 1 (undecided): a float for one frame, ``(frames,)`` for a stack
        (NaN for a frame without a recorded pixel).

    Examples
    --------
    >>> p = np.zeros((2, 2, 3, 3))  # two frames, two classes
    >>> p[0, 0], p[0, 1] = 1.0, 0.0  # certain
    >>> p[1] = 0.5  # undecided
    >>> frame_uncertainty(p)
    array([0., 1.])
    """
    p = np.asarray(probabilities)
    if p.ndim == 3:
        return _mean_uncertainty(p)
    if p.ndim == 4:
        return np.array([_mean_uncertainty(f) for f in p], dtype=np.float64)
    raise CalciteAFMError(
        f"probabilities must be (n_classes, rows, cols) or (frames, n_classes, rows, cols), "
        f"got shape {p.shape}"
    )


def calibrated_threshold(
    values: Sequence[float], n_classes: int, factor: float = CALIBRATION_FACTOR
) -> float:
    """The uncertainty threshold from the frame uncertainties of in-distribution frames.

    ``factor`` times their 99th percentile, and at least
    :data:`DEFAULT_UNCERTAINTY_THRESHOLD` (so that a few easy validation frames do not
    make a model cry wolf).

    Parameters
    ----------
    values : sequence of float
        :func:`frame_uncertainty` of frames like the training data (NaN ignored).
    n_classes : int
        2 or 3.
    factor : float
        Margin over the 99th percentile.

    Returns
    -------
    float

    Examples
    --------
    >>> calibrated_threshold([0.05, 0.2], 2)  # 1.25 x 0.1985
    0.248125
    >>> calibrated_threshold([0.01], 2)  # never below the default
    0.1
    """
    if n_classes not in DEFAULT_UNCERTAINTY_THRESHOLD:
        raise CalciteAFMError(f"n_classes must be 2 or 3, got {n_classes!r}")
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    floor = DEFAULT_UNCERTAINTY_THRESHOLD[n_classes]
    if v.size == 0:
        return floor
    return float(max(floor, min(1.0, factor * float(np.quantile(v, 0.99)))))


def calibrate_uncertainty(model, frames, *, levelled: bool = False) -> float:
    """Measure ``model``'s uncertainty threshold on frames like its training data.

    :func:`~napari_calcite_afm.segmentation.training.train_model` does this on its
    validation frames; call it to calibrate on more (``scripts/train_default_model.py``
    on its validation frames), or to give an older model file a threshold. Stores
    ``info["uncertainty_threshold"]`` and ``info["uncertainty_calibration"]``.

    Parameters
    ----------
    model : SegmentationModel
        The model (its ``info`` is updated).
    frames : sequence of numpy.ndarray
        Heights in nm, 2D frames of any sizes (NaN = not recorded).
    levelled : bool
        True when the frames were levelled with the model's settings.

    Returns
    -------
    float
        The threshold (:func:`calibrated_threshold`).

    Examples
    --------
    >>> from napari_calcite_afm.segmentation import load_default_model
    >>> from napari_calcite_afm.synthetic import make_series
    >>> model = load_default_model()
    >>> threshold = calibrate_uncertainty(model, make_series(2, 64, seed=5).raw)
    >>> 0.1 <= threshold <= 1.0, model.info["uncertainty_threshold"] == threshold
    (True, True)
    >>> model.info["uncertainty_calibration"]["frames"]
    2
    """
    from .inference import predict_frame

    values, sides = [], []
    for frame in frames:
        _, prob = predict_frame(model, np.asarray(frame), levelled=levelled)
        values.append(frame_uncertainty(prob))
        sides.append(min(np.shape(frame)))
    return _store(model, values, sides, "given frames")


def _store(model, values: list[float], sides: list[int], on: str) -> float:
    """Write the threshold measured from ``values`` into ``model.info``; return it."""
    finite = [v for v in values if np.isfinite(v)]
    threshold = calibrated_threshold(values, model.n_classes)
    model.info["uncertainty_threshold"] = threshold
    model.info["uncertainty_calibration"] = {
        "on": on,
        "frames": len(finite),
        "frame_px": int(np.median(sides)) if sides else None,
        "q99": float(np.quantile(finite, 0.99)) if finite else None,
        "factor": CALIBRATION_FACTOR,
    }
    return threshold


def uncertainty_threshold(model) -> tuple[float, bool]:
    """The model's uncertainty threshold and whether it is assumed (not in the file).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> uncertainty_threshold(SimpleNamespace(info={"uncertainty_threshold": 0.2}, n_classes=2))
    (0.2, False)
    >>> uncertainty_threshold(SimpleNamespace(info={}, n_classes=3))  # an older file
    (0.24, True)
    """
    info = getattr(model, "info", None) or {}
    try:
        value = float(info.get("uncertainty_threshold"))
        if 0.0 < value <= 1.0:
            return value, False
    except (TypeError, ValueError):
        pass
    return DEFAULT_UNCERTAINTY_THRESHOLD.get(int(model.n_classes), 0.1), True


def _judged_size(model) -> int:
    """Smallest frame side (px) whose uncertainty is compared with the threshold."""
    rf = int(getattr(model, "receptive_field", 0) or 0)
    calib = (getattr(model, "info", None) or {}).get("uncertainty_calibration") or {}
    try:
        frame_px = int(calib.get("frame_px"))
    except (TypeError, ValueError):
        frame_px = rf
    return min(rf, frame_px)


@dataclass
class DepthReport:
    """Whether a movie looks like the data a model learnt from (:func:`assess_depth`).

    Attributes
    ----------
    frame_uncertainty : list of float
        :func:`frame_uncertainty` of every frame (NaN for frames not segmented).
    mean_uncertainty : float
        Their mean (NaN when none).
    uncertainty_threshold : float
        The model's threshold (:func:`uncertainty_threshold`).
    threshold_assumed : bool
        True when the model file does not record one.
    uncertainty_judged : bool
        False when the frames are smaller than the network's receptive field (their
        uncertainty is not compared).
    frames_above : list of int
        Frames whose uncertainty exceeds the threshold.
    pixel_size_nm : float
        The movie's pixel size, nm.
    model_pixel_size_range_nm : list of float or None
        ``[smallest, largest]`` training pixel size of the model, nm (None: unknown).
    out_of_depth : bool
        True when the mean uncertainty exceeds the threshold or the pixel size is more
        than twice outside the training range.
    reasons : list of str
        Why, in words (empty when ``out_of_depth`` is False; a note when not judged).
    what : str
        The movie, in words.
    pixel_size_out : bool
        True when the pixel size is more than twice outside the training range (its own
        warning, :func:`~napari_calcite_afm.segmentation.scale.pixel_size_warning`, says
        so where the movie is read).
    """

    frame_uncertainty: list[float]
    mean_uncertainty: float
    uncertainty_threshold: float
    threshold_assumed: bool
    uncertainty_judged: bool
    frames_above: list[int]
    pixel_size_nm: float
    model_pixel_size_range_nm: list[float] | None
    out_of_depth: bool
    reasons: list[str] = field(default_factory=list)
    what: str = "the movie"
    pixel_size_out: bool = False

    def summary(self) -> dict:
        """The keys of a run's summary JSON (``mean_uncertainty``, ``out_of_depth``...)."""
        return {
            "model_pixel_size_range_nm": self.model_pixel_size_range_nm,
            "mean_uncertainty": self.mean_uncertainty,
            "uncertainty_threshold": self.uncertainty_threshold,
            "uncertainty_threshold_assumed": self.threshold_assumed,
            "uncertainty_judged": self.uncertainty_judged,
            "frames_above_uncertainty_threshold": list(self.frames_above),
            "out_of_depth": self.out_of_depth,
            "out_of_depth_reasons": list(self.reasons),
        }

    def uncertainty_warning(self) -> str | None:
        """The warning about the uncertainty, or None when the model is sure enough."""
        if not (self.uncertainty_judged and self.mean_uncertainty > self.uncertainty_threshold):
            return None
        n = len(self.frame_uncertainty)
        return (
            f"the model is unsure about {self.what}: mean uncertainty "
            f"{self.mean_uncertainty:.2f} ({len(self.frames_above)} of {n} frames above "
            f"{self.uncertainty_threshold:.2f}, the most its validation frames reach). The "
            "movie looks unlike the data the model learnt from: check the segmentation, and "
            "fine-tune the model on a few scribbled frames (Labels, then Train starting from "
            "the shipped model; calcite-afm train --init default)."
        )

    def warn(self, stacklevel: int = 2) -> str | None:
        """Emit :meth:`uncertainty_warning` as a ``UserWarning`` (once); return its text.

        The pixel size has its own warning
        (:func:`~napari_calcite_afm.segmentation.scale.pixel_size_warning`), emitted where
        the movie is read: when it fires, this one stays silent (one warning per movie).
        """
        text = self.uncertainty_warning()
        if text is None or self.pixel_size_out:
            return None
        warnings.warn(text, UserWarning, stacklevel=stacklevel + 1)
        return text

    def record(self, summary: dict, table: list[dict] | None = None) -> None:
        """Write the report into a run's summary (and each frame's ``uncertainty`` into
        its table rows, by their ``frame``)."""
        summary.update(self.summary())
        text = None if self.pixel_size_out else self.uncertainty_warning()
        if text is not None:
            summary.setdefault("warnings", []).append(text)
        for row in table or []:
            frame = int(row["frame"])
            if 0 <= frame < len(self.frame_uncertainty):
                row["uncertainty"] = float(self.frame_uncertainty[frame])


def assess_depth(
    model,
    pixel_size_nm: float | None,
    frame_values: Sequence[float],
    frame_shape: tuple[int, int],
    what: str = "the movie",
) -> DepthReport:
    """Whether a movie looks like the data ``model`` learnt from.

    Parameters
    ----------
    model : SegmentationModel
        The model that segmented the movie.
    pixel_size_nm : float or None
        The movie's pixel size, nm (None: unknown).
    frame_values : sequence of float
        :func:`frame_uncertainty` of each frame (NaN for frames not segmented).
    frame_shape : tuple of int
        ``(rows, cols)`` of the frames, pixels.
    what : str
        The movie, in words (e.g. ``"'movie.tif'"``).

    Returns
    -------
    DepthReport

    Examples
    --------
    >>> from napari_calcite_afm.segmentation import load_default_model
    >>> model = load_default_model()
    >>> report = assess_depth(model, 11.7, [0.03, 0.05], (512, 512))
    >>> report.out_of_depth, report.mean_uncertainty
    (False, 0.04)
    >>> report = assess_depth(model, 11.7, [0.4, 0.5], (512, 512), "'hs.tif'")
    >>> report.out_of_depth, report.frames_above
    (True, [0, 1])
    >>> print(report.uncertainty_warning())  # doctest: +ELLIPSIS
    the model is unsure about 'hs.tif': mean uncertainty 0.45 (2 of 2 frames above 0.10, ...
    """
    from .scale import model_pixel_size_range, pixel_size_warning

    values = [float(v) for v in np.asarray(frame_values, dtype=np.float64).ravel()]
    finite = [v for v in values if np.isfinite(v)]
    mean = float(np.mean(finite)) if finite else float("nan")
    threshold, assumed = uncertainty_threshold(model)
    judged = bool(finite) and min(frame_shape) >= _judged_size(model)
    above = [i for i, v in enumerate(values) if judged and np.isfinite(v) and v > threshold]
    span = model_pixel_size_range(model)
    reasons: list[str] = []
    if judged and mean > threshold:
        reasons.append(
            f"mean frame uncertainty {mean:.3f} above the model's threshold {threshold:.3f}"
        )
    elif finite and not judged:
        reasons.append(
            f"uncertainty not judged: frames of {frame_shape[0]} x {frame_shape[1]} px are "
            f"smaller than the model's receptive field ({_judged_size(model)} px)"
        )
    pixel_out = False
    if pixel_size_nm is not None and span is not None:
        text = pixel_size_warning(model, float(pixel_size_nm), what)
        if text:
            pixel_out = True
            reasons.append(
                f"pixel size {float(pixel_size_nm):.3g} nm more than twice outside the "
                f"training range {span[0]:.3g}-{span[1]:.3g} nm"
            )
    report = DepthReport(
        frame_uncertainty=values,
        mean_uncertainty=mean,
        uncertainty_threshold=threshold,
        threshold_assumed=assumed,
        uncertainty_judged=judged,
        frames_above=above,
        pixel_size_nm=float("nan") if pixel_size_nm is None else float(pixel_size_nm),
        model_pixel_size_range_nm=None if span is None else [float(span[0]), float(span[1])],
        out_of_depth=(judged and mean > threshold) or pixel_out,
        reasons=reasons,
        what=what,
        pixel_size_out=pixel_out,
    )
    return report


def _calibration(model, frames: list, on: str) -> None:
    """Store the uncertainty threshold measured on training ``frames`` (``data._Frame``:
    the network's input features, channels last) in ``model.info``, on the CPU."""
    import torch

    values, sides = [], []
    with torch.inference_mode():
        for fr in frames:
            rows, cols = fr.shape or fr.y.shape
            x = torch.from_numpy(fr.x[None]).permute(0, 3, 1, 2).float()
            scores = getattr(model.net, "forward_features", model.net)(x)
            p = torch.softmax(scores, dim=1)[0, :, :rows, :cols].numpy()
            if fr.nan_mask is not None:
                p[:, fr.nan_mask] = np.nan
            values.append(frame_uncertainty(p))
            sides.append(min(rows, cols))
    _store(model, values, sides, on)
