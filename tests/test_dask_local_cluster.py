"""The shared local Dask cluster (one per process, reused across fits, shut down on demand
and at exit), worker-resident warm starts, the Numba cache, and DAPPER's estimator API."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import import_compiled
from fastprob.datasets import make_dap_corpus
from fastprob.topics import DAPPER

distributed = pytest.importorskip("distributed", reason="dask distributed is installed by fastprob[test]")

from fastprob.corpus import ShardSet  # noqa: E402
from fastprob.distributed import local, local_clusters, shutdown_local_cluster  # noqa: E402


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    c, _ = make_dap_corpus(n_authors=24, docs_per_author=10, n_topics=5, n_personas=3, n_words=120, n_steps=4,
                           doc_length=40, seed=7)
    path = tmp_path_factory.mktemp("shards") / "c"
    c.save(path, shard_docs=35)
    yield c, ShardSet(path)
    shutdown_local_cluster()


def _fit(ss, **kw):
    args = dict(max_epochs=2, tol=0, random_state=0, progress=False, backend="dask", n_workers=2)
    args.update(kw)
    return DAPPER(5, 3, **args).fit(ss)


def test_second_fit_reuses_the_cluster_and_shutdown_closes_it(shards):
    _, ss = shards
    shutdown_local_cluster()
    _fit(ss)
    first = local_clusters()
    assert list(first) == [(2, 1)]
    cluster, client = local._CLUSTERS[(2, 1)]
    _fit(ss)
    assert local_clusters() == first  # same scheduler address: no new cluster was started
    assert local._CLUSTERS[(2, 1)][0] is cluster
    assert shutdown_local_cluster() == 1
    assert local_clusters() == {}
    assert client.status != "running"
    assert shutdown_local_cluster() == 0  # nothing left to close
    _fit(ss, max_epochs=1)  # a later fit starts a fresh cluster
    again = local_clusters()
    assert list(again) == [(2, 1)] and again[(2, 1)] != first[(2, 1)]


def test_distributed_warm_start_matches_single_process(shards):
    """Worker-resident warm starts compute what one process computes with warm starts (the
    local-iteration cap grows 3, 6, 9 over the epochs): equal up to summation order."""
    c, ss = shards
    local_fit = DAPPER(5, 3, max_epochs=3, tol=0, random_state=0, progress=False, n_jobs=1).fit(c)
    dist = _fit(ss, max_epochs=3)  # distributed_warm_start is the default
    np.testing.assert_allclose(dist.lambda_, local_fit.lambda_, rtol=1e-8)
    np.testing.assert_allclose(dist.delta_, local_fit.delta_, rtol=1e-8)
    np.testing.assert_allclose(dist.alpha_, local_fit.alpha_, rtol=1e-8, atol=1e-10)
    e_dist = np.array([h["elbo"] for h in dist.history_])
    e_local = np.array([h["elbo"] for h in local_fit.history_])
    np.testing.assert_allclose(e_dist, e_local, rtol=1e-9)
    # and the warm fit is not the cold one (the option does something)
    cold = _fit(ss, max_epochs=3, distributed_warm_start=False)
    assert abs(cold.history_[-1]["elbo"] - e_dist[-1]) > 1e-6 * abs(e_dist[-1])


def test_worker_locals_are_freed_after_the_fit(shards):
    from fastprob.distributed import tasks

    _, ss = shards
    _fit(ss, distributed_warm_start=True)
    client = local._CLUSTERS[(2, 1)][1]
    held = client.run(lambda: len(tasks._LOCALS))
    assert len(held) == 2 and all(n == 0 for n in held.values()), held


def test_local_clusters_are_closed_at_exit(tmp_path):
    """A script that fits on the shared cluster and exits leaves no worker process behind."""
    script = tmp_path / "fit_and_exit.py"
    script.write_text(textwrap.dedent("""
        import os
        from fastprob.distributed import local_client

        if __name__ == "__main__":
            client = local_client(2, 1)
            print(" ".join(str(p) for p in client.run(os.getpid).values()), flush=True)
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    pids = [int(p) for p in out.stdout.split()]
    assert len(pids) == 2
    assert not [p for p in pids if _running(p)], "worker processes outlived the script"


