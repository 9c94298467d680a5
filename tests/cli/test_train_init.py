"""``calcite-afm train --init``: fine-tuning a shipped or saved model from the command line."""

from __future__ import annotations

import json

import pytest

from napari_calcite_afm.cli import main
from napari_calcite_afm.io import write_tiff
from napari_calcite_afm.synthetic import make_series

TINY = ["--iterations", "2", "--batch-size", "2", "--quiet"]


@pytest.fixture
def pair(tmp_path):
    """A 2-frame movie of 48 px (11.7 nm) and its labels, as TIFFs."""
    s = make_series(2, 48, seed=78)
    img = write_tiff(tmp_path / "img.tif", s.raw, s.pixel_size_nm)
    lab = write_tiff(tmp_path / "lab.tif", s.labels_raw, s.pixel_size_nm)
    return ["train", "--images", str(img), "--labels", str(lab)]


def test_fine_tunes_the_shipped_models(pair, tmp_path, capsys):
    from napari_calcite_afm.segmentation import load_default_model, load_model

    out = tmp_path / "tuned.pt"
    assert main([*pair, "--out", str(out), "--init", "default", *TINY]) == 0
    assert json.loads(capsys.readouterr().out)["iterations"] == 2
    tuned, shipped = load_model(out), load_default_model(2)
    assert tuned.architecture() == shipped.architecture()  # not the --decoder default 'add'
    assert (tuned.center_nm, tuned.scale_nm) == (shipped.center_nm, shipped.scale_nm)
    assert tuned.train_config["init"] == "default"
    assert tuned.train_config["val_fraction"] == 0.0  # fine-tuning: every frame trains
    assert tuned.info["fine_tuned_from"]["source"] == "default"
    assert tuned.info["pixel_size_range_nm"] == [pytest.approx(11.7)] * 2
    assert 0 < tuned.info["uncertainty_threshold"] <= 1
    # --classes follows the model when not given: default3 fine-tunes three classes
    out3 = tmp_path / "tuned3.pt"
    assert main([*pair, "--out", str(out3), "--init", "default3", *TINY]) == 0
    assert load_model(out3).n_classes == 3


def test_fine_tunes_a_model_file(pair, tmp_path, capsys):
    from napari_calcite_afm.segmentation import load_model

    first = tmp_path / "first.pt"
    assert main([*pair, "--out", str(first), "--architecture", "dilated", "--width", "4",
                 *TINY]) == 0  # fmt: skip
    second = tmp_path / "second.pt"
    assert main([*pair, "--out", str(second), "--init", str(first), *TINY]) == 0
    model = load_model(second)
    assert model.architecture() == load_model(first).architecture()
    assert model.info["fine_tuned_from"]["source"] == str(first)


def test_refusals_on_one_line(pair, tmp_path, capsys):
    out = tmp_path / "m.pt"
    # a class count that does not match the initial model
    assert main([*pair, "--out", str(out), "--init", "default3", "--classes", "2", *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "default3" in err and "3 classes" in err and "asks for 2" in err
    # a model file that is not there
    missing = tmp_path / "missing.pt"
    assert main([*pair, "--out", str(out), "--init", str(missing), *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "missing.pt" in err and "not found" in err
    # the initial model is an input: --out may not overwrite it
    first = tmp_path / "first.pt"
    assert main([*pair, "--out", str(first), "--width", "4", "--architecture", "dilated",
                 *TINY]) == 0  # fmt: skip
    capsys.readouterr()
    assert main([*pair, "--out", str(first), "--init", str(first), *TINY]) == 2
    assert "--init" in capsys.readouterr().err
    assert not out.exists()
