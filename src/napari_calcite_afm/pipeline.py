"""One call for a whole time series: read -> clean -> segment -> fit -> table + figures.

:func:`run_pipeline` is what ``calcite-afm run``, ``calcite-afm demo`` and the napari
"Segment and fit" widget call; :func:`fit_series` (:mod:`napari_calcite_afm.timeseries`,
also importable from here) is the fitting half alone (``calcite-afm fit``). Both work
frame by frame after levelling and registration, report progress through a callback and
stop cleanly when asked.

The files of a run (results table, figures, summary) are written by
:mod:`napari_calcite_afm.outputs`; its names (:data:`TABLE_COLUMNS`,
:func:`table_columns`, :func:`write_table_csv`, :func:`write_figures`,
:func:`write_outputs`) can also be imported from here.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._util import (
    Cancelled,
    ProgressFn,
    StopFlag,
    settings_from_dict,
    stop_requested,
)
from ._util import (
    StageClock as _Clock,
)
from .checks import check_lags, check_positive, check_seconds, is_whole
from .errors import CalciteAFMError
from .io import AFMStack, read_stack
from .kinetics import add_rates_to_table, analyse_kinetics
from .level import LevelSettings, level_stack, register_stack
from .outputs import (
    TABLE_COLUMNS,
    check_output_folder,
    table_columns,
    write_figures,
    write_outputs,
    write_table_csv,
)
from .outputs import write_json as _write_json  # noqa: F401  (the old private name)
from .segmentation.depth import assess_depth, frame_uncertainty
from .segmentation.scale import height_unit_warning, movie_words, pixel_size_warning
from .segmentation.shipped import resolve_model
from .stats import FrameFit
from .summary import run_summary
from .timeseries import fit_series

__all__ = [
    "Cancelled",
    "PipelineConfig",
    "PipelineResult",
    "TABLE_COLUMNS",
    "table_columns",
    "fit_series",
    "resolve_model",
    "run_pipeline",
    "write_figures",
    "write_outputs",
    "write_table_csv",
]


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
    increment_model : {"gaussian", "gsg"}
        ``"gsg"`` also fits the multimodal GSG model (the table gains its columns).
    kinetics : bool
        Also measure the local dissolution rates and track the pits
        (:func:`napari_calcite_afm.kinetics.analyse_kinetics`; 2+ frames).
    closed_pits : bool
        Relabel as terrace the pit regions that are not closed depressions
        (:func:`napari_calcite_afm.segmentation.closed.remove_open_pits`; the default of
        ``predict_stack``). False keeps the network's labels as they are.
    temporal_window : int
        Odd number of (registered) frames whose class probabilities are averaged to label
        each frame (:func:`napari_calcite_afm.segmentation.temporal_prior`); 1 (default):
        each frame alone. The probabilities written stay each frame's own.
    rate_smooth_px : float
        Gaussian smoothing of the dissolution-rate maps, pixels (0, the default: none;
        :func:`napari_calcite_afm.kinetics.rate_maps`).

    Examples
    --------
    >>> cfg = PipelineConfig(lags=(1, 3), figures="none")
    >>> cfg.to_dict()["lags"]
    [1, 3]
    >>> PipelineConfig.from_dict(cfg.to_dict()) == cfg
    True
    >>> PipelineConfig(lags=(0, 2))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    napari_calcite_afm.errors.CalciteAFMError: PipelineConfig.lags must be positive ...
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
    increment_model: str = "gaussian"
    kinetics: bool = True
    closed_pits: bool = True
    temporal_window: int = 1
    rate_smooth_px: float = 0.0

    def __post_init__(self) -> None:
        self.lags = check_lags(self.lags, name="PipelineConfig.lags")
        choices = {"axis": ("both", "x", "y"), "figures": ("summary", "all", "none"),
                   "increment_model": ("gaussian", "gsg")}  # fmt: skip
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise CalciteAFMError(
                    f"PipelineConfig.{name} must be one of {', '.join(allowed)}, "
                    f"got {getattr(self, name)!r}"
                )
        for name in ("max_frame_figures", "min_pit_area_px"):
            value = getattr(self, name)
            if not (is_whole(value) and value >= 0):
                raise CalciteAFMError(
                    f"PipelineConfig.{name} must be a whole number >= 0, got {value!r}"
                )
            setattr(self, name, int(value))
        w = self.temporal_window
        if not (is_whole(w) and w >= 1 and int(w) % 2 == 1):
            raise CalciteAFMError(
                f"PipelineConfig.temporal_window must be an odd whole number >= 1, got {w!r}"
            )
        self.temporal_window = int(w)
        r = self.rate_smooth_px
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not (0 <= r < float("inf")):
            raise CalciteAFMError(
                f"PipelineConfig.rate_smooth_px must be a length of 0 pixels or more, got {r!r}"
            )
        self.rate_smooth_px = float(r)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict."""
        d = asdict(self)
        d["lags"] = list(self.lags)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PipelineConfig:
        """Inverse of :meth:`to_dict`; unknown keys or bad values raise a
        :class:`CalciteAFMError`."""
        return settings_from_dict(cls, d, CalciteAFMError, "pipeline")


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
    n_classes : int
        Segmentation classes of the model (2 or 3).
    kinetics : KineticsResult or None
        Rates and pit tracks (:mod:`napari_calcite_afm.kinetics`), when measured.
    files : dict
        ``{name: path}`` of the files written (empty until :func:`write_outputs`).
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
    kinetics: Any = None


