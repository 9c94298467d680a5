"""NanoSurf .nid and NT-MDT .mdt files (napari_calcite_afm.io.nanosurf_ntmdt), read through
Gwyddion's converter (the optional gwyddion extra), checked against the files' own headers."""

from __future__ import annotations

import re
import struct
import sys

import numpy as np
import pytest

from napari_calcite_afm.cli import main
from napari_calcite_afm.io import AFMFileError, list_channels, read_stack
from napari_calcite_afm.io import nanosurf_ntmdt as nm

NID = "nanoafmr_NanoSurf_20160301.nid"
MDT = "scifi_test_mdt.mdt"


def _nid_header(path) -> tuple[dict[str, dict[str, str]], int]:
    """The sections of a NanoSurf header (``{section: {key: value}}``) and the offset
    of the binary data (after ``#!``)."""
    raw = path.read_bytes()
    end = raw.index(b"#!")
    sections: dict[str, dict[str, str]] = {}
    current = sections.setdefault("", {})
    for line in raw[:end].decode("latin-1").splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
        elif "=" in line:
            key, value = line.split("=", 1)
            current[key.strip()] = value.strip()
    return sections, end + 2


# ----------------------------------------------------------------------------- NanoSurf
def test_nid_channels_heights_and_pixel_size_match_the_header(real, gwyddion):
    path = real(NID)
    assert list_channels(path) == [
        "Z-Axis forward",
        "Amplitude forward",
        "Z-Axis backward",
        "Amplitude backward",
    ]
    stack = read_stack(path)
    assert stack.format == "nid" and stack.channel == "Z-Axis forward"  # the topography
    assert stack.heights.shape == (1, 128, 128) and stack.heights.dtype == np.float32
    assert stack.metadata["z_unit"] == "nm" and stack.frame_times_s is None
    header, data_at = _nid_header(path)
    z = header["DataSet-0:1"]
    assert [z[k] for k in ("Dim2Name", "Dim2Unit", "SaveBits", "Points")] == [
        "Z-Axis",
        "m",
        "16",
        "128",
    ]
    # pixel size: Dim0Range / Points (10 um over 128 points)
    assert stack.pixel_size_nm == pytest.approx(float(z["Dim0Range"]) * 1e9 / 128)
    assert stack.pixel_size_nm == pytest.approx(78.125)
    assert stack.metadata["pixel_size_y_nm"] == pytest.approx(float(z["Dim1Range"]) * 1e9 / 128)
    # heights: the 16-bit values x Dim2Range / 2^16 around Dim2Min + Dim2Range / 2 (= 0),
    # rows in Gwyddion's order (the file says "Scan direction=Up": bottom line first)
    assert header["DataSet\\DataSetInfos\\Scan"]["Scan direction"] == "Up"
    counts = np.frombuffer(path.read_bytes(), "<i2", count=128 * 128, offset=data_at)
    nm_per_count = float(z["Dim2Range"]) * 1e9 / 2**16
    offset = (float(z["Dim2Min"]) + float(z["Dim2Range"]) / 2) * 1e9
    expected = counts.reshape(128, 128)[::-1] * nm_per_count + offset
    np.testing.assert_allclose(stack.heights[0], expected, rtol=1e-6, atol=1e-4)
    lo, hi = np.nanmin(stack.heights), np.nanmax(stack.heights)
    assert -300 < lo < hi < -80 and hi - lo > 150  # nm: a 200 nm film, sane
    assert stack.metadata["vendor"]["Op. mode"] == "Dynamic Force"
    assert stack.metadata["converter_module"] == "ezdfile"


def test_nid_other_channels_keep_their_units(real, gwyddion):
    amp = read_stack(real(NID), "Amplitude backward")
    assert amp.metadata["z_unit"] == "V"
    assert 0.0 < np.nanmin(amp.heights) < np.nanmax(amp.heights) < 2.5  # volts, not nm
    with pytest.raises(AFMFileError, match="Z-Axis forward, Amplitude forward"):
        read_stack(real(NID), "Phase")


# ----------------------------------------------------------------------------- NT-MDT
def _mda_calibration(path) -> list[tuple[str, float, int]]:
    """Unit, step and points of each dimension of the MDA frame of the test file (its
    second frame), read from the file's calibration records."""
    raw = path.read_bytes()
    frame = 33 + struct.unpack_from("<I", raw, 33)[0]  # frame 0 is text
    assert struct.unpack_from("<H", raw, frame + 4)[0] == 106  # MDA
    p = frame + 22
    head = struct.unpack_from("<I", raw, p)[0]
    sizes = struct.unpack_from("<5I", raw, p + 44)
    q = p + head + sum(sizes) + 4
    struct_len = struct.unpack_from("<I", raw, q)[0]
    assert struct.unpack_from("<II", raw, q + 16) == (2, 1)  # 2 dimensions, 1 measurand
    c, dims = q + 4 + struct_len, []
    for _ in range(2):
        total, head_len, name_len, comm_len, unit_len = struct.unpack_from("<5I", raw, c)
        scale = struct.unpack_from("<d", raw, c + 52)[0]
        lo, hi = struct.unpack_from("<QQ", raw, c + 60)
        u = c + 8 + head_len + name_len + comm_len
        dims.append((raw[u : u + unit_len].decode(), scale, hi - lo + 1))
        c += total
    return dims


