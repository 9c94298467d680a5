"""fit_frame(..., increment_model="gsg"): the multimodal GSG model of a frame and its table."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_calcite_afm.stats import (
    GSGFit,
    StatsError,
    fit_frame,
    fit_stack,
    fits_to_rows,
    gsg_columns,
    mixture_pdf,
    row_columns,
    simulate_gsg_field,
)

LAGS = (1, 2, 4)


def _gsg_frame(n=128, seed=41):
    """Two GSG modes (A: alpha 1.3, B: alpha 1.7) over a smooth random indicator."""
    rng = np.random.default_rng(seed)
    smooth = ndi.gaussian_filter(rng.normal(size=(n, n)), 10.0, mode="wrap")
    labels = np.where(smooth < np.quantile(smooth, 0.3), 1, 2).astype(np.uint8)
    a = simulate_gsg_field((n, n), 1.3, 1.0, 3.0, mu=-6.0, seed=seed + 1)
    b = simulate_gsg_field((n, n), 1.7, 0.4, 3.0, seed=seed + 2)
    return np.where(labels == 1, a, b), labels


def _terraces(n=128, seed=42):
    """A stepped terrace (steps of 0.31 nm, roughness 0.02 nm) with a deep square pit."""
    rng = np.random.default_rng(seed)
    x = np.arange(n)[None, :] + 6.0 * np.sin(np.arange(n)[:, None] / 13.0)
    z = np.floor(x / 11.0) * -0.31 + 0.02 * rng.normal(size=(n, n))
    labels = np.full((n, n), 2, np.uint8)
    labels[40:80, 40:80] = 1
    z[40:80, 40:80] -= 5.0 + 0.8 * rng.normal(size=(40, 40))
    return z, labels


@pytest.fixture(scope="module")
def gsg_fit():
    z, labels = _gsg_frame()
    return fit_frame(z, labels, LAGS, pixel_size_nm=11.7, increment_model="gsg")


def test_the_modes_are_recovered_and_fit(gsg_fit):
    g = gsg_fit.gsg
    assert isinstance(g, GSGFit) and (g.method, g.steps) == ("ml", True)
    a, b = g.regions
    assert (a.name, b.name, a.label, b.label) == ("A", "B", 1, 2)
    assert abs(a.alpha - 1.3) < 0.3 and abs(b.alpha - 1.7) < 0.3
    assert abs(a.sigma - 1.0) < 0.2 and abs(b.sigma - 0.4) < 0.08
    assert a.mu == gsg_fit.regions[0].mu and b.mu == gsg_fit.regions[1].mu
    for s in LAGS:
        assert g.lag(s).ks_increment < 0.04
        assert abs(g.lag(s).weights.sum() - 1) < 1e-9
    assert g.ks_height < 0.04 and math.isfinite(g.loglik_height)
    # the GSG mixture is a density
    x = np.linspace(-40, 30, 70_001)
    assert abs(mixture_pdf(x, *g.height_components()).sum() * 0.001 - 1) < 1e-3


def test_the_table_has_the_gsg_columns_and_keeps_the_gaussian_ones(gsg_fit):
    z, labels = _gsg_frame()
    gauss = fit_frame(z, labels, LAGS, pixel_size_nm=11.7)
    rows = gsg_fit.to_rows(frame=3, time_s=60.0)
    assert list(rows[0]) == row_columns(2, "gsg")
    assert row_columns(2, "gsg")[-1] == "flags"
    assert set(row_columns(2)) <= set(row_columns(2, "gsg"))
    for col in (
        "gsg_alpha_A",
        "gsg_sigma_A",
        "gsg_rho_A",
        "gsg_alpha_B",
        "gsg_sigma_B",
        "gsg_rho_B",
        "ks_height_gsg",
        "ks_increment_gsg",
        "better_increment_model",
    ):
        assert col in rows[0]  # fmt: skip
    for row, g_row in zip(rows, gauss.to_rows(frame=3, time_s=60.0)):
        for key, value in g_row.items():
            assert row[key] == value or (value != value and row[key] != row[key]), key
        s = row["lag_px"]
        assert row["gsg_rho_B"] == gsg_fit.gsg.regions[1].rho[s]
        assert row["ks_increment_gsg"] == gsg_fit.gsg.lag(s).ks_increment
        better = "gsg" if row["ks_increment_gsg"] < row["ks_increment"] else "gaussian"
        assert row["better_increment_model"] == better
    assert fits_to_rows([gsg_fit])[0]["gsg_method"] == "ml"
    assert "gsg" in gsg_fit.to_dict() and gsg_fit.to_dict()["gsg"]["method"] == "ml"


def test_step_crossings_make_the_gsg_beat_the_gaussian_on_terraces():
    z, labels = _terraces()
    fit = fit_frame(z, labels, LAGS, increment_model="gsg")
    b = fit.gsg.regions[1]
    assert b.step_height == pytest.approx(0.31, abs=0.02)
    assert 0 < b.step_fraction[1] < b.step_fraction[4]
    ks_gauss = np.mean([fit.lag(s).ks_increment for s in LAGS])
    ks_gsg = np.mean([fit.gsg.lag(s).ks_increment for s in LAGS])
    assert ks_gsg < 0.75 * ks_gauss
    plain = fit_frame(z, labels, LAGS, increment_model="gsg", gsg_steps=False)
    assert all(q == 0 for q in plain.gsg.regions[1].step_fraction.values())


def test_three_classes_get_the_monolayer_columns():
    z, labels = _gsg_frame(96, seed=43)
    labels[:20, :20] = 3
    fit = fit_frame(z, labels, (1, 2), n_classes=3, increment_model="gsg", gsg_method="moments")
    row = fit.to_rows()[0]
    assert list(row) == row_columns(3, "gsg")
    assert {"gsg_alpha_M", "gsg_sigma_M", "gsg_rho_M"} <= set(row)
    assert [r.name for r in fit.gsg.regions] == ["A", "B", "M"]
    assert fit.gsg.method == "moments" and row["gsg_method"] == "moments"


def test_an_undefined_region_keeps_its_gaussian_mode():
    z, labels = _gsg_frame(96, seed=44)
    z = np.where(labels == 1, np.random.default_rng(45).uniform(-7, -5, z.shape), z)
    fit = fit_frame(z, labels, (1, 2), increment_model="gsg")
    a = fit.gsg.regions[0]
    assert math.isnan(a.alpha) and "kurtosis below 3" in a.flags[0]
    assert any("stays Gaussian" in f for f in fit.gsg.flags)
    assert math.isfinite(fit.gsg.lag(1).ks_increment)
    assert "GSG region A" in fit.to_rows()[0]["flags"]


def test_empty_frames_and_stacks():
    z = np.full((32, 32), np.nan)
    fit = fit_frame(z, np.ones((32, 32), np.uint8), (1,), increment_model="gsg")
    row = fit.to_rows()[0]
    assert list(row) == row_columns(2, "gsg")
    assert math.isnan(row["gsg_alpha_A"]) and math.isnan(row["ks_increment_gsg"])
    assert row["better_increment_model"] == ""
    flat = fit_frame(np.ones((32, 32)), _gsg_frame(32, seed=48)[1], (1,), increment_model="gsg")
    assert flat.gsg.ks_height == flat.ks_height == 0.0  # point masses on the data
    assert flat.gsg.lag(1).ks_increment == flat.lag(1).ks_increment == 0.0
    assert all("zero variance" in r.flags[0] for r in flat.gsg.regions)
    zz, ll = _gsg_frame(64, seed=46)
    fits = fit_stack(np.stack([zz, zz]), np.stack([ll, ll]), (1,), increment_model="gsg")
    assert fits[0].gsg.regions[0].alpha == fits[1].gsg.regions[0].alpha


def test_bad_model_arguments_raise():
    z, labels = _gsg_frame(32, seed=47)
    with pytest.raises(StatsError, match="increment_model"):
        fit_frame(z, labels, (1,), increment_model="gumbel")
    with pytest.raises(StatsError, match="gsg_method"):
        fit_frame(z, labels, (1,), increment_model="gsg", gsg_method="bayes")
    with pytest.raises(StatsError, match="increment_model"):
        row_columns(2, "gumbel")
    assert gsg_columns(2)[:3] == ["gsg_alpha_A", "gsg_sigma_A", "gsg_rho_A"]
