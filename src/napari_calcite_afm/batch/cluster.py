"""Where a batch runs: a local dask cluster of worker processes, or an existing scheduler.

:func:`plan_workers` chooses how many worker processes a machine takes and how many
threads each one's computations get, so that ``workers x threads`` never exceeds the
cores; :func:`open_cluster` starts the matching :class:`distributed.LocalCluster` (one
movie at a time per process, OpenMP/MKL/OpenBLAS sized to the worker's threads, the
process bound to its share of the cores) or connects to a running scheduler, whose
workers' hosts then share their cores among their task slots. ``distributed`` is
imported only here, and only when a cluster is opened.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import socket
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .._util import available_cpus
from ..errors import CalciteAFMError
from .worker import THREAD_VARIABLES, host_of

__all__ = [
    "MEMORY_PER_WORKER",
    "ClusterInfo",
    "WorkerPlan",
    "check_cluster_arguments",
    "open_cluster",
    "plan_workers",
    "probe_scheduler",
]

#: Memory set aside per local worker process when choosing their number, bytes (a
#: 50-frame 512 x 512 movie peaks at about 0.75 GB in ``calcite-afm run``).
MEMORY_PER_WORKER = 2 * 2**30


@dataclass(frozen=True)
class WorkerPlan:
    """Worker processes of a local cluster and the threads of each one's computations."""

    workers: int
    threads: int


def _available_memory() -> int:
    import psutil  # a dependency of distributed

    return int(psutil.virtual_memory().available)


