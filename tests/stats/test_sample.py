"""Tests of napari_calcite_afm.stats.sample: fluctuation, increments, pair fractions."""

from __future__ import annotations

import numpy as np
import pytest

from napari_calcite_afm.errors import CalciteAFMError
from napari_calcite_afm.stats import (
    StatsError,
    fit_frame,
    fluctuation,
    increments,
    pair_fractions,
)


def _count_pairs_loop(labels, s, axis, k):
    lut = {0: None, 1: 0, 2: 1, 3: 1 if k == 2 else 2}
    counts = np.zeros((k, k))
    rows, cols = labels.shape
    steps = {"x": [(0, s)], "y": [(s, 0)], "both": [(0, s), (s, 0)]}[axis]
    for dr, dc in steps:
        for r in range(rows - dr):
            for c in range(cols - dc):
                i, j = lut[int(labels[r, c])], lut[int(labels[r + dr, c + dc])]
                if i is not None and j is not None:
                    counts[i, j] += 1
    return counts / counts.sum(), int(counts.sum())


@pytest.mark.parametrize("axis", ["x", "y", "both"])
@pytest.mark.parametrize("k", [2, 3])
def test_pair_fractions_match_direct_counts(axis, k):
    rng = np.random.default_rng(11)
    labels = rng.integers(0, 4, size=(17, 23)).astype(np.uint8)
    for s in (1, 3):
        p, n = pair_fractions(labels, s, axis, n_classes=k)
        p_ref, n_ref = _count_pairs_loop(labels, s, axis, k)
        assert n == n_ref
        np.testing.assert_allclose(p, p_ref, atol=1e-15)
        assert p.sum() == pytest.approx(1.0, abs=1e-14)
        z = rng.normal(size=labels.shape)
        fit = fit_frame(z, labels, (s,), axis=axis, n_classes=k, em=False, min_pixels=1)
        np.testing.assert_allclose(fit.lags[0].p, p_ref, atol=1e-15)
        assert fit.lags[0].n_pairs == n_ref


def test_pair_fractions_half_plane_formula():
    rows, cols, s = 32, 40, 3
    labels = np.full((rows, cols), 2, dtype=np.uint8)
    labels[:, : cols // 2] = 1
    p, _ = pair_fractions(labels, s, "x")
    half = cols // 2
    assert p[0, 0] == pytest.approx((half - s) / (cols - s))
    assert p[1, 1] == pytest.approx((half - s) / (cols - s))
    assert p[0, 1] == pytest.approx(s / (cols - s))  # A then B going right
    assert p[1, 0] == 0.0
    p, _ = pair_fractions(labels, s, "y")
    np.testing.assert_allclose(p, [[0.5, 0.0], [0.0, 0.5]])


def test_pair_fractions_with_a_valid_mask_and_no_pair():
    labels = np.array([[1, 1, 2, 2]])
    p, n = pair_fractions(labels, 1, valid=[[True, True, False, True]])
    assert n == 1 and p.tolist() == [[1.0, 0.0], [0.0, 0.0]]
    p, n = pair_fractions(labels, 4)
    assert n == 0 and np.isnan(p).all()
    with pytest.raises(StatsError, match="valid shape"):
        pair_fractions(labels, 1, valid=np.ones((2, 4), bool))
    with pytest.raises(StatsError, match="one frame"):
        pair_fractions(labels[0], 1)


def test_fluctuation_and_increments():
    z = np.array([[1.0, 2.0, 4.0], [3.0, np.nan, 9.0]])
    zp = fluctuation(z)
    assert np.nanmean(zp) == pytest.approx(0.0, abs=1e-15)
    assert np.isnan(zp[1, 1])
    np.testing.assert_array_equal(increments(z, 1, "x"), [1.0, 2.0])
    np.testing.assert_array_equal(increments(z, 1, "y"), [2.0, 5.0])
    np.testing.assert_array_equal(increments(z, 1, "both"), [1.0, 2.0, 2.0, 5.0])
    assert increments(z, 5, "x").size == 0
    lab = np.array([[1, 0, 2], [2, 2, 2]])
    np.testing.assert_array_equal(increments(z, 2, "x", labels=lab), [3.0, 6.0])
    np.testing.assert_array_equal(increments(z, 1, "x", labels=lab), [])
    zl = fluctuation(z, labels=lab)
    assert np.isnan(zl[0, 1]) and np.nanmean(zl) == pytest.approx(0.0, abs=1e-15)
    assert np.isnan(fluctuation(np.full((2, 2), np.nan))).all()


def test_bad_arguments_raise_calcite_error():
    z = np.zeros((8, 8))
    lab = np.ones((8, 8), np.uint8)
    bad_calls = [
        lambda: increments(z, 0),
        lambda: increments(z, 1, axis="z"),
        lambda: increments(np.zeros(8), 1),
        lambda: fluctuation(z, labels=np.full((8, 8), 4)),
        lambda: pair_fractions(lab, 1, axis="diagonal"),
        lambda: pair_fractions(lab, 1, n_classes=4),
        lambda: pair_fractions(lab, True),
    ]
    for call in bad_calls:
        with pytest.raises(StatsError):
            call()
    assert issubclass(StatsError, CalciteAFMError)


def test_labels_are_checked_like_everywhere_else():
    """Labels go through labels.check_labels: same refusals, raised as StatsError."""
    z = np.zeros((2, 2))
    with pytest.raises(StatsError, match=r"boolean mask.*np\.where"):
        increments(z, 1, labels=np.ones((2, 2), bool))
    with pytest.raises(StatsError, match="NaN or fractions"):
        increments(z, 1, labels=np.full((2, 2), 1.5))
    with pytest.raises(StatsError, match="dtype"):
        increments(z, 1, labels=np.full((2, 2), "a"))
    with pytest.raises(StatsError, match="does not match"):
        increments(z, 1, labels=np.ones((3, 2), np.uint8))
    # whole-number floats are accepted, as some TIFF writers store labels
    np.testing.assert_array_equal(
        increments(z, 1, labels=np.array([[1.0, 2.0], [0.0, 3.0]])), [0.0]
    )
