"""The corrupted regression inputs of ``shared/data/bad-inputs``: every read ends soon,
in bounded memory, with a sane result or a CalciteAFMError naming the file.

Each file is read (``read_stack``, ``list_channels`` and ``calcite-afm info``) in a
child process whose address space is capped at 3 GB (``RLIMIT_AS``) and which is
killed after 60 s, so that a regression fails here instead of hanging the suite or
swapping the machine. The child reports its peak resident size, which must stay at a
few hundred MB.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# What read_stack must say about each file (a fragment of the problem).
REFUSALS = {
    "R01_read_timeout_ibw_insert39at17.ibw": "section size is negative",
    "R02_read_timeout_tiff_headerflip.tiff": "directory chain loops",
    "R03_read_timeout_spm_bytesperpixel_4294967296.002": "4294967296 bytes per pixel",
    "R04_uncaught_MemoryError_spm_datalength.003": "declares 99999999999 bytes",
    "R05_list_timeout_ibw_noteSize_1GiB.ibw": "header declares 1074004512 bytes",
    "R06_list_memory_ibw_dimLabels0_2GiB.ibw": "header declares 2148553429 bytes",
    "R07_ok_absurd_pixelsize_topostats_insert.topostats": "pixel size in the file",
    "R08_ok_degenerate_1col_ibw_nDim0_1.ibw": "65536 points for dimensions (1, 128, 4)",
    "R09_ok_degenerate_1row_park_height_1.tiff": "frames of 1 x 256 pixels are too small",
    "R10_clean_wrapped_MemoryError_asd.asd": "32 frames of 1073741824 x 200 pixels",
    "R11_list_timeout_ibw_flipheader.ibw": "header declares 688659704 bytes",
    "R12_ok_pixelsize_4e-294_gwy_xreal.gwy": "outside what an AFM records",
}

CHILD = r"""
import contextlib, io, json, resource, sys, warnings
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
warnings.simplefilter("ignore")
from napari_calcite_afm.cli import main
from napari_calcite_afm.errors import CalciteAFMError
from napari_calcite_afm.io import list_channels, read_stack

path, out = sys.argv[1], {}
for op, fn in (("read", read_stack), ("list", list_channels)):
    try:
        r = fn(path)
        if op == "read":
            r = {"shape": list(r.heights.shape), "dtype": str(r.heights.dtype),
                 "px": r.pixel_size_nm, "finite": bool((r.heights == r.heights).any())}
        out[op] = {"ok": r}
    except CalciteAFMError as exc:
        out[op] = {"error": str(exc), "memory": isinstance(exc.__cause__, MemoryError)}
    except BaseException as exc:
        out[op] = {"fault": f"{type(exc).__name__}: {exc}"}
stdout, stderr = io.StringIO(), io.StringIO()
with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
    rc = main(["info", path])
out["info"] = {"rc": rc, "stdout": stdout.getvalue(), "stderr": stderr.getvalue()}
# the peak of this process's own memory map (ru_maxrss would carry the parent's peak
# over the fork)
status = open("/proc/self/status").read()
out["rss_mb"] = int(status.split("VmHWM:")[1].split()[0]) // 1024
print(json.dumps(out))
"""


def _run_child(path) -> dict:
    try:
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{path.name}: reading it ran past 60 s")
    assert proc.returncode == 0, f"{path.name}: the child failed\n{proc.stderr[-2000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_every_reproducer_is_covered(bad_dir):
    names = {p.name for p in bad_dir.iterdir() if p.name != "README.md"}
    assert names == set(REFUSALS)


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_bad_input_ends_cleanly_in_bounded_memory(bad_dir, name):
    path = bad_dir / name
    out = _run_child(path)
    read = out["read"]
    assert "error" in read, f"{name}: read_stack accepted it: {read}"
    assert read["error"].startswith(f"{path}: ")
    assert REFUSALS[name] in read["error"]
    assert not read["memory"], "the reader allocated before checking the declared sizes"
    listed = out["list"]
    assert "fault" not in listed, listed
    if "error" in listed:
        assert listed["error"].startswith(f"{path}: ") and not listed["memory"]
    else:  # listing the channels of a file whose structure is sound (R12's xreal)
        assert listed["ok"] and all(isinstance(c, str) and c for c in listed["ok"])
    info = out["info"]
    assert info["rc"] == 2 and info["stdout"] == ""
    assert info["stderr"].count("\n") == 1 and str(path) in info["stderr"]
    assert "Traceback" not in info["stderr"]
    assert out["rss_mb"] < 700, f"{name}: peak resident size {out['rss_mb']} MB"
