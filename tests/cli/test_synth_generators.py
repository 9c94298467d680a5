"""``calcite-afm synth --generator standard|wide|cellular`` and ``--pixel-size``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from napari_calcite_afm.cli import main
from napari_calcite_afm.cli.parser import build_parser
from napari_calcite_afm.io import read_labels, read_stack
from napari_calcite_afm.synthetic import GENERATORS


def _synth(tmp_path, *extra):
    out = tmp_path / "s"
    argv = ["synth", "--out", str(out), "--frames", "2", "--size", "40", "--seed", "3"]
    assert main([*argv, *extra]) == 0
    return out, json.loads((out / "synth.json").read_text())["params"]


def test_the_choices_are_the_generators():
    p = build_parser()
    for g in GENERATORS:
        assert p.parse_args(["synth", "--out", "d", "--generator", g]).generator == g
    assert p.parse_args(["synth", "--out", "d"]).generator == "standard"


@pytest.mark.parametrize("generator", GENERATORS)
def test_each_generator_writes_a_movie(tmp_path, generator, capsys):
    out, params = _synth(tmp_path, "--generator", generator)
    image = tifffile.imread(out / "image.tif")
    labels = read_labels(out / "labels.tif")
    assert image.shape == labels.shape == (2, 40, 40)
    assert set(np.unique(labels)) <= {1, 2, 3}
    px = read_stack(out / "image.tif").pixel_size_nm
    if generator == "standard":
        assert params["variety"] == "standard" and px == pytest.approx(11.7, rel=1e-4)
    else:
        assert 2.0 <= px <= 20.0  # drawn
        assert px == pytest.approx(params["drawn"]["pixel_size_nm"], rel=1e-4)
    if generator == "wide":
        assert params["variety"] == "wide"
    if generator == "cellular":
        assert params["generator"] == "cellular"
    assert f"{generator} generator" in capsys.readouterr().out


@pytest.mark.parametrize("generator", ["wide", "cellular"])
def test_a_given_pixel_size_is_kept(tmp_path, generator):
    out, _ = _synth(tmp_path, "--generator", generator, "--pixel-size", "11.7")
    assert read_stack(out / "image.tif").pixel_size_nm == pytest.approx(11.7, rel=1e-4)


def test_the_standard_default_is_unchanged(tmp_path):
    out, _ = _synth(tmp_path)
    again, _ = _synth(tmp_path / "b", "--generator", "standard", "--pixel-size", "11.7")
    np.testing.assert_array_equal(
        tifffile.imread(out / "image.tif"), tifffile.imread(again / "image.tif")
    )


def test_an_unknown_generator_is_a_usage_error(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "x"), "--generator", "fancy"]) == 2
    assert "invalid choice: 'fancy'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
