"""Property-based fuzzing of every reader with mutated copies of small real files.

Hypothesis draws byte flips, insertions, deletions, truncations and edits of header
numbers (ASCII and binary) of one small real file per format (plus a .npy, an .npz and
an ImageJ TIFF made from one), with a fixed, small number of examples and
``derandomize=True`` (the same examples on every run). Each mutated copy is read with
``read_stack`` and ``list_channels`` in a worker process (address space capped at 3 GB,
30 s per read): every read must end in a sane result (float32 ``(frames, rows, cols)``
with frames of at least 8 x 8 pixels, a finite pixel size within the readers' bounds)
or in a CalciteAFMError naming the file. ``benchmarks/fuzz.py`` (the same machinery)
runs many more and prints the counts by outcome.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from napari_calcite_afm.io import AFMStack

ROOT = Path(__file__).resolve().parents[2]


def _load_fuzz():
    spec = importlib.util.spec_from_file_location("calcite_fuzz", ROOT / "benchmarks/fuzz.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FUZZ = _load_fuzz()

_VALUES = {
    "insert": st.binary(min_size=1, max_size=64),
    "delete": st.integers(1, 64),
}
EDIT = st.sampled_from(FUZZ.KINDS).flatmap(
    lambda kind: st.tuples(
        st.just(kind),
        st.booleans(),  # within the header (first 4 KiB) or anywhere
        st.integers(0, 2**31 - 1),
        _VALUES.get(kind, st.integers(0, 255)),
    )
)
EDITS = st.lists(EDIT, min_size=1, max_size=3)


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """The source file of each format (real files, and the derived .npy/.npz/ImageJ TIFF)."""
    real = FUZZ.find_real_data()
    if real is None:
        pytest.skip("shared/data/afm-real not available")
    return FUZZ.make_sources(real, tmp_path_factory.mktemp("fuzz_sources"))


@pytest.fixture(scope="module")
def worker():
    w = FUZZ.ReadWorker(timeout=30.0, memory_mb=1024)
    yield w
    w.close()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz_copies")


@pytest.mark.parametrize("fmt", sorted(FUZZ.SOURCES))
@settings(
    max_examples=20,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(edits=EDITS)
def test_mutated_files_read_cleanly_or_fail_cleanly(fmt, edits, sources, worker, scratch):
    if fmt not in sources:
        pytest.skip(f"no source file for {fmt}")
    src = sources[fmt]
    path = scratch / f"mutated_{fmt}{src.suffix}"
    path.write_bytes(FUZZ.mutate(src.read_bytes(), edits))
    for op in ("read", "list"):
        answer = worker.run(op, path)
        assert answer["outcome"] in ("good", "error"), f"{fmt} {op} {edits!r}: {answer['detail']}"


# ----------------------------------------------------------------------------- the harness
def test_edits_change_what_they_say():
    data = bytes(range(16)) * 4
    assert FUZZ.apply_edit(data, ("flip", True, 3, 0))[3] == 3 ^ 1
    assert FUZZ.apply_edit(data, ("insert", False, 2, b"xyz"))[2:5] == b"xyz"
    assert len(FUZZ.apply_edit(data, ("truncate", False, 10, 0))) == 10
    assert FUZZ.apply_edit(data, ("int32", True, 0, 7))[:4] == b"\xff\xff\x00\x00"  # 65535
    edited = FUZZ.apply_edit(b"\\Data length: 40960\r\n", ("number", True, 0, 13))
    assert edited == b"\\Data length: 100000000000\r\n"


def test_the_sanity_check_can_fail():
    good = AFMStack(np.zeros((1, 8, 8), np.float32), pixel_size_nm=2.0)
    assert FUZZ.check_result("read", good) is None
    thin = AFMStack(np.zeros((1, 128, 1), np.float32), pixel_size_nm=2.0)
    assert "128 x 1" in FUZZ.check_result("read", thin)
    tiny = AFMStack(np.zeros((1, 8, 8), np.float32), pixel_size_nm=3.9e-294)
    assert "pixel size" in FUZZ.check_result("read", tiny)
    assert FUZZ.check_result("read", AFMStack(np.zeros((1, 8, 8)), 1.0)) is not None  # float64
    assert FUZZ.check_result("list", []) is not None
    assert FUZZ.check_result("list", ["Height", ""]) is not None


def test_the_worker_reports_a_hang_as_a_fault(tmp_path):
    w = FUZZ.ReadWorker(timeout=1.0)
    try:
        answer = w.run("sleep", "60")
        assert answer["outcome"] == "fault" and "timeout" in answer["detail"]
        assert w.proc is None  # the stuck child was killed
        path = tmp_path / "scan.npy"
        np.save(path, np.zeros((8, 8)))
        assert w.run("read", path)["outcome"] == "good"  # a fresh child takes over
    finally:
        w.close()
