"""The task run per movie: atomic folders, one-line errors, model cache, thread settings."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from napari_calcite_afm.batch.movies import Movie
from napari_calcite_afm.batch.worker import (
    THREAD_VARIABLES,
    _threads_here,
    cached_model,
    one_line,
    run_movie,
)
from napari_calcite_afm.errors import AFMFileError


@pytest.fixture
def keep_threads():
    """Restore torch's threads and the thread variables that run_movie sets."""
    import torch

    threads, env = torch.get_num_threads(), {k: os.environ.get(k) for k in THREAD_VARIABLES}
    yield
    torch.set_num_threads(threads)
    for k, v in env.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_errors_become_one_line():
    assert one_line(AFMFileError("a.tif", "bad\nheader")) == "a.tif: bad header"
    assert one_line(MemoryError()) == "MemoryError"
    assert one_line(RuntimeError("x\n\ty")) == "RuntimeError: x y"


def test_a_movie_runs_into_its_folder_and_a_failure_leaves_nothing(
    movie_files, corrupt_file, tmp_path, keep_threads
):
    rec = run_movie(
        Movie("m", str(movie_files[0])), str(tmp_path), config={"figures": "none"}, threads=1
    )
    assert rec["status"] == "ok" and rec["error"] == "" and rec["frames"] == 3
    assert rec["threads"] == 1
    summary = json.loads((tmp_path / "m" / "summary.json").read_text())
    assert set(summary["files"]) == {
        "cleaned", "labels", "probabilities", "table", "summary",
        "drift", "rates", "rate_table", "pits", "tracks",
    }  # fmt: skip
    assert all(p.startswith(str(tmp_path / "m") + os.sep) for p in summary["files"].values())
    bad = run_movie(Movie("bad", str(corrupt_file)), str(tmp_path), threads=1)
    assert bad["status"] == "failed" and bad["error"].startswith(str(corrupt_file))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no folder, no temporary one


def test_a_failed_rerun_keeps_the_complete_folder(
    movie_files, corrupt_file, tmp_path, keep_threads
):
    good = Movie("m", str(movie_files[0]))
    assert run_movie(good, str(tmp_path), config={"figures": "none"}, threads=1)["status"] == "ok"
    before = {p.name: p.read_bytes() for p in (tmp_path / "m").iterdir()}
    rec = run_movie(Movie("m", str(corrupt_file)), str(tmp_path), threads=1)
    assert rec["status"] == "failed" and rec["error"].startswith(str(corrupt_file))
    assert {p.name: p.read_bytes() for p in (tmp_path / "m").iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_the_model_cache_reads_a_changed_file_again(tmp_path):
    from napari_calcite_afm.segmentation import default_model_path

    path = tmp_path / "model.pt"
    shutil.copy(default_model_path(2), path)
    first, loads = cached_model(str(path))
    again, loads_again = cached_model(path)
    assert again is first and (loads, loads_again) == (1, 1)
    shutil.copy(default_model_path(3), path)
    os.utime(path, ns=(1, 1))  # a different modification time
    third, loads_third = cached_model(str(path))
    assert third is not first and third.n_classes == 3 and loads_third == 1


def test_a_hosts_cores_are_shared_among_its_task_slots():
    from napari_calcite_afm._util import available_cpus

    assert _threads_here(3, "h") == 3
    assert _threads_here({"h": 1}, "h") == available_cpus()
    assert _threads_here({"h": 10_000}, "h") == 1
    assert _threads_here({"other": 1}, "h") == available_cpus()


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs Linux affinity")
def test_a_local_worker_is_pinned_to_its_share_of_the_cores():
    code = (
        "import os; from napari_calcite_afm.batch import worker as w; "
        "cpus = sorted(os.sched_getaffinity(0)); n = w.configure_threads(1, pin_index=1); "
        "print(n, sorted(os.sched_getaffinity(0)) == [cpus[1 % len(cpus)]], "
        "os.environ['OMP_NUM_THREADS'], w._ONCE['malloc'])"
    )
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536"}  # as dask's nanny sets it
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env=env,
    ).stdout.split()
    assert out == ["1", "True", "1", "True"]  # pinned, and glibc's thresholds given back
