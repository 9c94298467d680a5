"""Plot themes: figures follow napari's dark theme on screen and stay black on white in files."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from napari_calcite_afm.plot_theme import LIGHT, PlotTheme, apply_theme

DARK = PlotTheme.from_colors("#23242b", "#f0f1f2")


def _rgb(color):
    return tuple(np.round(to_rgba(color)[:3], 3))


def test_apply_theme_recolours_text_axes_and_black_lines_only():
    fig = Figure()
    ax = fig.subplots()
    (model,) = ax.plot([0, 1], [0, 1], color="k", label="f")
    (mode,) = ax.plot([0, 1], [1, 0], color="#ff8c00", label="A")
    hist = ax.stairs([1.0, 2.0], [0.0, 1.0, 2.0], fill=True, color="0.75")
    ax.set_xlabel("Z' (nm)")
    ax.legend()
    fig.suptitle("frame 0")
    apply_theme(fig, DARK)
    assert _rgb(fig.get_facecolor()) == _rgb("#23242b")
    assert _rgb(ax.get_facecolor()) == _rgb("#23242b")
    assert _rgb(model.get_color()) == _rgb("#f0f1f2")
    assert _rgb(mode.get_color()) == _rgb("#ff8c00")  # the modes keep their colours
    assert _rgb(hist.get_facecolor()) == _rgb(DARK.hist)
    assert _rgb(ax.xaxis.label.get_color()) == _rgb("#f0f1f2")
    assert _rgb(fig._suptitle.get_color()) == _rgb("#f0f1f2")
    legend_text = ax.get_legend().get_texts()[0]
    assert _rgb(legend_text.get_color()) == _rgb("#f0f1f2")
    # and back to black on white, as exported
    apply_theme(fig, LIGHT)
    assert _rgb(fig.get_facecolor()) == (1.0, 1.0, 1.0)
    assert _rgb(model.get_color()) == (0.0, 0.0, 0.0)
    assert _rgb(hist.get_facecolor()) == _rgb("0.75")


def test_theme_greys_lie_between_background_and_text():
    bg, fg = np.array(_rgb(DARK.background)), np.array(_rgb(DARK.text))
    for grey in (DARK.hist, DARK.muted):
        g = np.array(_rgb(grey))
        assert np.all((g >= bg - 1e-3) & (g <= fg + 1e-3))
    assert PlotTheme() == LIGHT


def test_transparent_artists_are_left_alone():
    from napari_calcite_afm.plotting import plot_height_map

    fig = Figure()
    out = plot_height_map(fig.subplots(), np.random.default_rng(0).normal(size=(32, 32)), 5.0)
    apply_theme(fig, DARK)
    outline = out["colorbar"].outline
    assert to_rgba(outline.get_facecolor())[3] == pytest.approx(0.0)
