"""The reader (napari_get_reader): which paths it claims, and the layer napari gets."""

from __future__ import annotations

import numpy as np
import pytest

PLUGIN = "napari-calcite-afm"
PX = 11.7


def test_reader_rejects_unknown_files(tmp_path):
    from napari_calcite_afm._napari.reader import napari_get_reader

    (tmp_path / "notes.txt").write_text("not AFM")
    assert napari_get_reader(str(tmp_path / "notes.txt")) is None


@pytest.fixture
def movie(tmp_path):
    from napari_calcite_afm.io import write_tiff

    rng = np.random.default_rng(0)
    heights = rng.normal(0, 1, (3, 32, 48)).astype(np.float32)
    return write_tiff(tmp_path / "movie.tif", heights, PX, frame_interval_s=300.0), heights


@pytest.mark.gui
def test_reader_through_napari_has_scale_in_nm_and_time_in_s(make_napari_viewer, movie):
    from napari_calcite_afm._napari.reader import napari_get_reader

    path, heights = movie
    reader = napari_get_reader(str(path))
    assert callable(reader)
    _, kwargs, kind = reader(str(path))[0]
    assert kind == "image" and kwargs["scale"] == (300.0, PX, PX)

    viewer = make_napari_viewer()
    layers = viewer.open(str(path), plugin=PLUGIN)
    assert len(layers) == 1
    layer = layers[0]
    np.testing.assert_allclose(layer.data, heights)
    assert tuple(layer.scale) == pytest.approx((300.0, PX, PX))
    assert layer.metadata["pixel_size_nm"] == pytest.approx(PX)
    assert [str(u) for u in layer.units] == ["second", "nanometer", "nanometer"]
    assert tuple(layer.axis_labels) == ("time", "y", "x")
    assert layer.colormap.name.startswith("calcite")
    # the viewer shows a scale bar and the layer's colorbar, labelled
    assert viewer.canvas.overlays.scale_bar.visible
    assert layer.colorbar.visible
    label = viewer.canvas.overlays["calcite_colorbar_label"]
    assert label.visible and label.text == "height (nm)"
    # the time slider still steps one frame at a time
    viewer.dims.set_current_step(0, 2)
    assert layer.world_to_data(viewer.dims.point)[0] == pytest.approx(2.0)


def test_without_frame_times_the_first_axis_is_frame(tmp_path):
    from napari_calcite_afm._napari.reader import read_afm
    from napari_calcite_afm.io import write_tiff

    path = write_tiff(tmp_path / "movie.tif", np.zeros((3, 8, 8), np.float32), PX)
    _, kwargs, _ = read_afm(str(path))[0]
    assert kwargs["scale"] == (1.0, PX, PX)
    assert kwargs["units"] == ("pixel", "nm", "nm")
    assert kwargs["axis_labels"] == ("frame", "y", "x")


# ----------------------------------------------------------------------- what is claimed


def _imagej_tiff(path, data, unit, vunit=None, resolution=1 / PX):
    import tifffile

    metadata = {"unit": unit} if unit else {}
    if vunit:
        metadata["vunit"] = vunit
    tifffile.imwrite(
        path, data, imagej=True, resolution=(resolution, resolution), metadata=metadata
    )
    return path


