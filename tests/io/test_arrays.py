"""numpy .npy and .npz files (napari_calcite_afm.io.arrays)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_calcite_afm.io import AFMFileError, list_channels, read_stack


def test_npy_2d_and_3d(tmp_path):
    frame = np.arange(20, dtype=np.float64).reshape(4, 5)
    np.save(tmp_path / "f.npy", frame)
    stack = read_stack(tmp_path / "f.npy", pixel_size_nm=2.0)
    assert stack.format == "npy" and stack.heights.shape == (1, 4, 5)
    assert stack.pixel_size_nm == 2.0
    np.testing.assert_array_equal(stack.heights[0], frame)
    movie = np.stack([frame, frame * 2, frame * 3])
    np.save(tmp_path / "m.npy", movie * 1e-9)
    stack = read_stack(tmp_path / "m.npy", z_unit="m")
    assert stack.metadata["pixel_size_assumed"] is True
    np.testing.assert_allclose(stack.heights, movie, rtol=1e-6)


def test_npz_keys(tmp_path):
    h = np.random.default_rng(1).normal(size=(3, 6, 7))
    np.savez(
        tmp_path / "a.npz", labels=np.zeros((3, 6, 7)), heights=h, pixel_size_nm=2.5,
        frame_times_s=np.array([0.0, 10.0, 20.0]),
    )  # fmt: skip
    stack = read_stack(tmp_path / "a.npz")
    assert stack.format == "npz" and stack.channel == "heights"
    np.testing.assert_allclose(stack.heights, h, rtol=1e-6)
    assert stack.pixel_size_nm == 2.5 and stack.frame_interval_s == 10.0
    assert list_channels(tmp_path / "a.npz") == ["labels", "heights"]
    np.savez(tmp_path / "b.npz", topo=h[0])
    first = read_stack(tmp_path / "b.npz")
    assert first.channel == "topo" and first.heights.shape == (1, 6, 7)
    with pytest.raises(AFMFileError, match="channel 'nope' not found"):
        read_stack(tmp_path / "b.npz", "nope")


def test_object_npy_is_refused(tmp_path):
    path = tmp_path / "obj.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(AFMFileError, match="Python objects"):
        read_stack(path)