def _running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (an exited child nobody reaped yet)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return not any(line.startswith("State:") and "Z" in line.split()[1] for line in f)
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: fall back to signal 0
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False


def test_estep_kernel_has_one_signature_for_mmapped_and_in_memory_shards(shards):
    """Memory-mapped (read-only) shards and in-memory arrays reach the kernel with the same
    argument types, so one compiled version (and one cache entry) serves both."""
    est = import_compiled("fastprob.kernels.numba.estep", "Numba kernels unavailable")
    from fastprob.corpus.shards import read_shard

    c, ss = shards
    a = read_shard(ss.shard_path(0), mmap=True)
    assert not a["indices"].flags.writeable  # the case that used to compile a second version
    K, P, A, T = 5, 3, len(c.author_names), len(c.time_values)
    rng = np.random.default_rng(0)
    ebT = rng.dirichlet(np.ones(len(c.vocab)), size=K).T.copy()
    args = (ebT, np.log(np.full((A, P), 1 / P)), np.zeros((T, P, K)), np.ones((T, P)), 1.0, 1e-3, 5, 0.7,
            np.empty((0, K)), np.empty((0, K)), np.empty((0, P)))
    out_ro = est.estep(a["indptr"], a["indices"], a["counts"], a["authors"], a["times"], *args, n_threads=1)
    n = a["indptr"].shape[0] - 1
    sub = c.subset(np.arange(n))
    out_rw = est.estep(sub.indptr, sub.indices, sub.counts, sub.authors, sub.times, *args, n_threads=1)
    assert len(est._estep_chunks.signatures) == 1, est._estep_chunks.signatures
    np.testing.assert_allclose(out_ro[0], out_rw[0], rtol=1e-12)


def test_read_only_install_compiles_without_the_cache(tmp_path):
    """No writable cache folder (read-only install, read-only home): the kernels still import
    (compiled in memory per process) and a warning names NUMBA_CACHE_DIR."""
    code = textwrap.dedent("""
        import warnings
        import numba.core.caching as caching

        def refuse(self):
            raise OSError("read-only file system")

        caching._CacheLocator.ensure_cache_path = refuse
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            from fastprob.kernels.numba import estep, jitcache
        assert jitcache.CACHE is False and estep.FLAGS["cache"] is False
        assert any("NUMBA_CACHE_DIR" in str(x.message) for x in w), [str(x.message) for x in w]
        from fastprob import _dispatch
        assert _dispatch.resolve("dapper_estep").__module__ == "fastprob.kernels.numba.estep"
        print("ok")
    """)
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_get_params_set_params_and_clone():
    m = DAPPER(7, 4, regularization=0.2, batch_size=64, distributed_warm_start=True)
    p = m.get_params()
    assert p["n_topics"] == 7 and p["regularization"] == 0.2 and p["distributed_warm_start"] is True
    assert m.set_params(n_topics=9, tol=1e-3) is m and (m.n_topics, m.tol) == (9, 1e-3)
    with pytest.raises(ValueError, match="no parameter"):
        m.set_params(n_topic=3)
    with pytest.raises(ValueError, match="regularization"):
        m.set_params(regularization=1.5)
    assert m.regularization == 0.2  # a rejected value leaves the model unchanged
    assert "n_topics=9" in repr(m) and "max_epochs" not in repr(m)
    base = pytest.importorskip("sklearn.base", reason="scikit-learn is in fastprob[test]")
    twin = base.clone(m)  # checks every parameter round-trips unchanged through __init__
    assert twin is not m and twin.get_params() == m.get_params()
    assert not hasattr(twin, "lambda_")