def plan_workers(
    n_movies: int,
    workers: int | None = None,
    *,
    cpus: int | None = None,
    memory_bytes: int | None = None,
) -> WorkerPlan:
    """How many local worker processes to start, and how many threads each computes with.

    By default one process per core, but no more than there are movies nor than the
    memory holds (:data:`MEMORY_PER_WORKER` each): movies run side by side, which keeps
    every core busy through the pipeline's serial steps. Never more workers than movies,
    even when asked. The cores are shared evenly: ``threads = cores // workers`` (at
    least 1).

    Parameters
    ----------
    n_movies : int
        Movies to run.
    workers : int, optional
        Worker processes wanted (``--workers``); None chooses.
    cpus : int, optional
        Cores available (default: those this process may run on).
    memory_bytes : int, optional
        Memory available, bytes (default: what the system reports as available).

    Returns
    -------
    WorkerPlan

    Raises
    ------
    CalciteAFMError
        When ``workers`` is not a positive whole number.

    Examples
    --------
    >>> plan_workers(100, cpus=16, memory_bytes=64 * 2**30)
    WorkerPlan(workers=16, threads=1)
    >>> plan_workers(100, cpus=16, memory_bytes=8 * 2**30)
    WorkerPlan(workers=4, threads=4)
    >>> plan_workers(3, 2, cpus=16), plan_workers(3, 8, cpus=16)
    (WorkerPlan(workers=2, threads=8), WorkerPlan(workers=3, threads=5))
    """
    cpus = max(1, int(cpus or available_cpus()))
    if workers is None:
        memory = _available_memory() if memory_bytes is None else memory_bytes
        workers = max(1, min(cpus, max(1, n_movies), memory // MEMORY_PER_WORKER))
    check_cluster_arguments(workers)
    workers = min(workers, max(1, n_movies))  # an idle worker would only hold cores
    return WorkerPlan(workers=workers, threads=max(1, cpus // workers))


@dataclass
class ClusterInfo:
    """An open cluster, as :func:`open_cluster` yields it.

    Attributes
    ----------
    client : distributed.Client
        The client to submit with.
    scheduler : str
        The scheduler's address.
    workers : int
        Workers when the batch started.
    threads : int or dict
        What each task gets as ``threads`` (see
        :func:`napari_calcite_afm.batch.worker.run_movie`): a count on a local cluster,
        ``{host: task slots}`` on an existing one.
    pin : bool
        Whether worker processes bind themselves to their share of the cores.
    dashboard : str or None
        The dask dashboard's address, when one runs.
    local : bool
        True for a cluster started by the batch.
    """

    client: Any
    scheduler: str
    workers: int
    threads: int | dict
    pin: bool
    dashboard: str | None
    local: bool

    def task_slots(self) -> int:
        """Movies the cluster runs at once now: its workers' task threads (at least 1).

        :func:`~napari_calcite_afm.batch.run_batch` keeps no more tasks than this on the
        cluster, so that a worker that dies (killed for memory) takes only the movie it
        was running with it, never movies waiting in its queue.
        """
        if self.local:
            return self.workers
        try:
            return max(1, sum(_slots_per_host(self.client).values()))
        except Exception:  # a scheduler that does not answer: one at a time
            return 1


def check_cluster_arguments(workers=None, scheduler=None, client=None) -> None:
    """Refuse ``workers`` that is not a positive whole number, or given with a scheduler.

    Examples
    --------
    >>> check_cluster_arguments(2)
    >>> check_cluster_arguments(0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    napari_calcite_afm.errors.CalciteAFMError: --workers must be a positive whole number, got 0
    """
    if workers is None:
        return
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise CalciteAFMError(f"--workers must be a positive whole number, got {workers!r}")
    if scheduler or client is not None:
        raise CalciteAFMError(
            "--workers sets the local cluster's size; with --scheduler the cluster's own "
            "workers run the movies (leave --workers out)"
        )


def _has_bokeh() -> bool:
    """Whether bokeh, which draws the dashboard's pages, is installed (run on the scheduler)."""
    return importlib.util.find_spec("bokeh") is not None


def _dashboard_link(client) -> str | None:
    """The dashboard's address from the scheduler's services (None when it has none).

    The scheduler serves its HTTP routes without bokeh too, but shows no dashboard.
    """
    try:
        info = client.scheduler_info()
        if not client.run_on_scheduler(_has_bokeh):
            return None
    except Exception:  # a link is optional
        return None
    port = (info.get("services") or {}).get("dashboard")
    if not port:
        return None
    host = host_of(info.get("address") or "")
    if host in ("", "0.0.0.0", "::"):
        host = "localhost"
    return f"http://{host}:{port}/status"


def _slots_per_host(client) -> dict[str, int]:
    """``{host: task threads}`` of the scheduler's current workers."""
    slots: Counter = Counter()
    for address, worker in client.scheduler_info(n_workers=-1).get("workers", {}).items():
        slots[host_of(address)] += int(worker.get("nthreads") or 1)
    return dict(slots)


def _external(client, local: bool = False) -> ClusterInfo:
    slots = _slots_per_host(client)
    return ClusterInfo(
        client=client,
        scheduler=client.scheduler.address,
        workers=len(client.scheduler_info(n_workers=-1).get("workers", {})),
        threads=slots,
        pin=False,
        dashboard=_dashboard_link(client),
        local=local,
    )


def _unreachable(address: str, exc: Exception) -> CalciteAFMError:
    msg = " ".join(str(exc).split()) or type(exc).__name__
    return CalciteAFMError(f"cannot reach the dask scheduler at {address!r}: {msg}")


def probe_scheduler(address: str, timeout: float = 10.0) -> None:
    """Check that a TCP connection to a scheduler opens (a refused one fails at once).

    A ``Client`` that cannot connect retries until its timeout and then complains again
    when it is garbage-collected; this check keeps a wrong address to one clear line.

    Raises
    ------
    CalciteAFMError
        A malformed address, an unknown host, a refused or timed-out connection.

    Examples
    --------
    >>> probe_scheduler("tcp://127.0.0.1")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    napari_calcite_afm.errors.CalciteAFMError: cannot reach the dask scheduler at ...
    """
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address)
        if scheme in ("tcp", "tls"):
            host, port = parse_host_port(location)
            socket.create_connection((host, port), timeout=timeout).close()
    except (OSError, ValueError, TypeError) as exc:
        raise _unreachable(address, exc) from None


def _connect(address: str):
    from distributed import Client

    probe_scheduler(address)
    try:
        return Client(address, timeout="10s", set_as_default=False)
    except Exception as exc:  # OSError, TimeoutError, ValueError...
        raise _unreachable(address, exc) from None


def _local_cluster(plan: WorkerPlan):
    import dask
    from distributed import Client, LocalCluster

    env = {name: str(plan.threads) for name in THREAD_VARIABLES}
    dashboard = ":8787" if _has_bokeh() else ":0"  # without bokeh: no page, any port
    # the workers get the environment of `calcite-afm run`: dask's default
    # MALLOC_TRIM_THRESHOLD_=65536 makes every large numpy array a fresh mmap and the
    # pipeline twice as slow (12.1 s instead of 6.3 s for 20 frames of 512 x 512)
    spawn_env = {**dask.config.get("distributed.nanny.pre-spawn-environ"), **env}
    spawn_env["MALLOC_TRIM_THRESHOLD_"] = None  # None: not set
    settings = {
        # a movie that kills its worker (memory) fails at once instead of killing 3 more
        "distributed.scheduler.allowed-failures": 0,
        "distributed.nanny.pre-spawn-environ": spawn_env,
    }
    with dask.config.set(settings):
        cluster = LocalCluster(
            n_workers=plan.workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=dashboard,
            silence_logs=logging.ERROR,
            env=env,
        )
    try:
        client = Client(cluster, set_as_default=False)
    except BaseException:
        cluster.close()
        raise
    return cluster, client


@contextlib.contextmanager
def open_cluster(
    n_movies: int,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    client=None,
) -> Iterator[ClusterInfo]:
    """Start a local cluster, connect to a scheduler, or use a client; close what it opened.

    Parameters
    ----------
    n_movies : int
        Movies to run (a local cluster never has more workers).
    workers : int, optional
        Local worker processes (see :func:`plan_workers`); not with ``scheduler`` or
        ``client``, whose cluster has its own.
    scheduler : str, optional
        Address of a running dask scheduler (``tcp://host:8786``), e.g. one that
        ``dask-jobqueue`` started on a SLURM or PBS cluster.
    client : distributed.Client, optional
        An open client (left open).

    Yields
    ------
    ClusterInfo

    Raises
    ------
    CalciteAFMError
        ``workers`` with ``scheduler`` or ``client``, a bad ``workers``, or a scheduler
        that cannot be reached.

    Examples
    --------
    >>> with open_cluster(1, workers=1, scheduler="tcp://h:8786"):  # doctest: +ELLIPSIS
    ...     pass
    Traceback (most recent call last):
    ...
    napari_calcite_afm.errors.CalciteAFMError: --workers sets the local cluster's size; ...
    """
    check_cluster_arguments(workers, scheduler, client)
    if client is not None:
        yield _external(client)
        return
    if scheduler:
        own = _connect(scheduler)
        try:
            yield _external(own)
        finally:
            own.close()
        return
    plan = plan_workers(n_movies, workers)
    saved = dict(os.environ)  # the nanny writes its workers' variables into ours
    cluster, own = _local_cluster(plan)
    try:
        yield ClusterInfo(
            client=own,
            scheduler=cluster.scheduler_address,
            workers=plan.workers,
            threads=plan.threads,
            pin=True,
            dashboard=_dashboard_link(own),
            local=True,
        )
    finally:
        own.close()
        cluster.close()
        os.environ.clear()
        os.environ.update(saved)
