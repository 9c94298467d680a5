"""Frame figures carry a scale bar in nm and a colorbar labelled "height (nm)"; the
figures the command line writes stay black on white."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from napari_calcite_afm.plot_theme import PlotTheme
from napari_calcite_afm.plotting import (
    frame_figure,
    parameters_figure,
    plot_height_map,
    scale_bar_length,
)
from napari_calcite_afm.stats import fit_frame
from napari_calcite_afm.synthetic import make_series


@pytest.fixture(scope="module")
def frame_fit():
    s = make_series(1, 96, seed=22)
    fit = fit_frame(s.clean[0], s.labels[0], lags=(1, 2), pixel_size_nm=s.pixel_size_nm)
    return s, fit


def test_height_map_has_scale_bar_in_nm_and_labelled_colorbar():
    z = np.random.default_rng(0).normal(0, 1, (64, 200))
    z[:2] -= 140.0  # settling lines: left out of the colour limits
    ax = Figure().subplots()
    out = plot_height_map(ax, z, 11.7)
    assert out["colorbar"].ax.get_ylabel() == "height (nm)"
    length = out["scale_bar_nm"]
    assert length == scale_bar_length(200 * 11.7) == 200.0
    assert out["scale_bar"].txt_label.get_text() == "200 nm"
    assert out["image"].get_extent() == pytest.approx((0.0, 200 * 11.7, 64 * 11.7, 0.0))
    lo, hi = out["image"].get_clim()
    assert lo > -10 and hi < 10
    assert scale_bar_length(20_000.0) == 2000.0
    big = plot_height_map(Figure().subplots(), np.zeros((8, 8)), 2500.0)
    assert big["scale_bar"].txt_label.get_text() == "2 µm"


def test_frame_figure_with_the_frame(frame_fit):
    s, fit = frame_fit
    fig = frame_figure(fit, frame=0, heights=s.clean[0], pixel_size_nm=s.pixel_size_nm)
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert "height (nm)" in labels  # the colorbar
    assert [ax.get_title() for ax in fig.axes][:2] == ["frame", "heights"]
    images = [ax.images for ax in fig.axes if ax.images]
    assert len(images) == 1


def test_cli_figures_stay_black_on_white_unless_a_theme_is_asked(frame_fit):
    _, fit = frame_fit
    plain = frame_figure(fit)
    assert to_rgba(plain.get_facecolor()) == (1.0, 1.0, 1.0, 1.0)
    assert len(plain.axes) == 3  # no frame panel unless heights are given
    black = [ln for ax in plain.axes for ln in ax.lines if ln.get_color() == "k"]
    assert black  # the model lines f and g
    dark = PlotTheme.from_colors("#23242b", "#f0f1f2")
    themed = frame_figure(fit, theme=dark)
    assert to_rgba(themed.get_facecolor())[:3] == pytest.approx(to_rgba("#23242b")[:3])
    rows = [{"frame": i, "time_s": 60.0 * i, "lag_px": 1, "c": 0.2} for i in range(2)]
    assert to_rgba(parameters_figure(rows).get_facecolor()) == (1.0, 1.0, 1.0, 1.0)
    dark_rows = parameters_figure(rows, theme=dark)
    assert to_rgba(dark_rows.get_facecolor())[:3] == pytest.approx(to_rgba("#23242b")[:3])
