"""Distributed orchestration of a DAPPER fit (``backend="dask"`` or ``"ray"``).

The estimator keeps the M-step, the alpha-step and the ELBO on the client; this module
starts the executor of a fit, builds the payload the workers need (the globals, broadcast
once per iteration), maps the E-step over shard files and turns the reduced statistics
into the estimator's form.  Full-batch fits on Dask can keep each shard's local solutions on
the worker that owns the shard between iterations (warm starts, as in one process), so the
workers solve the same problems as a single-process fit with the same settings.
"""
from __future__ import annotations

import uuid

import numpy as np

from . import mstep


def start_executor(model):
    """The executor of one fit (on Dask without an address: the process' shared local
    cluster), with the model's timer and a fresh token naming this fit's worker state."""
    from ..distributed import make_executor

    ex = make_executor(model.backend, model.address, model.n_workers, model.threads_per_worker)
    ex.timer = model._timer
    ex.fit_token = uuid.uuid4().hex
    return ex


def payload(model, warm_token: str | None = None, max_iters: int | None = None) -> dict:
    """The globals and settings a worker needs, broadcast once per iteration.

    ebT (V, K) = exp(E log beta).T, elogk (A, P), alpha (T, P, K), alpha_sq (T, P); with
    ``warm_token`` the workers start each document from its previous solution (kept on
    the worker under that token) and run at most ``max_iters`` local iterations.
    """
    K = model.n_topics
    return {"ebT": model._ebT(), "elogk": np.ascontiguousarray(model._elogk()), "alpha": model.alpha_,
            "alpha_sq": np.einsum("tpk,tpk->tp", model.alpha_, model.alpha_) + K * model.alpha_var_,
            "doc_noise": model._s2, "local_tol": model.local_tol,
            "max_local_iters": int(max_iters or model.max_local_iters), "step_size": model.step_size,
            "solver": model.local_solver, "estep_backend": None, "warm_token": warm_token}


def run_estep_shards(model, corpus, shard_ids, warm_token=None, max_iters=None) -> dict:
    """Statistics of the shards ``shard_ids`` of the ShardSet ``corpus``, reduced."""
    paths = [corpus.shard_path(i) for i in shard_ids]
    with model._timer.phase("payload"):
        g = payload(model, warm_token, max_iters)
    st = model._executor.run(paths, g)
    return dict(S_beta=st["S_betaT"].T, S_kappa=st["S_kappa"], n_tp=st["n_tp"], M=st["M"], elbo=st["elbo"],
                iters=np.array([st["iters"] / max(st["docs"], 1)]), docs=st["docs"], B_t=st["B_t"])


def full_batch_estep(model, corpus) -> dict:
    """One E-step over all shards.  With ``warm_start`` and ``distributed_warm_start`` on an
    engine that keeps shards on their workers (Dask), documents start from their previous solution and the local
    iteration cap grows with the epoch exactly as in one process (``local_iters_warmup``)."""
    ex = model._executor
    if not (model.warm_start and model.distributed_warm_start and getattr(ex, "supports_warm_start", False)):
        return run_estep_shards(model, corpus, range(corpus.n_shards))
    cap = model.max_local_iters
    if model.local_iters_warmup:
        cap = min(cap, int(model.local_iters_warmup) * (model.epoch_ + 1))
    return run_estep_shards(model, corpus, range(corpus.n_shards), ex.fit_token, cap)


def minibatch_epoch(model, corpus, seed: int):
    """One pass of shard-level mini-batches: shards in a fresh random order, grouped until
    a step holds at least ``batch_size`` documents.  Returns (ELBO estimate, mean local
    iterations)."""
    order = np.random.default_rng(seed).permutation(corpus.n_shards)
    sizes = [corpus.manifest["shards"][i]["n_docs"] for i in order]
    total_elbo, iters, n = 0.0, 0.0, 0
    group, acc = [], 0
    for i, sz in zip(order, sizes):
        group.append(int(i))
        acc += sz
        if acc >= model.batch_size or i == order[-1]:
            stats = run_estep_shards(model, corpus, group)
            with model._timer.phase("mstep"):
                model._svi_update(stats, stats["docs"], stats["B_t"])
            total_elbo += stats["elbo"]
            iters += float(stats["iters"][0]) * stats["docs"]
            n += stats["docs"]
            group, acc = [], 0
    with model._timer.phase("elbo"):
        model._last_penalty = (model.regularization * mstep.penalty(model.alpha_, model.n_stat_, model._s2)
                               if model.regularization > 0 else 0.0)
        return total_elbo + model._global_elbo(), iters / max(n, 1)
