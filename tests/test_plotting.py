"""The figures of the multimodal Gaussian model (no pyplot: standalone figures)."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from napari_calcite_afm.pipeline import fit_series
from napari_calcite_afm.plotting import (
    TIME_PARAMETERS,
    frame_figure,
    parameters_figure,
    plot_height_fit,
    plot_increment_fit,
    plot_parameters_vs_time,
)
from napari_calcite_afm.synthetic import make_series


@pytest.fixture(scope="module")
def fitted():
    s = make_series(3, 64, seed=21)
    rows, fits = fit_series(
        s.clean,
        s.labels,
        pixel_size_nm=s.pixel_size_nm,
        frame_times_s=s.frame_times_s,
        lags=(1, 3),
    )
    return s, rows, fits


def test_height_fit_draws_the_histogram_model_and_components(fitted):
    _, _, fits = fitted
    ax = Figure().subplots()
    out = plot_height_fit(ax, fits[0])
    data = out["hist"].get_data()
    density, edges = data.values, data.edges
    assert np.sum(density * np.diff(edges)) == pytest.approx(1.0, rel=1e-6)
    assert len(out["components"]) == 2 and out["model"] is not None
    x, y = out["model"].get_data()
    assert np.all(y >= 0) and x[0] == pytest.approx(edges[0])
    # the mixture is the sum of its components
    comp = sum(line.get_data()[1] for line in out["components"])
    np.testing.assert_allclose(y, comp, rtol=1e-9, atol=1e-12)
    log_ax = Figure().subplots()
    plot_height_fit(log_ax, fits[0], log=True, show_em=False)
    assert log_ax.get_yscale() == "log"


def test_increment_fit_per_lag(fitted):
    _, _, fits = fitted
    ax = Figure().subplots()
    out = plot_increment_fit(ax, fits[1], 3)
    assert out["hist"] is not None and out["model"] is not None
    assert "s = 3 px" in ax.get_xlabel() and ax.get_yscale() == "log"


def test_frame_figure_has_one_panel_per_lag(fitted):
    _, _, fits = fitted
    fig = frame_figure(fits[2], frame=2, time_s=600.0)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 3  # heights + two lags
    assert "frame 2, t = 10 min" in fig._suptitle.get_text()
    assert len([ax for ax in frame_figure(fits[0], lags=[1]).axes if ax.get_visible()]) == 2


def test_parameters_against_time(fitted):
    s, rows, _ = fitted
    fig = Figure()
    lines = plot_parameters_vs_time(fig, rows)
    assert list(lines) == [k for k, _ in TIME_PARAMETERS]
    t, c = lines["c"].get_data()
    np.testing.assert_allclose(t, np.asarray(s.frame_times_s) / 60.0)
    np.testing.assert_allclose(c, [r["c"] for r in rows if r["lag_px"] == 1])
    assert "lag 1 px" in fig._suptitle.get_text()
    # unknown times: frames on the x axis; another lag on request
    no_time = [dict(r, time_s=np.nan) for r in rows]
    fig = Figure()
    lines = plot_parameters_vs_time(fig, no_time, lag=3, parameters=[("rho_A", "rho")])
    assert list(lines) == ["rho_A"] and list(lines["rho_A"].get_data()[0]) == [0, 1, 2]
    assert plot_parameters_vs_time(Figure(), []) == {}
    assert isinstance(parameters_figure(rows), Figure)
