"""One call for a whole time series: read -> clean -> segment -> fit -> table + figures.

:func:`run_pipeline` is what ``calcite-afm run``, ``calcite-afm demo`` and the napari
"Segment and fit" widget call; :func:`fit_series` is the fitting half alone (``calcite-afm
fit``). Both work frame by frame after levelling and registration, report progress
through a callback and stop cleanly when asked.

The results table has one row per frame and lag with, first, the columns ``frame,
time_s, lag_px, lag_nm, c, mu_A, sigma_A, rho_A, mu_B, sigma_B, rho_B, ks_height,
ks_increment, pit_count, mean_pit_area_nm2, retreat_nm_per_min`` and then the extra
columns of :func:`napari_calcite_afm.stats.row_columns`.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from ._util import Cancelled, available_cpus, thread_map
from ._util import stop_requested as _stopped
from .io import AFMStack, CalciteAFMError, read_stack, write_tiff
from .level import LevelSettings, level_stack, register_stack
from .stats import FrameFit, fit_frame, row_columns
from .surface import mean_retreat_nm, pit_measures

__all__ = [
    "Cancelled",
    "PipelineConfig",
    "PipelineResult",
    "TABLE_COLUMNS",
    "table_columns",
    "fit_series",
    "resolve_model",
    "run_pipeline",
    "write_outputs",
    "write_table_csv",
]

ProgressFn = Callable[[dict], None]
StopFlag = Callable[[], bool] | Any

#: The leading columns of the results table, in order (an interface: keep them).
TABLE_COLUMNS: list[str] = [
    "frame",
    "time_s",
    "lag_px",
    "lag_nm",
    "c",
    "mu_A",
    "sigma_A",
    "rho_A",
    "mu_B",
    "sigma_B",
    "rho_B",
    "ks_height",
    "ks_increment",
    "pit_count",
    "mean_pit_area_nm2",
    "retreat_nm_per_min",
]


def table_columns(n_classes: int = 2) -> list[str]:
    """All columns of the results table: :data:`TABLE_COLUMNS`, then the stats extras."""
    extra = [c for c in row_columns(n_classes) if c not in TABLE_COLUMNS]
    return TABLE_COLUMNS + extra


@dataclass
class PipelineConfig:
    """Settings of a segment-and-fit run (JSON-serialisable, stored in the summary).

    Attributes
    ----------
    lags : tuple of int
        Lags s of the increment statistics, pixels.
    axis : {"both", "x", "y"}
        Direction of the lags (``"both"`` pools x and y pairs).
    register : bool
        Correct frame-to-frame drift (subpixel phase correlation) before segmenting.
    level : dict or None
        :class:`~napari_calcite_afm.level.LevelSettings` as a dict; None uses the model's
        own settings, so the network sees frames cleaned as in its training.
    figures : {"summary", "all", "none"}
        ``summary``: parameters against time plus the fit figures of up to
        ``max_frame_figures`` evenly spaced frames; ``all``: every frame.
    max_frame_figures : int
        Frames with a fit figure in ``summary`` mode.
    em : bool
        Also fit the EM mixture to Z' alone, for comparison.
    keep_probabilities : bool
        Keep the per-class probabilities (``frames x classes`` float32 images).
    min_pit_area_px : int
        Smallest connected region of label 1 counted as a pit, pixels.
    """

    lags: tuple[int, ...] = (1, 2, 4, 8)
    axis: str = "both"
    register: bool = True
    level: dict | None = None
    figures: str = "summary"
    max_frame_figures: int = 3
    em: bool = True
    keep_probabilities: bool = True
    min_pit_area_px: int = 4

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict."""
        d = asdict(self)
        d["lags"] = list(self.lags)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PipelineConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise a clear error."""
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise CalciteAFMError(f"unknown pipeline settings: {sorted(unknown)}")
        d = dict(d)
        if "lags" in d:
            d["lags"] = tuple(int(v) for v in d["lags"])
        return cls(**d)


@dataclass
class PipelineResult:
    """Everything a run produced.

    Attributes
    ----------
    cleaned : numpy.ndarray
        float32 ``(frames, rows, cols)`` levelled (and registered) heights, nm; NaN
        outside the data.
    labels : numpy.ndarray
        uint8 ``(frames, rows, cols)``: 1 multilayer pit, 2 terrace[, 3 monolayer pit],
        0 where there are no data.
    probabilities : numpy.ndarray or None
        float32 ``(frames, classes, rows, cols)``; channel k is label k + 1.
    table : list of dict
        One row per frame and lag, columns :func:`table_columns`.
    fits : list of FrameFit
        The per-frame fits (histograms included, for figures).
    summary : dict
        JSON-serialisable description of the run (inputs, settings, timings, means).
    pixel_size_nm : float
        Pixel size, nm.
    frame_times_s : numpy.ndarray
        Acquisition time of each frame, s.
    shifts_px : numpy.ndarray or None
        ``(frames, 2)`` drift corrections applied, pixels (row, col).
    """

    cleaned: np.ndarray
    labels: np.ndarray
    probabilities: np.ndarray | None
    table: list[dict]
    fits: list[FrameFit]
    summary: dict
    pixel_size_nm: float
    frame_times_s: np.ndarray
    shifts_px: np.ndarray | None = None
    n_classes: int = 2
    files: dict[str, str] = field(default_factory=dict)


def _frame_times(stack: AFMStack, default_interval_s: float | None) -> np.ndarray:
    n = stack.heights.shape[0]
    if stack.frame_times_s is not None and len(stack.frame_times_s) == n:
        return np.asarray(stack.frame_times_s, dtype=float)
    if default_interval_s:
        return np.arange(n, dtype=float) * float(default_interval_s)
    return np.full(n, np.nan)


def _as_stack(source, pixel_size_nm: float | None, channel: str | None) -> AFMStack:
    if isinstance(source, AFMStack):
        return source
    if isinstance(source, np.ndarray):
        data = np.asarray(source, dtype=np.float32)
        if data.ndim == 2:
            data = data[None]
        if data.ndim != 3:
            raise CalciteAFMError(f"expected (frames, rows, cols) heights, got shape {data.shape}")
        return AFMStack(
            heights=data, pixel_size_nm=float(pixel_size_nm or 1.0), source=None, format="array"
        )
    stack = read_stack(source, channel=channel)
    if pixel_size_nm:
        stack.pixel_size_nm = float(pixel_size_nm)
    return stack


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
    lags, axis, n_classes, em
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
    """
    heights = np.asarray(heights)
    labels = np.asarray(labels)
    if heights.ndim == 2:
        heights, labels = heights[None], labels[None]
    if heights.shape != labels.shape:
        raise CalciteAFMError(
            f"labels of shape {labels.shape} do not match heights of shape {heights.shape}"
        )
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
            min_pit_area_px, workers=inner,
        )  # fmt: skip

    results = thread_map(one, range(n), n_workers)
    try:
        for i in range(n):
            if _stopped(stop):
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
    heights, labels, i, times, pixel_size_nm, lags, axis, n_classes, em, min_pit, workers=None
):
    fit = fit_frame(
        heights[i],
        labels[i],
        lags=tuple(lags),
        axis=axis,
        pixel_size_nm=pixel_size_nm,
        n_classes=n_classes,
        em=em,
        workers=workers,
    )
    count, area = pit_measures(labels[i], pixel_size_nm, pit_label=1, min_area_px=min_pit)
    retreat = math.nan
    if i > 0:
        dt_min = (times[i] - times[i - 1]) / 60.0
        if np.isfinite(dt_min) and dt_min > 0:
            retreat = mean_retreat_nm(heights[i - 1], heights[i]) / dt_min
    extra = {"pit_count": count, "mean_pit_area_nm2": area, "retreat_nm_per_min": retreat}
    cols = table_columns(n_classes)
    out = []
    for row in fit.to_rows(frame=i, time_s=float(times[i])):
        row.update(extra)
        out.append({c: row.get(c, math.nan) for c in cols})
    return out, fit


