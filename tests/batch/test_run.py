"""run_batch on a two-process LocalCluster: same outputs as run, failure isolation, resume."""

from __future__ import annotations

import csv
import json
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_calcite_afm.batch import format_progress, run_batch
from napari_calcite_afm.batch.run import _duration
from napari_calcite_afm.errors import CalciteAFMError, Cancelled
from napari_calcite_afm.pipeline import PipelineConfig, run_pipeline

CONFIG = {"figures": "none"}


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


@pytest.fixture(scope="module")
def batch(dask_client, movie_files, corrupt_file, tmp_path_factory):
    """One batch of the four movies with a corrupt file among them."""
    out = tmp_path_factory.mktemp("batch") / "out"
    lines: list[str] = []
    inputs = [*movie_files[:2], corrupt_file, *movie_files[2:]]
    result = run_batch(
        inputs, out, client=dask_client, config=CONFIG, progress=lambda d: lines.append(d)
    )
    return result, out, lines


def test_one_corrupt_movie_fails_alone(batch):
    result, out, _ = batch
    assert result.exit_status == 1
    assert result.failed == ["broken"]
    assert [r["status"] for r in result.records] == ["ok", "ok", "failed", "ok", "ok"]
    rows = _rows(out / "failures.csv")
    assert rows[0] == ["movie", "error"] and [r[0] for r in rows[1:]] == ["broken"]
    assert "broken.tif" in rows[1][1] and "\n" not in rows[1][1]
    names = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert names == [
        "a_movie",
        "all_movies.csv",
        "b_movie",
        "batch_summary.json",
        "c",
        "d",
        "failures.csv",
    ]
    assert not [p for p in out.iterdir() if p.name.endswith((".tmp", ".old"))]


def test_a_movie_folder_equals_a_plain_run(batch, movie_files, tmp_path):
    _, out, _ = batch
    plain = tmp_path / "plain"
    run_pipeline(movie_files[2], config=PipelineConfig.from_dict(CONFIG), out_dir=plain)
    ours, theirs = _rows(out / "c" / "table.csv"), _rows(plain / "table.csv")
    assert ours[0] == theirs[0] and len(ours) == len(theirs)
    unc = ours[0].index("uncertainty")  # from the probabilities: torch's last bits (below)
    for a, b in zip(ours[1:], theirs[1:]):
        assert a[:unc] + a[unc + 1 :] == b[:unc] + b[unc + 1 :]
        assert float(a[unc]) == pytest.approx(float(b[unc]), rel=1e-6)
    for name in ("labels.tif", "cleaned.tif"):
        np.testing.assert_array_equal(
            tifffile.imread(out / "c" / name), tifffile.imread(plain / name)
        )
    # torch's sums depend on its thread count (1 on a worker, all cores here): last bits
    np.testing.assert_allclose(
        tifffile.imread(out / "c" / "probabilities.tif"),
        tifffile.imread(plain / "probabilities.tif"),
        rtol=0,
        atol=1e-5,
    )
    assert _files(out / "c") == _files(plain)
    summary = json.loads((out / "c" / "summary.json").read_text())
    assert summary["files"]["table"] == str(out / "c" / "table.csv")  # not the temporary folder
    assert summary["source"] == str(movie_files[2])


def test_all_movies_csv_stacks_the_tables_with_the_movie_first(batch):
    result, out, _ = batch
    rows = _rows(out / "all_movies.csv")
    expected = []
    for name in ("a_movie", "b_movie", "c", "d"):
        table = _rows(out / name / "table.csv")
        assert rows[0] == ["movie", *table[0]]
        expected += [[name, *r] for r in table[1:]]
    assert rows[1:] == expected
    summary = json.loads((out / "batch_summary.json").read_text())
    assert summary["counts"] == {"ok": 4, "failed": 1, "skipped": 0, "not run": 0}
    assert summary["finished"] is True and summary["config"]["figures"] == "none"
    assert [r["movie"] for r in summary["records"]] == [r["movie"] for r in result.records]


def test_progress_reports_count_failures_and_time_left(batch):
    _, _, reports = batch
    movies = [d for d in reports if d["stage"] == "movie"]
    assert [d["done"] for d in movies] == [1, 2, 3, 4, 5]
    assert {d["total"] for d in movies} == {5}
    assert [d["failed"] for d in movies][-1] == 1
    assert movies[-1]["eta_s"] == 0 and all(d["eta_s"] >= 0 for d in movies)
    assert reports[0]["stage"] == "start" and reports[-1]["stage"] == "end"
    failed = next(i for i, d in enumerate(movies) if d["status"] == "failed")
    line = format_progress(movies[failed])
    assert line.startswith(f"batch {failed + 1}/5  broken FAILED: ")
    assert "ETA" in line


