"""Many movies through the one-click pipeline on dask.distributed: :func:`run_batch`.

One task per movie (:func:`napari_calcite_afm.batch.worker.run_movie`) is submitted to a
local cluster or an existing scheduler (:func:`napari_calcite_afm.batch.cluster.open_cluster`);
results are taken as they complete. A failing movie is recorded and the others go on.
The output folder holds ``DIR/<movie>/`` per movie (as ``calcite-afm run`` writes it)
and the reports of :mod:`napari_calcite_afm.batch.report`. Only one batch may write into
a folder at a time (a lock file, ``DIR/.batch.lock``, enforces it).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._util import Cancelled, ProgressFn, StopFlag, json_safe, stop_requested
from ..errors import AFMFileError, CalciteAFMError
from .cluster import ClusterInfo, check_cluster_arguments, open_cluster, probe_scheduler
from .movies import Movie, check_out_dir, collect_movies, is_complete
from .report import SUMMARY, write_all_movies, write_failures
from .worker import run_movie

__all__ = ["BatchResult", "format_progress", "run_batch"]


@dataclass
class BatchResult:
    """What a batch did.

    Attributes
    ----------
    out_dir : pathlib.Path
        The output folder.
    records : list of dict
        One per movie, in input order: ``movie, source, status`` (``ok``, ``failed``,
        ``skipped`` (complete already, ``--resume``) or ``not run`` (stopped)),
        ``error`` (one line), ``seconds`` and where it ran.
    wall_s : float
        Wall time of the whole batch, s.
    cluster : dict
        ``scheduler, workers, threads, dashboard, local``.
    files : dict
        ``{name: path}`` of the reports written.
    """

    out_dir: Path
    records: list[dict]
    wall_s: float = 0.0
    cluster: dict = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def movies_with(self, status: str) -> list[str]:
        """Names of the movies whose status is ``status``."""
        return [r["movie"] for r in self.records if r["status"] == status]

    @property
    def failed(self) -> list[str]:
        """Names of the movies that failed."""
        return self.movies_with("failed")

    @property
    def exit_status(self) -> int:
        """0 when every movie is complete, 1 when some failed (or were not run)."""
        return 0 if all(r["status"] in ("ok", "skipped") for r in self.records) else 1


def _duration(seconds: float | None) -> str:
    """``45 s``, ``3 min 05 s``, ``2 h 03 min``."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def format_progress(info: dict) -> str:
    """The line ``calcite-afm batch`` prints for a progress report of :func:`run_batch`.

    Examples
    --------
    >>> print(format_progress({"stage": "movie", "movie": "m1", "status": "ok",
    ...     "seconds": 12.3, "done": 3, "total": 8, "failed": 1, "elapsed_s": 40,
    ...     "eta_s": 70}))
    batch 3/8  m1 ok 12.3 s  failed 1  elapsed 40 s  ETA 1 min 10 s
    """
    stage = info.get("stage")
    if stage == "start" and not info["total"]:
        return f"batch: {info['movies']} movies, all complete already: nothing to run"
    if stage == "start":
        where = "a local cluster" if info.get("local") else info.get("scheduler")
        line = (
            f"batch: {info['movies']} movies, {info['skipped']} complete already, "
            f"{info['total']} to run on {info['workers']} workers ({where})"
        )
        if info.get("threads_per_worker"):
            n = info["threads_per_worker"]
            line += f", {n} thread{'s' if n > 1 else ''} each"
        return line + (f"; dashboard {info['dashboard']}" if info.get("dashboard") else "")
    if stage == "end":
        return (
            f"batch: {info['ok']} ok, {info['failed']} failed, {info['skipped']} skipped"
            f", {info['not_run']} not run in {_duration(info['elapsed_s'])}"
        )
    what = f"ok {info['seconds']:.1f} s" if info["status"] == "ok" else f"FAILED: {info['error']}"
    return (
        f"batch {info['done']}/{info['total']}  {info['movie']} {what}  "
        f"failed {info['failed']}  elapsed {_duration(info['elapsed_s'])}  "
        f"ETA {_duration(info['eta_s'])}"
    )


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """Hold ``out/.batch.lock`` (an advisory lock) while the batch writes into ``out``."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        fh = open(out / ".batch.lock", "a+")  # held for the whole batch
    except OSError as exc:
        raise AFMFileError(out, f"cannot write the output folder: {exc}") from None
    try:
        try:
            import fcntl

            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # pragma: no cover - not POSIX
            pass
        except OSError:
            raise AFMFileError(out, "another batch is writing into this folder") from None
        yield
    finally:
        fh.close()


#: The temporary folders of atomic_directory (``.<movie>.xxxxxxxx.tmp`` or ``.old``), also
#: one made beside such a folder (``..<movie>.xxxxxxxx.tmp.yyyyyyyy.tmp``).
_LEFTOVER = re.compile(r"^\.+(?P<name>[^.].*?)(\.[a-z0-9_]{8}\.(tmp|old))+$")


def _remove_leftovers(out: Path, names: set[str]) -> list[str]:
    """Remove the temporary folders that an interrupted run of these movies left."""
    removed = []
    for entry in out.iterdir():
        m = _LEFTOVER.match(entry.name)
        if m and m.group("name") in names and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
    return removed


def _model_reference(model) -> tuple[Any, str]:
    """What the workers get for ``model`` and the model's source (validated here)."""
    from ..pipeline import resolve_model
    from ..segmentation import SegmentationModel

    seg = resolve_model(model)  # a bad model file is a bad argument: raise before starting
    source = seg.source or "in memory"
    if isinstance(model, SegmentationModel):
        return seg, source
    if model is None or str(model) in ("default", "default2", "default3"):
        return str(model or "default"), source
    return os.path.abspath(model), source


