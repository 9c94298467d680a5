"""Tests of napari_calcite_afm.synthetic.pits: multilayer and monolayer etch pits."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_calcite_afm import synthetic
from napari_calcite_afm.synthetic import STEP_HEIGHT_NM, make_series
from napari_calcite_afm.synthetic.pits import _draw_multilayer

BIG_PX = dict(pixel_size_nm=40.0)


def test_multilayer_pits_widen_and_deepen(series):
    area = (series.labels == synthetic.LABEL_MULTILAYER).sum(axis=(1, 2))
    assert area[-1] > area[0]
    assert np.mean(np.diff(area) >= 0) >= 0.8
    lowest = series.clean.reshape(series.n_frames, -1).min(axis=1)
    assert lowest[-1] < lowest[0] - 1.0  # deeper by more than 3 steps
    # the multilayer pits are deep: many steps below the terrace around them
    pit = series.labels[-1] == synthetic.LABEL_MULTILAYER
    assert np.median(series.clean[-1][~pit]) - series.clean[-1][pit].min() > 10 * STEP_HEIGHT_NM


def test_monolayer_pits_are_one_step_deep(flat_series):
    z = flat_series.clean.astype(np.float64)
    lab = flat_series.labels
    diffs = []
    for axis in (1, 2):
        for a, b in (
            ((slice(None, -1),), (slice(1, None),)),
            ((slice(1, None),), (slice(None, -1),)),
        ):
            sa = [slice(None)] * 3
            sb = [slice(None)] * 3
            sa[axis], sb[axis] = a[0], b[0]
            pit = lab[tuple(sa)] == synthetic.LABEL_MONOLAYER
            ter = lab[tuple(sb)] == synthetic.LABEL_TERRACE
            m = pit & ter
            diffs.append(z[tuple(sb)][m] - z[tuple(sa)][m])
    diffs = np.concatenate(diffs)
    assert diffs.size > 50
    # a monolayer pit is lower than every terrace pixel around it ...
    assert diffs.min() > STEP_HEIGHT_NM - 1e-4
    # ... by exactly one step almost everywhere (two where its edge meets an up-step)
    assert np.mean(np.isclose(diffs, STEP_HEIGHT_NM, atol=1e-4)) > 0.8
    # and each pit is flat: one level
    comp, n = ndimage.label(lab[-1] == synthetic.LABEL_MONOLAYER)
    assert n > 0
    for i in range(1, min(n, 20) + 1):
        vals = np.unique(np.round(z[-1][comp == i] / STEP_HEIGHT_NM))
        assert vals.size <= 3  # (younger pits may sit inside an older one)


def test_monolayer_pits_nucleate_over_time(series):
    counts = [ndimage.label(f == synthetic.LABEL_MONOLAYER)[1] for f in series.labels]
    assert min(counts) > 0
    # new pits appear: frame k has pits where frame k - 1 had none
    new = [
        ndimage.label((series.labels[k] == 3) & (series.labels[k - 1] == 2))[1]
        for k in range(1, series.n_frames)
    ]
    assert min(new) > 0


def test_pit_source_sits_toward_acute_corner():
    s = make_series(
        1,
        96,
        seed=8,
        n_multilayer=1,
        monolayer_density_per_um2=0.0,
        roughness=0.0,
        artifacts=False,
        drift=False,
        orientation_deg=0.0,
        **BIG_PX,
    )
    z, lab = s.clean[0], s.labels[0]
    pit = lab == synthetic.LABEL_MULTILAYER
    if pit[0].any() or pit[-1].any() or pit[:, 0].any() or pit[:, -1].any():
        pytest.skip("pit touches the frame edge")
    centroid = np.array(ndimage.center_of_mass(pit))  # (row, col)
    deepest = np.array(np.unravel_index(np.argmin(np.where(pit, z, np.inf)), z.shape))
    _, _, m1, m2 = synthetic._crystal_axes(0.0)
    acute = -(np.asarray(m1) + np.asarray(m2))  # (x, y) toward the acute corner
    offset = (deepest - centroid)[::-1]  # (x, y)
    assert np.dot(offset, acute) > 0.3 * np.linalg.norm(offset) * np.linalg.norm(acute)


def test_draw_multilayer_records_every_pit():
    drawn = {}
    pits = _draw_multilayer(
        np.random.default_rng(1), 3, extent_nm=5000.0, duration_s=3000.0, drawn=drawn
    )
    assert pits.x.size == 3 and len(drawn["multilayer_pits"]) == 3
    assert np.all((pits.x >= 500.0) & (pits.x <= 4500.0))
    assert [d["x_nm"] for d in drawn["multilayer_pits"]] == pits.x.tolist()
