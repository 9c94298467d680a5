"""What runs on a dask worker: one movie through the one-click pipeline.

:func:`run_movie` is the task that :func:`napari_calcite_afm.batch.run_batch` submits once
per movie. It runs :func:`napari_calcite_afm.pipeline.run_pipeline` into a temporary
folder beside ``DIR/<movie>`` that replaces it only when the whole run succeeded
(:func:`napari_calcite_afm._util.atomic_directory`), and returns a small record instead
of raising, so that one bad movie never stops the others.

Each worker process keeps the models it has loaded (:func:`cached_model`, keyed by the
model file, its size and modification time), so a model is read once per worker, not
once per movie; and it sets its thread counts once (:func:`configure_threads`): torch's
intra-op threads, the OpenMP/MKL/OpenBLAS variables and, on a local cluster, the cores
the process runs on.
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from .._util import atomic_directory, available_cpus
from ..errors import CalciteAFMError
from .movies import Movie

__all__ = [
    "THREAD_VARIABLES",
    "cached_model",
    "configure_threads",
    "host_of",
    "one_line",
    "run_movie",
]

#: Environment variables that size the thread pools of OpenMP, MKL and OpenBLAS.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

_LOCK = threading.Lock()
_MODELS: dict = {}
#: Loads per model key in this process (what the tests count).
_LOADS: Counter = Counter()
_ONCE: dict[str, object] = {}  # what a process does once: pinning, malloc settings


def one_line(exc: BaseException) -> str:
    """An exception as one line: the message of a :class:`CalciteAFMError`, else
    ``Type: message``.

    Examples
    --------
    >>> one_line(ValueError("bad\\n  value"))
    'ValueError: bad value'
    >>> from napari_calcite_afm.errors import AFMFileError
    >>> one_line(AFMFileError("a.tif", "truncated file"))
    'a.tif: truncated file'
    """
    text = " ".join(str(exc).split())
    if isinstance(exc, CalciteAFMError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _model_key(model) -> tuple:
    if model is None or (isinstance(model, str) and model in ("default", "default2")):
        return ("shipped", 2)
    if isinstance(model, str) and model == "default3":
        return ("shipped", 3)
    path = Path(model).resolve()
    try:
        st = path.stat()
    except OSError:
        return ("file", str(path), None, None)
    return ("file", str(path), st.st_size, st.st_mtime_ns)


def cached_model(model):
    """The segmentation model ``model`` names, loaded once per process.

    Parameters
    ----------
    model : str, os.PathLike or SegmentationModel
        ``"default"``, ``"default3"`` or a model file (as in
        :func:`napari_calcite_afm.pipeline.resolve_model`); a model object is returned
        as it is. A file that changed on disk (size or modification time) is read again.

    Returns
    -------
    model : SegmentationModel
    loads : int
        How many times this process has loaded this model (1 once cached).

    Examples
    --------
    >>> a, loads = cached_model("default")
    >>> b, again = cached_model("default")
    >>> a is b, again == loads
    (True, True)
    """
    from ..pipeline import resolve_model
    from ..segmentation import SegmentationModel

    if isinstance(model, SegmentationModel):
        return model, 1
    key = _model_key(model)
    with _LOCK:
        if key not in _MODELS:
            _MODELS[key] = resolve_model(model)
            _LOADS[key] += 1
        return _MODELS[key], _LOADS[key]


def _pin(index: int, threads: int) -> None:
    """Run every thread of this process on ``threads`` cores chosen by ``index``."""
    cpus = sorted(os.sched_getaffinity(0))
    chosen = {cpus[(index * threads + j) % len(cpus)] for j in range(min(threads, len(cpus)))}
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), chosen)
        except OSError:  # a thread that just ended
            pass
    os.sched_setaffinity(0, chosen)


def _undo_malloc_trim() -> bool:
    """Give back glibc's large-allocation thresholds where dask's nanny lowered them.

    Dask starts its workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which turns every
    array over 128 kB into a fresh ``mmap`` (page faults on each use) and made the
    pipeline twice as slow. The thresholds glibc would have grown to by itself (32 MiB
    for ``mmap``, twice that for trimming) are set instead. Returns whether it did.
    """
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(
            libc.mallopt(m_mmap_threshold, 32 * 2**20)
            and libc.mallopt(m_trim_threshold, 64 * 2**20)
        )
    except (OSError, AttributeError):  # not glibc
        return False


def configure_threads(threads: int, pin_index: int | None = None) -> int:
    """Size this process's thread pools to ``threads`` (and pin it to that many cores).

    Sets ``torch.set_num_threads`` and the variables :data:`THREAD_VARIABLES` (read by
    libraries that start later), and undoes dask's ``MALLOC_TRIM_THRESHOLD_`` (see
    :func:`_undo_malloc_trim`) once per process. With ``pin_index`` (a local cluster's
    worker number), the process is also bound to ``threads`` cores of its own, so that
    the pipeline's frame-parallel steps (which use one thread per available core) do not
    spread over the cores of the other workers. The pinning happens once per process.

    Parameters
    ----------
    threads : int
        Threads for this process's computations.
    pin_index : int, optional
        Which share of the cores to take (worker ``i`` takes cores ``i*threads`` to
        ``(i+1)*threads - 1``, wrapping around).

    Returns
    -------
    int
        The cores the process may now run on.

    Examples
    --------
    >>> import torch
    >>> old = torch.get_num_threads(), {k: os.environ.get(k) for k in THREAD_VARIABLES}
    >>> _ = configure_threads(1)
    >>> torch.get_num_threads(), os.environ["OMP_NUM_THREADS"]
    (1, '1')
    >>> torch.set_num_threads(old[0])
    >>> for k, v in old[1].items():
    ...     _ = os.environ.pop(k) if v is None else os.environ.update({k: v})
    """
    import torch

    threads = max(1, int(threads))
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    with _LOCK:
        if "malloc" not in _ONCE:
            _ONCE["malloc"] = _undo_malloc_trim()
        if pin_index is not None and hasattr(os, "sched_setaffinity") and "pinned" not in _ONCE:
            _pin(pin_index, threads)
            _ONCE["pinned"] = (pin_index, threads)
    return available_cpus()


def host_of(address: str) -> str:
    """The host of a dask address.

    Examples
    --------
    >>> host_of("tcp://10.0.0.5:8786"), host_of("tcp://[::1]:40000")
    ('10.0.0.5', '::1')
    """
    return address.split("://")[-1].rsplit(":", 1)[0].strip("[]")


def _worker_identity() -> tuple[str, int | None]:
    """This worker's host and its number on a local cluster (None elsewhere)."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return socket.gethostname(), None
    return host_of(worker.address), worker.name if isinstance(worker.name, int) else None


