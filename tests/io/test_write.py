"""Writing TIFF and Gwyddion files (napari_calcite_afm.io.write): round trips, atomicity,
bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_calcite_afm.io import (
    CalciteAFMError,
    list_channels,
    read_labels,
    read_stack,
    write_gwy,
    write_tiff,
)


def test_tiff_round_trip_heights(tmp_path):
    rng = np.random.default_rng(0)
    heights = rng.normal(size=(3, 20, 30)).astype(np.float32)
    heights[1, 2, 3] = np.nan
    out = write_tiff(
        tmp_path / "new" / "dir" / "stack.tif",
        heights,
        3.455234375,
        frame_interval_s=2.5,
        metadata={"sample": "calcite", "n": np.int64(3)},
    )
    assert out == tmp_path / "new" / "dir" / "stack.tif" and out.is_file()
    assert [p.name for p in out.parent.iterdir()] == ["stack.tif"]  # no temp file left
    stack = read_stack(out)
    assert stack.format == "tiff"
    assert stack.pixel_size_nm == 3.455234375
    np.testing.assert_array_equal(stack.heights, heights)  # NaN kept
    assert np.isnan(stack.heights[1, 2, 3])
    np.testing.assert_allclose(stack.frame_times_s, [0.0, 2.5, 5.0])
    assert stack.frame_interval_s == 2.5
    assert stack.metadata["saved"]["metadata"] == {"sample": "calcite", "n": 3}
    assert "pixel_size_assumed" not in stack.metadata
    # what Fiji / napari see
    with tifffile.TiffFile(out) as tif:
        assert tif.is_imagej
        ij = tif.imagej_metadata
        assert ij["unit"] == "nm" and ij["frames"] == 3 and ij["finterval"] == 2.5
        assert tif.series[0].axes == "TYX"
        num, den = tif.pages[0].tags["XResolution"].value
        assert den / num == pytest.approx(3.455234375, rel=1e-9)
        assert tif.pages[0].dtype == np.float32


def test_tiff_round_trip_2d_and_unit(tmp_path):
    frame = np.arange(80, dtype=np.float64).reshape(8, 10)
    out = write_tiff(tmp_path / "one.tiff", frame * 1e-3, 7.0, unit="um")
    stack = read_stack(out)
    assert stack.heights.shape == (1, 8, 10)
    np.testing.assert_allclose(stack.heights[0], frame, rtol=1e-6)  # um -> nm
    assert stack.frame_times_s is None and stack.frame_interval_s is None


def test_tiff_round_trip_labels(tmp_path):
    labels = np.zeros((2, 8, 9), dtype=np.int64)
    labels[0, :3] = 1
    labels[1, 3:] = 3
    labels[:, :, 0] = 2
    out = write_tiff(tmp_path / "labels.tif", labels, 4.25)
    assert tifffile.imread(out).dtype == np.uint8
    back = read_labels(out, shape=(2, 8, 9))
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, labels)
    assert read_stack(out).pixel_size_nm == 4.25
    # a single frame comes back as one frame
    write_tiff(tmp_path / "one.tif", labels[0].astype(bool), 1.0)
    assert read_labels(tmp_path / "one.tif").shape == (1, 8, 9)


def test_write_tiff_is_atomic(tmp_path, monkeypatch):
    out = tmp_path / "keep.tif"
    write_tiff(out, np.ones((4, 4)), 1.0)
    before = out.read_bytes()

    def broken(file, *args, **kwargs):
        # leave the file tifffile was given (the temporary file) half written
        if isinstance(file, (str, Path)):
            Path(file).write_bytes(b"partial")
        else:
            file.write(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(tifffile, "imwrite", broken)
    with pytest.raises(RuntimeError):
        write_tiff(out, np.zeros((4, 4)), 1.0)
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.tif"]


@pytest.mark.parametrize(
    ("data", "px", "match"),
    [
        (np.zeros((2, 2, 2, 2, 2)), 1.0, "shape"),
        (np.zeros((0, 4)), 1.0, "empty"),
        (np.array([["a"]]), 1.0, "numeric"),
        (np.zeros((3, 3)), 0.0, "positive"),
        (np.zeros((3, 3)), float("nan"), "positive"),
    ],
)
def test_write_tiff_rejects_bad_input(tmp_path, data, px, match):
    with pytest.raises(CalciteAFMError, match=match):
        write_tiff(tmp_path / "x.tif", data, px)
    assert not list(tmp_path.iterdir())


def test_write_tiff_four_dimensional_probabilities(tmp_path):
    probs = np.random.default_rng(0).random((3, 2, 8, 9)).astype(np.float32)
    out = write_tiff(tmp_path / "p.tif", probs, 4.0, compression="zlib")
    with tifffile.TiffFile(out) as tif:
        np.testing.assert_array_equal(tif.asarray(), probs)
        assert tif.series[0].axes == "TCYX"


# ----------------------------------------------------------------------------- .gwy
def test_gwy_round_trip_heights_labels_nan_and_times(tmp_path):
    rng = np.random.default_rng(1)
    heights = (rng.normal(size=(3, 24, 40)) * 5).astype(np.float32)
    heights[1, 2:5, 7] = np.nan
    labels = rng.integers(0, 4, size=heights.shape).astype(np.uint8)
    out = write_gwy(
        tmp_path / "sub" / "movie.gwy",
        heights,
        11.7,
        labels=labels,
        frame_times_s=[0.0, 2.5, 5.0],
        metadata={"sample": "calcite"},
    )
    assert out.is_file() and [p.name for p in out.parent.iterdir()] == ["movie.gwy"]
    assert list_channels(out) == ["height", "labels"]
    stack = read_stack(out)
    assert stack.format == "gwy" and stack.channel == "height"
    assert stack.pixel_size_nm == 11.7 and stack.metadata["z_unit"] == "nm"
    np.testing.assert_array_equal(stack.frame_times_s, [0.0, 2.5, 5.0])
    np.testing.assert_array_equal(stack.heights, heights)  # NaN where they were
    assert stack.metadata["saved"] == {"metadata": {"sample": "calcite"}}
    assert stack.metadata["frame_titles"] == ["height frame 0", "height frame 1", "height frame 2"]
    np.testing.assert_array_equal(read_labels(out, shape=heights.shape), labels)
    np.testing.assert_array_equal(read_stack(out, "labels").heights, labels)
    one = read_stack(out, "height frame 1")  # a single field, by its Gwyddion title
    np.testing.assert_array_equal(one.heights[0], heights[1])


def test_gwy_file_is_what_gwyddion_expects(tmp_path):
    import gwyfile

    heights = np.full((2, 8, 10), 3.0, np.float32)  # nm
    heights[0, 0, 0] = np.nan
    out = write_gwy(tmp_path / "g.gwy", heights, 2.0, frame_times_s=[0, 10])
    obj = gwyfile.load(str(out))
    field = obj["/1/data"]
    assert obj["/1/data/title"] == "height frame 1"
    assert (field["xres"], field["yres"]) == (10, 8)
    assert field["xreal"] == pytest.approx(10 * 2e-9) and field["yreal"] == pytest.approx(8 * 2e-9)
    assert field["si_unit_xy"]["unitstr"] == "m" and field["si_unit_z"]["unitstr"] == "m"
    np.testing.assert_allclose(field.data, 3e-9)  # metres
    mask = obj["/0/mask"].data  # the unrecorded pixel, filled with the frame's mean
    assert mask[0, 0] == 1 and mask.sum() == 1 and obj["/0/data"].data[0, 0] == pytest.approx(3e-9)
    assert "/1/mask" not in obj
    assert obj["/1/meta"]["Time"] == "10 s" and obj["/1/meta"]["Frame"] == "1"
    assert obj["/0/data/visible"] is True


def test_gwy_single_frame_and_other_units(tmp_path):
    out = write_gwy(tmp_path / "p.gwy", np.linspace(0, 90, 64).reshape(8, 8), 1.0, unit="deg",
                    channel="phase")  # fmt: skip
    stack = read_stack(out)
    assert stack.channel == "phase" and stack.metadata["z_unit"] == "deg"
    assert stack.frame_times_s is None and stack.heights.shape == (1, 8, 8)
    assert stack.heights.max() == pytest.approx(90.0)
    um = write_gwy(tmp_path / "u.gwy", np.ones((8, 8)), 1.0, unit="um")
    assert read_stack(um).heights.max() == pytest.approx(1000.0)  # um -> nm


def test_write_gwy_is_atomic(tmp_path, monkeypatch):
    from gwyfile.objects import GwyObject

    out = tmp_path / "keep.gwy"
    write_gwy(out, np.ones((8, 8)), 1.0)
    before = out.read_bytes()

    def broken(self, file):
        file.write(b"GWYPpartial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(GwyObject, "tofile", broken)
    with pytest.raises(RuntimeError):
        write_gwy(out, np.zeros((8, 8)), 1.0)
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.gwy"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"stack": np.zeros((2, 2, 2, 2))}, "shape"),
        ({"stack": np.zeros((0, 4))}, "shape"),
        ({"stack": np.array([["a"]])}, "numeric"),
        ({"pixel_size_nm": 0.0}, "positive"),
        ({"pixel_size_nm": "x"}, "must be a number"),
        ({"labels": np.zeros((2, 8, 8))}, "do not match"),
        ({"frame_times_s": [0.0, 1.0]}, "2 frame times for 1 frames"),
        ({"stack": np.full((8, 8), np.nan)}, "no finite value"),
        ({"channel": "labels", "labels": np.zeros((8, 8))}, "cannot be named 'labels'"),
    ],
)
def test_write_gwy_rejects_bad_input(tmp_path, kwargs, match):
    args = {"stack": np.zeros((8, 8)), "pixel_size_nm": 1.0, **kwargs}
    with pytest.raises(CalciteAFMError, match=match):
        write_gwy(tmp_path / "x.gwy", **args)
    assert not list(tmp_path.iterdir())


def test_write_gwy_without_gwyfile_says_so(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "gwyfile.objects", None)
    with pytest.raises(CalciteAFMError, match="needs the gwyfile package"):
        write_gwy(tmp_path / "x.gwy", np.zeros((8, 8)), 1.0)


def test_gwy_file_opens_in_gwyddion(tmp_path):
    # Gwyddion's own loader (its gwyconvert, from the optional gwyddion extra) reads the
    # file and saves it again; the copy reads back as the same stack
    from napari_calcite_afm.io.nanosurf_ntmdt import converter_available

    if not converter_available():
        pytest.skip("the optional gwyddion extra (Gwyddion's converter) is not installed")
    from gwyddionpy._run import run_converter

    heights = np.random.default_rng(3).normal(size=(2, 16, 24)).astype(np.float32)
    heights[0, 1, 1] = np.nan
    labels = (heights > 0).astype(np.uint8) + 1
    src = write_gwy(tmp_path / "ours.gwy", heights, 7.5, labels=labels, frame_times_s=[0, 3])
    assert run_converter(src, tmp_path / "gwyddion.gwy") == "gwyfile"  # Gwyddion's module
    back = read_stack(tmp_path / "gwyddion.gwy")
    np.testing.assert_array_equal(back.heights, heights)
    assert back.pixel_size_nm == 7.5 and list(back.frame_times_s) == [0.0, 3.0]
    np.testing.assert_array_equal(read_labels(tmp_path / "gwyddion.gwy"), labels)
