"""Tests of napari_calcite_afm.kinetics.tracking: track ids, merges, splits, tables."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from napari_calcite_afm.errors import CalciteAFMError, Cancelled
from napari_calcite_afm.kinetics import (
    PIT_COLUMNS,
    TRACK_COLUMNS,
    PitSettings,
    robust_slope,
    track_pits,
)

TIMES = np.arange(6) * 300.0


def _movie(shapes, size=64, cls=1, depth=2.0):
    """Labels (terrace, ``cls`` on each frame's mask) and flat-bottomed pit heights."""
    masks = np.asarray(shapes, bool)
    lab = np.where(masks, cls, 2).astype(np.uint8)
    z = np.where(masks, -depth, 0.0)
    return z, lab


def _box(size, r0, r1, c0, c1):
    m = np.zeros((size, size), bool)
    m[r0:r1, c0:c1] = True
    return m


def _funnels(centres, radii, size=64, slopes=(0.5, 0.5)):
    """Multilayer pits as cones (nm per pixel): heights the lowest cone, label 1 in any."""
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    n = len(radii[0])
    z = np.zeros((n, size, size))
    for (r, c), rad, slope in zip(centres, radii, slopes):
        for k in range(n):
            if rad[k] > 0:
                cone = slope * (np.hypot(yy - r, xx - c) - rad[k])
                z[k] = np.minimum(z[k], np.minimum(cone, 0.0))
    lab = np.where(z < 0, 1, 2).astype(np.uint8)
    return z, lab


def _tracks(res):
    return {r["track_id"]: r for r in res.tracks}


def test_two_growing_pits_keep_their_ids_and_area_growth():
    shapes = [
        _box(64, 5, 10 + k, 5, 12 + 2 * k) | _box(64, 40, 44 + k, 30, 34 + k) for k in range(6)
    ]
    z, lab = _movie(shapes)
    res = track_pits(z, lab, 10.0, TIMES)
    tr = _tracks(res)
    assert sorted(tr) == [1, 2]  # the upper pit first (raster order)
    assert [r["track_id"] for r in res.pits] == [1] * 6 + [2] * 6
    assert [r["frame"] for r in res.pits] == list(range(6)) * 2
    assert [r["time_s"] for r in res.pits[:6]] == TIMES.tolist()
    for tid in (1, 2):
        row = tr[tid]
        assert (row["first_frame"], row["last_frame"], row["n_frames"]) == (0, 5, 6)
        assert row["parents"] == "" and row["children"] == "" and row["fate"] == "end"
        areas = [r["area_nm2"] for r in res.pits if r["track_id"] == tid]
        pixels = [(res.components[k] == tid).sum() * 100.0 for k in range(6)]
        assert areas == pixels
        assert row["area_growth_nm2_s"] == pytest.approx(robust_slope(TIMES, areas))
        assert row["deepening_nm_s"] == pytest.approx(0.0, abs=1e-9)
    assert tr[1]["area_growth_nm2_s"] > tr[2]["area_growth_nm2_s"] > 0


def test_merge_of_monolayer_pits_ends_both_tracks_and_records_the_parents():
    shapes = [_box(64, 20, 30, 10, 20 + 3 * k) | _box(64, 20, 30, 44 - 3 * k, 54) for k in range(6)]
    z, lab = _movie(shapes, cls=3, depth=0.31)
    res = track_pits(z, lab, 10.0, TIMES)
    tr = _tracks(res)
    # the boxes touch from frame 3 (columns 20 + 9 = 29 and 44 - 9 = 35 ... 5 columns
    # apart at frame 2, overlapping at frame 4): find the merge frame from the masks
    merged = next(k for k in range(6) if (lab[k, 25] == 3).sum() == (lab[k, 25, 10:54] == 3).size)
    assert sorted(tr) == [1, 2, 3]
    assert tr[1]["last_frame"] == tr[2]["last_frame"] == merged - 1
    assert tr[1]["fate"] == tr[2]["fate"] == "merged"
    assert tr[1]["children"] == tr[2]["children"] == "3"
    assert tr[3]["parents"] == "1;2" and tr[3]["first_frame"] == merged
    assert tr[3]["class"] == 3


def test_split_ends_the_track_and_each_child_records_the_parent():
    shapes = []
    for k in range(6):
        m = _box(64, 20, 30, 10, 50)
        if k >= 3:
            m[:, 28:32] = False  # cut in two
        shapes.append(m)
    z, lab = _movie(shapes, cls=3, depth=0.31)
    res = track_pits(z, lab, 10.0, TIMES)
    tr = _tracks(res)
    assert sorted(tr) == [1, 2, 3]
    assert tr[1]["fate"] == "split" and tr[1]["children"] == "2;3" and tr[1]["last_frame"] == 2
    assert tr[2]["parents"] == tr[3]["parents"] == "1"
    assert tr[2]["first_frame"] == tr[3]["first_frame"] == 3
    # the left piece gets the lower id (raster order)
    left = next(r for r in res.pits if r["track_id"] == 2)
    assert left["x_nm"] < 300.0


def test_touching_multilayer_pits_keep_their_own_tracks():
    radii = [[8, 10, 12, 14, 16, 18], [8, 10, 12, 14, 16, 18]]
    z, lab = _funnels([(30, 18), (30, 44)], radii)
    assert (lab[5, 30, 18:45] == 1).all()  # one connected region at the end
    res = track_pits(z, lab, 10.0, TIMES)
    tr = _tracks(res)
    assert sorted(tr) == [1, 2]
    assert all(r["n_frames"] == 6 and r["parents"] == "" for r in tr.values())
    # each keeps its own basin: the pixels nearer its source
    xx = np.mgrid[0:64, 0:64][1]
    for k in range(6):
        left = (res.components[k] == 1) & (xx > 31)
        right = (res.components[k] == 2) & (xx < 31)
        assert left.sum() == right.sum() == 0
    # the same labels without heights to tell the pits apart: a merge
    res = track_pits(z, lab, 10.0, TIMES, settings=PitSettings(separate_classes=()))
    tr = _tracks(res)
    assert sorted(tr) == [1, 2, 3] and tr[3]["parents"] == "1;2"


def test_pits_touching_in_the_first_frame_are_told_apart():
    z, lab = _funnels([(30, 20), (30, 40)], [[12] * 6, [12] * 6])
    res = track_pits(z, lab, 10.0, TIMES)
    assert sorted(_tracks(res)) == [1, 2]


def test_a_pit_swallowed_by_a_deeper_one_ends_merged_into_it():
    big = [10, 14, 18, 22, 26, 30]
    small = [6, 6, 6, 6, 6, 6]
    yy, xx = np.mgrid[0:72, 0:72].astype(float)
    z = np.zeros((6, 72, 72))
    for k in range(6):
        z[k] = np.minimum(
            np.minimum(1.0 * (np.hypot(yy - 36, xx - 24) - big[k]), 0.0),
            np.minimum(0.2 * (np.hypot(yy - 36, xx - 48) - small[k]), 0.0),
        )
    lab = np.where(z < 0, 1, 2).astype(np.uint8)
    res = track_pits(z, lab, 10.0, TIMES)
    tr = _tracks(res)
    assert sorted(tr) == [1, 2]
    assert tr[1]["n_frames"] == 6 and tr[1]["fate"] == "end"
    assert tr[2]["fate"] == "merged" and tr[2]["children"] == "1"
    assert tr[1]["parents"] == "2"
    assert tr[2]["last_frame"] < 5


def test_a_pit_nucleating_inside_another_gets_a_new_track():
    radii = [[20] * 6, [0, 0, 0, 5, 6, 7]]
    z, lab = _funnels([(32, 32), (32, 44)], radii, slopes=(0.5, 3.0))
    assert (lab == lab[0]).all()  # the labels do not show it
    res = track_pits(z, lab, 10.0, TIMES)
    tr = _tracks(res)
    assert sorted(tr) == [1, 2]
    assert tr[1]["n_frames"] == 6
    assert tr[2]["first_frame"] == 3 and tr[2]["parents"] == "" and tr[2]["n_frames"] == 3
    off = track_pits(z, lab, 10.0, TIMES, settings=PitSettings(new_basin_nm=0.0))
    assert sorted(_tracks(off)) == [1]


def test_a_pit_missed_for_a_frame_keeps_its_track():
    shapes = [
        _box(64, 20, 30, 20, 30 + k) if k != 2 else np.zeros((64, 64), bool) for k in range(6)
    ]
    z, lab = _movie(shapes, cls=3, depth=0.31)
    tr = _tracks(track_pits(z, lab, 10.0, TIMES))
    assert sorted(tr) == [1] and tr[1]["n_frames"] == 5 and tr[1]["last_frame"] == 5
    tr = _tracks(track_pits(z, lab, 10.0, TIMES, settings=PitSettings(max_gap=0)))
    assert sorted(tr) == [1, 2] and tr[1]["fate"] == "lost" and tr[2]["parents"] == ""


def test_small_pits_without_overlap_are_linked_by_distance():
    shapes = [_box(64, 30, 33, 10 + 4 * k, 13 + 4 * k) for k in range(6)]  # 40 nm steps
    z, lab = _movie(shapes, cls=3, depth=0.31)
    settings = PitSettings(min_area_px=4)
    assert sorted(_tracks(track_pits(z, lab, 10.0, TIMES, settings=settings))) == [1]
    settings = PitSettings(min_area_px=4, link_distance_nm=30.0)
    assert len(track_pits(z, lab, 10.0, TIMES, settings=settings).tracks) == 6


def test_frames_touching_the_border_are_left_out_of_the_rates():
    shapes = [_box(64, 20, 30, 30 - 3 * k, 36) for k in range(6)]  # grows to the left
    z, lab = _movie(shapes)
    z[:, :, :20] = np.nan
    lab[:, :, :20] = 0
    res = track_pits(z, lab, 10.0, TIMES)
    flags = [r["touches_border"] for r in res.pits]
    first = flags.index(True)
    assert first > 2 and all(flags[first:]) and not any(flags[:first])
    areas = [r["area_nm2"] for r in res.pits][:first]
    assert res.tracks[0]["area_growth_nm2_s"] == pytest.approx(robust_slope(TIMES[:first], areas))
    # always at the border: no rate
    z2, lab2 = _movie([_box(64, 0, 10, 20, 30 + k) for k in range(6)])
    res2 = track_pits(z2, lab2, 10.0, TIMES)
    assert math.isnan(res2.tracks[0]["area_growth_nm2_s"])


def test_csv_tables_have_the_promised_columns(tmp_path):
    shapes = [_box(64, 20, 30, 10, 20 + 3 * k) | _box(64, 20, 30, 44 - 3 * k, 54) for k in range(6)]
    z, lab = _movie(shapes, cls=3, depth=0.31)
    res = track_pits(z, lab, 10.0, TIMES)
    pits = res.write_pits_csv(tmp_path / "out" / "pits.csv")
    tracks = res.write_tracks_csv(tmp_path / "out" / "tracks.csv")
    with open(pits, newline="") as fh:
        rows = list(csv.DictReader(fh))
        header = list(rows[0].keys())
    assert tuple(header[: len(PIT_COLUMNS)]) == PIT_COLUMNS
    assert "touches_border" in header[len(PIT_COLUMNS) :]
    assert len(rows) == len(res.pits)
    assert [int(r["track_id"]) for r in rows] == [r["track_id"] for r in res.pits]
    with open(tracks, newline="") as fh:
        trows = list(csv.DictReader(fh))
    assert tuple(list(trows[0].keys())[: len(TRACK_COLUMNS)]) == TRACK_COLUMNS
    assert [r["parents"] for r in trows] == ["", "", "1;2"]
    res.tracks[0]["deepening_nm_s"] = float("nan")
    with open(res.write_tracks_csv(tracks), newline="") as fh:
        assert next(csv.DictReader(fh))["deepening_nm_s"] == ""  # NaN as an empty cell
    assert not list(tmp_path.glob("out/.*"))  # no temporary file left
    json.dumps(res.summary())  # JSON-serialisable


def test_component_image_matches_the_table():
    z, lab = _funnels([(20, 20), (44, 44)], [[5, 6, 7, 8, 9, 10]] * 2)
    res = track_pits(z, lab, 10.0, TIMES)
    for r in res.pits:
        assert (res.components[r["frame"]] == r["track_id"]).sum() == r["n_px"]


def test_bad_input_stop_and_progress():
    z, lab = _movie([_box(32, 5, 15, 5, 15)] * 3, size=32)
    with pytest.raises(CalciteAFMError, match="do not match"):
        track_pits(z, lab[:, :-1], 10.0, TIMES[:3])
    with pytest.raises(CalciteAFMError, match="frame times"):
        track_pits(z, lab, 10.0, TIMES[:2])
    with pytest.raises(CalciteAFMError, match="increasing"):
        track_pits(z, lab, 10.0, [0.0, 10.0, 5.0])
    with pytest.raises(CalciteAFMError, match="stack"):
        track_pits(z[0, 0], lab[0, 0], 10.0)
    with pytest.warns(UserWarning, match="frame numbers"):
        res = track_pits(z, lab, 10.0)
    assert [r["time_s"] for r in res.pits] == [0.0, 1.0, 2.0]
    with pytest.raises(Cancelled):
        track_pits(z, lab, 10.0, TIMES[:3], stop=lambda: True)
    seen = []
    track_pits(z, lab, 10.0, TIMES[:3], progress=seen.append)
    assert [d["done"] for d in seen] == [1, 2, 3] and seen[-1]["total"] == 3