def test_resume_after_an_interrupted_run_gives_the_same_outputs(dask_client, movie_files, tmp_path):
    whole = tmp_path / "whole"
    assert run_batch(movie_files, whole, client=dask_client, config=CONFIG).exit_status == 0
    # the interrupted run: two movies done, one killed while writing, one half-copied folder
    out = tmp_path / "resumed"
    run_batch(movie_files[:2], out, client=dask_client, config=CONFIG)
    stale = out / ".c.abcd1234.tmp"
    stale.mkdir()
    (stale / "table.csv").write_text("frame\n0\n")
    (out / "..d.abcd1234.tmp.efgh5678.tmp").mkdir()  # write_outputs' own, beside ours
    (out / "d").mkdir()
    shutil.copy(whole / "d" / "cleaned.tif", out / "d")
    done_before = (out / "a_movie" / "summary.json").stat().st_mtime_ns

    result = run_batch(movie_files, out, client=dask_client, config=CONFIG, resume=True)
    assert [r["status"] for r in result.records] == ["skipped", "skipped", "ok", "ok"]
    assert (out / "a_movie" / "summary.json").stat().st_mtime_ns == done_before
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    for name in ("a_movie", "b_movie", "c", "d"):
        assert _files(out / name) == _files(whole / name)
        assert (out / name / "table.csv").read_bytes() == (whole / name / "table.csv").read_bytes()
    assert (out / "all_movies.csv").read_bytes() == (whole / "all_movies.csv").read_bytes()
    assert _rows(out / "failures.csv") == [["movie", "error"]]
    # other settings: the complete folders are not complete for them
    again = run_batch(
        movie_files[:1], out, client=dask_client, config={**CONFIG, "lags": [1, 2]}, resume=True
    )
    assert [r["status"] for r in again.records] == ["ok"]


def test_each_worker_loads_the_model_once(dask_client, movie_files, tmp_path):
    from napari_calcite_afm.segmentation import default_model_path

    model = tmp_path / "my model.pt"
    shutil.copy(default_model_path(2), model)
    result = run_batch(
        movie_files, tmp_path / "out", client=dask_client, model=model, config=CONFIG
    )
    assert result.exit_status == 0
    pids = {r["pid"] for r in result.records}
    assert len(pids) <= 2 < len(result.records)  # some worker ran two movies or more
    assert [r["model_loads"] for r in result.records] == [1, 1, 1, 1]
    summary = json.loads((tmp_path / "out" / "c" / "summary.json").read_text())
    assert summary["model"]["source"] == str(model)


def test_a_model_object_is_sent_to_the_workers(dask_client, movie_files, tmp_path):
    from napari_calcite_afm.segmentation import load_default_model

    result = run_batch(
        movie_files[2:3], tmp_path, client=dask_client, model=load_default_model(3), config=CONFIG
    )
    assert result.exit_status == 0
    assert json.loads((tmp_path / "c" / "summary.json").read_text())["n_classes"] == 3


def test_a_stop_request_cancels_and_still_writes_the_reports(dask_client, movie_files, tmp_path):
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled, match="batch stopped after 0 of 4"):
        run_batch(movie_files, tmp_path, client=dask_client, config=CONFIG, stop=stop)
    summary = json.loads((tmp_path / "batch_summary.json").read_text())
    assert summary["finished"] is False
    assert summary["counts"]["not run"] == 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"frame_interval_s": -1.0}, "--frame-interval must be a positive"),
        ({"frame_interval_s": float("nan")}, "--frame-interval must be a positive"),
        ({"workers": 0}, "--workers must be a positive whole number"),
        ({"workers": 2, "scheduler": "tcp://127.0.0.1:1"}, "leave --workers out"),
        ({"model": "no-such-model.pt"}, "model file not found"),
        ({"config": {"lagz": [1]}}, "unknown pipeline setting"),
        ({"scheduler": "tcp://127.0.0.1:1"}, "cannot reach the dask scheduler"),
    ],
)
def test_bad_arguments_raise_before_anything_is_written(movie_files, tmp_path, kwargs, message):
    with pytest.raises(CalciteAFMError, match=message):
        run_batch(movie_files[:1], tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_durations_read_naturally():
    assert [_duration(v) for v in (4.4, 125, 7380, None)] == [
        "4 s",
        "2 min 05 s",
        "2 h 03 min",
        "?",
    ]


def _dies_on_b(movie, out_dir, **kw):
    """run_movie, except that the worker running ``b_movie`` dies (as if killed for memory)."""
    import os

    from napari_calcite_afm.batch import worker
    from napari_calcite_afm.batch.worker import run_movie

    if movie.name == "b_movie":
        os._exit(1)
    rec = run_movie(movie, out_dir, **kw)
    # glibc's defaults (as in run), or dask's low trim threshold undone in the process
    rec["malloc_ok"] = "MALLOC_TRIM_THRESHOLD_" not in os.environ or worker._ONCE["malloc"]
    return rec


def test_a_worker_that_dies_fails_only_its_movie(movie_files, tmp_path, monkeypatch):
    import sys

    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import it
    monkeypatch.setattr("napari_calcite_afm.batch.run.run_movie", _dies_on_b)
    environ = dict(os.environ)
    try:
        result = run_batch(movie_files, tmp_path, workers=2, config=CONFIG)
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert [r["status"] for r in result.records] == ["ok", "failed", "ok", "ok"]
    assert result.records[1]["error"].startswith("the worker running it died or failed:")
    ok = [rec for rec in result.records if rec["status"] == "ok"]
    assert all(rec["cpus"] == rec["threads"] for rec in ok)  # pinned to their own cores
    assert all(rec["malloc_ok"] for rec in ok)
    assert dict(os.environ) == environ  # the nanny's variables do not stay in this process
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["a_movie", "c", "d"]
