"""Tests of napari_calcite_afm.stats.fitting: fit_frame and fit_stack on model frames."""

from __future__ import annotations

import json
import math
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_calcite_afm.errors import CalciteAFMError
from napari_calcite_afm.stats import (
    StatsError,
    _Workspace,
    fit_frame,
    fit_stack,
    fits_to_rows,
    fluctuation,
    pair_fractions,
    row_columns,
)


# ----------------------------------------------------------------------------- threads
def test_threads_give_the_same_fit_as_one_thread(fields):
    """Tasks on several threads each use their own scratch arrays: same numbers."""
    z, labels = fields.model_frame((192, 160), seed=5)
    z[3, 7] = np.nan
    one = fit_frame(z, labels, (1, 2, 4, 8, 16), workers=1).to_dict(include_histograms=True)
    work = _Workspace()
    for _ in range(2):  # a reused workspace (as fit_stack does) too
        many = fit_frame(z, labels, (1, 2, 4, 8, 16), workers=3, _workspace=work)
        assert many.to_dict(include_histograms=True) == one
    stack = fit_stack(np.stack([z, z[::-1]]), np.stack([labels, labels[::-1]]), (1, 3), workers=2)
    assert stack[0].ks_height == fit_frame(z, labels, (1, 3), workers=1).ks_height


def test_concurrent_frames_keep_their_own_scratch_arrays(fields):
    """fit_frame from several threads at once (as the pipeline runs it) is unaffected."""
    frames = [fields.model_frame((160, 144), seed=s) for s in (7, 8, 9, 10)]
    want = [fit_frame(z, lab, (1, 3), workers=1).to_dict() for z, lab in frames]
    with ThreadPoolExecutor(max_workers=4) as ex:
        got = list(ex.map(lambda f: fit_frame(*f, (1, 3), workers=1).to_dict(), frames * 3))
    assert got == want * 3


@pytest.mark.parametrize("workers", [0, -1, 1.5])
def test_bad_workers_raise(fields, workers):
    z, labels = fields.model_frame((64, 64), seed=6)
    with pytest.raises(StatsError, match="workers"):
        fit_frame(z, labels, (1, 2), workers=workers)


# ----------------------------------------------------------------------------- identities
def test_identities_two_classes(fields, model_fit):
    z, labels, fit = model_fit
    c = fit.c
    a, b = fit.regions
    assert c * a.mu + (1 - c) * b.mu == pytest.approx(0.0, abs=1e-12)
    var = np.var(z.astype(np.float64) - fit.mean_height_nm)
    model_var = c * a.sigma**2 + (1 - c) * b.sigma**2 + c * (1 - c) * (a.mu - b.mu) ** 2
    assert model_var == pytest.approx(var, rel=1e-12)
    fields.check_identities(fit, z, labels)


def test_identities_with_nan_and_unlabelled_pixels(fields):
    rng = np.random.default_rng(5)
    z, labels = fields.model_frame((96, 128), seed=5)
    z = z.astype(np.float64)
    z[rng.random(z.shape) < 0.05] = np.nan
    labels[rng.random(z.shape) < 0.05] = 0
    labels[rng.random(z.shape) < 0.1] = 3
    for k in (2, 3):
        fit = fit_frame(z, labels, (1, 3), n_classes=k)
        assert sum(r.weight for r in fit.regions) == pytest.approx(1.0, abs=1e-15)
        fields.check_identities(fit, z, labels)


def test_parameters_equal_direct_numpy(fields, model_fit):
    z, labels, fit = model_fit
    zp = z.astype(np.float64) - z.astype(np.float64).mean()
    assert fit.mean_height_nm == pytest.approx(float(z.astype(np.float64).mean()), abs=1e-12)
    assert fit.c == np.mean(labels == 1)  # exact
    for r, lab in zip(fit.regions, (1, 2)):
        assert r.mu == pytest.approx(zp[labels == lab].mean(), abs=1e-12)
        assert r.sigma == pytest.approx(zp[labels == lab].std(), rel=1e-12)
        assert r.n_pixels == np.count_nonzero(labels == lab)
    for ls in fit.lags:
        assert ls.lag_nm == pytest.approx(11.7 * ls.lag_px)
        for lab in (1, 2):
            a, b = fields.direct_pairs(zp, labels, lab, ls.lag_px, "both")
            assert ls.n_same_pairs[lab] == a.size
            assert ls.rho[lab] == pytest.approx(np.corrcoef(a, b)[0, 1], abs=1e-10)


