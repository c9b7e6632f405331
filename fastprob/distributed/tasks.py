"""The worker-side pieces: E-step of one shard, and the sum of two statistic sets."""
from __future__ import annotations

import os

import numpy as np


def _kill_once_hook():
    """Test hook: die (once) in the middle of an iteration to exercise the engine's retry.

    ``FASTPROB_TEST_KILL_ONCE=PATH``: the first task that finds PATH absent creates it and
    kills its worker process.  Never set outside tests.
    """
    path = os.environ.get("FASTPROB_TEST_KILL_ONCE")
    if path and not os.path.exists(path):
        with open(path, "w") as f:
            f.write(str(os.getpid()))
        os._exit(17)


def estep_shard(path: str, g: dict, verify: bool = False, threads: int | None = None) -> dict:
    """Run the E-step on the shard file ``path`` with the broadcast globals ``g``.

    ``g`` holds ebT (V, K), elogk (A, P), alpha (T, P, K), alpha_sq (T, P) and the local
    settings.  The shard's word, author and time ids are the model's (shards of the
    training corpus).  Returns the statistics of section 3.3 plus counts for monitoring.
    """
    import time

    from .. import _dispatch
    from ..corpus.shards import read_shard

    _kill_once_hook()
    t0 = time.perf_counter()
    a = read_shard(path, mmap=True, verify=verify)
    fn = _dispatch.resolve("dapper_estep", g.get("estep_backend"))
    K, P = g["ebT"].shape[1], g["elogk"].shape[1]
    z = np.empty((0, K))
    S_betaT, S_kappa, n_tp, M, elbo, iters = fn(
        a["indptr"], a["indices"], a["counts"], a["authors"], a["times"], g["ebT"], g["elogk"], g["alpha"],
        g["alpha_sq"], g["doc_noise"], g["local_tol"], g["max_local_iters"], g["step_size"], z, z,
        np.empty((0, P)), collect_beta=True, n_threads=threads, solver=g["solver"])
    return {"S_betaT": S_betaT, "S_kappa": S_kappa, "n_tp": n_tp, "M": M, "elbo": float(elbo),
            "iters": float(iters.sum()), "docs": int(a["authors"].shape[0]),
            "tokens": int(np.asarray(a["counts"]).sum(dtype=np.int64)),
            "B_t": np.bincount(a["times"], minlength=n_tp.shape[0]),
            "task_seconds": time.perf_counter() - t0}


def estep_shards(paths, g: dict, verify: bool = False, threads: int | None = None) -> dict:
    """E-step of several shards on one worker, summed there (one result leaves the worker)."""
    return tree_reduce([estep_shard(p, g, verify, threads) for p in paths], add_stats)


def add_stats(a: dict, b: dict) -> dict:
    """Elementwise sum of two statistic dicts (the tree reduction's node)."""
    return {k: a[k] + b[k] for k in a}


def tree_reduce(items, combine):
    """Pairwise reduction order shared by the engines (and the serial check in tests)."""
    items = list(items)
    if not items:
        raise ValueError("nothing to reduce")
    while len(items) > 1:
        nxt = [combine(items[i], items[i + 1]) for i in range(0, len(items) - 1, 2)]
        if len(items) % 2:
            nxt.append(items[-1])
        items = nxt
    return items[0]
