"""numpy .npy and .npz files (napari_calcite_afm.io.arrays)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_calcite_afm.io import AFMFileError, list_channels, read_stack


def test_npy_2d_and_3d(tmp_path):
    frame = np.arange(80, dtype=np.float64).reshape(8, 10)
    np.save(tmp_path / "f.npy", frame)
    stack = read_stack(tmp_path / "f.npy", pixel_size_nm=2.0)
    assert stack.format == "npy" and stack.heights.shape == (1, 8, 10)
    assert stack.pixel_size_nm == 2.0
    np.testing.assert_array_equal(stack.heights[0], frame)
    movie = np.stack([frame, frame * 2, frame * 3])
    np.save(tmp_path / "m.npy", movie * 1e-9)
    stack = read_stack(tmp_path / "m.npy", z_unit="m")
    assert stack.metadata["pixel_size_assumed"] is True
    np.testing.assert_allclose(stack.heights, movie, rtol=1e-6)


def test_npz_keys(tmp_path):
    h = np.random.default_rng(1).normal(size=(3, 8, 9))
    np.savez(
        tmp_path / "a.npz", labels=np.zeros((3, 8, 9)), heights=h, pixel_size_nm=2.5,
        frame_times_s=np.array([0.0, 10.0, 20.0]),
    )  # fmt: skip
    stack = read_stack(tmp_path / "a.npz")
    assert stack.format == "npz" and stack.channel == "heights"
    np.testing.assert_allclose(stack.heights, h, rtol=1e-6)
    assert stack.pixel_size_nm == 2.5 and stack.frame_interval_s == 10.0
    assert list_channels(tmp_path / "a.npz") == ["labels", "heights"]
    np.savez(tmp_path / "b.npz", topo=h[0])
    first = read_stack(tmp_path / "b.npz")
    assert first.channel == "topo" and first.heights.shape == (1, 8, 9)
    with pytest.raises(AFMFileError, match="channel 'nope' not found"):
        read_stack(tmp_path / "b.npz", "nope")


def test_object_npy_is_refused(tmp_path):
    path = tmp_path / "obj.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(AFMFileError, match="Python objects"):
        read_stack(path)


def test_npy_header_declaring_more_than_the_file_is_refused_before_loading(tmp_path):
    path = tmp_path / "lying.npy"
    np.save(path, np.zeros((2, 16, 16)))
    data = path.read_bytes().replace(b"(2, 16, 16)", b"(9999, 99999, 9)")
    path.write_bytes(data)
    for call in (read_stack, list_channels):  # list_channels reads the header too
        with pytest.raises(AFMFileError, match=r"declares \d+ bytes .*\(9999, 99999, 9\)"):
            call(path)
    path.write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(AFMFileError, match="corrupt or truncated"):
        list_channels(path)


def test_npz_member_declaring_more_than_it_holds_is_refused(tmp_path):
    path = tmp_path / "lying.npz"
    np.savez(path, heights=np.zeros((64, 64)))  # larger than zipfile's read-ahead
    data = path.read_bytes()
    start = data.index(b"'shape': (64, 64), }")
    end = data.index(b"\n", start)
    lie = b"'shape': (99999, 99999), }".ljust(end - start)  # the header keeps its length
    path.write_bytes(data[:start] + lie + data[end:])
    with pytest.raises(AFMFileError, match=r"array 'heights.npy': an array of shape \(99999"):
        read_stack(path)


def test_npz_bounds_apply_to_its_pixel_size_and_times(tmp_path):
    path = tmp_path / "a.npz"
    np.savez(path, heights=np.zeros((8, 8)), pixel_size_nm=1e-300)
    with pytest.raises(AFMFileError, match="outside what an AFM records"):
        read_stack(path)
    np.savez(path, heights=np.zeros((8, 8)), frame_times_s=np.array(["a", "b"]))
    with pytest.raises(AFMFileError, match="'frame_times_s' is not an array of numbers"):
        read_stack(path)