# ----------------------------------------------------------------------------- recovery
def test_recovers_true_parameters(fields, model_fit):
    _, labels, fit = model_fit
    MU, SIG, ELL, LAGS = fields.MU, fields.SIG, fields.ELL, fields.LAGS
    a, b = fit.regions
    assert fit.c == pytest.approx(fields.C_TRUE, abs=1 / labels.size)
    # standard errors of correlated fields: mean ~ sigma sqrt(A_c / n), A_c = 4 pi l^2;
    # standard deviation ~ sigma sqrt(pi l^2 / n) (integral of rho^2 = 2 pi l^2)
    area = 4 * math.pi * ELL**2
    se_mu = math.hypot(SIG[0] * math.sqrt(area / a.n_pixels), SIG[1] * math.sqrt(area / b.n_pixels))
    assert a.mu - b.mu == pytest.approx(MU[0] - MU[1], abs=4 * se_mu)
    for r, sig in zip((a, b), SIG):
        se_sig = sig * math.sqrt(math.pi * ELL**2 / r.n_pixels)
        assert r.sigma == pytest.approx(sig, abs=4 * se_sig)
    rho_true = fields.field_corr(ELL)
    # the discrete kernel's correlation is the continuous exp(-s^2 / (4 l^2)) to 1e-6
    np.testing.assert_allclose(
        rho_true[list(LAGS)], np.exp(-(np.array(LAGS) ** 2) / (4 * ELL**2)), atol=1e-4
    )
    for ls in fit.lags:
        for lab in (1, 2):
            # Bartlett's formula with the pairs of one direction: conservative for "both"
            se = fields.bartlett_se(rho_true, ls.lag_px, ls.n_same_pairs[lab] / 2)
            assert ls.rho[lab] == pytest.approx(rho_true[ls.lag_px], abs=5 * se)


# ----------------------------------------------------------------------------- edge cases
def test_region_empty():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(40, 50))
    labels = np.full(z.shape, 2, dtype=np.uint8)
    fit = fit_frame(z, labels, (1, 2))
    a, b = fit.regions
    assert a.weight == 0.0 and a.n_pixels == 0
    assert math.isnan(a.mu) and math.isnan(a.sigma)
    assert "region A empty" in fit.flags
    assert b.weight == 1.0 and b.sigma > 0
    assert np.isfinite(fit.ks_height)  # the model is B alone
    for ls in fit.lags:
        assert math.isnan(ls.rho[1]) and np.isfinite(ls.rho[2])
        assert ls.p[0, 0] == 0.0 and ls.p[1, 1] == 1.0
        assert np.isfinite(ls.ks_increment)
    rows = fit.to_rows()
    assert len(rows) == 2 and "region A empty" in rows[0]["flags"]


def test_region_too_small():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(40, 50))
    labels = np.full(z.shape, 2, dtype=np.uint8)
    labels[0, :5] = 1
    fit = fit_frame(z, labels, (1,), min_pixels=10)
    a = fit.regions[0]
    assert a.n_pixels == 5 and a.weight == 5 / z.size
    assert math.isnan(a.mu) and math.isnan(a.sigma)
    assert any("region A: 5 pixels" in f for f in fit.flags)
    assert math.isnan(fit.ks_height) and any("height model undefined" in f for f in fit.flags)
    assert math.isnan(fit.lags[0].ks_increment)
    assert math.isnan(fit.lags[0].rho[1])
    fit = fit_frame(z, labels, (1,), min_pixels=5)
    assert np.isfinite(fit.regions[0].mu) and np.isfinite(fit.ks_height)


