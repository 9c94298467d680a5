"""The one-click segment-and-fit pipeline and the fitting half alone (fit_series)."""

from __future__ import annotations

import csv
import json
import threading

import numpy as np
import pytest

from napari_calcite_afm import pipeline
from napari_calcite_afm.errors import CalciteAFMError
from napari_calcite_afm.io import read_labels
from napari_calcite_afm.pipeline import (
    TABLE_COLUMNS,
    Cancelled,
    PipelineConfig,
    fit_series,
    run_pipeline,
    table_columns,
)
from napari_calcite_afm.synthetic import make_series


@pytest.fixture(scope="module")
def series():
    return make_series(3, 96, seed=4242)


def test_old_names_still_importable():
    from napari_calcite_afm import _util, errors, outputs

    for name in pipeline.__all__:
        assert getattr(pipeline, name) is not None, name
    for name in ("TABLE_COLUMNS", "table_columns", "write_figures", "write_outputs",
                 "write_table_csv"):  # fmt: skip
        assert getattr(pipeline, name) is getattr(outputs, name), name
    assert pipeline._write_json is outputs.write_json  # the demo's old import
    assert pipeline.Cancelled is errors.Cancelled and pipeline.CalciteAFMError is CalciteAFMError
    assert pipeline.ProgressFn is _util.ProgressFn and pipeline.StopFlag is _util.StopFlag


def test_config_round_trip_and_unknown_keys():
    cfg = PipelineConfig(lags=(1, 3), register=False, level={"background_order": 1})
    d = cfg.to_dict()
    assert d["lags"] == [1, 3] and json.loads(json.dumps(d)) == d
    back = PipelineConfig.from_dict(d)
    assert back == cfg and back.lags == (1, 3)
    assert PipelineConfig.from_dict({"lags": ["2", 4.0]}).lags == (2, 4)
    assert PipelineConfig.from_dict({}) == PipelineConfig()
    with pytest.raises(CalciteAFMError, match="bogus"):
        PipelineConfig.from_dict({"bogus": 1, "lags": [1]})
    with pytest.raises(CalciteAFMError):
        PipelineConfig.from_dict([("lags", [1])])


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


def test_fit_series_does_not_depend_on_workers(series):
    kw = dict(pixel_size_nm=series.pixel_size_nm, frame_times_s=series.frame_times_s, lags=(2,))
    one, _ = fit_series(series.clean, series.labels, workers=1, **kw)
    two, _ = fit_series(series.clean, series.labels, workers=2, **kw)
    assert json.dumps(one, default=str) == json.dumps(two, default=str)


def test_fit_series_rejects_mismatched_labels(series):
    with pytest.raises(CalciteAFMError, match="do not match"):
        fit_series(series.clean, series.labels[:, :10], pixel_size_nm=1.0)


def test_fit_series_stop_flag(series):
    with pytest.raises(Cancelled, match="stopped after 0 of 3 frames"):
        fit_series(series.clean, series.labels, pixel_size_nm=1.0, lags=(1,), stop=lambda: True)


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


def test_run_pipeline_stages_timings_and_summary(series):
    progress = []
    cfg = PipelineConfig(lags=(2, 1), register=False, keep_probabilities=False, em=False)
    res = run_pipeline(
        series.raw, pixel_size_nm=series.pixel_size_nm, config=cfg, progress=progress.append
    )
    stages = [p["stage"] for p in progress]
    assert stages[0] == "read" and "register" not in stages and "write" not in stages
    order = [s for i, s in enumerate(stages) if i == 0 or stages[i - 1] != s]
    assert order == ["read", "level", "segment", "fit", "kinetics"]
    assert all(p["elapsed_s"] >= 0 for p in progress)
    assert res.probabilities is None and res.shifts_px is None and res.files == {}
    assert np.all(np.isnan(res.frame_times_s))  # no times known, no interval given
    s = res.summary
    assert list(s["timings_s"]) == ["read_s", "level_s", "register_s", "segment_s", "fit_s",
                                    "kinetics_s", "total_s"]  # fmt: skip
    assert s["kinetics"]["time_unit"] == "frame"  # no times: rates per frame, and said so
    assert any("no frame times" in m for m in s["kinetics"]["messages"])
    assert s["config"] == cfg.to_dict() and s["drift_shifts_px"] is None
    first = [r["c"] for r in res.table if r["lag_px"] == 2]  # the means use the first lag
    assert s["means"]["c"] == pytest.approx(np.mean(first))
    assert s["source"] is None and s["format"] == "array"


