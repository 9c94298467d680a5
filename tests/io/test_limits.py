"""What the readers refuse (napari_calcite_afm.io._limits): bounds, declared sizes, TIFF
directory chains, and the MemoryError net."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import tifffile

from napari_calcite_afm.io import AFMFileError, list_channels, read_stack, registry
from napari_calcite_afm.io import _limits as limits


@pytest.mark.parametrize("px", [1e-3, 0.5, 3.455234375, 1e6])
def test_pixel_sizes_an_instrument_records_pass(px):
    limits.check_pixel_size("scan.gwy", px)


@pytest.mark.parametrize("px", [0.0, -1.0, 9e-4, 1.1e6, 1.6e264, 3.9e-294, np.nan, np.inf])
def test_absurd_pixel_sizes_are_refused(px):
    with pytest.raises(AFMFileError, match="outside what an AFM records") as info:
        limits.check_pixel_size("scan.gwy", px)
    assert info.value.path == "scan.gwy"


@pytest.mark.parametrize(("shape", "ok"), [((8, 8), True), ((3, 8, 512), True),
                                           ((7, 512), False), ((1, 512, 1), False)])  # fmt: skip
def test_frame_shapes(shape, ok):
    if ok:
        limits.check_frame_shape("a.tif", shape)
    else:
        with pytest.raises(AFMFileError, match="too small"):
            limits.check_frame_shape("a.tif", shape)


def test_heights_bound_counts_finite_values_only():
    limits.check_heights("a", np.array([1e7, -1e7, np.nan, np.inf]))
    limits.check_heights("a", np.array([5.0, 3.0]), factor=1e6)  # 5 mm: within 1 cm
    with pytest.raises(AFMFileError, match="heights reach 2e\\+07 nm"):
        limits.check_heights("a", np.array([[0.0, -2e7]]))
    with pytest.raises(AFMFileError, match="heights reach"):
        limits.check_heights("a", np.array([20], np.int16), factor=1e6)  # 20 mm
    limits.check_heights("a", np.array([np.nan, np.nan]))  # nothing recorded: not its job


def test_read_at_most_never_asks_for_more_than_the_file(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"abc")
    with path.open("rb") as fh:
        assert limits.read_at_most(fh, 99999999999, 3) == b"abc"
    with pytest.raises(AFMFileError, match="declares 10 bytes \\(a header\\)"):
        limits.check_declared(path, "a header", 10, 3)


@pytest.mark.parametrize(
    ("exc", "match"),
    [(MemoryError(), "more memory than is available"), (RecursionError(), "nest too deeply"),
     (OverflowError("int too large"), "out of range")],
)  # fmt: skip
def test_memory_guard_turns_resource_errors_into_file_errors(exc, match):
    with pytest.raises(AFMFileError, match=match) as info, limits.memory_guard("f.ibw"):
        raise exc
    assert info.value.path == "f.ibw" and info.value.__cause__ is exc
    with pytest.raises(KeyError), limits.memory_guard("f.ibw"):  # other errors pass through
        raise KeyError("x")


@pytest.mark.parametrize("lister", [True, False])
def test_no_bare_memory_error_escapes_the_readers(tmp_path, monkeypatch, lister):
    path = tmp_path / "scan.gwy"
    path.write_bytes(b"GWYP")

    def huge(*args):
        raise MemoryError

    fmt = registry.FORMATS["gwy"]
    monkeypatch.setitem(
        registry.FORMATS, "gwy", registry.Format(fmt.name, fmt.extensions, huge, huge)
    )
    with pytest.raises(AFMFileError, match="more memory") as info:
        list_channels(path) if lister else read_stack(path)
    assert info.value.path == path


# ----------------------------------------------------------------------------- TIFF
def _tiff(path, pages=3, bigtiff=False):
    with tifffile.TiffWriter(path, bigtiff=bigtiff) as tw:
        for i in range(pages):
            tw.write(np.full((8, 8), i, np.uint16))
    return path


def _ifd_offsets(path) -> list[int]:
    with tifffile.TiffFile(path) as tif:
        return [p.offset for p in tif.pages]


def test_tiff_structure_counts_the_pages(tmp_path):
    assert limits.check_tiff_structure(_tiff(tmp_path / "a.tif")) == 3
    assert limits.check_tiff_structure(_tiff(tmp_path / "b.tif", bigtiff=True)) == 3
    with pytest.raises(AFMFileError, match="more than 2 TIFF images"):
        limits.check_tiff_structure(tmp_path / "a.tif", max_pages=2)


def test_tiff_directory_loop_is_refused_before_tifffile_sees_it(tmp_path):
    path = _tiff(tmp_path / "loop.tif")
    first, _, last = _ifd_offsets(path)
    data = bytearray(path.read_bytes())
    (entries,) = struct.unpack_from("<H", data, last)
    struct.pack_into("<I", data, last + 2 + 12 * entries, first)  # last -> first
    path.write_bytes(bytes(data))
    with pytest.raises(AFMFileError, match=f"loops back to byte {first}"):
        read_stack(path, pixel_size_nm=1.0)
    with pytest.raises(AFMFileError, match="loops back"):
        list_channels(path)


def test_overlapping_tiff_directories_are_refused(tmp_path):
    # directory 1 at byte 8 (one entry, bytes 8-26) points at byte 10, inside itself,
    # where its own first entry reads as a directory of one entry
    ifd = struct.pack("<HHHII", 1, 1, 3, 1, 0) + struct.pack("<I", 10)
    path = tmp_path / "overlap.tif"
    path.write_bytes(b"II*\x00" + struct.pack("<I", 8) + ifd + bytes(64))
    with pytest.raises(AFMFileError, match="directories overlap at byte 10"):
        limits.check_tiff_structure(path)


def test_tiff_chain_ends_at_an_offset_beyond_the_file(tmp_path):
    path = _tiff(tmp_path / "end.tif")
    first, _, _ = _ifd_offsets(path)
    data = bytearray(path.read_bytes())
    (entries,) = struct.unpack_from("<H", data, first)
    struct.pack_into("<I", data, first + 2 + 12 * entries, 10**9)
    path.write_bytes(bytes(data))
    assert limits.check_tiff_structure(path) == 1  # as tifffile: the chain ends there
    data[4:8] = struct.pack("<I", 10**9)
    path.write_bytes(bytes(data))
    with pytest.raises(AFMFileError, match="first TIFF directory"):
        limits.check_tiff_structure(path)
    path.write_bytes(b"GIF89a" + bytes(20))
    with pytest.raises(AFMFileError, match="not a readable TIFF"):
        limits.check_tiff_structure(path)