def _check_interval(frame_interval_s) -> float | None:
    if frame_interval_s is None:
        return None
    try:
        value = float(frame_interval_s)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise CalciteAFMError(
            f"--frame-interval must be a positive number of seconds, got {frame_interval_s!r}"
        )
    return value


class _Tracker:
    """Counts, elapsed time and the estimate of the time left, for the progress lines."""

    def __init__(self, total: int, skipped: int, progress: ProgressFn | None, dashboard):
        self.t0 = time.perf_counter()
        self.total, self.skipped, self.done, self.failed = total, skipped, 0, 0
        self.progress, self.dashboard = progress, dashboard

    def finished(self, rec: dict) -> None:
        self.done += 1
        self.failed += rec["status"] != "ok"
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / self.done * (self.total - self.done)
        if self.progress is not None:
            self.progress(
                {
                    "stage": "movie",
                    **{k: rec.get(k) for k in ("movie", "status", "error", "seconds")},
                    "done": self.done,
                    "total": self.total,
                    "failed": self.failed,
                    "skipped": self.skipped,
                    "elapsed_s": elapsed,
                    "eta_s": eta,
                    "dashboard": self.dashboard,
                }
            )


@dataclass
class _Job:
    """What every step of a batch needs."""

    out: Path
    movies: list[Movie]
    task_kw: dict
    records: dict[str, dict]
    progress: ProgressFn | None
    stop: StopFlag | None


class _Window:
    """Tasks on the cluster, never more than its task slots; the rest wait here."""

    def __init__(self, info: ClusterInfo, job: _Job, todo: list[Movie]) -> None:
        from distributed import as_completed

        self.info, self.job, self.queue = info, job, list(reversed(todo))
        self.kw = dict(job.task_kw)
        if not isinstance(self.kw["model"], str):  # a model object: sent to each worker once
            self.kw["model"] = info.client.scatter(self.kw["model"], broadcast=True)
        self.futures: dict = {}
        self.pending = as_completed([], loop=info.client.loop)
        self.slots, self.checked = 1, -math.inf

    def top_up(self) -> None:
        """Submit waiting movies until every task slot of the cluster is busy."""
        if time.perf_counter() - self.checked > 5:  # workers come and go on a cluster
            self.slots, self.checked = self.info.task_slots(), time.perf_counter()
        while self.queue and len(self.futures) < self.slots:
            movie = self.queue.pop()
            key = f"movie-{movie.name}-{uuid.uuid4().hex[:8]}"
            fut = self.info.client.submit(
                run_movie,
                movie,
                str(self.job.out),
                threads=self.info.threads,
                pin=self.info.pin,
                key=key,
                **self.kw,
            )
            self.futures[fut] = movie
            self.pending.add(fut)

    def cancel(self) -> None:
        self.queue.clear()
        for fut in self.futures:
            fut.cancel()


