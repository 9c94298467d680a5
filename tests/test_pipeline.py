"""The one-click segment-and-fit pipeline, the fit subcommand and the figures."""

from __future__ import annotations

import csv
import json
import threading

import numpy as np
import pytest

from napari_calcite_afm.cli import main
from napari_calcite_afm.io import CalciteAFMError, read_labels, read_stack, write_tiff
from napari_calcite_afm.pipeline import (
    TABLE_COLUMNS,
    Cancelled,
    PipelineConfig,
    fit_series,
    run_pipeline,
    table_columns,
)
from napari_calcite_afm.surface import mean_retreat_nm, pit_measures
from napari_calcite_afm.synthetic import make_series


@pytest.fixture(scope="module")
def series():
    return make_series(3, 96, seed=4242)


def test_pit_measures_counts_components():
    lab = np.full((40, 40), 2, np.uint8)
    lab[2:6, 2:6] = 1  # 16 px
    lab[20:30, 20:30] = 1  # 100 px
    lab[35, 35] = 1  # 1 px: below min_area_px
    count, area = pit_measures(lab, pixel_size_nm=2.0, min_area_px=4)
    assert count == 2
    assert area == pytest.approx((16 + 100) / 2 * 4.0)
    assert pit_measures(np.full((5, 5), 2), 1.0) == (0, pytest.approx(np.nan, nan_ok=True))


def test_retreat_ignores_vertical_offset_and_measures_lowering():
    rng = np.random.default_rng(3)
    a = rng.normal(0, 0.05, (128, 128))
    b = a - 7.0  # instrument offset only: no retreat
    assert mean_retreat_nm(a, b) == pytest.approx(0.0, abs=0.01)
    b[:32] -= 0.62  # a quarter of the surface lost two layers
    assert mean_retreat_nm(a, b) == pytest.approx(0.155, abs=0.01)


def test_fit_series_table_columns_and_values(series):
    z = series.clean
    rows, fits = fit_series(
        z,
        series.labels,
        pixel_size_nm=series.pixel_size_nm,
        frame_times_s=series.frame_times_s,
        lags=(1, 4),
    )
    assert len(rows) == 3 * 2 and len(fits) == 3
    assert list(rows[0].keys())[: len(TABLE_COLUMNS)] == TABLE_COLUMNS
    assert list(rows[0].keys()) == table_columns(2)
    assert rows[2]["time_s"] == pytest.approx(series.frame_times_s[1])
    # c is the area fraction of label 1 among labelled pixels
    assert rows[0]["c"] == pytest.approx(np.mean(series.labels[0] == 1))
    assert np.isnan(rows[0]["retreat_nm_per_min"]) and np.isfinite(rows[2]["retreat_nm_per_min"])


def test_fit_series_rejects_mismatched_labels(series):
    with pytest.raises(CalciteAFMError, match="do not match"):
        fit_series(series.clean, series.labels[:, :10], pixel_size_nm=1.0)


def test_run_pipeline_writes_everything(series, tmp_path):
    progress = []
    res = run_pipeline(
        series.raw,
        pixel_size_nm=series.pixel_size_nm,
        frame_interval_s=300.0,
        config=PipelineConfig(lags=(1, 2)),
        out_dir=tmp_path,
        progress=progress.append,
    )
    assert res.labels.shape == series.raw.shape and res.labels.dtype == np.uint8
    assert res.probabilities.shape == (3, 2, 96, 96)
    assert {p["stage"] for p in progress} >= {"level", "segment", "fit"}
    for name in ("cleaned.tif", "labels.tif", "probabilities.tif", "table.csv", "summary.json"):
        assert (tmp_path / name).exists(), name
    assert (tmp_path / "figures" / "parameters_vs_time.png").exists()
    assert len(list((tmp_path / "figures").glob("fit_frame*.png"))) == 3
    with (tmp_path / "table.csv").open() as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 6 and list(table[0])[:16] == TABLE_COLUMNS
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["shape"] == [3, 96, 96] and summary["n_classes"] == 2
    labels = read_labels(tmp_path / "labels.tif")
    np.testing.assert_array_equal(labels, res.labels)


def test_run_pipeline_stop_flag(series):
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        run_pipeline(series.raw, pixel_size_nm=11.7, stop=stop)


def test_cli_fit_and_run(series, tmp_path):
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


def test_demo_runs_on_sample(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "table" in out and (tmp_path / "table.csv").exists()
    score = json.loads((tmp_path / "segmentation_score.json").read_text())
    assert score["pixel_accuracy"] > 0.9
