"""Engines that map the shard E-step over workers and tree-reduce the statistics.

Both keep one Numba thread pool per worker (``threads_per_worker`` threads, default 1 with
one worker per core) so that workers do not oversubscribe the cores, broadcast the
globals once per iteration, and sum the per-shard statistics pairwise on the workers.
"""
from __future__ import annotations

import socket
import struct

from ..profiling import NULL_TIMER
from .tasks import add_stats, estep_shard, estep_shards, tree_reduce


def probe_dask_scheduler(address: str, timeout: float = 10.0) -> None:
    """Raise ``ConnectionError`` unless ``address`` answers like a Dask scheduler.

    A Dask scheduler sends its handshake as soon as a client connects: an 8-byte
    little-endian message length (a few dozen bytes) and the message.  Another service
    either stays silent or sends bytes whose first eight, read as that length, ask for
    exabytes, which Dask would try to allocate.  Only plain ``tcp://`` (or bare
    ``host:port``) addresses are probed; other schemes (tls://, inproc://, ...) are left
    to Dask.
    """
    addr = address
    if "://" in addr:
        scheme, addr = addr.split("://", 1)
        if scheme != "tcp":
            return
    host, sep, port = addr.rpartition(":")
    try:
        port_n = int(port)
    except ValueError:
        port_n = -1
    if not sep or not host or not 0 < port_n < 65536:
        raise ValueError(f"scheduler address {address!r} is not of the form tcp://HOST:PORT")
    host = host.strip("[]")
    try:
        with socket.create_connection((host, port_n), timeout=timeout) as s:
            s.settimeout(timeout)
            head = b""
            while len(head) < 8:
                got = s.recv(8 - len(head))
                if not got:
                    break
                head += got
    except socket.timeout:
        raise ConnectionError(
            f"{address} accepted the connection but sent no Dask handshake within {timeout:g} s: it is "
            "not a Dask scheduler (check the host and port; a scheduler prints its tcp:// address)") from None
    except OSError as exc:
        raise ConnectionError(f"cannot connect to the Dask scheduler at {address}: {exc}") from None
    if len(head) < 8:
        raise ConnectionError(f"{address} closed the connection without a Dask handshake: it is not a "
                              "Dask scheduler (check the host and port)")
    (n,) = struct.unpack("<Q", head)
    if not 0 < n < (1 << 20):
        raise ConnectionError(
            f"{address} is not a Dask scheduler: its first bytes {head!r} are not a Dask handshake "
            "(check the host and port; a scheduler prints its tcp:// address)")