def _result(fut, movie: Movie) -> dict:
    """The task's record, or a failure record when its worker died or the task was lost."""
    try:
        return fut.result()
    except Exception as exc:  # KilledWorker, a lost or cancelled task
        msg = " ".join(str(exc).split()) or type(exc).__name__
        return {
            "movie": movie.name,
            "source": movie.source,
            "status": "failed",
            "error": f"the worker running it died or failed: {msg}",
        }


def _gather(info: ClusterInfo, job: _Job, todo: list[Movie], tracker: _Tracker) -> None:
    """Run one task per movie, a slot's worth at a time; record each result as it comes."""
    window = _Window(info, job, todo)
    try:
        window.top_up()
        while window.futures:
            if stop_requested(job.stop):
                raise Cancelled(f"batch stopped after {tracker.done} of {tracker.total} movies")
            if not window.pending.has_ready():
                time.sleep(0.05)
                continue
            for fut in window.pending.next_batch(block=False):
                movie = window.futures.pop(fut)
                job.records[movie.name] = rec = _result(fut, movie)
                tracker.finished(rec)
            window.top_up()
    finally:
        window.cancel()


def _run_todo(job: _Job, todo: list[Movie], cluster_kw: dict, result: BatchResult) -> None:
    """Open the cluster (when there is work) and run the movies still to do."""
    start = {"stage": "start", "movies": len(job.movies), "total": len(todo)}
    start["skipped"] = len(job.movies) - len(todo)
    if not todo:
        if job.progress is not None:
            job.progress(start)
        return
    with open_cluster(len(todo), **cluster_kw) as info:
        result.cluster = {
            "scheduler": info.scheduler,
            "workers": info.workers,
            "threads": info.threads,
            "dashboard": info.dashboard,
            "local": info.local,
        }
        if job.progress is not None:
            job.progress(
                {
                    **start,
                    **result.cluster,
                    "threads_per_worker": info.threads if info.local else None,
                }
            )
        tracker = _Tracker(len(todo), start["skipped"], job.progress, info.dashboard)
        _gather(info, job, todo, tracker)


_STATUSES = ("ok", "failed", "skipped", "not run")


def _not_run(movie: Movie) -> dict:
    return {
        "movie": movie.name,
        "source": movie.source,
        "status": "not run",
        "error": "",
        "seconds": None,
    }


def _write_reports(out: Path, result: BatchResult, summary: dict) -> None:
    complete = [r["movie"] for r in result.records if r["status"] in ("ok", "skipped")]
    result.files["failures"] = str(write_failures(out, result.records))
    result.files["all_movies"] = str(write_all_movies(out, complete))
    result.files["summary"] = str(out / SUMMARY)
    from ..outputs import write_json

    counts = {s: len(result.movies_with(s)) for s in _STATUSES}
    ok_seconds = [r["seconds"] for r in result.records if r["status"] == "ok"]
    summary.update(
        movies=len(result.records),
        counts=counts,
        wall_s=round(result.wall_s, 3),
        mean_seconds_per_movie=(sum(ok_seconds) / len(ok_seconds)) if ok_seconds else None,
        cluster=result.cluster,
        files=result.files,
        records=result.records,
    )
    write_json(out / SUMMARY, json_safe(summary))


