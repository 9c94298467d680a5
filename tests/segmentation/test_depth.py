"""Out of its depth: frame uncertainty, the calibrated threshold, the movie's verdict."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pytest

from napari_calcite_afm.errors import CalciteAFMError
from napari_calcite_afm.segmentation import (
    DEFAULT_UNCERTAINTY_THRESHOLD,
    assess_depth,
    calibrated_threshold,
    frame_uncertainty,
    load_default_model,
    uncertainty_threshold,
)


def _model(threshold=None, rf=31, n_classes=2, **info):
    if threshold is not None:
        info["uncertainty_threshold"] = threshold
    return SimpleNamespace(info=info, n_classes=n_classes, receptive_field=rf, source=None)


def test_frame_uncertainty_ignores_unrecorded_pixels():
    p = np.zeros((2, 4, 4), np.float32)
    p[0] = 1.0  # certain everywhere...
    p[:, 0, :] = 0.5  # ...but the first row, undecided
    assert frame_uncertainty(p) == pytest.approx(0.25)
    p[:, 0, :] = np.nan  # the undecided row not recorded
    assert frame_uncertainty(p) == 0.0
    stack = np.stack([p, np.full((2, 4, 4), 0.5), np.full((2, 4, 4), np.nan)])
    out = frame_uncertainty(stack)
    assert out.shape == (3,) and out[0] == 0.0 and out[1] == pytest.approx(1.0)
    assert np.isnan(out[2])
    with pytest.raises(CalciteAFMError, match="probabilities"):
        frame_uncertainty(np.zeros((4, 4)))


def test_calibrated_threshold_margin_and_floor():
    values = np.linspace(0.1, 0.3, 101)
    assert calibrated_threshold(values, 2) == pytest.approx(1.25 * np.quantile(values, 0.99))
    assert calibrated_threshold([0.001, np.nan], 3) == DEFAULT_UNCERTAINTY_THRESHOLD[3]
    assert calibrated_threshold([], 2) == DEFAULT_UNCERTAINTY_THRESHOLD[2]
    assert calibrated_threshold([0.95], 2) == 1.0
    with pytest.raises(CalciteAFMError):
        calibrated_threshold([0.1], 4)


def test_threshold_from_the_file_or_the_default():
    assert uncertainty_threshold(_model(0.3)) == (0.3, False)
    assert uncertainty_threshold(_model("junk")) == (DEFAULT_UNCERTAINTY_THRESHOLD[2], True)
    assert uncertainty_threshold(_model(None, n_classes=3))[0] == DEFAULT_UNCERTAINTY_THRESHOLD[3]
    # the shipped files predate the calibration: the default serves them
    assert uncertainty_threshold(load_default_model(2)) == (DEFAULT_UNCERTAINTY_THRESHOLD[2], True)


def test_training_calibrates_the_threshold(trained):
    info = trained.model.info
    calib = info["uncertainty_calibration"]
    assert calib["frames"] >= 1 and calib["frame_px"] == 64
    assert info["uncertainty_threshold"] == pytest.approx(
        max(DEFAULT_UNCERTAINTY_THRESHOLD[2], 1.25 * calib["q99"])
    )
    assert uncertainty_threshold(trained.model) == (info["uncertainty_threshold"], False)


def test_a_confident_movie_is_in_its_depth():
    report = assess_depth(_model(0.2, pixel_size_nm=10.0), 10.0, [0.05, 0.1], (128, 128))
    assert not report.out_of_depth and report.reasons == [] and report.frames_above == []
    assert report.mean_uncertainty == pytest.approx(0.075)
    summary = report.summary()
    assert summary["model_pixel_size_range_nm"] == [10.0, 10.0]
    assert (
        summary["out_of_depth"] is False and summary["mean_uncertainty"] == report.mean_uncertainty
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert report.warn() is None


def test_an_unsure_movie_warns_once_and_records_it():
    model = _model(0.2, pixel_size_range_nm=[2.0, 20.0])
    report = assess_depth(model, 5.0, [0.1, 0.5, np.nan, 0.4], (128, 128), "'m.tif'")
    assert report.out_of_depth and report.frames_above == [1, 3]
    assert "mean frame uncertainty 0.333" in report.reasons[0]
    with pytest.warns(UserWarning, match="unsure about 'm.tif'") as record:
        report.warn()
    assert len(record) == 1 and "nm per pixel" not in str(record[0].message)
    summary, table = {"warnings": []}, [{"frame": 0}, {"frame": 1}, {"frame": 1}, {"frame": 3}]
    report.record(summary, table)
    assert summary["out_of_depth"] and len(summary["warnings"]) == 1
    assert summary["frames_above_uncertainty_threshold"] == [1, 3]
    assert [r["uncertainty"] for r in table] == [0.1, 0.5, 0.5, 0.4]


def test_the_pixel_size_outside_the_range_is_a_reason_with_its_own_warning():
    model = _model(0.2, pixel_size_range_nm=[2.0, 20.0])
    inside = assess_depth(model, 39.0, [0.05], (64, 64))
    assert not inside.out_of_depth  # within twice the range: no reason
    outside = assess_depth(model, 0.5, [0.9], (64, 64))
    assert outside.out_of_depth and len(outside.reasons) == 2
    assert "0.5 nm more than twice outside the training range 2-20 nm" in outside.reasons[1]
    # the pixel-size warning is emitted where the movie is read: this one stays silent
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert outside.warn() is None
    summary = {"warnings": []}
    outside.record(summary)
    assert summary["warnings"] == [] and summary["out_of_depth"]


def test_frames_smaller_than_the_receptive_field_are_not_judged():
    model = _model(0.1, rf=231)
    report = assess_depth(model, None, [0.6, 0.7], (64, 64))
    assert not report.out_of_depth and not report.uncertainty_judged
    assert "not judged" in report.reasons[0] and report.frames_above == []
    # a model calibrated on such small frames judges them
    small = _model(0.1, rf=231, uncertainty_calibration={"frame_px": 64})
    assert assess_depth(small, None, [0.6, 0.7], (64, 64)).out_of_depth


def test_calibrate_uncertainty_on_given_frames(seg):
    from napari_calcite_afm.segmentation import calibrate_uncertainty, predict_stack

    model = seg.random_model()  # untrained: unsure everywhere
    images, _ = seg.toy_frames(3, 48, seed=12)
    threshold = calibrate_uncertainty(model, images)
    _, prob = predict_stack(model, np.stack(images), device="cpu")
    expected = calibrated_threshold(frame_uncertainty(prob), 2)
    assert threshold == pytest.approx(expected) and threshold > DEFAULT_UNCERTAINTY_THRESHOLD[2]
    assert model.info["uncertainty_threshold"] == threshold
    assert model.info["uncertainty_calibration"]["on"] == "given frames"
    assert uncertainty_threshold(model) == (threshold, False)
