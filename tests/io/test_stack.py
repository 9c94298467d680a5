"""Reading stacks (napari_calcite_afm.io.stack): every real file, folders, lists, validation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from napari_calcite_afm.io import AFMFileError, AFMStack, is_supported, read_stack, write_tiff
from napari_calcite_afm.io.nanosurf_ntmdt import converter_available

GWYDDION = converter_available()  # the optional reader of .nid and .mdt

# Every file in shared/data/afm-real: expected format, shape (frames, rows, cols),
# pixel size in nm (SOURCES.md; .ibw: the wave scaling, ScanSize / (points - 1)), or
# None where the file must be refused (.nid and .mdt without the optional extra).
EXPECTED = {
    "afmreader_sample_0.h5-jpk": ("h5-jpk", (4, 128, 128), 1.171875),
    "afmreader_sample_0.jpk": ("jpk", (1, 256, 256), 1.2770176335964876),
    "afmreader_sample_0.stp": ("stp", (1, 512, 512), 0.9765625),
    "afmreader_sample_0.top": ("top", (1, 512, 512), 0.9765625),
    "afmreader_sample_0_1.topostats": ("topostats", (1, 64, 64), 1.97601171875),
    "nanoafmr_AR_20211011.ibw": ("ibw", (1, 128, 128), 4000 / 127),
    "nanoafmr_NanoSurf_20160301.nid": ("nid", (1, 128, 128), 78.125) if GWYDDION else None,
    "nanoafmr_Park_20210916_034.tiff": ("park-tiff", (1, 256, 256), 2500 / 256),
    "nanoafmr_Veeco_20160622.003": ("spm", (1, 512, 512), 3.455234375),
    "nanoafmr_kpg20080408.007": ("spm", (1, 256, 256), 3.90625),
    "playnano_asd_sample_0.asd": ("asd", (32, 200, 200), 0.5),
    "scifi_GwiddionReader_chip_legacyGWYO.gwy": None,
    "scifi_IgorIBWReader_ImageStack_BTFO_DSO.ibw": ("ibw", (1, 256, 256), 2000 / 255),
    "scifi_IgorIBWReader_P0089OP0027.ibw": ("ibw", (1, 256, 256), 2000 / 255),
    "scifi_PTO_110_Virgin0001.gwy": ("gwy", (1, 256, 256), 10040 / 256),
    "scifi_test_mdt.mdt": ("mdt", (1, 256, 256), 11.767974683) if GWYDDION else None,
    "synthetic_topostats_orientation_landscape.gwy": ("gwy", (1, 170, 220), 1000 / 220),
    "synthetic_topostats_orientation_square.gwy": ("gwy", (1, 256, 256), 3.90625),
    "tono_LB_media0002.ibw": ("ibw", (1, 256, 256), 75000 / 255),
    "tono_float32_height_m.tiff": ("tiff", (1, 512, 1024), 1.0),
    "tono_whiskers.ibw": ("ibw", (1, 512, 256), 30000 / 255),
    "topostats_old_bruker.002": ("spm", (1, 256, 256), 58.59375),
    "topostats_old_bruker.004": ("spm", (1, 256, 256), 58.59375),
}


# ============================================================================= real files
def test_every_real_file_is_read_or_refused_cleanly(real_dir, read_quiet):
    files = sorted(p for p in real_dir.iterdir() if p.is_file() and p.suffix != ".md")
    assert files, "no data files"
    for path in files:
        expected = EXPECTED.get(path.name)
        if expected is None:
            with pytest.raises(AFMFileError) as info:
                read_quiet(path)
            assert path.name in str(info.value)
            if path.suffix in (".nid", ".mdt"):  # without the optional extra
                assert "napari-calcite-afm[gwyddion]" in info.value.problem
            elif path.name in EXPECTED:  # known refusals: legacy GWYO
                assert "not supported" in info.value.problem
            continue
        fmt, shape, px = expected
        stack = read_quiet(path)
        assert stack.format == fmt, path.name
        assert stack.heights.dtype == np.float32
        assert stack.heights.shape == shape, path.name
        assert stack.pixel_size_nm == pytest.approx(px, rel=2e-4), path.name
        assert np.isfinite(stack.heights).any()
        assert stack.source == str(path)
        json.dumps(stack.metadata)  # JSON-friendly


TRUNCATABLE = [
    "nanoafmr_Veeco_20160622.003",
    "nanoafmr_kpg20080408.007",
    "nanoafmr_AR_20211011.ibw",
    "tono_whiskers.ibw",
    "scifi_PTO_110_Virgin0001.gwy",
    "afmreader_sample_0.jpk",
    "afmreader_sample_0.h5-jpk",
    "playnano_asd_sample_0.asd",
    "afmreader_sample_0.stp",
    "afmreader_sample_0.top",
    "afmreader_sample_0_1.topostats",
    "nanoafmr_Park_20210916_034.tiff",
    "tono_float32_height_m.tiff",
]
# An Igor file may end with bytes after the sections its header declares (the AR file
# declares 285315 of its 351163 bytes); cutting only those leaves the image whole.
CUTS = [
    (name, fraction)
    for name in TRUNCATABLE
    for fraction in (0.01, 0.5, 0.75, 0.99)
    if not (name.endswith(".ibw") and fraction > 0.8)
]


@pytest.mark.parametrize(("name", "fraction"), CUTS)
def test_truncated_real_files(tmp_path, real, read_quiet, name, fraction):
    data = real(name).read_bytes()
    cut = tmp_path / name
    cut.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(AFMFileError) as info:
        read_quiet(cut)
    assert info.value.path == cut and name in str(info.value)
    assert len(str(info.value)) < 600  # no raw bytes dumped into the message


def test_wrong_content_for_extension(tmp_path, real):
    fake = tmp_path / "fake.003"
    fake.write_bytes(b"hello, not a NanoScope file" * 10)
    with pytest.raises(AFMFileError, match="not a Bruker NanoScope file"):
        read_stack(fake)
    gwy = tmp_path / "fake.gwy"
    gwy.write_bytes(b"XXXX" + bytes(100))
    with pytest.raises(AFMFileError, match="not a Gwyddion file"):
        read_stack(gwy)
    tif = tmp_path / "fake.tif"
    shutil.copy(real("afmreader_sample_0.stp"), tif)
    with pytest.raises(AFMFileError, match="not a readable TIFF"):
        read_stack(tif)


# ============================================================================= stacks
def test_folder_of_real_frames_and_list_input(tmp_path, real):
    a, b = real("topostats_old_bruker.002"), real("topostats_old_bruker.004")
    folder = tmp_path / "movie"
    folder.mkdir()
    shutil.copy(a, folder / "grating.002")
    shutil.copy(b, folder / "grating.004")
    (folder / "notes.txt").write_text("not a frame")
    stack = read_stack(folder)
    assert stack.n_frames == 2 and stack.format == "spm"
    np.testing.assert_array_equal(stack.heights[0], read_stack(a).heights[0])
    np.testing.assert_array_equal(stack.heights[1], read_stack(b).heights[0])
    assert stack.source == str(folder)
    assert is_supported(folder)

    reversed_ = read_stack([b, a])
    np.testing.assert_array_equal(reversed_.heights[0], stack.heights[1])
    np.testing.assert_array_equal(reversed_.heights[1], stack.heights[0])
    assert reversed_.metadata["files"] == [str(b), str(a)]


def test_list_with_different_frame_shapes_names_the_file(real):
    small, big = real("nanoafmr_AR_20211011.ibw"), real("nanoafmr_kpg20080408.007")
    with pytest.raises(AFMFileError) as info:
        read_stack([small, big])
    assert info.value.path == big
    assert "(256, 256)" in info.value.problem and "(128, 128)" in info.value.problem


def test_folder_natural_order(tmp_path):
    for i in (10, 2, 1):
        write_tiff(tmp_path / f"frame_{i}.tif", np.full((8, 9), float(i)), 2.0)
    (tmp_path / ".hidden.tif").write_bytes(b"junk")
    stack = read_stack(tmp_path)
    assert stack.heights.shape == (3, 8, 9)
    np.testing.assert_array_equal(stack.heights[:, 0, 0], [1.0, 2.0, 10.0])
    assert stack.pixel_size_nm == 2.0
    assert [Path(f).name for f in stack.metadata["files"]] == [
        "frame_1.tif",
        "frame_2.tif",
        "frame_10.tif",
    ]


def test_folder_with_mismatched_shapes(tmp_path):
    write_tiff(tmp_path / "a.tif", np.zeros((8, 9)), 1.0)
    write_tiff(tmp_path / "b.tif", np.zeros((10, 9)), 1.0)
    with pytest.raises(AFMFileError) as info:
        read_stack(tmp_path)
    assert info.value.path == tmp_path / "b.tif"
    assert "(10, 9)" in info.value.problem and "(8, 9)" in info.value.problem


def test_folder_with_mismatched_pixel_sizes(tmp_path):
    write_tiff(tmp_path / "a.tif", np.zeros((8, 9)), 1.0)
    write_tiff(tmp_path / "b.tif", np.zeros((8, 9)), 2.0)
    with pytest.raises(AFMFileError, match="pixel size"):
        read_stack(tmp_path)


def test_empty_folder_and_empty_list(tmp_path):
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(AFMFileError, match="no supported AFM file"):
        read_stack(tmp_path)
    assert not is_supported(tmp_path)
    with pytest.raises(AFMFileError, match="empty"):
        read_stack([])


# ============================================================================= validation
@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.zeros((0, 5)), "empty"),
        (np.zeros((2, 0, 5)), "empty"),
        (np.array([["a", "b"], ["c", "d"]]), "text values"),
        (np.ones((3, 3), dtype=complex), "complex"),
        (np.ones((3, 3), dtype=bool), "boolean"),
        (np.zeros(5), "2-D image"),
    ],
)
def test_bad_arrays(tmp_path, array, match):
    path = tmp_path / "bad.npy"
    np.save(path, array)
    with pytest.raises(AFMFileError, match=match) as info:
        read_stack(path)
    assert info.value.path == path


def test_all_nan_frame_is_refused_partial_nan_kept(tmp_path):
    movie = np.ones((3, 8, 9), np.float32)
    movie[0, 1, 1] = np.nan
    movie[1, 2, :] = np.inf
    np.save(tmp_path / "ok.npy", movie)
    stack = read_stack(tmp_path / "ok.npy")
    assert np.isnan(stack.heights[0, 1, 1]) and np.isnan(stack.heights[1, 2]).all()
    assert np.isfinite(stack.heights).sum() == movie.size - 10  # 1 NaN + a row of 9 inf
    movie[2] = np.nan
    np.save(tmp_path / "bad.npy", movie)
    with pytest.raises(AFMFileError, match="frame 2 holds no recorded pixel"):
        read_stack(tmp_path / "bad.npy")


def test_afmstack_properties():
    s = AFMStack(heights=np.zeros((4, 3, 2), np.float32), pixel_size_nm=1.0)
    assert s.n_frames == 4 and s.shape == (3, 2)
    assert s.frame_interval_s is None and s.channel == "height" and s.format == "unknown"
    s.frame_times_s = np.array([0.0, 2.0, 4.0, 7.0])
    assert s.frame_interval_s == 2.0


# ============================================================================= bounds
def test_frames_smaller_than_8_pixels_are_refused(tmp_path):
    np.save(tmp_path / "thin.npy", np.zeros((3, 128, 1)))
    with pytest.raises(AFMFileError, match="frames of 128 x 1 pixels are too small"):
        read_stack(tmp_path / "thin.npy")
    np.save(tmp_path / "ok.npy", np.zeros((8, 8)))
    assert read_stack(tmp_path / "ok.npy").shape == (8, 8)


def test_heights_of_known_unit_are_bounded_unknown_unit_kept(tmp_path):
    np.save(tmp_path / "h.npy", np.full((8, 8), 0.02))
    with pytest.raises(AFMFileError, match="heights reach 2e\\+07 nm"):
        read_stack(tmp_path / "h.npy", z_unit="m")  # 2 cm
    assert read_stack(tmp_path / "h.npy", z_unit="um").heights[0, 0, 0] == pytest.approx(20.0)
    np.save(tmp_path / "counts.npy", np.full((8, 8), 2.0e9))  # no unit: values as stored
    assert read_stack(tmp_path / "counts.npy").heights[0, 0, 0] == 2.0e9
    big = write_tiff(tmp_path / "big.tif", np.full((8, 8), 3e7), 1.0)  # nm in the file
    with pytest.raises(AFMFileError, match="beyond anything an AFM measures"):
        read_stack(big)


def test_pixel_size_from_the_file_is_bounded_from_the_argument_only_positive(tmp_path):
    np.savez(tmp_path / "a.npz", heights=np.zeros((8, 8)), pixel_size_nm=2e6)
    with pytest.raises(AFMFileError, match="2e\\+06 nm, is outside"):
        read_stack(tmp_path / "a.npz")
    np.save(tmp_path / "b.npy", np.zeros((8, 8)))
    assert read_stack(tmp_path / "b.npy", pixel_size_nm=2e6).pixel_size_nm == 2e6
    with pytest.raises(AFMFileError, match="not a positive number"):
        read_stack(tmp_path / "b.npy", pixel_size_nm=-1.0)