def _frame_times(stack: AFMStack, default_interval_s: float | None) -> np.ndarray:
    n = stack.heights.shape[0]
    if stack.frame_times_s is not None and len(stack.frame_times_s) == n:
        return np.asarray(stack.frame_times_s, dtype=float)
    if default_interval_s:
        return np.arange(n, dtype=float) * float(default_interval_s)
    return np.full(n, np.nan)


def _as_stack(source, pixel_size_nm: float | None, channel: str | None) -> AFMStack:
    if pixel_size_nm is not None:
        pixel_size_nm = check_positive(pixel_size_nm, "pixel_size_nm", "nm")
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


def _read_stage(source, model, config: PipelineConfig, pixel_size_nm, channel):
    """Read the stack and the model; choose the levelling (the config's or the model's).

    Returns ``(stack, model, settings, same_levelling)``; ``same_levelling`` is True
    when the frames are cleaned exactly as in the model's training.
    """
    stack = _as_stack(source, pixel_size_nm, channel)
    seg_model = resolve_model(model)
    settings = (
        LevelSettings.from_dict(config.level)
        if config.level is not None
        else seg_model.level_settings
    )
    same_levelling = settings.to_dict() == seg_model.level_settings.to_dict()
    what = movie_words(stack.source)
    for text in (
        height_unit_warning(stack.metadata.get("z_unit"), stack.channel, what),
        pixel_size_warning(seg_model, stack.pixel_size_nm, what),
    ):
        if text:
            warnings.warn(text, UserWarning, stacklevel=3)
    return stack, seg_model, settings, same_levelling


def _clean_stage(raw: np.ndarray, settings, config: PipelineConfig, clock: _Clock, stop):
    """Level every frame, then (if asked, and with 2+ frames) register the stack.

    Returns ``(cleaned, registration)``: float32 heights in nm and the
    :class:`~napari_calcite_afm.level.Registration` (None unregistered), whose messages
    (rejected frames, a small common area) are warned once.
    """
    n = raw.shape[0]
    with clock.timed("level_s"):
        cleaned = level_stack(
            raw, settings, stop=stop, progress=lambda d: clock.report("level", d["frame"], n)
        )
    reg = None
    with clock.timed("register_s"):
        if config.register and n > 1:
            clock.report("register", 0, n)
            reg = register_stack(cleaned, stop=stop)
            cleaned = reg.aligned.astype(np.float32, copy=False)
            if reg.messages:
                warnings.warn("drift: " + "; ".join(reg.messages), UserWarning, stacklevel=3)
    return cleaned, reg


def _kinetics_stage(cleaned, labels, pixel_size_nm, times, reg, config, clock, stop):
    """Rates and pit tracks (None with one frame or ``config.kinetics`` off)."""
    n = cleaned.shape[0]
    if not config.kinetics or n < 2:
        return None

    def report(d: dict) -> None:
        clock.report("kinetics", int(d.get("frame") or 0), n)

    with clock.timed("kinetics_s"):
        kin = analyse_kinetics(
            cleaned,
            labels,
            pixel_size_nm,
            times,
            registration=reg,
            rate_model=config.increment_model,  # gsg: also the GSG of the rate maps
            rate_smooth_px=config.rate_smooth_px,
            progress=report,
            stop=stop,
        )
    news = [m for m in kin.messages if reg is None or m not in reg.messages]
    if news:
        warnings.warn("kinetics: " + "; ".join(news), UserWarning, stacklevel=3)
    return kin


