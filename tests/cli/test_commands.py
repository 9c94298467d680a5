"""The ``calcite-afm`` subcommands: arguments, outputs and their contents."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_calcite_afm.cli import main
from napari_calcite_afm.io import read_labels, read_stack, write_tiff
from napari_calcite_afm.synthetic import make_series

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "afm-real"


def test_info_prints_json(small_stack, capsys):
    assert main(["info", str(small_stack)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["shape"] == [3, 64, 64]
    assert info["pixel_size_nm"] == pytest.approx(11.7, rel=1e-4)
    for key in ("channel", "format", "frame_times_s"):
        assert key in info


@pytest.mark.skipif(not REAL.exists(), reason="shared real AFM data not present")
def test_info_on_a_vendor_file(capsys):
    assert main(["info", str(REAL / "afmreader_sample_0.h5-jpk")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["shape"] == [4, 128, 128]
    assert info["pixel_size_nm"] == pytest.approx(1.171875)
    assert info["frame_times_s"] == pytest.approx([0, 3.2, 6.4, 9.6], abs=1e-6)


def test_level_writes_float32_nm(small_stack, tmp_path, capsys):
    out = tmp_path / "clean.tif"
    assert main(["level", str(small_stack), "--out", str(out), "--register", "--quiet"]) == 0
    cleaned = read_stack(out)
    assert cleaned.heights.shape == (3, 64, 64)
    assert cleaned.heights.dtype == np.float32
    assert cleaned.pixel_size_nm == pytest.approx(11.7, rel=1e-4)
    raw = read_stack(small_stack).heights
    # levelling removes tilt and bow: the cleaned spread is far below the raw one
    assert np.nanstd(cleaned.heights[0]) < 0.5 * np.nanstd(raw[0])


def test_level_no_zero_mean_keeps_the_fitted_reference(tmp_path, pit_covered_frame):
    raw, truth = pit_covered_frame(seed=3)
    src = tmp_path / "pits.npy"
    np.save(src, np.stack([raw, raw]).astype(np.float32))
    out = {}
    for name, flags in {"mean": [], "fit": ["--no-zero-mean"]}.items():
        path = tmp_path / f"{name}.tif"
        assert main(["level", str(src), "--out", str(path), "--quiet", *flags]) == 0
        out[name] = read_stack(path).heights[1]
    assert abs(np.nanmean(out["mean"])) < 1e-3
    floor = truth == truth.min()
    assert abs(np.median(out["fit"][floor])) < 0.1  # the fitted surface is at 0 nm
    assert np.nanmean(out["fit"]) > 1.0
    saved = read_stack(tmp_path / "fit.tif").metadata["saved"]["metadata"]
    assert saved["levelling"]["zero_mean"] is False


def test_synth_writes_image_and_labels(tmp_path):
    assert (
        main(["synth", "--out", str(tmp_path), "--frames", "2", "--size", "48", "--seed", "5"]) == 0
    )
    image = tifffile.imread(tmp_path / "image.tif")
    labels = read_labels(tmp_path / "labels.tif")
    assert image.shape == labels.shape == (2, 48, 48)
    assert set(np.unique(labels)) <= {1, 2, 3}


def test_train_and_segment_on_tiny_inputs(tmp_path, capsys):
    from napari_calcite_afm.segmentation import load_model

    s = make_series(3, 48, seed=77)
    img = write_tiff(tmp_path / "img.tif", s.raw, s.pixel_size_nm)
    lab = write_tiff(tmp_path / "lab.tif", s.labels_raw, s.pixel_size_nm)
    model_path = tmp_path / "m.pt"
    argv = ["train", "--images", str(img), "--labels", str(lab), "--out", str(model_path)]
    assert main([*argv, "--iterations", "6", "--width", "8", "--quiet"]) == 0
    final = json.loads(capsys.readouterr().out)
    assert final["model"] == str(model_path) and 0.0 <= final["best_val_accuracy"] <= 1.0
    model = load_model(model_path)
    assert model.n_classes == 2 and model.width == 8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.tif", "lab.tif", "m.pt"]

    out = tmp_path / "seg.tif"
    probs = tmp_path / "p.tif"
    seg_argv = ["segment", str(img), "--model", str(model_path), "--out", str(out)]
    assert main([*seg_argv, "--probabilities", str(probs), "--quiet"]) == 0
    labels = read_labels(out)
    assert labels.shape == (3, 48, 48) and set(np.unique(labels)) <= {1, 2}
    p = tifffile.imread(probs)
    assert p.shape == (3, 2, 48, 48)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-4)
    # the shipped model by name
    assert main(["segment", str(img), "--model", "default", "--out", str(out), "--quiet"]) == 0
    assert model.architecture()["name"] == "UNet"  # the default network
    assert model.architecture()["multiscale"] is True  # with its multiscale first layer
    # the study's dilated network on request
    study = tmp_path / "study.pt"
    argv = ["train", "--images", str(img), "--labels", str(lab), "--out", str(study)]
    extra = ["--architecture", "dilated", "--dilations", "1,2,4", "--width", "8"]
    assert main([*argv, *extra, "--iterations", "3", "--quiet"]) == 0
    arch = load_model(study).architecture()
    assert arch["name"] == "DilatedNet" and arch["dilations"] == [1, 2, 4]
    assert main([*argv, "--levels", "9", "--quiet"]) == 2
    assert main([*argv, *extra, "--multiscale", "--iterations", "1", "--quiet"]) != 0
    assert "U-Net only" in capsys.readouterr().err
    bare = tmp_path / "bare.pt"
    argv = ["train", "--images", str(img), "--labels", str(lab), "--out", str(bare)]
    assert main([*argv, "--no-multiscale", "--iterations", "2", "--width", "4", "--quiet"]) == 0
    assert load_model(bare).architecture()["multiscale"] is False
    # batch size and device reach the configuration stored in the model
    argv = ["train", "--images", str(img), "--labels", str(lab), "--out", str(bare)]
    extra = ["--iterations", "2", "--batch-size", "3", "--device", "cpu", "--quiet"]
    assert main([*argv, *extra]) == 0
    cfg = load_model(bare).train_config
    assert cfg["batch_size"] == 3 and cfg["device"] == "cpu"
    assert main([*argv, "--iterations", "1", "--device", "tpu9", "--quiet"]) != 0
    assert "tpu9" in capsys.readouterr().err
    # the decoder and the step precision reach the network and the stored configuration
    extra = ["--iterations", "2", "--width", "4", "--quiet"]
    assert main([*argv, *extra, "--decoder", "concat", "--precision", "float32"]) == 0
    model = load_model(bare)
    assert model.architecture()["decoder"] == "concat" and model.info["step_dtype"] == "float32"
    assert model.train_config["precision"] == "float32"
    assert main([*argv, *extra, "--precision", "bfloat16"]) == 0
    model = load_model(bare)
    assert model.architecture()["decoder"] == "add" and model.info["step_dtype"] == "bfloat16"


def test_train_budget_follows_the_device(monkeypatch, capsys):
    import torch

    from napari_calcite_afm import cli
    from napari_calcite_afm.segmentation import GPU_BUDGET

    assert cli._train_budget(None, None, "cpu") == {}  # TrainConfig's defaults
    assert cli._train_budget(50, None, "cpu") == {"iterations": 50}
    assert cli._train_budget(None, 4, "cpu") == {"batch_size": 4}
    # on a GPU, the GPU budget unless the user chose one
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert cli._train_budget(None, None, "auto", quiet=False) == GPU_BUDGET
    assert "GPU budget" in capsys.readouterr().err
    assert cli._train_budget(None, 16, "cuda") == {"batch_size": 16}
    assert cli._train_budget(None, None, "cpu") == {}


def test_train_rejects_mismatched_label_stacks(tmp_path):
    img = write_tiff(tmp_path / "img.tif", np.zeros((2, 16, 16), np.float32), 1.0)
    lab = write_tiff(tmp_path / "lab.tif", np.ones((2, 16, 17), np.uint8), 1.0)
    argv = ["train", "--images", str(img), "--labels", str(lab), "--out", str(tmp_path / "m.pt")]
    assert main(argv) == 2
    argv = ["train", "--images", str(img), str(img), "--labels", str(lab), "--out", "m.pt"]
    assert main(argv) == 2


def test_fit_and_run(tmp_path):
    series = make_series(3, 96, seed=4242)
    img = write_tiff(tmp_path / "img.tif", series.raw, series.pixel_size_nm, frame_interval_s=300)
    lab = write_tiff(tmp_path / "lab.tif", series.labels_raw, series.pixel_size_nm)
    table = tmp_path / "t.csv"
    assert (
        main(
            [
                "fit",
                str(img),
                "--labels",
                str(lab),
                "--out",
                str(table),
                "--lags",
                "1,3",
                "--figures",
                str(tmp_path / "figs"),
                "--quiet",
            ]
        )
        == 0
    )
    with table.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6 and rows[1]["lag_px"] == "3"
    assert len(list((tmp_path / "figs").glob("*.png"))) == 4
    assert main(["fit", str(img), "--labels", str(lab), "--out", str(table), "--lags", "x"]) == 2
    out = tmp_path / "run"
    assert main(["run", str(img), "--out", str(out), "--quiet", "--figures", "none"]) == 0
    assert read_stack(out / "cleaned.tif").heights.shape == series.raw.shape
    assert (out / "table.csv").exists() and not (out / "figures").exists()


# -- outputs are written atomically and never mix with older ones -----------------------


def _names(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_run_replaces_an_older_output_folder_as_a_whole(small_stack, tmp_path, capsys):
    out = tmp_path / "run"
    (out / "figures").mkdir(parents=True)
    (out / "figures" / "fit_frame0099.png").write_bytes(b"stale")  # from a longer movie
    (out / "table.csv").write_text("stale")
    argv = ["run", str(small_stack), "--out", str(out), "--quiet", "--figures", "none"]
    assert main(argv) == 0
    assert _names(out) == [
        "cleaned.tif", "drift.csv", "labels.tif", "pits.csv", "probabilities.tif", "rates.csv",
        "rates.tif", "summary.json", "table.csv", "tracks.csv",
    ]  # fmt: skip
    assert (out / "table.csv").read_text().startswith("frame,time_s,lag_px")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["files"]["table"] == str(out / "table.csv")
    assert summary["timings_s"]["with_outputs_s"] >= summary["timings_s"]["total_s"]
    assert _names(tmp_path) == ["run", *(f"run/{n}" for n in _names(out)), "small.tif"]


def test_segment_writes_labels_and_probabilities_or_neither(small_stack, tmp_path, monkeypatch):
    import napari_calcite_afm.io as io

    out, probs = tmp_path / "seg.tif", tmp_path / "p.tif"
    out.write_bytes(b"older labels")
    real = io.write_tiff

    def failing(path, data, *args, **kw):
        if np.asarray(data).ndim == 4:  # the probabilities
            raise OSError("disk full")
        return real(path, data, *args, **kw)

    monkeypatch.setattr(io, "write_tiff", failing)
    argv = ["segment", str(small_stack), "--out", str(out), "--probabilities", str(probs)]
    with pytest.raises(OSError, match="disk full"):
        main([*argv, "--quiet"])
    assert out.read_bytes() == b"older labels" and not probs.exists()
    assert _names(tmp_path) == ["seg.tif", "small.tif"]  # no temporary file left
    monkeypatch.setattr(io, "write_tiff", real)
    assert main([*argv, "--quiet"]) == 0
    assert read_labels(out).shape == (3, 64, 64) and tifffile.imread(probs).shape[1] == 2


def test_fit_writes_table_and_figures_or_neither(tmp_path, monkeypatch):
    import napari_calcite_afm.outputs as outputs

    s = make_series(2, 48, seed=4243)
    img = write_tiff(tmp_path / "img.tif", s.raw, s.pixel_size_nm, frame_interval_s=300)
    lab = write_tiff(tmp_path / "lab.tif", s.labels_raw, s.pixel_size_nm)
    figs, table = tmp_path / "figs", tmp_path / "t.csv"
    figs.mkdir()
    (figs / "fit_frame0042.png").write_bytes(b"stale")
    argv = ["fit", str(img), "--labels", str(lab), "--out", str(table), "--quiet"]
    argv += ["--lags", "1", "--figures", str(figs)]

    def broken(*args, **kw):
        raise RuntimeError("matplotlib failed")

    monkeypatch.setattr(outputs, "write_figures", broken)
    with pytest.raises(RuntimeError):
        main(argv)
    assert not table.exists() and _names(figs) == ["fit_frame0042.png"]
    monkeypatch.undo()
    assert main(argv) == 0
    assert _names(figs) == ["fit_frame0000.png", "fit_frame0001.png", "parameters_vs_time.png"]
    assert (figs / "fit_frame0000.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_synth_replaces_an_older_synth_folder(tmp_path):
    out = tmp_path / "movie"
    argv = ["synth", "--out", str(out), "--frames", "1", "--size", "32"]
    assert main([*argv, "--seed", "1"]) == 0
    first = (out / "image.tif").read_bytes()
    assert main([*argv, "--seed", "2"]) == 0
    assert _names(out) == ["clean.tif", "image.tif", "labels.tif", "synth.json"]
    assert (out / "image.tif").read_bytes() != first
    assert json.loads((out / "synth.json").read_text())["params"]["seed"] == 2


def test_segment_relabels_open_pits_unless_asked_to_keep_them(tmp_path, small_stack):
    from napari_calcite_afm.segmentation import load_default_model
    from napari_calcite_afm.segmentation.closed import remove_open_pits

    argv = ["segment", str(small_stack), "--model", "default", "--quiet"]
    kept, closed = tmp_path / "kept.tif", tmp_path / "closed.tif"
    assert main([*argv, "--out", str(kept), "--keep-open-pits"]) == 0
    assert main([*argv, "--out", str(closed)]) == 0
    model = load_default_model(2)
    heights = read_stack(small_stack).heights
    as_given, labels = read_labels(kept), read_labels(closed)
    for k in range(heights.shape[0]):
        expected = remove_open_pits(as_given[k], model.level(heights[k]))
        np.testing.assert_array_equal(labels[k], expected)


def test_run_passes_the_segmentation_options_to_the_pipeline(tmp_path, small_stack):
    out = tmp_path / "out"
    argv = ["run", str(small_stack), "--out", str(out), "--figures", "none", "--quiet"]
    assert main([*argv, "--temporal-window", "3", "--keep-open-pits", "--no-kinetics"]) == 0
    config = json.loads((out / "summary.json").read_text())["config"]
    assert config["temporal_window"] == 3 and config["closed_pits"] is False
