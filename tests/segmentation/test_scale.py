"""The warning for a model applied to heights of another pixel size."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from napari_calcite_afm.segmentation.scale import (
    SHIPPED_PIXEL_SIZE_NM,
    height_unit_warning,
    model_pixel_size,
    pixel_size_warning,
)


def _model(px=None, source=None):
    return SimpleNamespace(info={} if px is None else {"pixel_size_nm": px}, source=source)


@pytest.mark.parametrize(
    ("image_px", "warned"),
    [(11.7, False), (6.0, False), (23.0, False), (5.8, True), (24.0, True), (0.5, True)],
)
def test_warns_beyond_a_factor_of_two(image_px, warned):
    text = pixel_size_warning(_model(11.7), image_px, "layer 'x'")
    assert (text is not None) is warned
    if warned:
        assert "layer 'x'" in text and "Resample" in text
        assert ("finer" in text) is (image_px < 11.7)


def test_shipped_models_without_a_record_are_taken_at_11_7_nm():
    from napari_calcite_afm.segmentation import load_default_model

    model = load_default_model()
    assert model_pixel_size(model) == (pytest.approx(SHIPPED_PIXEL_SIZE_NM), False)
    model.info.pop("pixel_size_nm")
    assert model_pixel_size(model) == (SHIPPED_PIXEL_SIZE_NM, True)
    text = pixel_size_warning(model, 0.5)
    assert "shipped models' training scale" in text
    # a model of unknown origin without a record: nothing to compare with
    assert pixel_size_warning(_model(None, "/tmp/mine.pt"), 0.5) is None
    assert pixel_size_warning(_model(11.7), 0.0) is None


@pytest.mark.parametrize(
    ("image_px", "warned"),
    [(2.0, False), (5.0, False), (20.0, False), (1.0, False), (40.0, False), (0.9, True),
     (41.0, True)],
)  # fmt: skip
def test_a_training_range_warns_only_twice_beyond_its_ends(image_px, warned):
    from napari_calcite_afm.segmentation.scale import model_pixel_size_range

    model = SimpleNamespace(
        info={"pixel_size_nm": 8.0, "pixel_size_range_nm": [2, 20]}, source=None
    )
    assert model_pixel_size_range(model) == (2.0, 20.0)
    text = pixel_size_warning(model, image_px, "layer 'x'")
    assert (text is not None) is warned
    if warned:
        assert "2 to 20 nm per pixel" in text and "layer 'x'" in text
        assert ("finest" in text) is (image_px < 2.0)


def test_a_broken_range_record_falls_back_to_the_single_size():
    from napari_calcite_afm.segmentation.scale import model_pixel_size_range

    for bad in ([20, 2], "2-20", [0, 20], [1]):
        model = SimpleNamespace(
            info={"pixel_size_nm": 11.7, "pixel_size_range_nm": bad}, source=None
        )
        assert model_pixel_size_range(model) == (11.7, 11.7)
        assert pixel_size_warning(model, 5.0) is not None  # more than twice finer than 11.7


@pytest.mark.parametrize(
    ("unit", "expected"),
    [
        ("nm", None),
        (None, None),
        ("", None),
        ("A", "holds values in A, not heights in nm"),
        ("deg", "holds values in deg"),
        ("unknown", "holds values of an unknown unit"),
    ],
)
def test_height_unit_warning_names_the_channel_and_the_unit(unit, expected):
    text = height_unit_warning(unit, "Phase", "'scan.ibw'")
    if expected is None:
        assert text is None
    else:
        assert expected in text and text.startswith("channel 'Phase' of 'scan.ibw'")
        assert "--channel" in text  # what to do
    assert height_unit_warning("V", None, "the movie").startswith("the movie holds")
