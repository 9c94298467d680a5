"""``--increment-model gaussian|gsg`` of ``calcite-afm fit`` and ``calcite-afm run``."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from napari_calcite_afm.cli import main
from napari_calcite_afm.cli.parser import build_parser
from napari_calcite_afm.io import write_tiff


def _terraces(n=96, frames=2, seed=51):
    """Stepped terraces (0.31 nm steps) with a deep square pit, and their labels."""
    rng = np.random.default_rng(seed)
    x = np.arange(n)[None, :] + 5.0 * np.sin(np.arange(n)[:, None] / 11.0)
    z = np.stack([np.floor((x + 3 * t) / 9.0) * -0.31 for t in range(frames)])
    z = z + 0.02 * rng.normal(size=z.shape)
    labels = np.full(z.shape, 2, np.uint8)
    labels[:, 30:60, 30:60] = 1
    z[:, 30:60, 30:60] -= 4.0 + 0.5 * rng.normal(size=(frames, 30, 30))
    return z.astype(np.float32), labels


@pytest.fixture
def movie(tmp_path):
    z, labels = _terraces()
    img = write_tiff(tmp_path / "img.tif", z, 11.7, frame_interval_s=300)
    lab = write_tiff(tmp_path / "lab.tif", labels, 11.7)
    return img, lab


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_fit_with_the_gsg_model_adds_its_columns(movie, tmp_path):
    img, lab = movie
    argv = ["fit", str(img), "--labels", str(lab), "--lags", "1,2", "--no-level", "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "g.csv")]) == 0
    assert main([*argv, "--out", str(tmp_path / "s.csv"), "--increment-model", "gsg"]) == 0
    gauss, gsg = _rows(tmp_path / "g.csv"), _rows(tmp_path / "s.csv")
    assert "gsg_alpha_A" not in gauss[0] and len(gauss) == len(gsg) == 4
    for col in (
        "gsg_alpha_B",
        "gsg_sigma_B",
        "gsg_rho_B",
        "ks_height_gsg",
        "ks_increment_gsg",
        "better_increment_model",
        "gsg_step_fraction_B",
    ):
        assert col in gsg[0]  # fmt: skip
    assert list(gsg[0])[-1] == "flags"
    for g, s in zip(gauss, gsg):  # the Gaussian columns are unchanged
        assert all(s[k] == v for k, v in g.items() if k != "flags")
    assert {r["better_increment_model"] for r in gsg} == {"gsg"}
    assert float(gsg[0]["gsg_step_height_B"]) == pytest.approx(0.31, abs=0.02)


def test_run_with_the_gsg_model(movie, tmp_path):
    img, _ = movie
    out = tmp_path / "run"
    argv = ["run", str(img), "--out", str(out), "--lags", "1,2", "--figures", "none"]
    assert main([*argv, "--increment-model", "gsg", "--quiet"]) == 0
    rows = _rows(out / "table.csv")
    assert "ks_increment_gsg" in rows[0] and rows[0]["better_increment_model"] in (
        "gsg",
        "gaussian",
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["increment_model"] == "gsg"
    assert "ks_increment_gsg" in summary["means"]


@pytest.mark.parametrize("command", ["fit", "run"])
def test_bad_values_are_refused_with_status_2(movie, tmp_path, command, capsys):
    img, lab = movie
    argv = [command, str(img), "--out", str(tmp_path / "x"), "--increment-model", "gumbel"]
    if command == "fit":
        argv += ["--labels", str(lab)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "invalid choice: 'gumbel'" in err[-1]
    assert not (tmp_path / "x").exists()


def test_the_default_is_gaussian():
    args = build_parser().parse_args(["run", "in.tif", "--out", "o"])
    assert args.increment_model == "gaussian"
    args = build_parser().parse_args(["fit", "in.tif", "--labels", "l", "--out", "t.csv"])
    assert args.increment_model == "gaussian"
