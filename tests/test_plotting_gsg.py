"""The figures draw the GSG model beside the Gaussian one, and alpha against time."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from napari_calcite_afm.plotting import (
    GSG_COLOR,
    frame_figure,
    parameters_figure,
    plot_height_fit,
    plot_increment_fit,
    plot_parameters_vs_time,
)
from napari_calcite_afm.stats import fit_frame, fits_to_rows, mixture_pdf


def _frame(n=96, seed=61):
    rng = np.random.default_rng(seed)
    x = np.arange(n)[None, :] + 5.0 * np.sin(np.arange(n)[:, None] / 11.0)
    z = np.floor(x / 9.0) * -0.31 + 0.02 * rng.normal(size=(n, n))
    labels = np.full((n, n), 2, np.uint8)
    labels[30:60, 30:60] = 1
    z[30:60, 30:60] -= 4.0 + 0.5 * rng.normal(size=(30, 30))
    return z, labels


def test_both_densities_are_drawn_on_log_axes():
    z, labels = _frame()
    fit = fit_frame(z, labels, (1, 2), increment_model="gsg")
    ax = Figure().subplots()
    out = plot_increment_fit(ax, fit, 2)
    assert ax.get_yscale() == "log"
    line = out["gsg"]
    assert line.get_color() == GSG_COLOR and "KS" in line.get_label()
    g = fit.gsg.lag(2)
    x = line.get_xdata()
    assert np.allclose(line.get_ydata(), mixture_pdf(x, g.weights, g.means, g.sigmas))
    assert out["model"] is not None  # the Gaussian g is still there
    ax = Figure().subplots()
    out = plot_height_fit(ax, fit, log=True)
    assert out["gsg"] is not None and ax.get_yscale() == "log"
    fig = frame_figure(fit, heights=z)
    labels_drawn = [ln.get_label() for a in fig.axes for ln in a.get_lines()]
    assert sum(label.startswith("g GSG") for label in labels_drawn) == 2


def test_gaussian_fits_draw_no_gsg_line_and_alpha_is_plotted_against_time():
    z, labels = _frame()
    plain = fit_frame(z, labels, (1,))
    assert plot_increment_fit(Figure().subplots(), plain, 1)["gsg"] is None
    fits = [fit_frame(z + 0.1 * i, labels, (1,), increment_model="gsg") for i in range(3)]
    rows = fits_to_rows(fits, times_s=[0.0, 300.0, 600.0])
    lines = plot_parameters_vs_time(Figure(), rows)
    assert {"gsg_alpha_A", "gsg_alpha_B", "ks_increment_gsg"} <= set(lines)
    assert lines["gsg_alpha_B"].get_ydata().tolist() == [r["gsg_alpha_B"] for r in rows]
    assert "gsg_alpha_A" not in plot_parameters_vs_time(Figure(), fits_to_rows([plain]))
    assert parameters_figure(rows).get_size_inches().tolist() == [11.0, 8.5]
