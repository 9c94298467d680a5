"""Figures of a movie's kinetics (matplotlib, no display needed).

- :func:`kinetics_figure`: mean dissolution rate against time (overall, pits, terraces),
  pit area and depth against time (one line per track), and the obtuse and acute step
  retreat velocities of the tracks;
- :func:`rate_maps_figure`: the rate maps of a few frame pairs (nm/s, diverging colormap
  centred on 0, a colorbar and a scale bar in nm).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .._util import atomic_path
from ..plot_theme import LIGHT, PlotTheme, apply_theme

__all__ = ["kinetics_figure", "rate_maps_figure", "write_kinetics_figures"]

_RATE_CMAP = "RdBu_r"


def _time_axis(result) -> tuple[np.ndarray, str]:
    t = np.asarray(result.frame_times_s, dtype=float)
    return (t, "time (s)") if result.timed else (t, "frame")


def kinetics_figure(result, theme: PlotTheme = LIGHT) -> Figure:
    """Rates, pit areas and depths against time, and step retreat velocities.

    Parameters
    ----------
    result : KineticsResult
        From :func:`~.analysis.analyse_kinetics`.
    theme : PlotTheme
        Colours (black on white by default).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from napari_calcite_afm.kinetics import analyse_kinetics
    >>> lab = np.full((3, 24, 24), 2, np.uint8); lab[:, 8:14, 8:14] = 1
    >>> fig = kinetics_figure(analyse_kinetics(np.zeros((3, 24, 24)), lab, 10.0, 60.0))
    >>> len(fig.axes)
    4
    """
    fig = Figure(figsize=(10, 7), layout="constrained")
    (ax_rate, ax_vel), (ax_area, ax_depth) = fig.subplots(2, 2)
    t, t_label = _time_axis(result)
    unit = "nm/s" if result.timed else "nm/frame"
    rows = result.rate_table
    t_mid = np.array([r["time_s"] + r["dt_s"] / 2 for r in rows], dtype=float)
    for key, name in (
        ("rate_nm_s", "all"),
        ("rate_pits_nm_s", "pits"),
        ("rate_terrace_nm_s", "terraces"),
    ):
        ax_rate.plot(t_mid, [r[key] for r in rows], "o-", label=name, ms=3)
    ax_rate.axhline(0.0, color="0.5", lw=0.8)
    ax_rate.set_xlabel(t_label)
    ax_rate.set_ylabel(f"mean dissolution rate ({unit})")
    ax_rate.legend(fontsize=8)
    by_track: dict[int, list[dict]] = {}
    for row in result.tracks.pits:
        by_track.setdefault(int(row["track_id"]), []).append(row)
    for pits in by_track.values():
        pits.sort(key=lambda r: r["frame"])
        tt = [t[int(r["frame"])] for r in pits]
        ax_area.plot(tt, [r["area_nm2"] for r in pits], "-", lw=1)
        ax_depth.plot(tt, [r["depth_nm"] for r in pits], "-", lw=1)
    ax_area.set_xlabel(t_label)
    ax_area.set_ylabel("pit area (nm²)")
    ax_depth.set_xlabel(t_label)
    ax_depth.set_ylabel("pit depth (nm)")
    _velocity_panel(ax_vel, result.tracks, unit)
    apply_theme(fig, theme)
    return fig


def _velocity_panel(ax, tracks, unit: str) -> None:
    obtuse = np.array([r.get("obtuse_velocity_nm_s", math.nan) for r in tracks.tracks], float)
    acute = np.array([r.get("acute_velocity_nm_s", math.nan) for r in tracks.tracks], float)
    ok = np.isfinite(obtuse) & np.isfinite(acute)
    if ok.any():
        ax.scatter(acute[ok], obtuse[ok], s=14)
        top = float(max(obtuse[ok].max(), acute[ok].max(), 1e-12))
        ax.plot([0, top], [0, top], color="0.5", lw=0.8, label="ratio 1")
        ax.plot([0, top / 2.3], [0, top], color="0.3", lw=0.8, ls="--", label="ratio 2.3")
        ax.legend(fontsize=8)
    ratio = tracks.velocity_ratio
    title = "step retreat velocity per pit"
    if math.isfinite(ratio):
        title += f" (movie ratio {ratio:.2f})"
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(f"acute step velocity ({unit})")
    ax.set_ylabel(f"obtuse step velocity ({unit})")


def rate_maps_figure(result, max_pairs: int = 4, theme: PlotTheme = LIGHT) -> Figure:
    """The rate maps of up to ``max_pairs`` evenly spaced frame pairs.

    Examples
    --------
    >>> from napari_calcite_afm.kinetics import analyse_kinetics
    >>> lab = np.full((3, 24, 24), 2, np.uint8)
    >>> fig = rate_maps_figure(analyse_kinetics(np.zeros((3, 24, 24)), lab, 10.0, 60.0))
    >>> len(fig.axes)  # two maps and their colorbar
    3
    """
    from ..plotting import _length_text, scale_bar_length

    rates = np.asarray(result.rates)
    n = rates.shape[0]
    pairs = sorted(set(np.linspace(0, n - 1, min(max_pairs, n)).round().astype(int).tolist()))
    finite = np.abs(rates[np.isfinite(rates)])
    limit = float(np.percentile(finite, 99.0)) if finite.size else 1.0
    limit = limit if limit > 0 else 1.0
    fig = Figure(figsize=(3.2 * len(pairs) + 1.0, 3.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(pairs)))
    px = float(result.pixel_size_nm)
    rows, cols = rates.shape[1:]
    unit = "nm/s" if result.timed else "nm/frame"
    t, _ = _time_axis(result)
    image = None
    for ax, k in zip(axes, pairs):
        extent = (0, cols * px, rows * px, 0)
        image = ax.imshow(rates[k], cmap=_RATE_CMAP, vmin=-limit, vmax=limit, extent=extent)
        when = f"{t[k]:g}-{t[k + 1]:g} s" if result.timed else f"frames {k}-{k + 1}"
        ax.set_title(when, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        bar = scale_bar_length(cols * px)
        x0, y0 = 0.05 * cols * px, 0.93 * rows * px
        ax.plot([x0, x0 + bar], [y0, y0], color="k", lw=3)
        ax.text(x0, y0 - 0.03 * rows * px, _length_text(bar), fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=list(axes), label=f"dissolution rate ({unit})", shrink=0.8)
    apply_theme(fig, theme)
    return fig


def write_kinetics_figures(result, folder: str | Path) -> dict[str, str]:
    """Write ``kinetics.png`` and ``rates_frames.png`` into ``folder`` (atomically).

    Examples
    --------
    >>> import tempfile
    >>> from napari_calcite_afm.kinetics import analyse_kinetics
    >>> lab = np.full((2, 16, 16), 2, np.uint8)
    >>> res = analyse_kinetics(np.zeros((2, 16, 16)), lab, 10.0, 60.0)
    >>> sorted(write_kinetics_figures(res, tempfile.mkdtemp()))
    ['kinetics.png', 'rates_frames.png']
    """
    folder = Path(folder)
    files = {}
    for name, make in (("kinetics.png", kinetics_figure), ("rates_frames.png", rate_maps_figure)):
        fig = make(result)
        with atomic_path(folder / name) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
        files[name] = str(folder / name)
    return files