def _threads_here(threads: int | dict | None, host: str) -> int:
    """``threads`` as given, or this host's cores shared among its task slots."""
    if isinstance(threads, int):
        return threads
    slots = (threads or {}).get(host, 1)
    return max(1, available_cpus() // max(1, int(slots)))


def _finish_summary(tmp: Path, final: Path) -> None:
    """Point the summary's file paths at the final folder instead of the temporary one."""
    from ..outputs import write_json

    path = tmp / "summary.json"
    summary = json.loads(path.read_text(encoding="utf-8"))
    files = {}
    for name, p in summary["files"].items():
        inside = Path(p).is_relative_to(tmp)
        files[name] = str(final / Path(p).relative_to(tmp)) if inside else p
    summary["files"] = files
    write_json(path, summary)


def run_movie(
    movie: Movie,
    out_dir: str,
    *,
    model="default",
    config: dict | None = None,
    frame_interval_s: float | None = None,
    channel: str | None = None,
    threads: int | dict | None = None,
    pin: bool = False,
) -> dict:
    """Run the one-click pipeline on one movie into ``out_dir/<movie.name>``, atomically.

    Parameters
    ----------
    movie : Movie
        The movie and the name of its folder.
    out_dir : str
        The batch's output folder.
    model : str, os.PathLike or SegmentationModel
        As in :func:`cached_model`.
    config : dict, optional
        :class:`~napari_calcite_afm.pipeline.PipelineConfig` as a dict.
    frame_interval_s, channel
        As in :func:`~napari_calcite_afm.pipeline.run_pipeline`.
    threads : int or dict, optional
        Threads for this movie, or ``{host: task slots}`` to share each host's cores
        among its slots (None: one host slot).
    pin : bool
        Bind a local cluster's worker process to its share of the cores.

    Returns
    -------
    dict
        ``movie, source, status ("ok" or "failed"), error, seconds, frames, host, pid,
        threads, cpus, model_loads``. Errors are never raised: they are the record's
        ``error`` (one line).

    Examples
    --------
    >>> import tempfile
    >>> rec = run_movie(Movie("m", "/no/such/movie.tif"), tempfile.mkdtemp())
    >>> rec["status"], rec["error"]
    ('failed', '/no/such/movie.tif: file not found')
    """
    from ..pipeline import PipelineConfig, run_pipeline

    t0 = time.perf_counter()
    host, index = _worker_identity()
    record = {"movie": movie.name, "source": movie.source, "status": "failed", "error": ""}
    record.update(host=host, pid=os.getpid(), frames=None, model_loads=None)
    try:
        n = _threads_here(threads, host)
        record["threads"] = n
        record["cpus"] = configure_threads(n, index if pin else None)
        seg_model, record["model_loads"] = cached_model(model)
        final = Path(out_dir) / movie.name
        with atomic_directory(final, what="the movie's output folder") as tmp:
            result = run_pipeline(
                movie.source,
                model=seg_model,
                config=PipelineConfig.from_dict(config or {}),
                out_dir=tmp,
                channel=channel,
                frame_interval_s=frame_interval_s,
            )
            _finish_summary(tmp, final)
        record.update(status="ok", frames=int(result.labels.shape[0]))
    except Exception as exc:  # every failure becomes the movie's record
        record["error"] = one_line(exc)
    record["seconds"] = round(time.perf_counter() - t0, 3)
    return record