def test_mdt_channel_and_pixel_size_match_the_calibration(real, gwyddion):
    path = real(MDT)
    assert list_channels(path) == ["1F:Iprobe (2)"]  # frame 2: the one image (an MDA frame)
    stack = read_stack(path)
    assert stack.format == "mdt" and stack.heights.shape == (1, 256, 256)
    # a tip current (no height image in this file): in amperes, not nm
    assert stack.metadata["z_unit"] == "A"
    assert 0 < np.nanmax(stack.heights) < 1e-6
    (ux, sx, nx), (uy, sy, ny) = _mda_calibration(path)
    assert (ux, uy, nx, ny) == ("um", "um", 256, 256)
    # the step per point of the calibration, 11.768 nm; Gwyddion: 255 steps / 256
    assert stack.pixel_size_nm == pytest.approx(sx * 1e3, rel=1e-9)
    assert stack.metadata["pixel_size_y_nm"] == pytest.approx(sy * 1e3, rel=1e-9)
    assert stack.metadata["pixel_size_gwyddion_nm"] == pytest.approx(sx * 1e3 * 255 / 256)
    assert stack.metadata["xreal_m"] == pytest.approx(sx * 1e-6 * 255)


def test_run_on_the_mdt_tip_current_warns_that_it_is_not_heights(real, gwyddion):
    from napari_calcite_afm.pipeline import PipelineConfig, run_pipeline

    cfg = PipelineConfig(lags=(1,), figures="none", em=False, kinetics=False)
    with pytest.warns(UserWarning, match="holds values in A, not heights in nm") as record:
        res = run_pipeline(real(MDT), config=cfg)
    text = [str(w.message) for w in record if "not heights" in str(w.message)]
    assert len(text) == 1 and "'1F:Iprobe (2)' of 'scifi_test_mdt.mdt'" in text[0]
    assert res.summary["channel"] == "1F:Iprobe (2)" and text[0] in res.summary["warnings"]


def test_mdt_keeps_gwyddions_pixel_size_where_the_frame_cannot_be_read(
    real, gwyddion, monkeypatch, tmp_path
):
    assert nm._mdt_mda_frames(real(MDT))[2][1] == [(pytest.approx(11.768, abs=1e-3), 256)] * 2
    headless = tmp_path / "scan.mdt"
    headless.write_bytes(b"\x00" + real(MDT).read_bytes()[1:])  # no NT-MDT magic
    assert nm._mdt_mda_frames(headless) == {}
    monkeypatch.setattr(nm, "_mdt_mda_frames", lambda path: {})
    stack = read_stack(real(MDT))
    assert stack.pixel_size_nm == pytest.approx(3.0008335441860447e-06 * 1e9 / 256)
    assert "pixel_size_gwyddion_nm" not in stack.metadata


# ----------------------------------------------------------------------------- both
@pytest.mark.parametrize("name", [NID, MDT])
def test_missing_extra_says_how_to_install_it(real, monkeypatch, name):
    monkeypatch.setitem(sys.modules, "gwyddionpy", None)  # import gwyddionpy fails
    nm._CACHE.clear()
    for call in (read_stack, list_channels):
        with pytest.raises(AFMFileError) as info:
            call(real(name))
        problem = info.value.problem
        assert str(real(name)) in str(info.value)
        assert 'pip install "napari-calcite-afm[gwyddion]"' in problem
        assert "gwyddionpy" in problem and "GPL-2" in problem and "optional" in problem
        assert "save it as .gwy" in problem
    assert not nm.converter_available()


def test_missing_extra_in_the_cli_is_one_line_and_exit_2(real, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gwyddionpy", None)
    nm._CACHE.clear()
    assert main(["info", str(real(NID))]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "napari-calcite-afm[gwyddion]" in err and NID in err


def test_converter_refusal_names_the_file_and_the_reason(real, gwyddion, tmp_path):
    raw = real(NID).read_bytes()
    path = tmp_path / "cut.nid"
    path.write_bytes(raw[: len(raw) // 2])  # the data of the last channels is missing
    with pytest.raises(AFMFileError) as info:
        read_stack(path)
    assert str(path) in str(info.value)
    assert re.search(r"converter cannot read this NanoSurf \.nid file \(.+\)", str(info.value))
    assert "\n" not in str(info.value)


def test_converter_reason_is_one_line_without_the_file_name():
    text = (
        "(gwyconvert.real:1): Module-WARNING **: 04:50:30.495: Truncated file, Gr1-Ch2 "
        "doesn't fit\ngwyconvert: cannot load '/tmp/x.nid': unknown error\nPossible "
        "reasons: the format is not one Gwyddion can read."
    )
    assert nm._converter_reason(text) == "Truncated file, Gr1-Ch2 doesn't fit"
    assert nm._converter_reason("gwyconvert: cannot load 'a b.mdt': Too short.") == "Too short."
    assert nm._converter_reason("") == "no reason given"


def test_one_conversion_serves_listing_and_reading(real, gwyddion, monkeypatch, tmp_path):
    path = tmp_path / "scan.nid"
    path.write_bytes(real(NID).read_bytes())
    nm._CACHE.clear()
    import gwyddionpy

    calls = []
    load = gwyddionpy.load
    monkeypatch.setattr(gwyddionpy, "load", lambda *a, **k: calls.append(a) or load(*a, **k))
    list_channels(path)
    read_stack(path)
    read_stack(path, "Amplitude forward")
    assert len(calls) == 1
    path.write_bytes(real(NID).read_bytes()[:-2])  # another content: converted again
    with pytest.raises(AFMFileError):
        read_stack(path)
    assert len(calls) == 2
