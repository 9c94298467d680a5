"""Fit the multimodal Gaussian model to a frame (:func:`fit_frame`) or a stack.

:func:`fit_frame` checks its input, computes ``Z'`` and the region moments, then runs
the height goodness of fit (with the EM comparison) and each lag as tasks, on up to
``workers`` threads, each thread with its own scratch arrays. :func:`fit_stack` fits the
frames of a stack one after the other, sharing the scratch arrays.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> labels = np.full((64, 64), 2, dtype=np.uint8)
>>> labels[16:40, 16:40] = 1
>>> z = np.where(labels == 1, -5.0, 0.0) + rng.normal(0, 0.3, labels.shape)
>>> fit = fit_frame(z, labels, lags=(1, 2), pixel_size_nm=11.7)
>>> round(fit.c, 4), [ls.lag_nm for ls in fit.lags]
(0.1406, [11.7, 23.4])
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from .._util import available_cpus, thread_map
from .._util import stop_requested as _stopped
from ..errors import StatsError
from ._checks import _as_frame, _check_axis, _check_lags, _check_n_classes, _class_codes
from ._workspace import _thread_workspace, _Workspace
from .em import _em_nan, _em_on_binned
from .goodness import _binned_distances, _binned_ks
from .gsg_frame import _fit_frame_gsg, _nan_gsg
from .gsg_results import GSG_METHODS
from .lags import _fit_lag, _FrameRows, _nan_lag
from .mixtures import _loglik, _model_cdfs
from .results import REGION_NAMES, FrameFit, RegionParams
from .sample import _Binned

#: The increment models of :func:`fit_frame`: the Gaussian mixture, and with it the GSG one.
INCREMENT_MODELS = ("gaussian", "gsg")


def fit_frame(
    z,
    labels,
    lags: int | Sequence[int] = (1, 2, 4, 8),
    *,
    axis: str = "both",
    pixel_size_nm: float = 1.0,
    n_classes: int = 2,
    min_pixels: int = 10,
    em: bool = True,
    histograms: bool = True,
    workers: int | None = None,
    increment_model: str = "gaussian",
    gsg_method: str = "ml",
    gsg_steps: bool = True,
    _workspace: _Workspace | None = None,
) -> FrameFit:
    """Fit the multimodal Gaussian model to one frame and its segmentation.

    Parameters
    ----------
    z : array_like
        ``(rows, cols)`` levelled heights, nm. NaN pixels are ignored.
    labels : array_like
        ``(rows, cols)`` integer labels: 0 unlabelled (ignored), 1 multilayer pit (A),
        2 terrace (B), 3 monolayer etch pit (M).
    lags : int or sequence of int
        Lags ``s`` in pixels (>= 1; duplicates dropped, order kept).
    axis : {"both", "x", "y"}
        Direction of the pairs: ``"x"`` along rows (columns index, fast scan axis),
        ``"y"`` along columns (rows index), ``"both"`` pools the pairs of both.
    pixel_size_nm : float
        Pixel size, nm per pixel (for ``lag_nm``).
    n_classes : {2, 3}
        2: label 3 counts as B (terrace including monolayer pits); 3: three modes A, B, M.
    min_pixels : int
        A region with fewer pixels (or a lag with fewer same-region pairs) gets NaN
        parameters (or NaN ``rho``) and a flag.
    em : bool
        Also fit a two-component mixture to ``Z'`` by EM (:attr:`FrameFit.em`).
    histograms : bool
        Keep the sample histograms in the result (the distances are computed anyway).
    workers : int or None
        Threads that share the height goodness of fit (with the EM fit) and the lags.
        None: one per available CPU core, at most one per task; 1: everything in the
        calling thread (what a caller that already runs frames in parallel wants). The
        results do not depend on it.
    increment_model : {"gaussian", "gsg"}
        ``"gsg"`` also fits the multimodal generalized sub-Gaussian model
        (:attr:`FrameFit.gsg`, docs/statistics.md "GSG"); the Gaussian results are the
        same either way.
    gsg_method : {"ml", "moments"}
        GSG estimator: maximum likelihood (default) or the method of moments.
    gsg_steps : bool
        Treat step crossings as a third kind of same-region pair in the GSG model (used
        only where the smallest lag's increments show a second peak at the step height).

    Returns
    -------
    FrameFit
        Parameters, goodness of fit and flags; see :meth:`FrameFit.to_rows` for a table.

    Raises
    ------
    StatsError
        (a :class:`~napari_calcite_afm.io.CalciteAFMError`) for a frame that is not 2D,
        a labels shape mismatch, label values outside 0-3, bad lags, axis, n_classes,
        pixel size or min_pixels.

    Notes
    -----
    Valid pixels are the finite, labelled ones; ``<Z>`` and every statistic use only
    them, so ``c mu_A + (1 - c) mu_B = 0`` and ``Var Z' = c sigma_A^2 + (1 - c)
    sigma_B^2 + c (1 - c)(mu_A - mu_B)^2`` hold to rounding. A pair counts when both
    ends are valid. Pair sums are contiguous dot products over a column-padded copy of the
    frame; the KS distances are exact over every value (no subsampling). ``_workspace`` is
    private: :func:`fit_stack` passes one so that the frames share their scratch arrays.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> labels = np.where(rng.random((128, 128)) < 0.3, 1, 2).astype(np.uint8)
    >>> z = np.where(labels == 1, -4.0, 0.0) + rng.normal(0, 0.5, labels.shape)
    >>> fit = fit_frame(z, labels, lags=(1, 4))
    >>> abs(fit.c * fit.regions[0].mu + (1 - fit.c) * fit.regions[1].mu) < 1e-12
    True
    >>> float(np.round(fit.lag(1).p.sum(), 12))
    1.0
    """
    k, lag_list, px, min_pixels = _check_fit_args(n_classes, axis, lags, pixel_size_nm, min_pixels)
    _check_gsg_args(increment_model, gsg_method)
    zf = _as_frame(z)
    code = _class_codes(labels, zf.shape, k)
    finite = np.isfinite(zf)
    if not bool(finite.all()):
        code[~finite] = k
    valid = code < k
    n_valid = int(np.count_nonzero(valid))
    if n_valid == 0:
        fit = _empty_fit(k, axis, px, lag_list, em)
        if increment_model == "gsg":
            fit.gsg = _nan_gsg(fit, gsg_method, gsg_steps, "no valid labelled pixels")
        return fit
    all_valid = n_valid == zf.size

    # ---- heights: Z', per-region moments
    zvalid = zf if all_valid else zf[valid]
    constant_frame = bool(zvalid.min() == zvalid.max())
    # a constant frame gets Z' = 0 exactly (its mean could differ from the value by rounding)
    mean = float(zvalid.flat[0]) if constant_frame else float(zvalid.mean())
    del zvalid
    zp = zf
    zp -= mean
    if all_valid:
        zp0 = zp
    else:
        zp[~valid] = np.nan
        zp0 = np.where(valid, zp, 0.0)
    work = _workspace if _workspace is not None else _thread_workspace()
    stack, counts, mu, sigma = _region_rows(code, zp0, k, lag_list, axis, work)
    hsample = zp.ravel() if all_valid else zp[valid]
    flags: list[str] = []
    if constant_frame:
        flags.append("constant frame (all valid heights equal): sigma 0, rho undefined")
    regions = _region_params(
        counts, mu, sigma, n_valid, min_pixels, constant_frame, mean, zp0, code, flags
    )

    # ---- height model: goodness of fit (one task), then one task per lag
    fit = FrameFit(k, axis, px, mean, n_valid, regions, [], flags=flags)
    rows, width = stack.shape[1:]
    frame = _FrameRows(
        znan=zp,  # NaN at invalid pixels
        flat=stack.reshape(3 * k, rows * width),
        width=width,
        regions=regions,
        axis=axis,
        pixel_size_nm=px,
        min_pixels=min_pixels,
        all_valid=all_valid,
        histograms=histograms,
    )
    # with the GSG model, each task keeps its binned sample (in a workspace of its own)
    keep: dict | None = {} if increment_model == "gsg" else None
    tasks: list[Callable[[_Workspace], Any]] = [_height_task(fit, hsample, histograms, em, keep)]
    if keep is None:
        tasks += [partial(_fit_lag, s, frame) for s in lag_list]
    else:
        tasks += [partial(_fit_lag_kept, s, frame, keep) for s in lag_list]
    results = _run_tasks(tasks, workers, work)
    fit.lags.extend(results[1:])
    if keep is not None:
        fit.gsg = _fit_frame_gsg(
            fit, code, keep, method=gsg_method, steps=gsg_steps, min_pixels=min_pixels,
            run=lambda ts: _run_tasks(ts, workers, work),
        )  # fmt: skip
    return fit


def _fit_lag_kept(s: int, frame: _FrameRows, keep: dict, _work: _Workspace) -> Any:
    """:func:`_fit_lag` in a fresh workspace, its binned sample kept in ``keep[s]``."""
    return _fit_lag(s, frame, _Workspace(), keep)


def _check_gsg_args(increment_model, gsg_method) -> None:
    """Raise :class:`StatsError` for an unknown increment model or GSG method."""
    if increment_model not in INCREMENT_MODELS:
        raise StatsError(
            f"increment_model must be one of {INCREMENT_MODELS}, got {increment_model!r}"
        )
    if gsg_method not in GSG_METHODS:
        raise StatsError(f"gsg_method must be one of {GSG_METHODS}, got {gsg_method!r}")


def _check_fit_args(n_classes, axis, lags, pixel_size_nm, min_pixels):
    """Checked ``(n_classes, lags, pixel_size_nm, min_pixels)`` of :func:`fit_frame`."""
    k = _check_n_classes(n_classes)
    _check_axis(axis)
    lag_list = _check_lags(lags)
    try:
        px = float(pixel_size_nm)
    except (TypeError, ValueError):
        raise StatsError(
            f"pixel_size_nm must be a positive number, got {pixel_size_nm!r}"
        ) from None
    if not (math.isfinite(px) and px > 0):
        raise StatsError(f"pixel_size_nm must be a positive number, got {pixel_size_nm!r}")
    if int(min_pixels) != min_pixels or min_pixels < 1:
        raise StatsError(f"min_pixels must be a positive integer, got {min_pixels!r}")
    return k, lag_list, px, int(min_pixels)


def _empty_fit(k: int, axis: str, px: float, lag_list: list[int], em: bool) -> FrameFit:
    """The fit of a frame without any valid labelled pixel: NaN everywhere, flagged."""
    labels_k = list(range(1, k + 1))
    names = [REGION_NAMES[lab] for lab in labels_k]
    flags = ["no valid labelled pixels"]
    regions = [
        RegionParams(lab, nm, math.nan, math.nan, math.nan, 0) for lab, nm in zip(labels_k, names)
    ]
    nan_lags = [
        _nan_lag(s, s * px, axis, k, labels_k, ["no valid labelled pixels"]) for s in lag_list
    ]
    em_fit = _em_nan(0, 2, "empty sample") if em else None
    return FrameFit(k, axis, px, math.nan, 0, regions, nan_lags, em=em_fit, flags=flags)


def _region_rows(code, zp0, k, lag_list, axis, work):
    """The pair-sum stack and the region moments of a frame.

    Per class ``i`` the stack holds three rows: the indicator ``m_i``, the region-centred
    ``u_i = (Z' - mu_i) m_i`` and ``u_i^2``; their sums give the region moments, their
    lagged products the pair sums. The rows carry ``max(lag)`` zero columns of padding
    when pairs run along x.

    Returns
    -------
    stack : numpy.ndarray
        ``(3 k, rows, cols + padding)``, in ``work``'s scratch memory.
    counts, mu, sigma : numpy.ndarray
        ``(k,)`` pixels per class, mean and standard deviation (nm) of ``Z'`` per class
        (NaN for an empty class).
    """
    rows, cols = code.shape
    use_x = axis in ("x", "both")
    pad = max([s for s in lag_list if s < cols], default=0) if use_x else 0
    width = cols + pad
    stack = work.get("stack", 3 * k * rows * width, np.float64).reshape(3 * k, rows, width)
    stack[:, :, cols:] = 0.0  # padding: no pixel there
    counts = np.zeros(k, dtype=np.int64)
    mu = np.full(k, np.nan)
    sigma = np.full(k, np.nan)
    for i in range(k):
        mi = stack[i, :, :cols]
        ui = stack[k + i, :, :cols]
        qi = stack[2 * k + i, :, :cols]
        np.equal(code, i, out=mi, casting="unsafe")
        counts[i] = round(float(mi.sum()))
        if counts[i] == 0:
            ui[...] = 0.0
            qi[...] = 0.0
            continue
        np.multiply(zp0, mi, out=ui)
        mu[i] = float(ui.sum()) / counts[i]
        np.subtract(zp0, mu[i], out=ui)
        ui *= mi
        np.multiply(ui, ui, out=qi)
        sigma[i] = math.sqrt(float(qi.sum()) / counts[i])
    return stack, counts, mu, sigma


def _region_params(
    counts, mu, sigma, n_valid, min_pixels, constant_frame, mean, zp0, code, flags
) -> list[RegionParams]:
    """The :class:`RegionParams` of each class; problems are appended to ``flags``.

    A region with fewer than ``min_pixels`` pixels gets NaN ``mu`` and ``sigma``; a
    constant one ``sigma = 0`` and its own value as ``mu`` (a point mass on the data).
    """
    k = counts.size
    labels_k = list(range(1, k + 1))
    names = [REGION_NAMES[lab] for lab in labels_k]
    cflat = code.ravel()
    weights = counts / n_valid
    regions: list[RegionParams] = []
    for i, (lab, nm) in enumerate(zip(labels_k, names)):
        n_i = int(counts[i])
        m_i, s_i = float(mu[i]), float(sigma[i])
        if n_i == 0:
            flags.append(f"region {nm} empty")
            m_i = s_i = math.nan
        elif n_i < min_pixels:
            flags.append(f"region {nm}: {n_i} pixels < min_pixels ({min_pixels}), parameters NaN")
            m_i = s_i = math.nan
        elif constant_frame or s_i <= 1e-9 * (abs(m_i) + abs(mean)):
            if not constant_frame:
                flags.append(f"region {nm} constant (sigma 0), rho undefined")
            # the region's own value, so that the point mass sits exactly on the data
            m_i = float(zp0.flat[int(np.argmax(cflat == i))])
            s_i = 0.0
        regions.append(RegionParams(lab, nm, float(weights[i]), m_i, s_i, n_i))
    return regions


def _height_task(
    fit: FrameFit, hsample: np.ndarray, histograms: bool, em: bool, keep: dict | None = None
) -> Callable[[_Workspace], None]:
    """The task that fills ``fit``'s height goodness of fit, histogram and EM fit.

    The height model is checked now (a flag when it is undefined); the task runs later,
    on a thread, with a scratch workspace (a fresh one, its binned sample kept in
    ``keep["heights"]``, when ``keep`` is given).
    """
    w_h, m_h, s_h = fit.height_components()
    model = _model_cdfs(w_h, m_h, s_h)
    if model is None:
        fit.flags.append("height model undefined (a weighted region has NaN parameters)")

    def heights(ws: _Workspace) -> None:
        if keep is not None:
            ws = _Workspace()
        hbin = _Binned(hsample, work=ws)
        if keep is not None:
            keep["heights"] = hbin
        if model is not None:
            fit.ks_height = _binned_ks(hbin, *model)
            fit.l1_height, fit.js_height = _binned_distances(hbin, model[0])
            if model[1] is None:  # no point mass (a constant region has an infinite density)
                fit.loglik_height = _loglik(hsample, w_h, m_h, s_h, ws)
        if histograms:
            fit.height_hist = hbin.histogram()
        if em:
            fit.em = _em_on_binned(hbin, 2, 500, 1e-9, 1e-3)

    return heights


def _run_tasks(tasks: list[Callable[[_Workspace], Any]], workers: int | None, work: _Workspace):
    """Results of ``task(workspace)`` for each task, in order, on up to ``workers`` threads.

    Each running task holds its own scratch workspace (``work`` and its spares), since the
    binned samples keep views into their workspace's arrays.
    """
    if workers is None:
        workers = available_cpus()
    if int(workers) != workers or workers < 1:
        raise StatsError(f"workers must be a positive integer or None, got {workers!r}")
    n = min(int(workers), len(tasks))
    if n <= 1:
        return [t(work) for t in tasks]
    free: queue.SimpleQueue[_Workspace] = queue.SimpleQueue()
    for ws in work.spares(n):
        free.put(ws)

    def run(task):
        ws = free.get()
        try:
            return task(ws)
        finally:
            free.put(ws)

    return list(thread_map(run, tasks, n))


def fit_stack(
    stack,
    labels,
    lags: int | Sequence[int] = (1, 2, 4, 8),
    *,
    progress: Callable[[dict], None] | None = None,
    stop: Callable[[], bool] | threading.Event | None = None,
    **kwargs,
) -> list[FrameFit]:
    """Fit every frame of a stack (:func:`fit_frame` per frame).

    Parameters
    ----------
    stack : array_like
        ``(frames, rows, cols)`` heights, nm (a single 2D frame is accepted).
    labels : array_like
        Labels of the same shape.
    lags : int or sequence of int
        Lags in pixels.
    progress : callable, optional
        Called after each frame with ``{"stage": "stats", "frame": i, "done": i + 1,
        "total": n_frames}``.
    stop : callable or threading.Event, optional
        Checked before each frame; when set, the fits done so far are returned.
    **kwargs
        Passed to :func:`fit_frame` (``axis``, ``pixel_size_nm``, ``n_classes``...).

    Returns
    -------
    list of FrameFit
        One per frame fitted.

    Raises
    ------
    StatsError
        For a stack that is not 3D (or 2D), labels of another shape, or any bad
        argument of :func:`fit_frame`.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> labels = np.where(rng.random((3, 32, 32)) < 0.3, 1, 2)
    >>> stack = np.where(labels == 1, -5.0, 0.0) + rng.normal(0, 0.3, labels.shape)
    >>> seen = []
    >>> fits = fit_stack(stack, labels, (1, 2), pixel_size_nm=11.7, progress=seen.append)
    >>> len(fits), seen[-1]
    (3, {'stage': 'stats', 'frame': 2, 'done': 3, 'total': 3})
    """
    z = np.asarray(stack)
    lab = np.asarray(labels)
    if z.ndim == 2:
        z, lab = z[None], lab[None] if lab.ndim == 2 else lab
    if z.ndim != 3:
        raise StatsError(f"stack must be (frames, rows, cols), got shape {z.shape}")
    if lab.shape != z.shape:
        raise StatsError(f"labels shape {lab.shape} does not match the stack shape {z.shape}")
    fits = []
    work = _Workspace()  # scratch arrays shared by the frames
    for i in range(z.shape[0]):
        if _stopped(stop):
            break
        fits.append(fit_frame(z[i], lab[i], lags, _workspace=work, **kwargs))
        if progress is not None:
            progress({"stage": "stats", "frame": i, "done": i + 1, "total": z.shape[0]})
    return fits