class DaskExecutor:
    """E-step on Dask distributed.  ``address=None`` uses this process' shared local cluster
    of ``n_workers`` single-threaded worker processes (each restarted by its nanny if it
    dies; started on first use, kept for later fits: see :mod:`fastprob.distributed.local`).

    Each shard stays with the worker that first ran it (its pages stay in that worker's
    cache, and so do its warm-start locals); only a lost worker's shards move.
    """

    name = "dask"
    timer = NULL_TIMER  # DAPPER(profile=True) sets its PhaseTimer here
    supports_warm_start = True
    _owns_client = True  # a client made for an address is closed with the executor

    def __init__(self, address=None, n_workers: int = 2, threads_per_worker: int = 1):
        try:
            from distributed import Client
        except ImportError as exc:
            raise ImportError("the dask backend needs dask distributed: pip install 'fastprob[dask]'") from exc
        self.threads = max(int(threads_per_worker), 1)
        self._owner: dict = {}  # shard path -> worker address
        self._tokens: set = set()  # warm-start fits whose locals live on the workers
        if address is None:
            from .local import local_client

            self.client = local_client(n_workers, self.threads)
            self._owns_client = False
        else:
            probe_dask_scheduler(address)
            self.client = Client(address)
            self._owns_client = True

    @property
    def scheduler_address(self) -> str:
        return self.client.scheduler.address

    def _assign(self, paths, workers):
        """{worker: [paths]}: a shard keeps its worker while that worker lives; new shards
        and those of lost workers go to the workers with the fewest shards."""
        owner = self.__dict__.setdefault("_owner", {})
        alive = set(workers)
        load = {w: 0 for w in workers}
        for p in paths:
            w = owner.get(p)
            if w in alive:
                load[w] += 1
        for p in paths:
            if owner.get(p) not in alive:
                w = min(workers, key=lambda x: (load[x], x))
                owner[p] = w
                load[w] += 1
        groups: dict = {w: [] for w in workers}
        for p in paths:
            groups[owner[p]].append(p)
        return groups

    def run(self, paths, g, attempts: int = 3):
        """Statistics of all ``paths``; Dask re-runs tasks of a dead worker itself.  If a
        worker dies at a moment Dask cannot recover from (a future reported as "already
        forgotten"/cancelled), the whole iteration is recomputed: the result is a pure
        function of (paths, g), and a failed attempt's partial sums are discarded, so
        statistics are still reduced exactly once."""
        import asyncio

        from distributed.client import FutureCancelledError

        try:
            from distributed.scheduler import KilledWorker
        except ImportError:  # pragma: no cover
            KilledWorker = RuntimeError
        try:  # what distributed.wait raises for several cancelled futures at once
            from distributed.client import FuturesCancelledError
        except ImportError:  # pragma: no cover
            FuturesCancelledError = FutureCancelledError
        for attempt in range(attempts):
            try:
                return self._run_once(paths, g)
            except (FutureCancelledError, FuturesCancelledError, KilledWorker, asyncio.CancelledError):
                if attempt == attempts - 1:
                    raise

    def _run_once(self, paths, g):
        c, T = self.client, self.timer
        # once per iteration, replicated on every worker (so it survives a worker loss); a
        # fresh key each time (hash=False) so no iteration can touch another's data
        # (scatter a one-element list: a dict would be scattered value by value, keyed by
        # its own keys, which then collide between iterations)
        with T.phase("broadcast"):
            gf = c.scatter([g], broadcast=True, hash=False)[0]
        if g.get("warm_token") is not None:
            self.__dict__.setdefault("_tokens", set()).add(g["warm_token"])
        # a shard always goes to the same worker (its pages, and its warm-start locals, stay
        # there), and each worker sums its shards before anything crosses the network; a
        # dead worker's share is rescheduled elsewhere by Dask (allow_other_workers), where
        # it starts cold
        workers = sorted(c.scheduler_info()["workers"])
        if not workers:  # a reused local cluster between worker restarts (a killed worker, say)
            c.wait_for_workers(1, timeout=120)
            workers = sorted(c.scheduler_info()["workers"])
        groups = self._assign(list(paths), workers)
        futs = [c.submit(estep_shards, ps, gf, True, self.threads, workers=[w], allow_other_workers=True,
                         pure=False) for w, ps in groups.items() if ps]
        # each worker's shards are already tree-summed on that worker; the W partial sums are
        # gathered and summed pairwise here.  (Chaining sum tasks on the workers instead made
        # a killed worker occasionally take a pending sum's inputs with it - "already
        # forgotten" - while a gathered result can only be lost by being recomputed.)
        with T.phase("estep"):  # the workers' E-steps and their local sums (waited for)
            from distributed import wait

            wait(futs)
        with T.phase("gather"):
            parts = c.gather(futs)
        with T.phase("reduce"):
            out = tree_reduce(parts, add_stats)
        del futs
        del gf
        return out

    def workers(self):
        return list(self.client.scheduler_info()["workers"])

    def close(self):
        """Free this executor's warm-start locals on the workers; close the client if it was
        made for an ``address`` (the shared local cluster stays up for the next fit)."""
        from .tasks import drop_locals

        tokens = self.__dict__.pop("_tokens", set())
        try:
            for tok in tokens:
                self.client.run(drop_locals, tok)
        except Exception:  # a cluster that is gone holds nothing any more
            pass
        if self._owns_client:
            self.client.close()


class RayExecutor:
    """E-step on Ray.  ``address=None`` starts a local Ray with ``n_workers`` CPUs."""

    name = "ray"
    timer = NULL_TIMER
    # Ray places tasks on any worker process: shard state cannot stay put, so every
    # iteration starts each document cold
    supports_warm_start = False

    def __init__(self, address=None, n_workers: int = 2, threads_per_worker: int = 1):
        try:
            import ray
        except ImportError as exc:
            raise ImportError("the ray backend needs ray: pip install ray") from exc
        self.ray, self.threads = ray, threads_per_worker
        if not ray.is_initialized():
            kw = dict(include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
            if address is None:
                ray.init(num_cpus=n_workers, runtime_env={"env_vars": {"NUMBA_NUM_THREADS": str(threads_per_worker)}},
                         **kw)
            else:
                ray.init(address=address, **kw)
        self._est = ray.remote(num_cpus=threads_per_worker, max_retries=3)(estep_shard)
        self._add = ray.remote(num_cpus=0)(add_stats)

    def run(self, paths, g):
        ray = self.ray
        with self.timer.phase("broadcast"):
            gref = ray.put(g)
        # Ray chains the E-steps and the pairwise sums as one graph: timed as one phase
        with self.timer.phase("estep"):
            refs = [self._est.remote(p, gref, True, self.threads) for p in paths]
            top = tree_reduce(refs, lambda a, b: self._add.remote(a, b))
            return ray.get(top)

    def close(self):
        self.ray.shutdown()


def make_executor(backend: str, address=None, n_workers: int = 2, threads_per_worker: int = 1):
    if backend == "dask":
        return DaskExecutor(address, n_workers, threads_per_worker)
    if backend == "ray":
        return RayExecutor(address, n_workers, threads_per_worker)
    raise ValueError(f"distributed backend must be 'dask' or 'ray', got {backend!r}")