def _segment_stage(seg_model, cleaned: np.ndarray, same_levelling: bool, config, clock, stop):
    """Segment every frame; returns uint8 labels, (if kept) float32 probabilities and
    each frame's mean uncertainty (:func:`~.segmentation.depth.frame_uncertainty`);
    ``config``: the :class:`PipelineConfig` (probabilities kept, open pits relabelled)."""
    from .segmentation import predict_frame, temporal_prior

    n, rows, cols = cleaned.shape
    labels, unc = np.zeros(cleaned.shape, dtype=np.uint8), np.full(n, np.nan)
    temporal = config.temporal_window > 1 and n > 1
    probs = (
        np.full((n, seg_model.n_classes, rows, cols), np.nan, dtype=np.float32)
        if config.keep_probabilities or temporal
        else None
    )
    # the temporal prior's closed check needs the frames as the model levels them: level
    # each frame once here and keep it, instead of inside predict_frame and again after
    keep_levelled = temporal and config.closed_pits and not same_levelling
    levelled = np.empty(cleaned.shape, np.float32) if keep_levelled else None
    with clock.timed("segment_s"):
        for i in range(n):
            if stop_requested(stop):
                raise Cancelled(f"stopped after segmenting {i} of {n} frames")
            frame, is_levelled = cleaned[i], same_levelling
            if levelled is not None:
                frame = levelled[i] = seg_model.level(cleaned[i])
                is_levelled = True
            lab, p = predict_frame(
                seg_model, frame, levelled=is_levelled, closed=config.closed_pits
            )
            labels[i], unc[i] = lab, frame_uncertainty(p)
            if probs is not None:
                probs[i] = p
            clock.report("segment", i, n)
        if temporal:
            heights = None
            if config.closed_pits:  # the check runs on the model's levelling
                heights = cleaned if levelled is None else levelled
            labels, _ = temporal_prior(probs, window=config.temporal_window, heights=heights)
    return labels, (probs if config.keep_probabilities else None), unc


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
        When given, every output is written there (:func:`write_outputs`): a new folder,
        an empty one, or an older output folder, which is replaced as a whole once the
        run has succeeded (a folder holding other files is refused before any work).
    pixel_size_nm : float, optional
        Overrides the file's pixel size (needed for plain arrays), nm.
    frame_interval_s : float, optional
        Time between frames, s (positive, finite; None or NaN: unknown), where the file
        has no frame times.
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
    config = config or PipelineConfig()
    if frame_interval_s is not None and not (
        isinstance(frame_interval_s, (float, np.floating)) and np.isnan(frame_interval_s)
    ):  # NaN is this package's "unknown" (frame_times_s of a stack without times)
        frame_interval_s = check_seconds(frame_interval_s)
    if out_dir is not None:  # before any work: a folder that cannot be written is refused
        check_output_folder(out_dir)
    clock = _Clock(progress)
    clock.report("read")
    stack, seg_model, settings, same_levelling = _read_stage(
        source, model, config, pixel_size_nm, channel
    )
    check_lags(config.lags, stack.heights.shape, config.axis)
    clock.timings["read_s"] = clock.elapsed()
    n, n_classes = stack.heights.shape[0], seg_model.n_classes
    times = _frame_times(stack, frame_interval_s)
    cleaned, reg = _clean_stage(stack.heights, settings, config, clock, stop)
    shifts = None if reg is None else np.asarray(reg.shifts, dtype=float)
    # Segment every frame (torch on all cores), then fit the frames side by side (numpy
    # on all cores): two clean phases run faster than fitting beside the network, where
    # the two compete for the same cores.
    labels, probs, unc = _segment_stage(seg_model, cleaned, same_levelling, config, clock, stop)
    depth = assess_depth(
        seg_model, stack.pixel_size_nm, unc, cleaned.shape[1:], movie_words(stack.source)
    )
    depth.warn()  # once, when the movie looks unlike the model's training data
    with clock.timed("fit_s"):
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
            progress=lambda d: clock.report("fit", d["frame"], n),
            stop=stop,
            increment_model=config.increment_model,
        )
    kinetics = _kinetics_stage(
        cleaned, labels, stack.pixel_size_nm, times, reg, config, clock, stop
    )
    if kinetics is not None:  # each frame's row gains the rates of the pair ending there
        add_rates_to_table(table, kinetics)
    clock.timings["total_s"] = clock.elapsed()
    valid = None if reg is None else reg.valid
    summary = run_summary(
        stack, seg_model, settings, config, table, n_classes, shifts, valid, clock.timings
    )
    depth.record(summary, table)  # the table's "uncertainty", the summary's out_of_depth...
    if kinetics is not None:
        summary["kinetics"] = kinetics.summary()
    if reg is not None and reg.confidence is not None:
        summary["drift_confidence"] = np.round(reg.confidence, 3).tolist()
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
        kinetics=kinetics,
    )
    if out_dir is not None:
        clock.report("write", n - 1, n)

        def timing(folder: Path) -> None:
            result.summary["timings_s"]["with_outputs_s"] = clock.elapsed()

        write_outputs(
            result,
            out_dir,
            figures=config.figures,
            max_frame_figures=config.max_frame_figures,
            extra=timing,
        )
    return result