def test_run_pipeline_rejects_bad_arrays():
    with pytest.raises(CalciteAFMError, match="expected"):
        run_pipeline(np.zeros((2, 2, 8, 8)), pixel_size_nm=1.0)


def test_run_pipeline_stop_flag(series):
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        run_pipeline(series.raw, pixel_size_nm=11.7, stop=stop)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"lags": ()}, "lags must be positive whole numbers"),
        ({"lags": (1, 0)}, "lags must be positive whole numbers"),
        ({"lags": (1.5,)}, "lags must be positive whole numbers"),
        ({"axis": "z"}, "axis must be one of both, x, y"),
        ({"figures": "some"}, "figures must be one of summary, all, none"),
        ({"max_frame_figures": -1}, "max_frame_figures must be a whole number >= 0"),
        ({"min_pit_area_px": 2.5}, "min_pit_area_px must be a whole number >= 0"),
        ({"increment_model": "gumbel"}, "increment_model must be one of gaussian, gsg"),
    ],
)
def test_config_refuses_nonsense(kw, message):
    with pytest.raises(CalciteAFMError, match=message):
        PipelineConfig(**kw)
    with pytest.raises(CalciteAFMError, match=message):
        PipelineConfig.from_dict(kw)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"frame_interval_s": -1.0}, "frame_interval_s must be a positive finite number"),
        ({"frame_interval_s": 0}, "frame_interval_s must be a positive finite number"),
        ({"frame_interval_s": float("inf")}, "frame_interval_s must be a positive finite"),
        ({"pixel_size_nm": 0.0}, "pixel_size_nm must be a positive finite number of nm"),
        ({"pixel_size_nm": float("nan")}, "pixel_size_nm must be a positive finite"),
        ({"config": PipelineConfig(lags=(1, 96))}, r"smaller than the frame \(96 x 96 pixels"),
        ({"config": PipelineConfig(lags=(60,), axis="x"), "source": np.zeros((2, 96, 60))},
         "at most 59 px along x"),
    ],
)  # fmt: skip
def test_run_pipeline_refuses_nonsense_before_any_work(series, kw, message):
    progress = []
    kw = {"source": series.raw, "pixel_size_nm": 11.7, **kw}
    with pytest.raises(CalciteAFMError, match=message):
        run_pipeline(kw.pop("source"), **kw, progress=progress.append)
    assert [p["stage"] for p in progress] in ([], ["read"])  # neither levelled nor segmented


def test_run_pipeline_takes_nan_as_an_unknown_interval(series):
    cfg = PipelineConfig(lags=(1,), register=False, keep_probabilities=False, em=False)
    res = run_pipeline(
        series.raw[:1], pixel_size_nm=11.7, frame_interval_s=float("nan"), config=cfg
    )
    assert np.all(np.isnan(res.frame_times_s))


def test_fit_series_refuses_lags_longer_than_the_frame(series):
    with pytest.raises(CalciteAFMError, match=r"96 x 96 pixels: at most 95 px"):
        fit_series(series.clean, series.labels, pixel_size_nm=1.0, lags=(1, 1000000000))