def test_constant_frame():
    z = np.full((30, 30), 7.25, dtype=np.float32)
    labels = np.full(z.shape, 2, dtype=np.uint8)
    labels[5:15, 5:15] = 1
    fit = fit_frame(z, labels, (1, 4))
    assert any("constant frame" in f for f in fit.flags)
    assert fit.mean_height_nm == 7.25
    for r in fit.regions:
        assert r.sigma == 0.0 and r.mu == 0.0
    assert fit.ks_height == 0.0
    for ls in fit.lags:
        assert math.isnan(ls.rho[1]) and math.isnan(ls.rho[2])
        assert ls.ks_increment == 0.0  # all increments 0, the model a point mass at 0
        assert ls.flags
    assert fit.em is not None and np.isnan(fit.em.means).all()
    json.dumps(fit.to_dict())


def test_constant_region_in_a_noisy_frame():
    rng = np.random.default_rng(3)
    z = np.zeros((60, 60))
    labels = np.full(z.shape, 2, dtype=np.uint8)
    labels[10:40, 10:40] = 1
    z[labels == 1] = rng.normal(-3, 0.5, 900)
    fit = fit_frame(z, labels, (1,))
    assert fit.regions[1].sigma == 0.0
    assert any("region B constant" in f for f in fit.flags)
    assert math.isnan(fit.lags[0].rho[2]) and np.isfinite(fit.lags[0].rho[1])
    assert np.isfinite(fit.ks_height) and fit.ks_height < 0.1


def test_nan_pixels_are_ignored_like_unlabelled_ones(fields):
    rng = np.random.default_rng(6)
    z, labels = fields.model_frame((96, 96), seed=6)
    z = z.astype(np.float64)
    holes = rng.random(z.shape) < 0.03
    z_nan = z.copy()
    z_nan[holes] = np.nan
    lab0 = labels.copy()
    lab0[holes] = 0
    f1 = fit_frame(z_nan, labels, (1, 3))
    f2 = fit_frame(z, lab0, (1, 3))
    assert f1.n_valid == f2.n_valid == np.count_nonzero(~holes)
    r1, r2 = f1.to_rows(), f2.to_rows()
    for a, b in zip(r1, r2):
        for key, v in a.items():
            if isinstance(v, float):
                assert v == pytest.approx(b[key], rel=1e-12, abs=1e-12, nan_ok=True), key
            else:
                assert v == b[key], key
    assert not np.isnan(f1.mean_height_nm)


def test_no_valid_pixels():
    z = np.full((10, 10), np.nan)
    fit = fit_frame(z, np.ones((10, 10), np.uint8), (1,))
    assert fit.n_valid == 0 and "no valid labelled pixels" in fit.flags
    assert math.isnan(fit.c) and len(fit.to_rows()) == 1


def test_bad_arguments_raise_calcite_error():
    z = np.zeros((8, 8))
    lab = np.ones((8, 8), np.uint8)
    bad_calls = [
        lambda: fit_frame(z, np.ones((8, 9), np.uint8)),
        lambda: fit_frame(np.zeros((2, 8, 8)), np.ones((2, 8, 8), np.uint8)),
        lambda: fit_frame(z, np.full((8, 8), 5)),
        lambda: fit_frame(z, np.full((8, 8), -1)),
        lambda: fit_frame(z, np.full((8, 8), 1.5)),
        lambda: fit_frame(z, lab.astype(bool)),
        lambda: fit_frame(z, lab, (0,)),
        lambda: fit_frame(z, lab, (-2,)),
        lambda: fit_frame(z, lab, (1.5,)),
        lambda: fit_frame(z, lab, ("a",)),
        lambda: fit_frame(z, lab, axis="z"),
        lambda: fit_frame(z, lab, n_classes=4),
        lambda: fit_frame(z, lab, pixel_size_nm=0),
        lambda: fit_frame(z, lab, pixel_size_nm=float("nan")),
        lambda: fit_frame(z, lab, min_pixels=0),
    ]
    for call in bad_calls:
        with pytest.raises(StatsError):
            call()
    assert issubclass(StatsError, CalciteAFMError)
    with pytest.raises(ValueError, match="does not match"):
        fit_frame(z, np.ones((8, 9), np.uint8))
    with pytest.raises(StatsError, match="boolean mask"):
        fit_frame(z, lab.astype(bool))
    with pytest.raises(StatsError, match="use fit_stack"):
        fit_frame(np.zeros((2, 8, 8)), np.ones((2, 8, 8), np.uint8))


