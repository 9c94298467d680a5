"""Writing TIFF files (napari_calcite_afm.io.write): round trips, atomicity, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_calcite_afm.io import CalciteAFMError, read_labels, read_stack, write_tiff


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