def resolve_model(model):
    """A :class:`~napari_calcite_afm.model.SegmentationModel` from a name, path or model.

    ``"default"`` (or None) is the shipped two-class model, ``"default3"`` the shipped
    three-class one; anything else is read with :func:`~napari_calcite_afm.model.load_model`.
    """
    from .model import SegmentationModel, load_default_model, load_model

    if isinstance(model, SegmentationModel):
        return model
    if model is None or (isinstance(model, str) and model in ("default", "default2")):
        return load_default_model(2)
    if isinstance(model, str) and model == "default3":
        return load_default_model(3)
    return load_model(model)


def run_pipeline(
    source,
    *,
    model="default",
    config: PipelineConfig | None = None,
    out_dir: str | Path | None = None,
    pixel_size_nm: float | None = None,
    frame_interval_s: float | None = None,
    channel: str | None = None,
    progress: ProgressFn | None = None,
    stop: StopFlag | None = None,
) -> PipelineResult:
    """Clean, segment and fit a whole time series in one call.

    Parameters
    ----------
    source : str, Path, list of paths, AFMStack or numpy.ndarray
        A file or folder readable by :func:`napari_calcite_afm.io.read_stack`, a stack
        object, or raw heights ``(frames, rows, cols)`` in nm.
    model : "default", "default3", path or SegmentationModel
        The segmentation model (``"default"``: the shipped two-class model).
    config : PipelineConfig, optional
        Lags, registration, levelling and figure settings.
    out_dir : str or Path, optional
        When given, every output is written there (:func:`write_outputs`).
    pixel_size_nm : float, optional
        Overrides the file's pixel size (needed for plain arrays), nm.
    frame_interval_s : float, optional
        Time between frames, s, where the file has no frame times.
    channel : str, optional
        Channel to read from a vendor file.
    progress : callable, optional
        Called with ``dict(stage, frame, n_frames, elapsed_s)``; stages are ``read``,
        ``level``, ``register``, ``segment``, ``fit`` and ``write``.
    stop : callable or threading.Event, optional
        When set, the run raises :class:`Cancelled` at the next frame.

    Returns
    -------
    PipelineResult

    Examples
    --------
    >>> from napari_calcite_afm.synthetic import make_series
    >>> s = make_series(2, 64, seed=3)
    >>> res = run_pipeline(s.raw, pixel_size_nm=s.pixel_size_nm, frame_interval_s=300)
    >>> res.labels.shape, res.table[0]["lag_px"]
    ((2, 64, 64), 1)
    """
    from .predict import predict_frame

    config = config or PipelineConfig()
    t0 = time.perf_counter()
    timings: dict[str, float] = {}

    def report(stage: str, frame: int = 0, n_frames: int = 1) -> None:
        if progress is not None:
            progress(
                {
                    "stage": stage,
                    "frame": frame,
                    "n_frames": n_frames,
                    "elapsed_s": time.perf_counter() - t0,
                }
            )

    report("read")
    stack = _as_stack(source, pixel_size_nm, channel)
    seg_model = resolve_model(model)
    n_classes = seg_model.n_classes
    settings = (
        LevelSettings.from_dict(config.level)
        if config.level is not None
        else seg_model.level_settings
    )
    same_levelling = settings.to_dict() == seg_model.level_settings.to_dict()
    timings["read_s"] = time.perf_counter() - t0

    raw = stack.heights
    n, rows_, cols_ = raw.shape
    times = _frame_times(stack, frame_interval_s)

    t = time.perf_counter()
    cleaned = level_stack(
        raw, settings, stop=stop, progress=lambda d: report("level", d["frame"], n)
    )
    timings["level_s"] = time.perf_counter() - t

    shifts = None
    valid = None
    t = time.perf_counter()
    if config.register and n > 1:
        report("register", 0, n)
        reg = register_stack(cleaned)
        cleaned = reg.aligned.astype(np.float32, copy=False)
        shifts = np.asarray(reg.shifts, dtype=float)
        valid = reg.valid
    timings["register_s"] = time.perf_counter() - t

    labels = np.zeros(raw.shape, dtype=np.uint8)
    probs = (
        np.full((n, n_classes, rows_, cols_), np.nan, dtype=np.float32)
        if config.keep_probabilities
        else None
    )
    # Segment every frame (torch on all cores), then fit the frames side by side (numpy
    # on all cores): two clean phases run faster than fitting beside the network, where
    # the two compete for the same cores.
    t = time.perf_counter()
    for i in range(n):
        if _stopped(stop):
            raise Cancelled(f"stopped after segmenting {i} of {n} frames")
        lab, p = predict_frame(seg_model, cleaned[i], levelled=same_levelling)
        labels[i] = lab
        if probs is not None:
            probs[i] = p
        report("segment", i, n)
    timings["segment_s"] = time.perf_counter() - t
    t = time.perf_counter()
    table, fits = fit_series(
        cleaned,
        labels,
        pixel_size_nm=stack.pixel_size_nm,
        frame_times_s=times,
        lags=config.lags,
        axis=config.axis,
        n_classes=n_classes,
        em=config.em,
        min_pit_area_px=config.min_pit_area_px,
        progress=lambda d: report("fit", d["frame"], n),
        stop=stop,
    )
    timings["fit_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t0

    summary = _summary(stack, seg_model, settings, config, table, n_classes, shifts, valid, timings)
    result = PipelineResult(
        cleaned=cleaned,
        labels=labels,
        probabilities=probs,
        table=table,
        fits=fits,
        summary=summary,
        pixel_size_nm=float(stack.pixel_size_nm),
        frame_times_s=times,
        shifts_px=shifts,
        n_classes=n_classes,
    )
    if out_dir is not None:
        report("write", n - 1, n)
        write_outputs(
            result, out_dir, figures=config.figures, max_frame_figures=config.max_frame_figures
        )
        result.summary["timings_s"]["with_outputs_s"] = time.perf_counter() - t0
        _write_json(Path(out_dir) / "summary.json", result.summary)
    return result


def _nanmean(rows: list[dict], key: str) -> float:
    v = np.array([float(r.get(key, np.nan)) for r in rows], dtype=float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else math.nan


def _summary(stack, model, settings, config, table, n_classes, shifts, valid, timings) -> dict:
    first_lag = [r for r in table if r["lag_px"] == config.lags[0]] if config.lags else table
    return {
        "package_version": __version__,
        "source": str(stack.source) if stack.source else None,
        "format": stack.format,
        "shape": list(stack.heights.shape),
        "pixel_size_nm": float(stack.pixel_size_nm),
        "n_classes": n_classes,
        "model": {
            "source": model.source or "in memory",
            "architecture": model.metadata()["architecture"],
            "normalisation": model.metadata()["normalisation"],
        },
        "levelling": settings.to_dict(),
        "config": config.to_dict(),
        "drift_shifts_px": None if shifts is None else np.round(shifts, 3).tolist(),
        "valid_region": None if valid is None else [[s.start, s.stop] for s in valid],
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "means": {key: _nanmean(first_lag, key) for key in (*TABLE_COLUMNS[4:], "em_ks_height")},
    }


def _json_safe(obj):
    if isinstance(obj, float):
        return None if not math.isfinite(obj) else obj
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        return _json_safe(obj.item())
    if isinstance(obj, np.ndarray):
        return _json_safe(obj.tolist())
    return obj


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_json_safe(data), indent=2))
    tmp.replace(path)


