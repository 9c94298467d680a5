"""Fit the multimodal Gaussian model to every frame of a labelled series: :func:`fit_series`.

The fitting half of :func:`napari_calcite_afm.pipeline.run_pipeline` and all of
``calcite-afm fit``: one :func:`napari_calcite_afm.stats.fit_frame` per frame (frames
side by side on threads), plus the pit count, mean pit area and step retreat of each
frame, as rows of the results table (:func:`napari_calcite_afm.outputs.table_columns`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ._util import Cancelled, ProgressFn, StopFlag, available_cpus, stop_requested, thread_map
from .checks import check_lags
from .errors import CalciteAFMError
from .outputs import table_columns
from .stats import FrameFit, fit_frame
from .surface import mean_retreat_nm, pit_measures

__all__ = ["fit_series"]


def fit_series(
    heights: np.ndarray,
    labels: np.ndarray,
    *,
    pixel_size_nm: float,
    frame_times_s: Sequence[float] | None = None,
    lags: Sequence[int] = (1, 2, 4, 8),
    axis: str = "both",
    n_classes: int = 2,
    em: bool = True,
    min_pit_area_px: int = 4,
    progress: ProgressFn | None = None,
    stop: StopFlag | None = None,
    workers: int | None = None,
    increment_model: str = "gaussian",
) -> tuple[list[dict], list[FrameFit]]:
    """Fit the multimodal Gaussian model to every frame of a labelled stack.

    Parameters
    ----------
    heights : numpy.ndarray
        ``(frames, rows, cols)`` levelled, registered heights in nm (NaN = no data).
    labels : numpy.ndarray
        Labels of the same shape (0 ignored, 1 A, 2 B, 3 monolayer pit).
    pixel_size_nm : float
        Pixel size, nm.
    frame_times_s : sequence of float, optional
        Time of each frame, s (for ``time_s`` and the retreat rate).
    lags, axis, n_classes, em, increment_model
        As in :func:`napari_calcite_afm.stats.fit_frame`.
    min_pit_area_px : int
        Smallest pit counted, pixels.
    progress : callable, optional
        Called after each frame with ``dict(stage="fit", frame, n_frames)``.
    stop : callable or threading.Event, optional
        When set, raises :class:`Cancelled` before the next frame.
    workers : int or None
        Frames fitted side by side on threads (None: one per available CPU core). The
        results do not depend on it.

    Returns
    -------
    rows : list of dict
        The results table (columns :func:`table_columns`).
    fits : list of FrameFit
        One fit per frame.

    Examples
    --------
    >>> from napari_calcite_afm.synthetic import make_series
    >>> s = make_series(2, 64, seed=3)
    >>> rows, fits = fit_series(s.clean, s.labels, pixel_size_nm=s.pixel_size_nm, lags=(1, 4))
    >>> len(rows), len(fits), [r["lag_px"] for r in rows]
    (4, 2, [1, 4, 1, 4])
    """
    heights = np.asarray(heights)
    labels = np.asarray(labels)
    if heights.ndim == 2:
        heights, labels = heights[None], labels[None]
    if heights.shape != labels.shape:
        raise CalciteAFMError(
            f"labels of shape {labels.shape} do not match heights of shape {heights.shape}"
        )
    lags = check_lags(lags, heights.shape, axis)
    n = heights.shape[0]
    times = np.full(n, np.nan) if frame_times_s is None else np.asarray(frame_times_s, dtype=float)
    rows: list[dict] = []
    fits: list[FrameFit] = []
    n_workers = available_cpus() if workers is None else int(workers)
    # frames side by side, each fit on one thread (the frames are the parallel work)
    inner = 1 if n_workers > 1 and n > 1 else None

    def one(i: int):
        return _fit_one(
            heights, labels, i, times, pixel_size_nm, lags, axis, n_classes, em,
            min_pit_area_px, workers=inner, increment_model=increment_model,
        )  # fmt: skip

    results = thread_map(one, range(n), n_workers)
    try:
        for i in range(n):
            if stop_requested(stop):
                raise Cancelled(f"stopped after {i} of {n} frames")
            rows_i, fit = next(results)
            rows.extend(rows_i)
            fits.append(fit)
            if progress is not None:
                progress({"stage": "fit", "frame": i, "n_frames": n})
    finally:
        results.close()
    return rows, fits


def _fit_one(
    heights, labels, i, times, pixel_size_nm, lags, axis, n_classes, em, min_pit, workers=None,
    increment_model="gaussian",
):  # fmt: skip
    fit = fit_frame(
        heights[i],
        labels[i],
        lags=tuple(lags),
        axis=axis,
        pixel_size_nm=pixel_size_nm,
        n_classes=n_classes,
        em=em,
        workers=workers,
        increment_model=increment_model,
    )
    count, area = pit_measures(labels[i], pixel_size_nm, pit_label=1, min_area_px=min_pit)
    retreat = math.nan
    if i > 0:
        dt_min = (times[i] - times[i - 1]) / 60.0
        if np.isfinite(dt_min) and dt_min > 0:
            retreat = mean_retreat_nm(heights[i - 1], heights[i]) / dt_min
    extra = {"pit_count": count, "mean_pit_area_nm2": area, "retreat_nm_per_min": retreat}
    cols = table_columns(n_classes, increment_model)
    out = []
    for row in fit.to_rows(frame=i, time_s=float(times[i])):
        row.update(extra)
        out.append({c: row.get(c, math.nan) for c in cols})
    return out, fit
