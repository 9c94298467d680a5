"""Tests of segmentation.model: normalisation helpers, model files, the shipped model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from napari_calcite_afm.errors import AFMFileError
from napari_calcite_afm.segmentation import (
    MODEL_FORMAT,
    SegmentationModel,
    default_model_path,
    fill_nan_nearest,
    load_default_model,
    load_model,
    predict_frame,
    prepare_labels,
    segmentation_metrics,
)


def test_fill_nan_nearest():
    a = np.array([[1.0, np.nan, 3.0], [np.nan, np.nan, np.nan]], np.float32)
    filled, mask = fill_nan_nearest(a)
    assert np.isfinite(filled).all() and mask.sum() == 4
    assert filled[0, 0] == 1 and filled[0, 2] == 3 and filled[1, 0] == 1
    same, none = fill_nan_nearest(np.ones((2, 2)))
    assert none is None and same.dtype == np.float32


def test_unknown_architecture_in_file_is_a_clear_error(seg, tmp_path):
    model = seg.random_model()
    path = model.save(tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    meta = json.loads(payload["metadata"])
    meta["architecture"]["name"] = "TransformerNet"
    payload["metadata"] = json.dumps(meta)
    torch.save(payload, path)
    with pytest.raises(AFMFileError, match="unknown network architecture 'TransformerNet'"):
        load_model(path)


def test_save_load_round_trip(seg, tmp_path, toy):
    model = seg.random_model(3, dilations=(1, 2, 4, 8))
    model.info["note"] = "hello"
    path = model.save(tmp_path / "sub" / "m.pt")
    assert path.is_file() and not list(path.parent.glob("*.tmp"))
    # readable with weights_only=True, metadata is JSON
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == MODEL_FORMAT
    meta = json.loads(payload["metadata"])
    assert meta["architecture"]["dilations"] == [1, 2, 4, 8]
    assert meta["normalisation"] == {"center_nm": 0.1, "scale_nm": 2.0, "transform": "asinh"}
    back = load_model(path)
    assert back.n_classes == 3 and back.dilations == (1, 2, 4, 8)
    assert back.info["note"] == "hello" and back.source == str(path)
    assert back.level_settings == model.level_settings and back.transform == "asinh"
    frame = toy[0][0]
    l1, p1 = predict_frame(model, frame)
    l2, p2 = predict_frame(back, frame)
    np.testing.assert_array_equal(l1, l2)
    np.testing.assert_allclose(p1, p2, atol=1e-6)
    assert SegmentationModel.load(path).n_parameters == model.n_parameters


def test_corrupt_and_foreign_files(seg, tmp_path):
    model = seg.random_model()
    good = model.save(tmp_path / "good.pt")
    data = good.read_bytes()

    bad = tmp_path / "random.pt"
    bad.write_bytes(np.random.default_rng(0).bytes(5000))
    trunc = tmp_path / "truncated.pt"
    trunc.write_bytes(data[: len(data) // 2])
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    plain = tmp_path / "state_dict.pt"
    torch.save(model.net.state_dict(), plain)
    newer = tmp_path / "newer.pt"
    payload = torch.load(good, weights_only=True)
    payload["format_version"] = 99
    torch.save(payload, newer)
    broken = tmp_path / "broken_meta.pt"
    payload["format_version"] = 1
    payload["metadata"] = "{not json"
    torch.save(payload, broken)
    mismatch = tmp_path / "mismatch.pt"
    payload = torch.load(good, weights_only=True)
    meta = json.loads(payload["metadata"])
    meta["architecture"]["width"] = 16
    payload["metadata"] = json.dumps(meta)
    torch.save(payload, mismatch)

    for path, words in [
        (bad, "not a readable"),
        (trunc, "not a readable"),
        (foreign, "not a napari-calcite-afm"),
        (plain, "not a napari-calcite-afm"),
        (newer, "newer"),
        (broken, "damaged"),
        (mismatch, "damaged"),
        (tmp_path / "missing.pt", "not found"),
    ]:
        with pytest.raises(AFMFileError) as info:
            load_model(path)
        assert str(path) in str(info.value) and words in str(info.value), str(info.value)


def test_save_is_atomic_on_failure(seg, tmp_path, monkeypatch):
    model = seg.random_model()
    path = model.save(tmp_path / "m.pt")
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(AFMFileError):
        model.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]


@pytest.mark.skipif(not default_model_path(2).is_file(), reason="default model not built")
def test_default_model_segments_synthetic_frame():
    from napari_calcite_afm.synthetic import make_frame

    model = load_default_model()
    assert model.n_classes == 2 and model.info.get("training_seeds")
    seeds = model.info["training_seeds"]
    assert not (seeds[0] <= 424242 < seeds[1])
    raw, _clean, truth = make_frame(256, seed=424242)
    labels, _ = predict_frame(model, raw)
    acc = segmentation_metrics(prepare_labels(truth, 2), labels, 2)["pixel_accuracy"]
    assert acc > 0.9
