"""The Statistics widget through napari: the plotted values must be the library's.

The tests recompute the fits with :mod:`napari_calcite_afm.stats` and compare bar heights,
line data and table cells.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

pytestmark = pytest.mark.gui

PX = 11.7


LAGS = (1, 2, 4, 8)


@pytest.fixture(scope="module")
def series():
    from napari_calcite_afm.synthetic import make_series

    return make_series(3, 64, seed=5)


def add_clean_and_truth(viewer, series):
    from napari_calcite_afm._napari.layers import image_layer_kwargs, labels_layer_kwargs

    times = [300.0 * i for i in range(series.clean.shape[0])]
    image = viewer.add_image(
        series.clean,
        **image_layer_kwargs(series.clean, PX, "clean", {"frame_times_s": times}),
    )
    labels = viewer.add_labels(
        series.labels, **labels_layer_kwargs(series.labels, PX, "truth", like=image)
    )
    return image, labels


def _bar_heights(artist):
    """Heights of a histogram drawn with ``ax.bar`` (bars) or ``ax.stairs`` (values)."""
    if hasattr(artist, "get_data") and hasattr(artist.get_data(), "values"):
        return np.asarray(artist.get_data().values)
    return np.array([b.get_height() for b in artist])


def test_statistics_plots_equal_the_library(make_napari_viewer, qtbot, series, tmp_path):
    from napari_calcite_afm._napari.widgets.statistics import StatisticsWidget
    from napari_calcite_afm.stats import fit_frame, height_pdf, increment_pdf

    viewer = make_napari_viewer()
    add_clean_and_truth(viewer, series)
    viewer.dims.set_current_step(0, 1)
    widget = StatisticsWidget(viewer)
    viewer.window.add_dock_widget(widget)
    qtbot.waitUntil(lambda: widget.fit is not None and widget.fit_frame_index == 1, timeout=20_000)

    fit = fit_frame(series.clean[1], series.labels[1], LAGS, axis="both", pixel_size_nm=PX)
    height = widget.artists["height"]
    np.testing.assert_allclose(_bar_heights(height["hist"]), fit.height_hist.density)
    x, y = height["model"].get_data()
    np.testing.assert_allclose(y, height_pdf(x, fit))
    assert len(height["components"]) == 2  # the two modes of the mixture

    increment = widget.artists["increment"]
    assert widget.chosen_lag() == 1
    np.testing.assert_allclose(_bar_heights(increment["hist"]), fit.lag(1).hist.density)
    x, y = increment["model"].get_data()
    np.testing.assert_allclose(y, increment_pdf(x, fit, 1))

    # the table shows the seven parameters and the KS distances of the library
    row = fit.to_rows(frame=1, time_s=300.0)[0]
    values = widget.table_values()
    for key in ("c", "mu_A", "sigma_A", "rho_A", "mu_B", "sigma_B", "rho_B"):
        assert values[key] == pytest.approx(row[key], nan_ok=True)
    assert values["ks_height"] == pytest.approx(fit.ks_height)
    assert widget.table.item(0, 1).text() == f"{fit.c:.4g}"
    assert widget.table.item(1, 1).text() == f"{fit.regions[0].mu:.4g} nm"

    # another lag redraws the increments
    widget.lag.setCurrentIndex(widget.lag.findData(4))
    x, y = widget.artists["increment"]["model"].get_data()
    np.testing.assert_allclose(y, increment_pdf(x, fit, 4))
    assert widget.table_values()["rho_A"] == pytest.approx(fit.lag(4).rho[1], nan_ok=True)

    # follows the time slider
    viewer.dims.set_current_step(0, 2)
    qtbot.waitUntil(lambda: widget.fit_frame_index == 2, timeout=20_000)
    fit2 = fit_frame(series.clean[2], series.labels[2], LAGS, axis="both", pixel_size_nm=PX)
    assert widget.fit.c == pytest.approx(fit2.c)

    # every frame, against time
    widget.fit_all()
    qtbot.waitUntil(lambda: not widget.runner.busy, timeout=60_000)
    assert len(widget.rows) == 3 * len(LAGS)
    c_line = widget.time_lines["c"]
    expected_c = [
        fit_frame(series.clean[i], series.labels[i], LAGS, pixel_size_nm=PX).c for i in range(3)
    ]
    np.testing.assert_allclose(c_line.get_ydata(), expected_c)
    np.testing.assert_allclose(c_line.get_xdata(), [0.0, 5.0, 10.0])  # minutes

    # exports
    table = widget.export_table(tmp_path / "stats.csv")
    with open(table) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 * len(LAGS)
    assert float(rows[0]["c"]) == pytest.approx(expected_c[0])
    written = widget.export_figures(tmp_path / "figures")
    assert sorted(p.suffix for p in written) == [".png", ".png", ".svg", ".svg"]
    assert all(p.stat().st_size > 0 for p in written)
    # on screen the plots follow napari's dark theme; the files are black on white
    from matplotlib.colors import to_rgba
    from matplotlib.image import imread

    dark = to_rgba(widget.time_plot.theme.background)
    assert to_rgba(widget.time_plot.figure.get_facecolor()) == pytest.approx(dark)
    assert sum(dark[:3]) < 1.0
    for path in written:
        if path.suffix == ".png":
            assert imread(path)[2, 2, :3] == pytest.approx([1.0, 1.0, 1.0])
    # the frame's figure shows the frame with its scale bar and "height (nm)" colorbar
    svg = next(p for p in written if p.name.startswith("fit_frame") and p.suffix == ".svg")
    text = svg.read_text()
    assert "height (nm)" in text and "100 nm" in text  # 64 px of 11.7 nm: a 100 nm bar


def test_statistics_shape_mismatch_notifies(make_napari_viewer, series, error_messages):
    from napari_calcite_afm._napari.widgets.statistics import StatisticsWidget

    viewer = make_napari_viewer()
    add_clean_and_truth(viewer, series)
    viewer.add_labels(np.ones((2, 32, 32), np.uint8), name="wrong")
    widget = StatisticsWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.labels.set_layer("wrong")
    before = len(error_messages())
    assert widget.fit_all() is None
    assert "wrong" in error_messages()[before:][-1]
    assert not widget.runner.busy


def test_statistics_gsg_model_equals_the_library(make_napari_viewer, qtbot, series, tmp_path):
    from napari_calcite_afm._napari.widgets._statistics_gsg import GSG_PARAMETERS
    from napari_calcite_afm._napari.widgets.statistics import PARAMETERS, StatisticsWidget
    from napari_calcite_afm.stats import fit_frame, mixture_pdf

    viewer = make_napari_viewer()
    add_clean_and_truth(viewer, series)
    widget = StatisticsWidget(viewer)
    viewer.window.add_dock_widget(widget)
    qtbot.waitUntil(lambda: widget.fit is not None, timeout=20_000)
    assert widget.fit.gsg is None and widget.artists["increment"]["gsg"] is None
    assert widget.table.isRowHidden(len(PARAMETERS))  # the GSG rows stay hidden
    assert "ks_increment_gsg" not in widget.table_values()

    widget.lags.setText("1, 2")
    widget._fill_lags()
    widget.increment_model.setCurrentIndex(widget.increment_model.findData("gsg"))
    qtbot.waitUntil(lambda: widget.fit is not None and widget.fit.gsg is not None, timeout=30_000)
    i = widget.fit_frame_index
    fit = fit_frame(series.clean[i], series.labels[i], (1, 2), pixel_size_nm=PX,
                    increment_model="gsg")  # fmt: skip
    line = widget.artists["increment"]["gsg"]
    g = fit.gsg.lag(1)
    x, y = line.get_data()
    np.testing.assert_allclose(y, mixture_pdf(x, g.weights, g.means, g.sigmas))
    assert widget.artists["height"]["gsg"] is not None
    row = fit.to_rows(frame=i, time_s=300.0 * i)[0]
    values = widget.table_values()
    for key, *_ in GSG_PARAMETERS:
        if key == "better_increment_model":
            assert values[key] == row[key]
        else:
            assert values[key] == pytest.approx(row[key], nan_ok=True), key
    assert not widget.table.isRowHidden(len(PARAMETERS))

    widget.fit_all()
    qtbot.waitUntil(lambda: not widget.runner.busy, timeout=90_000)
    assert "gsg_alpha_B" in widget.time_lines
    table = widget.export_table(tmp_path / "gsg.csv")
    with open(table) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 * 2 and "better_increment_model" in rows[0]