def write_table_csv(
    path: str | Path, rows: Sequence[dict], columns: Sequence[str] | None = None
) -> Path:
    """Write the results table as CSV (NaN written as empty cells).

    Parameters
    ----------
    path : str or Path
        Output file; parent folders are created.
    rows : sequence of dict
        Table rows.
    columns : sequence of str, optional
        Column order (default: the keys of the first row).

    Returns
    -------
    pathlib.Path
        The written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(columns or (rows[0].keys() if rows else TABLE_COLUMNS))
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {
                    k: ("" if isinstance(v, float) and not math.isfinite(v) else v)
                    for k, v in row.items()
                }
            )
    tmp.replace(path)
    return path


def write_figures(
    fits: Sequence[FrameFit],
    table: Sequence[dict],
    folder: str | Path,
    *,
    frame_times_s: Sequence[float] | None = None,
    figures: str = "summary",
    max_frame_figures: int = 3,
) -> list[Path]:
    """Write the per-frame fit figures and the parameters-against-time figure (PNG).

    Parameters
    ----------
    fits : sequence of FrameFit
        The per-frame fits.
    table : sequence of dict
        The results table.
    folder : str or Path
        Output folder.
    frame_times_s : sequence of float, optional
        Frame times for the titles, s.
    figures : {"summary", "all", "none"}
        Which frames get a fit figure (see :class:`PipelineConfig`).
    max_frame_figures : int
        Number of evenly spaced frames in ``summary`` mode.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    from .plotting import frame_figure, parameters_figure

    if figures == "none" or not fits:
        return []
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n = len(fits)
    if figures == "all" or n <= max_frame_figures:
        frames = list(range(n))
    else:
        frames = sorted({round(float(v)) for v in np.linspace(0, n - 1, max_frame_figures)})
    times = np.full(n, np.nan) if frame_times_s is None else np.asarray(frame_times_s, float)
    written = []
    for i in frames:
        fig = frame_figure(fits[i], frame=i, time_s=float(times[i]))
        path = folder / f"fit_frame{i:04d}.png"
        fig.savefig(path, dpi=90)
        written.append(path)
    fig = parameters_figure(list(table))
    path = folder / "parameters_vs_time.png"
    fig.savefig(path, dpi=90)
    written.append(path)
    return written