def run_batch(
    inputs: Iterable[str | os.PathLike] = (),
    out_dir: str | os.PathLike = "batch",
    *,
    from_list: str | os.PathLike | None = None,
    model="default",
    config=None,
    workers: int | None = None,
    scheduler: str | None = None,
    client=None,
    frame_interval_s: float | None = None,
    channel: str | None = None,
    resume: bool = False,
    progress: ProgressFn | None = None,
    stop: StopFlag | None = None,
) -> BatchResult:
    """Run the one-click pipeline on many movies, one dask task per movie.

    Each movie's outputs go to ``out_dir/<movie>/`` exactly as
    :func:`~napari_calcite_afm.pipeline.run_pipeline` writes them, through a temporary
    folder renamed on success. Beside them: ``failures.csv``, ``all_movies.csv`` and
    ``batch_summary.json`` (:mod:`napari_calcite_afm.batch.report`).

    Parameters
    ----------
    inputs : iterable of str or os.PathLike
        Movies: files, or folders of frames (see
        :func:`~napari_calcite_afm.batch.movies.collect_movies` for their names).
    out_dir : str or os.PathLike
        The output folder (created).
    from_list : str or os.PathLike, optional
        A text file with one more movie per line.
    model : "default", "default3", path or SegmentationModel
        The segmentation model; each worker loads it once.
    config : PipelineConfig or dict, optional
        Pipeline settings (lags, registration, figures...).
    workers : int, optional
        Worker processes of the local cluster (default: see
        :func:`~napari_calcite_afm.batch.cluster.plan_workers`).
    scheduler : str, optional
        Address of a running dask scheduler to use instead of a local cluster.
    client : distributed.Client, optional
        An open client to use instead (left open).
    frame_interval_s : float, optional
        Seconds between frames, for movies whose files have no frame times.
    channel : str, optional
        Channel to read from vendor files.
    resume : bool
        Skip movies whose folder is complete already
        (:func:`~napari_calcite_afm.batch.movies.is_complete`: same settings and model).
    progress : callable, optional
        Called with ``dict(stage="start" | "movie" | "end", ...)``: per finished movie
        ``movie, status, error, seconds, done, total, failed, skipped, elapsed_s,
        eta_s, dashboard`` (:func:`format_progress` writes it as a line).
    stop : callable or threading.Event, optional
        When set, the movies not finished are cancelled, the reports written and
        :class:`~napari_calcite_afm.errors.Cancelled` raised.

    Returns
    -------
    BatchResult
        ``exit_status`` is 0 when every movie is complete, 1 when some failed.

    Raises
    ------
    CalciteAFMError
        Bad arguments (checked before anything runs): no movie, a missing or
        unreadable input, a movie given twice, an ``out_dir`` that would replace an
        input, a bad model file, ``frame_interval_s`` not positive, a bad ``workers``,
        an unreachable scheduler.

    Examples
    --------
    >>> run_batch([], "out")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    napari_calcite_afm.errors.CalciteAFMError: no movies given: ...
    """
    from .. import __version__
    from ..pipeline import PipelineConfig

    t0 = time.perf_counter()
    movies = collect_movies(inputs, from_list)
    out = check_out_dir(out_dir, movies)
    interval = _check_interval(frame_interval_s)
    check_cluster_arguments(workers, scheduler, client)
    if scheduler and client is None:
        probe_scheduler(scheduler)
    cfg = config if isinstance(config, PipelineConfig) else PipelineConfig.from_dict(config or {})
    model_ref, model_source = _model_reference(model)
    task_kw = {"model": model_ref, "config": cfg.to_dict(), "frame_interval_s": interval}
    task_kw["channel"] = channel
    summary = {"package_version": __version__, "out_dir": str(out), "model": model_source}
    summary.update(config=cfg.to_dict(), frame_interval_s=interval, channel=channel)
    summary.update(resume=bool(resume), finished=False)
    with _locked(out):
        records = {m.name: _not_run(m) for m in movies}
        done = {"config": cfg.to_dict(), "model_source": model_source}
        todo = []
        for m in movies:
            if resume and is_complete(out / m.name, **done):
                records[m.name]["status"] = "skipped"
            else:
                todo.append(m)
        summary["leftovers_removed"] = _remove_leftovers(out, {m.name for m in todo})
        job = _Job(out, movies, task_kw, records, progress, stop)
        result = BatchResult(out_dir=out, records=[])
        try:
            cluster_kw = {"workers": workers, "scheduler": scheduler, "client": client}
            _run_todo(job, todo, cluster_kw, result)
            summary["finished"] = True
        finally:
            result.records = [records[m.name] for m in movies]
            result.wall_s = time.perf_counter() - t0
            _write_reports(out, result, summary)
    if progress is not None:
        counts = {s.replace(" ", "_"): len(result.movies_with(s)) for s in _STATUSES}
        progress({"stage": "end", **counts, "elapsed_s": result.wall_s, "files": result.files})
    return result