# ----------------------------------------------------------------------------- classes
def test_two_class_maps_monolayer_to_terrace(fields):
    z, labels = fields.model_frame((64, 64), seed=9)
    labels = labels.copy()
    labels[::4, ::4][labels[::4, ::4] == 2] = 3
    assert (labels == 3).any()
    f3as2 = fit_frame(z, labels, (1, 2), n_classes=2)
    f2 = fit_frame(z, np.where(labels == 3, 2, labels), (1, 2), n_classes=2)
    assert f3as2.to_rows() == f2.to_rows()


def test_three_classes(fields):
    rng = np.random.default_rng(10)
    z, labels = fields.model_frame((128, 128), seed=10)
    z = z.astype(np.float64)
    mono = (labels == 2) & (ndi.gaussian_filter(rng.normal(size=z.shape), 4) > 0.05)
    labels = labels.copy()
    labels[mono] = 3
    z[mono] -= 0.31  # one monolayer step down
    fit = fit_frame(z, labels, (1, 4), n_classes=3, pixel_size_nm=2.0)
    assert [r.name for r in fit.regions] == ["A", "B", "M"]
    assert fit.regions[2].weight == pytest.approx(mono.mean())
    fields.check_identities(fit, z, labels)
    for ls in fit.lags:
        assert ls.p.shape == (3, 3) and ls.p.sum() == pytest.approx(1.0, abs=1e-14)
        p, _ = pair_fractions(labels, ls.lag_px, "both", n_classes=3)
        np.testing.assert_allclose(ls.p, p, atol=1e-15)
        m = ls.means.reshape(3, 3)
        mu = [r.mu for r in fit.regions]
        assert m[1, 2] == pytest.approx(mu[2] - mu[1])
        assert set(ls.rho) == {1, 2, 3}
    rows = fit.to_rows(frame=4, time_s=1200.0)
    assert list(rows[0]) == row_columns(3)
    assert rows[0]["c_M"] == fit.regions[2].weight and rows[0]["p_MB"] == fit.lags[0].p[2, 1]


# ----------------------------------------------------------------------------- stacks
def test_fit_stack_progress_stop_and_rows(fields):
    z, labels = fields.model_frame((48, 48), seed=12)
    stack = np.stack([z, z + 1.0, z * 2.0])
    lab = np.stack([labels] * 3)
    seen = []
    fits = fit_stack(stack, lab, (1,), progress=seen.append, pixel_size_nm=5.0)
    assert len(fits) == 3 and [p["done"] for p in seen] == [1, 2, 3]
    assert fits[1].regions[0].mu == pytest.approx(fits[0].regions[0].mu, abs=1e-5)
    rows = fits_to_rows(fits, times_s=[0.0, 300.0, 600.0])
    assert [r["time_s"] for r in rows] == [0.0, 300.0, 600.0]
    stop = threading.Event()
    stop.set()
    assert fit_stack(stack, lab, (1,), stop=stop) == []


def test_fit_stack_checks_shapes_and_takes_one_frame(fields):
    z, labels = fields.model_frame((40, 40), seed=13)
    one = fit_stack(z, labels, (1,), workers=1)
    assert len(one) == 1
    assert one[0].to_dict() == fit_frame(z, labels, (1,), workers=1).to_dict()
    with pytest.raises(StatsError, match="stack must be"):
        fit_stack(np.zeros(5), np.zeros(5, np.uint8))
    with pytest.raises(StatsError, match="does not match"):
        fit_stack(np.stack([z, z]), np.stack([labels] * 3))


def test_fluctuation_matches_the_fit(model_fit):
    z, labels, fit = model_fit
    zp = fluctuation(z, labels)
    assert float(np.mean(z.astype(np.float64))) == pytest.approx(fit.mean_height_nm, abs=1e-12)
    np.testing.assert_allclose(zp, z.astype(np.float64) - fit.mean_height_nm, atol=1e-12)