def write_outputs(
    result: PipelineResult,
    out_dir: str | Path,
    *,
    figures: str = "summary",
    max_frame_figures: int = 3,
) -> dict[str, str]:
    """Write a run's outputs into a folder.

    Files: ``cleaned.tif`` (float32 nm), ``labels.tif`` (uint8), ``probabilities.tif``
    (float32, frames x classes), ``table.csv``, ``summary.json`` and ``figures/*.png``.

    Returns
    -------
    dict
        ``{name: path}`` of the files written (also stored in ``result.files``).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    interval = None
    times = result.frame_times_s
    if times is not None and len(times) > 1 and np.all(np.isfinite(times)):
        interval = float(np.median(np.diff(times)))
    files: dict[str, str] = {}
    files["cleaned"] = str(
        write_tiff(
            out / "cleaned.tif", result.cleaned, result.pixel_size_nm, frame_interval_s=interval
        )
    )
    files["labels"] = str(
        write_tiff(
            out / "labels.tif", result.labels, result.pixel_size_nm, frame_interval_s=interval
        )
    )
    if result.probabilities is not None:
        files["probabilities"] = str(
            write_tiff(
                out / "probabilities.tif",
                result.probabilities,
                result.pixel_size_nm,
                frame_interval_s=interval,
            )
        )
    files["table"] = str(
        write_table_csv(out / "table.csv", result.table, table_columns(result.n_classes))
    )
    figs = write_figures(
        result.fits,
        result.table,
        out / "figures",
        frame_times_s=result.frame_times_s,
        figures=figures,
        max_frame_figures=max_frame_figures,
    )
    if figs:
        files["figures"] = str(out / "figures")
    files["summary"] = str(out / "summary.json")
    result.files = files
    result.summary["files"] = files
    _write_json(out / "summary.json", result.summary)
    return files
