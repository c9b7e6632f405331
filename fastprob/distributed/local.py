"""One local Dask cluster per process, shared by every fit that asks for the same shape.

Starting a ``LocalCluster`` costs seconds (worker processes import fastprob and load the
compiled E-step), and closing one costs seconds more; a new cluster per ``fit()`` made a
2-epoch fit on 1M tokens slower on two workers than in one process.  Here the first
``DAPPER(backend="dask")`` fit without an ``address`` starts a cluster of ``n_workers``
processes x ``threads_per_worker`` Numba threads, warms its workers (each loads the
compiled kernels once), and later fits with the same shape reuse it.  The clusters are
closed at interpreter exit, or now by :func:`shutdown_local_cluster`.
"""
from __future__ import annotations

import atexit
import os
import threading

_LOCK = threading.Lock()
_CLUSTERS: dict = {}  # (n_workers, threads_per_worker) -> (LocalCluster, Client)
_ATEXIT = False


def _alive(entry) -> bool:
    cluster, client = entry
    status = getattr(getattr(cluster, "status", None), "name", "")
    return client.status == "running" and status == "running"


def _close(entry) -> None:
    cluster, client = entry
    for obj in (client, cluster):
        try:
            obj.close()
        except Exception:  # already closed or torn down by Dask's own exit handlers
            pass


def _start(n_workers: int, threads: int):
    from distributed import Client, LocalCluster

    # worker processes (and their nannies, which restart them) inherit these: one Numba pool
    # of `threads` per worker.  Restored afterwards: Numba re-reads the variable whenever
    # it compiles, and a changed value in this process, whose pool is already running,
    # would make every later compilation fail.
    # The workers' statistical profiler samples every thread's stack every 10 ms, for a
    # dashboard this cluster does not have: off (measured: idle workers 4% instead of 6% of
    # a core each, and ~13% less worker CPU over a 5-epoch fit).
    # (The nannies hand their Dask configuration, taken at creation, to every worker they
    # start.)
    import dask

    env = {"NUMBA_NUM_THREADS": str(threads)}
    prev = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        # no dashboard; the scheduler's small HTTP server (health, metrics) on a free local
        # port rather than the default 8787, which another cluster may hold
        with dask.config.set({"distributed.worker.profile.enabled": False}):
            cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, memory_limit=0,
                                   scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
    finally:
        for k, v in prev.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    client = Client(cluster)
    try:
        warm_workers(client, threads)
    except BaseException:
        _close((cluster, client))
        raise
    return cluster, client


def warm_workers(client, threads: int = 1) -> dict:
    """Run a tiny E-step on every worker so each loads the compiled kernels before the
    first real iteration.  One worker goes first: if the kernels are not in Numba's disk
    cache yet, it compiles and stores them and the others then load them instead of all
    compiling at once.  Returns {worker address: seconds the warm-up took there}."""
    from .tasks import warm_worker

    workers = sorted(client.scheduler_info()["workers"])
    if not workers:
        return {}
    out = client.run(warm_worker, threads, workers=workers[:1])
    if len(workers) > 1:
        out.update(client.run(warm_worker, threads, workers=workers[1:]))
    return out


def local_client(n_workers: int = 2, threads_per_worker: int = 1):
    """The Dask ``Client`` of this process' local cluster of that shape (started, and its
    workers warmed, on first use; started again if it was shut down or died)."""
    global _ATEXIT
    key = (int(n_workers), max(int(threads_per_worker), 1))
    if key[0] < 1:
        raise ValueError(f"n_workers must be >= 1, got {n_workers}")
    with _LOCK:
        entry = _CLUSTERS.get(key)
        if entry is not None and _alive(entry):
            return entry[1]
        if entry is not None:
            _close(entry)
            del _CLUSTERS[key]
        _CLUSTERS[key] = _start(*key)
        if not _ATEXIT:
            # registered after distributed was imported, so this runs before Dask's own
            # exit handlers (atexit is last in, first out) and closes the clusters cleanly
            atexit.register(shutdown_local_cluster)
            _ATEXIT = True
        return _CLUSTERS[key][1]


def local_clusters() -> dict:
    """{(n_workers, threads_per_worker): scheduler address} of the clusters running now."""
    with _LOCK:
        return {k: e[0].scheduler_address for k, e in _CLUSTERS.items() if _alive(e)}


def shutdown_local_cluster(n_workers: int | None = None, threads_per_worker: int | None = None) -> int:
    """Close the local clusters started by fastprob in this process (all of them, or the
    one of that shape); returns how many were closed.  A later fit starts a fresh one."""
    with _LOCK:
        keys = [k for k in _CLUSTERS
                if (n_workers is None or k[0] == n_workers)
                and (threads_per_worker is None or k[1] == max(int(threads_per_worker), 1))]
        for k in keys:
            _close(_CLUSTERS.pop(k))
        return len(keys)
