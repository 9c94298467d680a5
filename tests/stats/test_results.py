"""Tests of napari_calcite_afm.stats.results: table rows, dictionaries, lookups."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from napari_calcite_afm.stats import (
    EMFit,
    FrameFit,
    StatsError,
    fit_frame,
    fits_to_rows,
    row_columns,
)


def test_rows_and_dicts(fields, model_fit):
    _, _, fit = model_fit
    rows = fit.to_rows(frame=3, time_s=900.0)
    required = [
        "frame", "time_s", "lag_px", "lag_nm", "c", "mu_A", "sigma_A", "rho_A",
        "mu_B", "sigma_B", "rho_B", "ks_height", "ks_increment",
    ]  # fmt: skip
    assert row_columns(2)[:13] == required
    assert len(rows) == len(fields.LAGS)
    for row, ls in zip(rows, fit.lags):
        assert list(row) == row_columns(2)
        assert row["frame"] == 3 and row["time_s"] == 900.0
        assert row["lag_px"] == ls.lag_px and row["lag_nm"] == pytest.approx(11.7 * ls.lag_px)
        assert row["rho_A"] == ls.rho[1] and row["p_AB"] == ls.p[0, 1]
        assert row["em_c"] == fit.em.c and row["flags"] == ""
    text = json.dumps(fit.to_dict(include_histograms=True))
    assert "height_hist" in text


def test_rows_without_lags_or_em(fields):
    z, labels = fields.model_frame((48, 48), seed=17)
    fit = fit_frame(z, labels, (), em=False, histograms=False)
    assert fit.lags == [] and fit.em is None and fit.height_hist is None
    (row,) = fit.to_rows()
    assert list(row) == row_columns(2)
    assert math.isnan(row["lag_px"]) and row["n_pairs"] == 0 and math.isnan(row["em_c"])
    d = fit.to_dict(include_histograms=True)
    assert d["em"] is None and "height_hist" not in d
    rows = fits_to_rows([fit, fit])
    assert [r["frame"] for r in rows] == [0, 1] and all(math.isnan(r["time_s"]) for r in rows)


def test_region_and_lag_lookups(model_fit):
    _, _, fit = model_fit
    assert fit.region("A") is fit.regions[0] and fit.region(2) is fit.regions[1]
    assert fit.lag(4) is fit.lags[2]
    with pytest.raises(StatsError, match="no region"):
        fit.region("M")
    with pytest.raises(StatsError, match="was not fitted"):
        fit.lag(3)
    w, m, s = fit.height_components()
    assert w.tolist() == [r.weight for r in fit.regions]
    assert m.tolist() == [r.mu for r in fit.regions]
    assert s.tolist() == [r.sigma for r in fit.regions]


def test_row_columns_checks_the_number_of_classes():
    assert len(row_columns(3)) == len(row_columns(2)) + 4 + 5
    for bad in (1, 4, True):
        with pytest.raises(StatsError):
            row_columns(bad)


def test_em_fit_evaluates_its_mixture():
    em = EMFit(np.array([0.5, 0.5]), np.array([-1.0, 1.0]), np.array([0.5, 0.5]), 0.0, 10, 3, True)
    assert em.c == 0.5
    assert float(em.cdf(0.0)) == 0.5
    assert float(em.pdf(0.0)) == pytest.approx(2 * 0.5 * np.exp(-2.0) / (0.5 * np.sqrt(2 * np.pi)))
    assert isinstance(FrameFit.__doc__, str)
