"""Worker and thread counts, cluster arguments, connecting to a scheduler."""

from __future__ import annotations

import pytest

from napari_calcite_afm.batch.cluster import (
    MEMORY_PER_WORKER,
    WorkerPlan,
    check_cluster_arguments,
    open_cluster,
    plan_workers,
    probe_scheduler,
)
from napari_calcite_afm.errors import CalciteAFMError


@pytest.mark.parametrize(
    ("args", "memory_workers", "plan"),
    [
        ((8,), 64, WorkerPlan(8, 2)),  # one per core, at most one per movie: 16 cores
        ((3,), 64, WorkerPlan(3, 5)),  # never more than the movies
        ((100,), 4, WorkerPlan(4, 4)),  # the memory takes four
        ((8, 1), 64, WorkerPlan(1, 16)),
        ((100, 32), 64, WorkerPlan(32, 1)),  # more than the cores: one thread each
        ((3, 8), 64, WorkerPlan(3, 5)),  # more than the movies: one per movie
    ],
)
def test_workers_times_threads_fit_the_cores(args, memory_workers, plan):
    got = plan_workers(*args, cpus=16, memory_bytes=memory_workers * MEMORY_PER_WORKER)
    assert got == plan
    assert got.workers * got.threads <= max(16, got.workers)


def test_a_machine_with_little_memory_still_gets_one_worker():
    assert plan_workers(10, cpus=4, memory_bytes=1) == WorkerPlan(1, 4)


@pytest.mark.parametrize("workers", [0, -1, 1.5, True, "2"])
def test_bad_worker_counts_are_refused(workers):
    with pytest.raises(CalciteAFMError, match="--workers must be a positive whole number"):
        check_cluster_arguments(workers)


def test_workers_with_a_scheduler_are_refused():
    with pytest.raises(CalciteAFMError, match="leave --workers out"):
        check_cluster_arguments(2, "tcp://h:8786")
    with (
        pytest.raises(CalciteAFMError, match="leave --workers out"),
        open_cluster(1, workers=2, client=object()),
    ):
        pass


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("tcp://127.0.0.1:1", "refused"),
        ("nonsense", "missing port"),
        ("tcp://no-such-host.invalid:8786", "cannot reach"),
    ],
)
def test_an_unreachable_scheduler_is_one_clear_error(address, message):
    with pytest.raises(CalciteAFMError, match=message):
        probe_scheduler(address, timeout=5)


def test_an_existing_cluster_shares_each_hosts_cores_among_its_task_slots():
    from distributed import Client, LocalCluster

    # workers as threads of this process, over TCP as on a cluster
    kw = {"n_workers": 2, "threads_per_worker": 2, "processes": False, "protocol": "tcp"}
    with (
        LocalCluster(dashboard_address=":0", **kw) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        with open_cluster(4, client=client) as info:
            assert info.client is client and not info.local and not info.pin
            assert info.workers == 2 and info.task_slots() == 4
            assert list(info.threads.values()) == [4]  # one host, four task slots
        assert client.status == "running"  # a client passed in stays open
