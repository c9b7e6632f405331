"""The worker-side pieces: E-step of one shard, and the sum of two statistic sets."""
from __future__ import annotations

import os
from collections import OrderedDict

import numpy as np


_VERIFIED: dict = {}  # shard identity -> True, per worker process
# warm starts: fit token -> {shard path: (m, v, tau)}, the local solutions of the shards this
# worker process owns, kept between iterations (full-batch fits; see estep_shard)
_LOCALS: "OrderedDict[str, dict]" = OrderedDict()
_MAX_FITS = 4  # fits whose locals a worker keeps (a fit that never said goodbye is evicted)


def _read_checked(path: str, g: dict, verify: bool) -> dict:
    """Read a shard on a worker: payload CRC verified on this worker's first read of the
    file (cached by path, inode, size and mtime, so a replaced file is verified again), then
    every id bounds-checked against the model, naming the shard, before any kernel runs.

    The compiled E-step does no bounds checks; a shard whose ids exceed the model's
    vocabulary, authors or time steps would otherwise crash the worker process.
    """
    from ..corpus.shards import ShardError, read_shard

    st = os.stat(path)
    key = (os.path.realpath(path), st.st_ino, st.st_size, st.st_mtime_ns)
    need = verify and key not in _VERIFIED
    a = read_shard(path, mmap=True, verify=need)
    if need:
        _VERIFIED[key] = True
    V, A, T = g["ebT"].shape[0], g["elogk"].shape[0], g["alpha"].shape[0]
    ip, ix, ct = a["indptr"], a["indices"], a["counts"]

    def bad(what):
        raise ShardError(f"shard {path}: {what}; the shard is corrupted or belongs to another "
                         "corpus: restore it from a backup or rebuild the corpus")

    if ip.shape[0] < 1 or ip[0] != 0 or ip[-1] != ix.shape[0] or (ip.shape[0] > 1 and np.any(np.diff(ip) < 0)):
        bad("its document offsets (indptr) are not a valid CSR index")
    for name, arr, n in (("word", ix, V), ("author", a["authors"], A), ("time-step", a["times"], T)):
        if arr.shape[0] and (int(arr.min()) < 0 or int(arr.max()) >= n):
            bad(f"{name} ids span [{int(arr.min())}, {int(arr.max())}] but the model has {n}")
    if ct.shape[0] and int(ct.min()) <= 0:
        bad("it has non-positive word counts")
    return a


def estep_shard(path: str, g: dict, verify: bool = True, threads: int | None = None) -> dict:
    """Run the E-step on the shard file ``path`` with the broadcast globals ``g``.

    ``g`` holds ebT (V, K), elogk (A, P), alpha (T, P, K), alpha_sq (T, P) and the local
    settings.  The shard's word, author and time ids are the model's (shards of the
    training corpus); they are checked (and with ``verify`` the payload CRC, once per
    worker process and file) before the kernel runs.  With ``g["warm_token"]`` set, the
    documents start from this worker's previous solution for the shard (kept under that
    token; see :func:`_shard_locals`) and the solution is kept for the next iteration.
    Returns the statistics of section 3.3 plus counts for monitoring.
    """
    import time

    from .. import _dispatch

    t0 = time.perf_counter()
    a = _read_checked(path, g, verify)
    fn = _dispatch.resolve("dapper_estep", g.get("estep_backend"))
    K, P = g["ebT"].shape[1], g["elogk"].shape[1]
    token = g.get("warm_token")
    if token is not None:
        m, v, tau = _shard_locals(token, path, a["authors"].shape[0], K, P, g["doc_noise"])
    else:
        m = v = np.empty((0, K))
        tau = np.empty((0, P))
    S_betaT, S_kappa, n_tp, M, elbo, iters = fn(
        a["indptr"], a["indices"], a["counts"], a["authors"], a["times"], g["ebT"], g["elogk"], g["alpha"],
        g["alpha_sq"], g["doc_noise"], g["local_tol"], g["max_local_iters"], g["step_size"], m, v, tau,
        collect_beta=True, n_threads=threads, solver=g["solver"], warm_start=token is not None)
    return {"S_betaT": S_betaT, "S_kappa": S_kappa, "n_tp": n_tp, "M": M, "elbo": float(elbo),
            "iters": float(iters.sum()), "docs": int(a["authors"].shape[0]),
            "tokens": int(np.asarray(a["counts"]).sum(dtype=np.int64)),
            "B_t": np.bincount(a["times"], minlength=n_tp.shape[0]),
            "task_seconds": time.perf_counter() - t0}


def _shard_locals(token: str, path: str, D: int, K: int, P: int, s2: float):
    """The warm-start arrays (m, v, tau) of shard ``path`` in fit ``token`` on this worker:
    the previous iteration's solution, or the in-process fit's cold start (m = 0, v =
    sigma_d^2) the first time this worker sees the shard.  The E-step overwrites them."""
    fits = _LOCALS.setdefault(token, {})
    _LOCALS.move_to_end(token)
    while len(_LOCALS) > _MAX_FITS:
        _LOCALS.popitem(last=False)
    w = fits.get(path)
    if w is None or w[0].shape != (D, K) or w[2].shape != (D, P):
        w = fits[path] = (np.zeros((D, K)), np.full((D, K), float(s2)), np.zeros((D, P)))
    return w


def drop_locals(token: str) -> int:
    """Free the warm-start arrays of fit ``token`` on this worker (returns how many shards)."""
    return len(_LOCALS.pop(token, {}))


def warm_worker(threads: int = 1) -> float:
    """Load the compiled E-step in this worker process (an E-step on two tiny documents,
    through the same entry point and argument types as a real shard); returns seconds."""
    import time

    from .. import _dispatch

    t0 = time.perf_counter()
    fn = _dispatch.resolve("dapper_estep")
    K, P = 2, 1
    ix = np.array([0, 1, 2], dtype=np.int32)
    ix.flags.writeable = False  # as a memory-mapped shard
    fn(np.array([0, 2, 3]), ix, np.ones(3), np.zeros(2, np.int64), np.zeros(2, np.int64), np.full((3, K), 1 / 3),
       np.zeros((1, P)), np.zeros((1, P, K)), np.zeros((1, P)), 1.0, 1e-3, 2, 0.7, np.empty((0, K)),
       np.empty((0, K)), np.empty((0, P)), collect_beta=True, n_threads=threads, solver="newton")
    return time.perf_counter() - t0


def estep_shards(paths, g: dict, verify: bool = True, threads: int | None = None) -> dict:
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
