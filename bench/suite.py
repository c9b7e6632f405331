"""Shared pieces of the pytest-benchmark suites: tiers, machine header, running one member
of a benchmark group.

``FASTPROB_BENCH_SIZES='{"count_tokens": 200000, "rounds": 9}'`` overrides sizes of the
selected tier (JSON; keys as in :data:`TIERS`).

``FASTPROB_BENCH_SLOWDOWN=NAME:FACTOR`` makes every benchmark whose test name contains
NAME run its timed function FACTOR times per round (an integer >= 1): a planted slowdown,
used by ``tests/test_bench_regression.py`` to check that ``bench.check_regression``
catches it.  It is never set otherwise.
"""
from __future__ import annotations

import os
import platform

from bench.harness import _cpu_model, gpu_name

# sizes per tier; quick: CI (< 2 min for the whole suite on 2 cores), full: README numbers
TIERS = {
    "quick": dict(estep_authors=20, estep_docs_per_author=50, estep_topics=50, estep_personas=10,
                  estep_ref_docs=40, count_tokens=2_000_000, sotu_paragraphs=4000,
                  flow_shape=(16, 12, 32, 32), flow_hidden=32, rounds=5, flow_rounds=15, flow_iters=10),
    "full": dict(estep_authors=100, estep_docs_per_author=50, estep_topics=50, estep_personas=10,
                 estep_ref_docs=300, count_tokens=20_000_000, sotu_paragraphs=None,
                 flow_shape=(16, 12, 32, 32), flow_hidden=64, rounds=9, flow_rounds=40, flow_iters=10),
}
_state = {"tier": "quick"}


def set_tier(name: str) -> None:
    if name not in TIERS:
        raise ValueError(f"unknown bench tier {name!r}; choose one of {sorted(TIERS)}")
    _state["tier"] = name


def tier() -> str:
    return _state["tier"]


def sizes() -> dict:
    """The selected tier's sizes with the ``FASTPROB_BENCH_SIZES`` overrides applied."""
    import json

    out = dict(TIERS[tier()])
    spec = os.environ.get("FASTPROB_BENCH_SIZES")
    if spec:
        try:
            extra = json.loads(spec)
        except json.JSONDecodeError as exc:
            raise ValueError(f"FASTPROB_BENCH_SIZES must be a JSON object, got {spec!r} ({exc})") from None
        unknown = set(extra) - set(out)
        if unknown:
            raise ValueError(f"FASTPROB_BENCH_SIZES has unknown keys {sorted(unknown)}; known: {sorted(out)}")
        out.update(extra)
    return out


def threads() -> int:
    v = os.environ.get("FASTPROB_BENCH_THREADS", "1")
    try:
        n = int(v)
    except ValueError:
        raise ValueError(f"FASTPROB_BENCH_THREADS must be an integer >= 1, got {v!r}") from None
    if n < 1:
        raise ValueError(f"FASTPROB_BENCH_THREADS must be >= 1, got {n}")
    return n


_limits = []


def pin_threads(n: int) -> None:
    """Pin torch, the BLAS/OpenMP pools and Numba (as far as its pool allows) to ``n`` threads."""
    import torch

    try:
        from threadpoolctl import threadpool_limits

        _limits.append(threadpool_limits(limits=n))  # kept alive: the limit lasts the session
    except ImportError:  # pragma: no cover
        pass
    torch.set_num_threads(n)
    try:
        import numba

        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    except ImportError:  # pragma: no cover
        pass


def release_threads() -> None:
    """Undo :func:`pin_threads`' BLAS/OpenMP limits (for in-process runs inside a test session)."""
    while _limits:
        _limits.pop().restore_original_limits()


def _version(dist: str) -> str:
    # from the installed metadata: importing gensim or torch just for a version costs seconds
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "-"


def backends() -> dict:
    """The backend each benchmarked op resolves to in this process."""
    from fastprob import _dispatch

    out = {}
    for op in ("count_tokens", "tokenizer", "dapper_estep"):
        try:
            fn = _dispatch.resolve(op)
            out[op] = f"{fn.__module__}.{getattr(fn, '__name__', type(fn).__name__)}"
        except Exception as exc:  # pragma: no cover
            out[op] = f"unavailable ({exc})"
    # the flow ops dispatch per call on the tensors' device (fastprob.flows.ops)
    out["coupling/squeeze"] = "Triton on CUDA tensors, PyTorch reference on CPU tensors"
    return out


def header() -> dict:
    """CPU, cores, versions, GPU, tier, threads and backends (printed and stored in JSON)."""
    return {"cpu": _cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(), "gpu": gpu_name(),
            "tier": tier(), "threads": threads(),
            "versions": {m: _version(m) for m in ("fastprob", "numpy", "scipy", "numba", "torch", "scikit-learn",
                                                  "gensim", "tomotopy", "pytest-benchmark")},
            "backends": backends()}


def _planted(name: str):
    spec = os.environ.get("FASTPROB_BENCH_SLOWDOWN")
    if not spec:
        return 1
    key, _, factor = spec.rpartition(":")
    try:
        f = int(factor)
    except ValueError:
        raise ValueError(f"FASTPROB_BENCH_SLOWDOWN must be NAME:FACTOR (integer), got {spec!r}") from None
    return f if key and key in name else 1


def run(benchmark, group: str, role: str, fn, *, anchor: bool = False, rounds: int = 5, iterations: int = 1,
        setup=None, **info):
    """Time ``fn()`` as one member of ``group``.

    Parameters
    ----------
    benchmark : the pytest-benchmark fixture
    group : str
        Benchmarks on the same inputs share a group (fastprob op and peers).
    role : "fastprob" or "peer"
    anchor : bool
        This peer is the group's same-run baseline for the regression check.
    rounds, iterations : int
        ``benchmark.pedantic`` rounds (each ``iterations`` calls), after one warm-up round.
    info : extra key-values stored in the JSON (tokens per call, ...).

    Returns
    -------
    The value of the last call of ``fn``.
    """
    if role not in ("fastprob", "peer"):
        raise ValueError(f"role must be 'fastprob' or 'peer', got {role!r}")
    benchmark.group = group
    benchmark.extra_info.update(role=role, anchor=bool(anchor), tier=tier(), **info)
    k = _planted(benchmark.name)
    if k > 1:
        benchmark.extra_info["planted_slowdown"] = k
        inner = fn

        def fn():
            for _ in range(k - 1):
                inner()
            return inner()
    return benchmark.pedantic(fn, setup=setup, rounds=rounds, iterations=iterations, warmup_rounds=1)
