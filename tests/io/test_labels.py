"""Reading label stacks (napari_calcite_afm.io.labels) and the two-class merge."""

from __future__ import annotations

import numpy as np
import pytest

from napari_calcite_afm.io import (
    AFMFileError,
    CalciteAFMError,
    labels_to_two_class,
    read_labels,
    write_gwy,
    write_tiff,
)


def test_read_labels_checks_values_and_shape(tmp_path):
    good = np.zeros((2, 4, 4), np.uint8)
    good[0, 0, 0] = 3
    np.save(tmp_path / "good.npy", good)
    np.testing.assert_array_equal(read_labels(tmp_path / "good.npy", (2, 4, 4)), good)
    np.testing.assert_array_equal(read_labels(tmp_path / "good.npy", (4, 4)), good)
    with pytest.raises(AFMFileError) as info:
        read_labels(tmp_path / "good.npy", shape=(3, 4, 4))
    assert "(2, 4, 4)" in info.value.problem and "(3, 4, 4)" in info.value.problem
    assert info.value.path == tmp_path / "good.npy"

    bad = good.copy()
    bad[1, 1, 1] = 7
    write_tiff(tmp_path / "bad.tif", bad, 1.0)
    with pytest.raises(AFMFileError) as info:
        read_labels(tmp_path / "bad.tif")
    # the message of labels.check_labels: the valid values and those found
    assert "bad.tif" in str(info.value) and "1..3" in info.value.problem
    assert "0..7" in info.value.problem

    np.save(tmp_path / "float.npy", good.astype(np.float32))
    assert read_labels(tmp_path / "float.npy").dtype == np.uint8
    np.save(tmp_path / "frac.npy", good.astype(np.float32) + 0.5)
    with pytest.raises(AFMFileError, match="whole numbers"):
        read_labels(tmp_path / "frac.npy")
    np.savez(tmp_path / "l.npz", heights=np.ones((4, 4)), labels=good[0])
    assert read_labels(tmp_path / "l.npz").shape == (1, 4, 4)
    with pytest.raises(AFMFileError, match="not found"):
        read_labels(tmp_path / "nothing.tif")


def test_read_labels_boolean_mask_and_bad_files(tmp_path):
    # a boolean array is read as 0 and 1 (labels.check_labels alone refuses booleans)
    mask = np.array([[True, False], [False, True]])
    np.save(tmp_path / "mask.npy", mask)
    np.testing.assert_array_equal(read_labels(tmp_path / "mask.npy"), [mask.astype(np.uint8)])
    np.save(tmp_path / "nan.npy", np.array([[np.nan, 1.0]]))
    with pytest.raises(AFMFileError) as info:
        read_labels(tmp_path / "nan.npy")
    assert info.value.path == tmp_path / "nan.npy"
    np.save(tmp_path / "text.npy", np.array([["a"]]))
    with pytest.raises(AFMFileError, match="not integer labels"):
        read_labels(tmp_path / "text.npy")
    np.save(tmp_path / "flat.npy", np.array([1, 2]))
    with pytest.raises(AFMFileError, match="got shape"):
        read_labels(tmp_path / "flat.npy")
    (tmp_path / "labels.png").write_bytes(b"png")
    with pytest.raises(AFMFileError, match=r"TIFF, \.npy, \.npz or \.gwy"):
        read_labels(tmp_path / "labels.png")


def test_read_labels_from_a_gwyddion_file(tmp_path):
    labels = np.zeros((2, 8, 8), np.uint8)
    labels[:, :3] = 1
    labels[1, 5:] = 3
    out = write_gwy(tmp_path / "l.gwy", np.zeros((2, 8, 8)), 1.0, labels=labels)
    np.testing.assert_array_equal(read_labels(out, shape=(2, 8, 8)), labels)
    without = write_gwy(tmp_path / "h.gwy", np.zeros((8, 8)), 1.0)
    with pytest.raises(AFMFileError, match="channel 'labels' not found"):
        read_labels(without)


def test_labels_to_two_class():
    labels = np.array([[0, 1, 2, 3]], dtype=np.int32)
    out = labels_to_two_class(labels)
    np.testing.assert_array_equal(out, [[0, 1, 2, 2]])
    assert out.dtype == np.uint8
    assert labels[0, 3] == 3  # input untouched
    u8 = np.array([3, 3], np.uint8)
    assert labels_to_two_class(u8) is not u8
    with pytest.raises(CalciteAFMError):
        labels_to_two_class(np.array([4]))
