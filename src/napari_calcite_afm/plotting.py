"""Matplotlib figures of the multimodal Gaussian model, shared by the CLI, the pipeline
and the napari Statistics widget (so every place draws the same numbers).

Each ``plot_*`` function draws on a given Axes (or Figure) and returns its artists; the
``*_figure`` functions build a standalone :class:`matplotlib.figure.Figure` without
pyplot, so they are safe in worker threads and under any backend.

Figures are black on white (for files and print) unless a :class:`PlotTheme` is asked
for: :func:`apply_theme` recolours a drawn figure (the napari widgets pass the colours
of napari's theme, dark by default, and switch back to :data:`LIGHT` to export).
:func:`plot_height_map` draws a frame of heights with a scale bar in nm and a colorbar
labelled "height (nm)".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, NullFormatter

from .colormap import matplotlib_green_magenta, robust_contrast_limits
from .plot_theme import LIGHT, PlotTheme, apply_theme
from .stats import FrameFit, height_pdf, increment_pdf, mixture_pdf

__all__ = [
    "GSG_COLOR",
    "GSG_TIME_PARAMETERS",
    "RATE_TIME_PARAMETERS",
    "LIGHT",
    "REGION_COLORS",
    "TIME_PARAMETERS",
    "PlotTheme",
    "apply_theme",
    "plot_height_map",
    "scale_bar_length",
    "plot_height_fit",
    "plot_increment_fit",
    "plot_parameters_vs_time",
    "frame_figure",
    "parameters_figure",
]

#: Colours of the modes (the label colours of the napari layers).
REGION_COLORS = {"A": "#ff8c00", "B": "#1f78d8", "M": "#d4b800"}

#: (column, axis label) of the parameters drawn against time.
TIME_PARAMETERS: list[tuple[str, str]] = [
    ("c", "c (area fraction of A)"),
    ("mu_A", "mu_A (nm)"),
    ("mu_B", "mu_B (nm)"),
    ("sigma_A", "sigma_A (nm)"),
    ("sigma_B", "sigma_B (nm)"),
    ("rho_A", "rho_A(s)"),
    ("rho_B", "rho_B(s)"),
    ("ks_height", "KS distance, heights"),
    ("ks_increment", "KS distance, increments"),
    ("pit_count", "multilayer pits"),
    ("mean_pit_area_nm2", "mean pit area (nm²)"),
    ("retreat_nm_per_min", "retreat (nm/min)"),
]

#: The GSG model's columns drawn after :data:`TIME_PARAMETERS` when the table has them.
GSG_TIME_PARAMETERS: list[tuple[str, str]] = [
    ("gsg_alpha_A", "alpha_A (GSG)"),
    ("gsg_alpha_B", "alpha_B (GSG)"),
    ("ks_increment_gsg", "KS increments, GSG"),
]

#: The kinetics' columns (the pair ending at each frame) drawn last when the table has them.
RATE_TIME_PARAMETERS: list[tuple[str, str]] = [
    ("rate_nm_s", "dissolution rate (nm/s)"),
    ("rate_pits_nm_s", "rate in pits (nm/s)"),
    ("rate_terrace_nm_s", "rate on terraces (nm/s)"),
    ("rate_gsg_alpha", "alpha of the rates (GSG)"),
]

#: Colour of the GSG model's lines (the Gaussian mixture's are black).
GSG_COLOR = "#2ca02c"


def scale_bar_length(width_nm: float) -> float:
    """A round scale-bar length (1, 2 or 5 times a power of ten, nm) of about 1/5 of a width.

    Examples
    --------
    >>> scale_bar_length(3000.0), scale_bar_length(256 * 11.7), scale_bar_length(95.0)
    (500.0, 500.0, 10.0)
    """
    target = max(float(width_nm), 1e-9) / 5.0
    power = 10.0 ** math.floor(math.log10(target))
    return max(m * power for m in (1.0, 2.0, 5.0) if m * power <= target)


def _length_text(nm: float) -> str:
    return f"{nm / 1000:g} µm" if nm >= 1000 else f"{nm:g} nm"


def plot_height_map(
    ax,
    heights: np.ndarray,
    pixel_size_nm: float,
    *,
    limits: tuple[float, float] | None = None,
    scale_bar: bool = True,
    colorbar: bool = True,
) -> dict[str, Any]:
    """A frame of heights (green-magenta) with a scale bar in nm and a colorbar.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Where to draw; its axes are hidden (the scale bar gives the size).
    heights : numpy.ndarray
        ``(rows, cols)`` heights in nm (NaN drawn transparent).
    pixel_size_nm : float
        Pixel size, nm per pixel.
    limits : (float, float), optional
        Colour limits in nm (default: robust percentiles, outlier scan lines left out).
    scale_bar, colorbar : bool
        Draw the scale bar (lower right, white on a dark box) and the colorbar labelled
        "height (nm)".

    Returns
    -------
    dict
        ``"image"`` (the AxesImage; its extent is in nm), ``"scale_bar"`` (the
        AnchoredSizeBar or None), ``"scale_bar_nm"`` (its length) and ``"colorbar"``
        (or None).

    Examples
    --------
    >>> import numpy as np
    >>> fig = Figure()
    >>> out = plot_height_map(fig.subplots(), np.zeros((64, 128)), 11.7)
    >>> out["scale_bar_nm"], out["colorbar"].ax.get_ylabel()
    (200.0, 'height (nm)')
    """
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    z = np.asarray(heights, dtype=float)
    rows, cols = z.shape
    px = float(pixel_size_nm)
    lo, hi = robust_contrast_limits(z) if limits is None else limits
    out: dict[str, Any] = {"scale_bar": None, "scale_bar_nm": None, "colorbar": None}
    out["image"] = ax.imshow(
        z,
        cmap=matplotlib_green_magenta(),
        vmin=lo,
        vmax=hi,
        extent=(0.0, cols * px, rows * px, 0.0),
        interpolation="nearest",
    )
    ax.set_axis_off()
    if scale_bar:
        length = scale_bar_length(cols * px)
        bar = AnchoredSizeBar(
            ax.transData, length, _length_text(length), "lower right",
            pad=0.4, color="white", frameon=False, size_vertical=rows * px / 80,
            label_top=True,
        )  # fmt: skip
        bar.patch.set_visible(False)
        ax.add_artist(bar)
        out["scale_bar"], out["scale_bar_nm"] = bar, length
    if colorbar:
        out["colorbar"] = ax.figure.colorbar(out["image"], ax=ax, shrink=0.9, label="height (nm)")
    return out


def _model_x(edges: np.ndarray, n: int = 400) -> np.ndarray:
    return np.linspace(float(edges[0]), float(edges[-1]), n)


def _log_density_axis(ax, density: np.ndarray) -> None:
    positive = density[density > 0]
    ax.set_yscale("log")
    # minor ticks at 2 and 5 only, unlabelled: the default 8 labelled minor ticks per
    # decade make a figure several times slower to draw
    ax.yaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
    ax.yaxis.set_minor_formatter(NullFormatter())
    if positive.size:
        ax.set_ylim(max(positive.min() * 0.5, 1e-6), positive.max() * 3)


def plot_height_fit(
    ax, fit: FrameFit, *, show_em: bool = True, log: bool = False
) -> dict[str, Any]:
    """Histogram of Z' with the fitted mixture f and its components.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Where to draw.
    fit : FrameFit
        A fit from :func:`napari_calcite_afm.stats.fit_frame` with ``histograms=True``.
    show_em : bool
        Also draw the EM mixture fitted to Z' alone (dashed), for comparison.
    log : bool
        Logarithmic density axis: shows a small, wide pit mode beside the terrace peak.

    Returns
    -------
    dict
        ``"hist"`` (a StepPatch: ``get_data()`` gives the densities and edges),
        ``"model"`` (the mixture line), ``"components"`` (one line per mode),
        ``"em"`` (line or None) and ``"gsg"`` (the GSG mixture's line, dashed green, when
        the fit has one, else None). Line x values are Z' in nm, y values densities in
        1/nm.

    Examples
    --------
    >>> from napari_calcite_afm.stats import fit_frame
    >>> from napari_calcite_afm.synthetic import make_series
    >>> s = make_series(1, 64, seed=2)
    >>> fit = fit_frame(s.clean[0], s.labels[0], lags=(1, 2), pixel_size_nm=s.pixel_size_nm)
    >>> out = plot_height_fit(Figure().subplots(), fit)
    >>> len(out["components"]), out["model"].get_xdata().size
    (2, 400)
    """
    out: dict[str, Any] = {"hist": None, "model": None, "components": [], "em": None, "gsg": None}
    hist = fit.height_hist
    if hist is None or hist.n == 0:
        ax.text(0.5, 0.5, "no valid pixels", ha="center", va="center", transform=ax.transAxes)
        return out
    out["hist"] = ax.stairs(hist.density, hist.edges, fill=True, color="0.75", label="sample Z'")
    x = _model_x(hist.edges)
    weights, means, sigmas = fit.height_components()
    for r, w, m, s in zip(fit.regions, weights, means, sigmas):
        if not (np.isfinite(m) and np.isfinite(s)) or w <= 0 or s <= 0:
            continue
        (line,) = ax.plot(
            x,
            mixture_pdf(x, [w], [m], [s]),
            color=REGION_COLORS[r.name],
            lw=1.2,
            label=f"{r.name}: {w:.2f}·N({m:.2f}, {s:.2f})",
        )
        out["components"].append(line)
    (out["model"],) = ax.plot(
        x, height_pdf(x, fit), color="k", lw=1.8, label=f"f (segmentation), KS {fit.ks_height:.3f}"
    )
    if show_em and fit.em is not None and np.all(np.isfinite(fit.em.means)):
        (out["em"],) = ax.plot(
            x,
            fit.em.pdf(x),
            color="crimson",
            lw=1.2,
            ls="--",
            label=f"EM on Z' alone, KS {fit.em.ks_height:.3f}",
        )
    if fit.gsg is not None:
        (out["gsg"],) = ax.plot(
            x,
            mixture_pdf(x, *fit.gsg.height_components()),
            color=GSG_COLOR,
            lw=1.4,
            ls=(0, (5, 2)),
            label=f"f GSG, KS {fit.gsg.ks_height:.3f}",
        )
    if log:
        _log_density_axis(ax, hist.density)
    ax.set_xlabel("Z' = Z - <Z> (nm)")
    ax.set_ylabel("density (1/nm)")
    ax.legend(fontsize=7, loc="upper left", frameon=False)
    return out


def plot_increment_fit(ax, fit: FrameFit, lag: int, *, log: bool = True) -> dict[str, Any]:
    """Histogram of dZ(s) = Z(x+s) - Z(x) with the increment density g(d; s).

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Where to draw.
    fit : FrameFit
        A fit with ``histograms=True`` that includes ``lag``.
    lag : int
        The lag s in pixels.
    log : bool
        Logarithmic density axis, which shows the secondary (cross-region) peaks.

    Returns
    -------
    dict
        ``"hist"`` (a StepPatch), ``"model"`` (the g line; x in nm, y in 1/nm),
        ``"within"`` (the summed within-region part of g) and ``"gsg"`` (the GSG
        model's g, dashed green, when the fit has one, else None).

    Examples
    --------
    >>> from napari_calcite_afm.stats import fit_frame
    >>> from napari_calcite_afm.synthetic import make_series
    >>> s = make_series(1, 64, seed=2)
    >>> fit = fit_frame(s.clean[0], s.labels[0], lags=(1, 2), pixel_size_nm=s.pixel_size_nm)
    >>> ax = Figure().subplots()
    >>> out = plot_increment_fit(ax, fit, 2)
    >>> ax.get_yscale(), out["model"].get_xdata().size
    ('log', 600)
    """
    ls = fit.lag(lag)
    out: dict[str, Any] = {"hist": None, "model": None, "within": None, "gsg": None}
    hist = ls.hist
    if hist is None or hist.n == 0:
        ax.text(0.5, 0.5, "no valid pairs", ha="center", va="center", transform=ax.transAxes)
        return out
    out["hist"] = ax.stairs(hist.density, hist.edges, fill=True, color="0.75", label="sample dZ(s)")
    x = _model_x(hist.edges, 600)
    (out["model"],) = ax.plot(
        x,
        increment_pdf(x, fit, lag),
        color="k",
        lw=1.6,
        label=f"g(d; s), KS {ls.ks_increment:.3f}",
    )
    k = len(fit.regions)
    diag = np.arange(k) * (k + 1)
    if np.all(np.isfinite(ls.sigmas[diag])) and np.all(ls.sigmas[diag] > 0):
        (out["within"],) = ax.plot(
            x,
            mixture_pdf(x, ls.weights[diag], ls.means[diag], ls.sigmas[diag]),
            color="0.35",
            lw=1.0,
            ls=":",
            label="within-region pairs",
        )
    if fit.gsg is not None:
        g = fit.gsg.lag(lag)
        (out["gsg"],) = ax.plot(
            x,
            mixture_pdf(x, g.weights, g.means, g.sigmas),
            color=GSG_COLOR,
            lw=1.4,
            ls=(0, (5, 2)),
            label=f"g GSG, KS {g.ks_increment:.3f}",
        )
    if log:
        _log_density_axis(ax, hist.density)
    ax.set_xlabel(f"dZ(s), s = {ls.lag_px} px = {ls.lag_nm:.3g} nm ({ls.axis})")
    ax.set_ylabel("density (1/nm)")
    ax.legend(fontsize=7, loc="upper left", frameon=False)
    return out


def frame_figure(
    fit: FrameFit,
    *,
    frame: int = 0,
    time_s: float = math.nan,
    lags: Sequence[int] | None = None,
    heights: np.ndarray | None = None,
    pixel_size_nm: float | None = None,
    theme: PlotTheme | None = None,
) -> Figure:
    """One frame's figure: Z' with f, and dZ(s) with g for each lag.

    With ``heights``, the frame itself comes first (:func:`plot_height_map`: scale bar
    in nm, colorbar "height (nm)").

    Parameters
    ----------
    fit : FrameFit
        A fit with ``histograms=True``.
    frame : int
        Frame index, for the title.
    time_s : float
        Time of the frame, s (shown in minutes; NaN leaves it out).
    lags : sequence of int, optional
        The lags drawn, pixels (default: every lag of the fit).
    heights : numpy.ndarray, optional
        The frame's ``(rows, cols)`` heights in nm, drawn first.
    pixel_size_nm : float, optional
        Its pixel size in nm (default: from the fit's lags).
    theme : PlotTheme, optional
        Colours (default black on white, :data:`LIGHT`).

    Returns
    -------
    matplotlib.figure.Figure
        A standalone figure (no pyplot state), ready for ``savefig``.

    Examples
    --------
    >>> from napari_calcite_afm.stats import fit_frame
    >>> from napari_calcite_afm.synthetic import make_series
    >>> s = make_series(1, 64, seed=2)
    >>> fit = fit_frame(s.clean[0], s.labels[0], lags=(1, 2), pixel_size_nm=s.pixel_size_nm)
    >>> fig = frame_figure(fit, frame=0, time_s=300.0)
    >>> sum(ax.get_visible() for ax in fig.axes)  # heights, then one panel per lag
    3
    >>> fig = frame_figure(fit, heights=s.clean[0])  # the frame, its colorbar, 3 panels
    >>> sum(ax.get_visible() for ax in fig.axes)
    5
    """
    lags = [ls.lag_px for ls in fit.lags] if lags is None else list(lags)
    first = 1 if heights is None else 2
    n = first + len(lags)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    # fixed margins rather than a layout engine: constrained layout measures every tick
    # label again at each draw, which doubled the time to write the figure
    fig = Figure(figsize=(4.2 * ncols, 3.3 * nrows))
    height_in = 3.3 * nrows
    fig.subplots_adjust(
        left=0.25 / ncols, right=0.985, bottom=0.6 / height_in, top=1.0 - 0.7 / height_in,
        wspace=0.28 if heights is None else 0.45, hspace=0.45,
    )  # fmt: skip
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    if heights is not None:
        if pixel_size_nm is None:
            pixel_size_nm = fit.lags[0].lag_nm / fit.lags[0].lag_px
        plot_height_map(axes[0], heights, pixel_size_nm)
        axes[0].set_title("frame")
    plot_height_fit(axes[first - 1], fit, log=True)
    axes[first - 1].set_title("heights")
    for ax, lag in zip(axes[first:], lags):
        plot_increment_fit(ax, fit, lag)
        ax.set_title(f"increments, lag {lag} px")
    for ax in axes[n:]:
        ax.set_visible(False)
    when = f", t = {time_s / 60:.0f} min" if np.isfinite(time_s) else ""
    fig.suptitle(f"frame {frame}{when}: c = {fit.c:.3f}", y=1.0 - 0.08 / height_in, va="top")
    if theme is not None:
        apply_theme(fig, theme)
    return fig


def _column(rows: Sequence[dict], key: str) -> np.ndarray:
    return np.array([float(r.get(key, np.nan)) for r in rows], dtype=float)


def plot_parameters_vs_time(
    fig: Figure,
    rows: Sequence[dict],
    *,
    lag: int | None = None,
    parameters: Sequence[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """Each parameter against time, one small panel each.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        An empty figure to draw on.
    rows : sequence of dict
        The results table (one row per frame and lag, as :mod:`napari_calcite_afm.pipeline`
        writes it); rows of other lags are skipped.
    lag : int, optional
        The lag whose rho and increment KS are drawn (default: the smallest in ``rows``).
    parameters : sequence of (column, label), optional
        Which columns to draw (default :data:`TIME_PARAMETERS`,
        :data:`GSG_TIME_PARAMETERS` and :data:`RATE_TIME_PARAMETERS`, those present).

    Returns
    -------
    dict
        ``{column: Line2D}``; x values are minutes (time_s / 60, or frame index when the
        times are unknown).

    Examples
    --------
    >>> rows = [{"frame": i, "time_s": 300.0 * i, "lag_px": 1, "c": 0.1 * i} for i in range(3)]
    >>> lines = plot_parameters_vs_time(Figure(), rows)
    >>> list(lines), lines["c"].get_xdata().tolist()
    (['c'], [0.0, 5.0, 10.0])
    """
    lines: dict[str, Any] = {}
    if not rows:
        return lines
    lag_values = sorted({int(r["lag_px"]) for r in rows if np.isfinite(r.get("lag_px", np.nan))})
    if lag is None and lag_values:
        lag = lag_values[0]
    sel = [r for r in rows if lag is None or r.get("lag_px") == lag]
    every = TIME_PARAMETERS + GSG_TIME_PARAMETERS + RATE_TIME_PARAMETERS
    params = [p for p in (parameters or every) if p[0] in sel[0]]
    t = _column(sel, "time_s") / 60.0
    xlabel = "time (min)"
    if not np.all(np.isfinite(t)):
        t = _column(sel, "frame")
        xlabel = "frame"
    ncols = 3
    nrows = max(1, math.ceil(len(params) / ncols))
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True).ravel()
    for ax, (key, label) in zip(axes, params):
        (lines[key],) = ax.plot(t, _column(sel, key), "o-", ms=3, lw=1)
        ax.set_ylabel(label, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes[len(params) :]:
        ax.set_visible(False)
    for ax in axes[-ncols:]:
        ax.set_xlabel(xlabel, fontsize=8)
    if lag is not None:
        fig.suptitle(f"parameters against time (rho and increment KS at lag {lag} px)")
    return lines


def parameters_figure(
    rows: Sequence[dict], *, lag: int | None = None, theme: PlotTheme | None = None
) -> Figure:
    """Standalone figure of :func:`plot_parameters_vs_time` (11 x 8.5 inches).

    Parameters
    ----------
    rows : sequence of dict
        The results table.
    lag : int, optional
        The lag whose rho and increment KS are drawn (default: the smallest).
    theme : PlotTheme, optional
        Colours (default black on white, :data:`LIGHT`).

    Returns
    -------
    matplotlib.figure.Figure
        A standalone figure (no pyplot state), ready for ``savefig``.

    Examples
    --------
    >>> rows = [{"frame": i, "time_s": 60.0 * i, "lag_px": 1, "c": 0.2} for i in range(2)]
    >>> parameters_figure(rows).get_size_inches().tolist()
    [11.0, 8.5]
    """
    fig = Figure(figsize=(11, 8.5))  # fixed margins: see frame_figure
    fig.subplots_adjust(left=0.07, right=0.99, bottom=0.07, top=0.94, wspace=0.32, hspace=0.2)
    plot_parameters_vs_time(fig, rows, lag=lag)
    if theme is not None:
        apply_theme(fig, theme)
    return fig
