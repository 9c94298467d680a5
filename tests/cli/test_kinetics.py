"""``calcite-afm kinetics IN --labels L.tif --out DIR``: rates and pit tracks from labels."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import tifffile

from napari_calcite_afm.cli import main
from napari_calcite_afm.io import write_tiff
from napari_calcite_afm.synthetic import make_series


@pytest.fixture(scope="module")
def movie(tmp_path_factory):
    """A 4-frame synthetic movie (96 px) with its labels on the raw (drifted) grid."""
    s = make_series(4, 96, seed=103)
    folder = tmp_path_factory.mktemp("kin")
    raw, labels = folder / "raw.tif", folder / "labels.tif"
    write_tiff(raw, s.raw, s.pixel_size_nm, frame_interval_s=s.frame_interval_s)
    write_tiff(labels, s.labels_raw, s.pixel_size_nm, frame_interval_s=s.frame_interval_s)
    return s, raw, labels


def test_kinetics_writes_every_output(movie, tmp_path, capsys):
    s, raw, labels = movie
    out = tmp_path / "kin"
    assert main(["kinetics", str(raw), "--labels", str(labels), "--out", str(out), "--quiet"]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"drift.csv", "rates.tif", "rates.csv", "pits.csv", "tracks.csv"} <= names
    assert {"kinetics.png", "rates_frames.png", "kinetics.json"} <= names
    rates = tifffile.imread(out / "rates.tif")
    assert rates.shape == (3, 96, 96) and rates.dtype == np.float32
    with open(out / "drift.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["frame"]) for r in rows] == [0, 1, 2, 3]
    # the measured drift undoes the generator's displacement (to a pixel)
    shifts = np.array([[float(r["shift_y_px"]), float(r["shift_x_px"])] for r in rows])
    assert np.abs(shifts + s.drift_px).max() < 1.0
    summary = json.loads((out / "kinetics.json").read_text())
    assert summary["time_unit"] == "s" and summary["frame_pairs"] == 3
    assert "wrote" in capsys.readouterr().out


def test_kinetics_refuses_labels_of_another_shape(movie, tmp_path, capsys):
    s, raw, _ = movie
    bad = tmp_path / "bad.tif"
    write_tiff(bad, s.labels_raw[:2], s.pixel_size_nm)
    code = main(["kinetics", str(raw), "--labels", str(bad), "--out", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.tif" in err[0]
    assert not (tmp_path / "o").exists()


def test_kinetics_of_one_frame_is_one_line_error(movie, tmp_path, capsys):
    s, _, _ = movie
    one, lab = tmp_path / "one.tif", tmp_path / "one_labels.tif"
    write_tiff(one, s.raw[:1], s.pixel_size_nm)
    write_tiff(lab, s.labels_raw[:1], s.pixel_size_nm)
    code = main(["kinetics", str(one), "--labels", str(lab), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "at least 2 frames" in capsys.readouterr().err


def test_run_writes_the_kinetics_unless_told_not_to(movie, tmp_path):
    _, raw, _ = movie
    base = ["run", str(raw), "--quiet", "--figures", "none", "--lags", "1"]
    assert main([*base, "--out", str(tmp_path / "with")]) == 0
    assert (tmp_path / "with" / "tracks.csv").exists()
    assert main([*base, "--out", str(tmp_path / "without"), "--no-kinetics"]) == 0
    assert not (tmp_path / "without" / "tracks.csv").exists()
    assert (tmp_path / "without" / "table.csv").exists()


def test_rate_smooth_smooths_the_written_rate_maps(movie, tmp_path):
    _, raw, labels = movie
    base = ["kinetics", str(raw), "--labels", str(labels), "--quiet", "--no-figures"]
    assert main([*base, "--out", str(tmp_path / "plain")]) == 0
    assert main([*base, "--out", str(tmp_path / "soft"), "--rate-smooth", "1.5"]) == 0
    plain = tifffile.imread(tmp_path / "plain" / "rates.tif")
    soft = tifffile.imread(tmp_path / "soft" / "rates.tif")
    assert np.array_equal(np.isnan(plain), np.isnan(soft))
    # neighbouring pixels differ less once the pixel noise is averaged
    assert np.nanstd(np.diff(soft, axis=2)) < 0.5 * np.nanstd(np.diff(plain, axis=2))


def test_run_passes_rate_smooth_into_its_settings(movie, tmp_path):
    _, raw, _ = movie
    out = tmp_path / "run"
    argv = ["run", str(raw), "--quiet", "--figures", "none", "--lags", "1", "--out", str(out)]
    assert main([*argv, "--rate-smooth", "0.7"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["rate_smooth_px"] == 0.7
