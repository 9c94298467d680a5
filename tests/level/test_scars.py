"""Tests of napari_calcite_afm.level.scars: scar detection and repair."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_calcite_afm.level import LevelError, detect_scars, remove_scars


def _levelled_clean(synth, seed, noise=0.03, shape=(256, 256)):
    rng = np.random.default_rng(seed)
    z, _ = synth.calcite_surface(rng, shape)
    return z + rng.normal(0, noise, shape), rng


def test_detect_scars_recall_precision(synth):
    tp = n_true = n_found = tp_smooth = n_smooth = 0
    for seed in (11, 12, 13, 14):
        z, rng = _levelled_clean(synth, seed)
        clean = z.copy()
        truth = synth.add_scars(rng, z, n=10)
        found = detect_scars(z)
        tp += (found & truth).sum()
        n_true += truth.sum()
        n_found += found.sum()
        # where the surface is locally smooth (no pit wall within 3 rows)
        grad = np.abs(np.diff(clean, axis=0, prepend=clean[:1]))
        smooth = truth & (ndimage.maximum_filter(grad, size=(7, 1)) < 0.2)
        tp_smooth += (found & smooth).sum()
        n_smooth += smooth.sum()
    assert tp / n_found > 0.97  # precision
    assert tp_smooth / n_smooth > 0.98  # recall on smooth ground
    # overall recall: scars across steep pit walls are (by design) partly missed
    assert tp / n_true > 0.9


@pytest.mark.parametrize("noise", [0.0, 0.03, 0.1])
def test_no_false_scars_on_clean_pitted_surface(synth, noise):
    for seed in (21, 22, 23):
        z, _ = _levelled_clean(synth, seed, noise)
        assert detect_scars(z).sum() < 16  # fewer pixels than one shortest scar


def test_pit_bottom_valley_along_rows_is_not_a_scar(synth):
    # a pit whose long diagonal runs along the rows: its bottom line is a V-shaped valley
    # one row wide, dark beyond both neighbours like a scar, but it is topography
    shape = (128, 200)
    depth, _ = synth.pit_depth_map(shape, (64, 100), 45, np.pi / 2, 15, apex=(0.0, 0.0))
    z = -depth + np.random.default_rng(0).normal(0, 0.02, shape)
    assert detect_scars(z).sum() == 0
    # steps, however steep, are monotonic and never marked
    yy = np.mgrid[0:64, 0:100][0]
    assert not detect_scars(np.where(yy > 30, 5.0, 0.0)).any()


def test_detect_scars_widths_and_polarity():
    z = np.random.default_rng(2).normal(0, 0.03, (40, 120))
    truth = np.zeros(z.shape, bool)
    for r, w, amp in [(5, 1, 0.5), (12, 2, -0.4), (20, 3, 1.0), (30, 4, -2.0)]:
        z[r : r + w, 10:60] += amp
        truth[r : r + w, 10:60] = True
    z[35, 70:80] += 1.0  # too short: not a scar
    found = detect_scars(z)
    assert (found == truth).mean() > 0.995
    assert not found[35].any()
    assert not detect_scars(z, max_width=2)[20:24].any()


def test_remove_scars_interpolates_and_keeps_nan(synth):
    z, rng = _levelled_clean(synth, 31)
    clean = z.copy()
    truth = synth.add_scars(rng, z, n=10)
    z[0, :5] = np.nan
    clean[0, :5] = np.nan
    fixed = remove_scars(z)
    assert np.array_equal(np.isnan(fixed), np.isnan(z))
    grad = np.abs(np.diff(clean, axis=0, prepend=clean[:1]))
    smooth = truth & (ndimage.maximum_filter(grad, size=(7, 1)) < 0.2)
    err = np.abs(fixed[smooth] - clean[smooth])
    # scars were 0.5-2 nm; the few left are stacked one row apart (then neither is
    # told from a wall by its neighbours)
    assert np.mean(err < 0.1) > 0.9
    err = remove_scars(z, truth)[truth] - clean[truth]  # the interpolation itself
    assert np.sqrt(np.nanmean(err**2)) < 0.1
    # explicit mask: interpolation between the rows above and below
    col = np.tile(np.arange(6.0)[:, None], (1, 3))
    m = np.zeros(col.shape, bool)
    m[2:4] = True
    col[2:4] = 99
    np.testing.assert_allclose(remove_scars(col, m)[:, 0], np.arange(6.0))
    with pytest.raises(LevelError):
        remove_scars(col, m[:3])
