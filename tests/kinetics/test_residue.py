"""Tests of napari_calcite_afm.kinetics.residue: what levelling left different between
two frames (a column polynomial and line offsets), removed before the rates."""

from __future__ import annotations

import numpy as np
import pytest

from napari_calcite_afm.kinetics import height_reference, rate_maps, rate_table
from napari_calcite_afm.kinetics.residue import (
    N_COLUMN_TERMS,
    levelling_residue,
    residue_surface,
)

STEP = 0.31
DT = 300.0


def _levelling_residue(size: int, seed: int) -> np.ndarray:
    """A difference of two levellings: a tilt and a bow along the rows, and line offsets
    that wander down the frame (the alignment's errors adding up), about 1.5 nm in all."""
    rng = np.random.default_rng(seed)
    u = np.linspace(-0.5, 0.5, size)
    lines = np.cumsum(rng.normal(0, 0.03, size))
    lines += 0.8 * np.linspace(-0.5, 0.5, size) ** 2  # a bow down the frame
    return (0.6 * u + 0.9 * u**2)[None, :] + (lines - lines.mean())[:, None]


def _movie(size=128, noise=0.03, seed=0, residue=True, offset=1.2):
    """Frame 1 lost one step on a diagonal band (steps run across the scan lines) and a
    pit deepened by 2 nm; the two frames' levellings differ by ``_levelling_residue``."""
    rng = np.random.default_rng(seed)
    z0 = rng.normal(0, noise, (size, size))
    z1 = z0 + offset + rng.normal(0, noise, (size, size))
    r, c = np.mgrid[0:size, 0:size]
    band = (r + c > 0.6 * size) & (r + c < 0.9 * size)
    pit = (r - 0.25 * size) ** 2 + (c - 0.75 * size) ** 2 < (0.1 * size) ** 2
    z1[band] -= STEP
    z1[pit] -= 2.0
    if residue:
        z1 += _levelling_residue(size, seed + 1)
    labels = np.full((2, size, size), 2, np.uint8)
    labels[:, pit] = 1
    truth = np.where(band, STEP / DT, 0.0) + np.where(pit, 2.0 / DT, 0.0)
    return np.stack([z0, z1]), labels, truth


def test_the_residue_of_two_levellings_is_found_under_a_swept_band():
    movie, labels, _ = _movie()
    d = movie[1] - movie[0]
    use = labels[0] == 2
    terms, lines = levelling_residue(np.where(use, d, 0.0), use, 0.03 * np.sqrt(2))
    assert terms.shape == (N_COLUMN_TERMS,) and lines.shape == (128,)
    surface = residue_surface(terms, lines, 128)
    expected = 1.2 + _levelling_residue(128, 1)
    left = (surface - expected)[use]
    # the residue up to a constant, to a tenth of a step; the band did not bend it
    assert np.ptp(left - np.median(left)) < 0.1
    assert abs(np.median(left)) < 0.05


def test_rates_are_right_where_levelling_left_a_bow_and_line_offsets():
    movie, labels, truth = _movie()
    ref = height_reference(movie, labels)
    assert ref.row_offsets_nm is not None and ref.messages == []
    rates = rate_maps(movie, [0.0, DT], labels, reference=ref)[0]
    err = np.abs(rates - truth)
    assert np.median(err) * DT < 0.04  # the pixel noise of the difference: 0.042 nm
    terrace = labels[0] == 2  # where the band is, away from the deepening pit
    assert np.corrcoef(rates[terrace], truth[terrace])[0, 1] > 0.9
    # one offset per pair (as before) cannot: the residue is several steps across
    one_offset = height_reference(movie, labels, residue=False)
    plain = rate_maps(movie, [0.0, DT], labels, reference=one_offset)
    assert np.median(np.abs(plain[0] - truth)) > 5 * np.median(err)
    assert np.corrcoef(plain[0][terrace], truth[terrace])[0, 1] < 0.7
    # rates.csv says how far the two levellings were apart
    ranged = rate_table(rates[None], DT, 10.0, labels, reference=ref).to_rows()[0]
    assert ranged["levelling_residue_nm"] == pytest.approx(
        np.ptp(_levelling_residue(128, 1)), rel=0.15
    )
    none = rate_table(plain, DT, 10.0, labels, reference=one_offset).to_rows()[0]
    assert none["levelling_residue_nm"] == 0.0


def test_without_a_residue_nothing_changes():
    """Frames whose levellings agree: the residue fitted is flat, the rates as before."""
    movie, labels, _ = _movie(residue=False, seed=3)
    with_fit = height_reference(movie, labels)
    plain = height_reference(movie, labels, residue=False)
    assert with_fit.offsets_nm[0] == pytest.approx(plain.offsets_nm[0], abs=0.01)
    surface = with_fit.surface_nm(0, movie.shape[1:])
    assert np.ptp(surface) < 0.05
    assert plain.surface_nm(0, movie.shape[1:]) == plain.offsets_nm[0]  # a number
    a = rate_maps(movie, DT, labels, reference=with_fit)
    b = rate_maps(movie, DT, labels, reference=plain)
    assert np.abs(a - b).max() < 0.05 * STEP / DT


def test_noise_that_hides_the_steps_keeps_one_offset():
    """Noise of half a step: a swept pixel cannot be told, so no residue is fitted."""
    movie, labels, _ = _movie(noise=0.11, seed=5)
    ref = height_reference(movie, labels)
    assert not np.any(ref.row_offsets_nm[0]) and not np.any(ref.column_terms[0])


def test_too_few_reference_pixels_give_no_residue():
    d = np.random.default_rng(0).normal(size=(32, 32))
    use = np.zeros(d.shape, bool)
    use[0, :5] = True
    terms, lines = levelling_residue(d, use, 0.05)
    assert not terms.any() and not lines.any() and lines.shape == (32,)


def test_a_step_along_the_scan_lines_is_not_taken_for_a_line_offset():
    """Steps running along the scan lines swept whole lines (rows 40-69): the line
    alignment of the difference must not take that band's edges for line offsets."""
    rng = np.random.default_rng(7)
    size = 128
    z0 = rng.normal(0, 0.03, (size, size))
    z1 = z0 + 0.4 + rng.normal(0, 0.03, (size, size)) + _levelling_residue(size, 8)
    z1[40:70] -= STEP
    ref = height_reference(np.stack([z0, z1]))
    rates = rate_maps(np.stack([z0, z1]), DT, reference=ref)[0]
    assert np.median(rates[40:70]) * DT == pytest.approx(STEP, abs=0.03)
    assert abs(np.median(rates[np.r_[0:40, 70:size]])) * DT < 0.03