def test_reader_claims_afm_files_and_leaves_ordinary_images(tmp_path):
    import tifffile

    from napari_calcite_afm._napari.reader import napari_get_reader, read_afm
    from napari_calcite_afm.io import write_tiff

    heights = np.random.default_rng(1).normal(0, 1, (16, 16)).astype(np.float32)
    claimed = {
        "written here": write_tiff(tmp_path / "ours.tif", heights, PX),
        "ImageJ, pixels in nm": _imagej_tiff(tmp_path / "nm.tif", heights, "nm"),
        "ImageJ, heights in um": _imagej_tiff(
            tmp_path / "vunit.tif", heights.astype(np.uint16), "micron", vunit="um"
        ),
        "float heights in m": tmp_path / "metres.tiff",
        "npz with a pixel size": tmp_path / "scan.npz",
        "vendor file": tmp_path / "scan.spm",
    }
    tifffile.imwrite(claimed["float heights in m"], heights * 1e-9)
    np.savez(claimed["npz with a pixel size"], heights=heights, pixel_size_nm=PX)
    claimed["vendor file"].write_bytes(b"")
    left = {
        "photo (RGB)": tmp_path / "photo.tif",
        "8-bit grey": tmp_path / "grey.tif",
        "float, no unit": tmp_path / "float.tif",
        "microscopy in um": _imagej_tiff(
            tmp_path / "cells.tif", (heights * 100).astype(np.uint16), "micron"
        ),
        "npy": tmp_path / "array.npy",
        "npz without metadata": tmp_path / "arrays.npz",
    }
    tifffile.imwrite(left["photo (RGB)"], np.zeros((16, 16, 3), np.uint8), photometric="rgb")
    tifffile.imwrite(left["8-bit grey"], np.zeros((16, 16), np.uint8))
    tifffile.imwrite(left["float, no unit"], heights)  # values of order 1, no metadata
    np.save(left["npy"], heights)
    np.savez(left["npz without metadata"], a=heights)
    for what, path in claimed.items():
        assert napari_get_reader(str(path)) is read_afm, what
    for what, path in left.items():
        assert napari_get_reader(str(path)) is None, what
    # folders and lists: claimed when they hold AFM data
    photos = tmp_path / "photos"
    photos.mkdir()
    tifffile.imwrite(photos / "a.tif", np.zeros((8, 8), np.uint8))
    assert napari_get_reader(str(photos)) is None
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(2):
        write_tiff(frames / f"frame_{i}.tif", heights, PX)
    assert napari_get_reader(str(frames)) is read_afm
    assert napari_get_reader([str(claimed["written here"]), str(left["8-bit grey"])]) is None


@pytest.mark.gui
def test_ordinary_images_go_to_napari_default_reader(make_napari_viewer, tmp_path):
    import tifffile
    from napari.plugins import _npe2

    from napari_calcite_afm.io import write_tiff

    grey = tmp_path / "grey.tif"
    tifffile.imwrite(grey, np.arange(64, dtype=np.uint8).reshape(8, 8))
    make_napari_viewer()
    _, plugin = _npe2.read([str(grey)], stack=False)
    assert plugin == "napari"  # napari's builtins, not this plugin
    ours = write_tiff(tmp_path / "heights.tif", np.zeros((8, 8), np.float32), PX)
    _, plugin = _npe2.read([str(ours)], plugin=PLUGIN, stack=False)
    assert plugin == PLUGIN


# ----------------------------------------------------------------------- real files


def test_veeco_file_opens_with_contrast_of_the_surface(real_dir):
    """The first two scan lines lie 140 nm below the rest: they must not set the contrast."""
    from napari_calcite_afm._napari.reader import napari_get_reader, read_afm

    path = real_dir / "nanoafmr_Veeco_20160622.003"
    assert napari_get_reader(str(path)) is read_afm
    [(heights, kwargs, _)] = read_afm(str(path))
    lo, hi = kwargs["contrast_limits"]
    assert np.nanmin(heights) < -130  # the settling lines are there...
    assert lo > -20 and hi < 20  # ...but the colours span the surface
    inside = np.mean((heights >= lo) & (heights <= hi))
    assert inside > 0.95
    assert kwargs["metadata"]["channels"] == ["Height", "Amplitude"]


def test_every_real_file_is_claimed(real_dir):
    from napari_calcite_afm._napari.reader import napari_get_reader
    from napari_calcite_afm.io import is_supported

    files = [p for p in sorted(real_dir.iterdir()) if is_supported(p) and p.suffix != ".npy"]
    assert files
    for path in files:
        assert napari_get_reader(str(path)) is not None, path.name
