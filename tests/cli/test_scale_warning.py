"""The command line says when a model meets frames of another scale than its training."""

from __future__ import annotations

import json

import numpy as np
import tifffile

from napari_calcite_afm.cli import main
from napari_calcite_afm.io import write_tiff
from napari_calcite_afm.synthetic import make_series


def _movie(tmp_path, pixel_size_nm):
    s = make_series(2, 64, seed=77)
    path = tmp_path / f"movie_{pixel_size_nm}.tif"
    write_tiff(path, s.raw, pixel_size_nm, frame_interval_s=s.frame_interval_s)
    return path


def test_run_warns_on_one_line_and_records_it_in_the_summary(tmp_path, capsys):
    movie = _movie(tmp_path, 0.5)  # HS-AFM scale; the shipped model knows 11.7 nm
    out = tmp_path / "out"
    assert main(["run", str(movie), "--out", str(out), "--quiet", "--figures", "none"]) == 0
    lines = capsys.readouterr().err.splitlines()
    err = [line for line in lines if "warning" in line and "nm per pixel" in line]
    assert len(err) == 1, err  # once (the drift of a tiny movie may warn too: other lines)
    assert err[0].startswith("calcite-afm: warning: the model was trained on frames of 11.7 nm")
    assert "Resample" in err[0] and "0.5 nm per pixel" in err[0]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"]["training_pixel_size_nm"] == 11.7
    assert len(summary["warnings"]) == 1 and "23.4 times finer" in summary["warnings"][0]


def test_run_at_the_training_scale_says_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    movie = _movie(tmp_path, 11.7)
    assert main(["run", str(movie), "--out", str(out), "--quiet", "--figures", "none"]) == 0
    assert "nm per pixel" not in capsys.readouterr().err
    assert json.loads((out / "summary.json").read_text())["warnings"] == []


def test_segment_warns_too(tmp_path, capsys):
    movie = _movie(tmp_path, 40.0)
    out = tmp_path / "labels.tif"
    assert main(["segment", str(movie), "--out", str(out), "--quiet"]) == 0
    assert "calcite-afm: warning:" in capsys.readouterr().err
    assert np.isin(np.unique(tifffile.imread(out)), [1, 2]).all()