def test_run_pipeline_never_replaces_a_folder_of_other_work(series, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    progress = []
    with pytest.raises(CalciteAFMError, match=r"holds notes\.txt, which calcite-afm did not"):
        run_pipeline(series.raw, pixel_size_nm=11.7, out_dir=tmp_path, progress=progress.append)
    assert progress == [] and [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_fit_series_with_the_gsg_model(series):
    kw = dict(pixel_size_nm=series.pixel_size_nm, frame_times_s=series.frame_times_s, lags=(1, 2))
    gauss, _ = fit_series(series.clean[:2], series.labels[:2], **kw)
    rows, fits = fit_series(series.clean[:2], series.labels[:2], increment_model="gsg", **kw)
    assert list(rows[0].keys()) == table_columns(2, "gsg")
    assert all(f.gsg is not None for f in fits)
    for g, r in zip(gauss, rows):  # the Gaussian columns do not change
        assert all(r[k] == v or (v != v and r[k] != r[k]) for k, v in g.items() if k != "flags")
    assert {r["better_increment_model"] for r in rows} <= {"gsg", "gaussian"}
    cfg = PipelineConfig(increment_model="gsg")
    assert PipelineConfig.from_dict(cfg.to_dict()) == cfg
    assert PipelineConfig().increment_model == "gaussian"


def test_run_pipeline_writes_the_kinetics(series, tmp_path):
    cfg = PipelineConfig(lags=(1,), figures="summary", em=False)
    res = run_pipeline(
        series.raw, pixel_size_nm=series.pixel_size_nm, frame_interval_s=300.0, config=cfg,
        out_dir=tmp_path / "out",
    )  # fmt: skip
    assert res.kinetics is not None and res.kinetics.rates.shape[0] == series.raw.shape[0] - 1
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"drift.csv", "rates.tif", "rates.csv", "pits.csv", "tracks.csv"} <= names
    figures = {p.name for p in (tmp_path / "out" / "figures").iterdir()}
    assert {"kinetics.png", "rates_frames.png"} <= figures
    assert res.summary["kinetics"]["time_unit"] == "s"
    # the table's rows carry the rates of the pair ending at their frame
    by_frame = {r["frame"]: r for r in res.table}
    assert np.isnan(by_frame[0]["rate_nm_s"]) and np.isfinite(by_frame[1]["rate_nm_s"])
    assert by_frame[1]["rate_nm_s"] == res.kinetics.rate_table[0]["rate_nm_s"]
    header = (tmp_path / "out" / "table.csv").read_text().splitlines()[0].split(",")
    assert {"rate_nm_s", "rate_pits_mol_m2_s", "dissolved_volume_nm3"} <= set(header)
    assert len(res.summary["drift_confidence"]) == series.raw.shape[0]
    # an older output folder with the kinetic files is replaced as a whole
    again = run_pipeline(
        series.raw, pixel_size_nm=series.pixel_size_nm, config=PipelineConfig(kinetics=False),
        out_dir=tmp_path / "out",
    )  # fmt: skip
    assert again.kinetics is None
    assert not (tmp_path / "out" / "rates.tif").exists()


def test_run_pipeline_tables_each_frames_uncertainty_and_judges_the_movie(series, tmp_path):
    cfg = PipelineConfig(lags=(1, 2), figures="none", em=False, kinetics=False)
    res = run_pipeline(series.raw, pixel_size_nm=series.pixel_size_nm, config=cfg,
                       out_dir=tmp_path / "out")  # fmt: skip
    from napari_calcite_afm.segmentation import frame_uncertainty

    unc = frame_uncertainty(res.probabilities)
    assert [r["uncertainty"] for r in res.table] == pytest.approx(np.repeat(unc, 2))
    with (tmp_path / "out" / "table.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[:17] == [*TABLE_COLUMNS, "uncertainty"]
    assert float(rows[2]["uncertainty"]) == pytest.approx(unc[1], rel=1e-6)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["mean_uncertainty"] == pytest.approx(np.mean(unc))
    assert summary["model_pixel_size_range_nm"] == [11.7, 11.7]
    # 96 px frames are smaller than the shipped U-Net's field of view: not judged
    assert summary["out_of_depth"] is False and summary["uncertainty_judged"] is False
    assert "not judged" in summary["out_of_depth_reasons"][0]
    # fit_series alone (calcite-afm fit, no model) has no such column
    rows, _ = fit_series(res.cleaned[:1], res.labels[:1], pixel_size_nm=11.7, lags=(1,))
    assert "uncertainty" not in table_columns(2) and "uncertainty" not in rows[0]


def test_run_pipeline_warns_once_when_the_model_is_out_of_its_depth(series, tmp_path):
    from napari_calcite_afm.segmentation import DilatedNet, SegmentationModel

    # an untrained network (about 1 bit of entropy per pixel), small receptive field
    info = {"pixel_size_nm": 11.7, "uncertainty_threshold": 0.05}
    model = SegmentationModel(DilatedNet(2, width=4), center_nm=0.0, scale_nm=1.0, info=info)
    cfg = PipelineConfig(lags=(1,), figures="none", em=False, kinetics=False, register=False)
    with pytest.warns(UserWarning, match="unsure about the movie") as record:
        res = run_pipeline(series.raw, model=model, pixel_size_nm=11.7, config=cfg)
    assert len([w for w in record if "unsure" in str(w.message)]) == 1
    s = res.summary
    assert s["out_of_depth"] is True and s["uncertainty_judged"] is True
    assert s["frames_above_uncertainty_threshold"] == [0, 1, 2]
    assert "mean frame uncertainty" in s["out_of_depth_reasons"][0]
    assert any("unsure about the movie" in w for w in s["warnings"])


def test_run_pipeline_warns_when_the_channel_is_not_heights(series):
    from napari_calcite_afm.io import AFMStack

    stack = AFMStack(
        heights=series.raw[:2],
        pixel_size_nm=11.7,
        source="scan.spm",
        channel="Amplitude",
        metadata={"z_unit": "unknown"},
    )
    cfg = PipelineConfig(lags=(1,), figures="none", em=False, kinetics=False, register=False)
    with pytest.warns(UserWarning, match="unknown unit, not heights") as record:
        res = run_pipeline(stack, config=cfg)
    assert len([w for w in record if "not heights" in str(w.message)]) == 1
    assert res.summary["channel"] == "Amplitude"
    assert any("channel 'Amplitude' of 'scan.spm'" in w for w in res.summary["warnings"])
    # heights in nm (the generator's arrays): nothing is said
    plain = run_pipeline(series.raw[:2], pixel_size_nm=11.7, config=cfg)
    assert not any("not heights" in w for w in plain.summary["warnings"])


def test_run_pipeline_relabels_open_pits_unless_told_to_keep_them(series):
    from napari_calcite_afm.segmentation.closed import remove_open_pits

    def run(closed):
        cfg = PipelineConfig(lags=(1,), register=False, kinetics=False, em=False,
                             closed_pits=closed)  # fmt: skip
        return run_pipeline(series.raw, pixel_size_nm=series.pixel_size_nm, config=cfg)

    kept, closed = run(False), run(True)
    assert closed.summary["config"]["closed_pits"] is True
    assert kept.summary["config"]["closed_pits"] is False
    # the cleaned frames are levelled as the model levels them: the check runs on them
    for k in range(series.raw.shape[0]):
        expected = remove_open_pits(kept.labels[k], kept.cleaned[k])
        np.testing.assert_array_equal(closed.labels[k], expected)


def test_run_pipeline_labels_frames_with_their_neighbours_when_asked(series):
    from napari_calcite_afm.segmentation import temporal_prior

    def run(window, keep):
        cfg = PipelineConfig(lags=(1,), kinetics=False, em=False, temporal_window=window,
                             keep_probabilities=keep)  # fmt: skip
        return run_pipeline(series.raw, pixel_size_nm=series.pixel_size_nm, config=cfg)

    alone, mean3 = run(1, True), run(3, False)
    assert mean3.probabilities is None  # needed inside, not kept when not asked
    expected, _ = temporal_prior(alone.probabilities, window=3, heights=alone.cleaned)
    np.testing.assert_array_equal(mean3.labels, expected)
    assert mean3.summary["config"]["temporal_window"] == 3
    for bad in (2, 0, 1.5):
        with pytest.raises(CalciteAFMError, match="temporal_window"):
            PipelineConfig(temporal_window=bad)


def test_rate_smooth_px_is_checked_and_round_trips():
    cfg = PipelineConfig(rate_smooth_px=0.7)
    assert PipelineConfig.from_dict(cfg.to_dict()).rate_smooth_px == 0.7
    assert PipelineConfig(rate_smooth_px=1).rate_smooth_px == 1.0
    for bad in (-0.5, float("nan"), float("inf"), "1", True):
        with pytest.raises(CalciteAFMError, match="rate_smooth_px"):
            PipelineConfig(rate_smooth_px=bad)
