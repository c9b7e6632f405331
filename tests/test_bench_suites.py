"""CI runs the quick tier of the bench/ suites through this test.

``pytest bench/ --benchmark-disable`` runs every benchmark's body once (no timing): each
group's fastprob op and peers are built on the quick tier's inputs and their outputs
compared, so a suite that breaks (an API change, a peer that disagrees) fails CI.  Timing
and the regression check are separate (``python -m bench.check_regression --run``);
timings are not asserted in tests.
"""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _Collect:
    def __init__(self):
        self.passed, self.failed, self.skipped = [], [], []

    def pytest_runtest_logreport(self, report):
        if report.when == "call" and report.passed:
            self.passed.append(report.nodeid)
        elif report.failed:
            self.failed.append(report.nodeid)
        elif report.skipped:
            self.skipped.append(report.nodeid)


@pytest.mark.slow
def test_quick_tier_runs(monkeypatch):
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    monkeypatch.delenv("FASTPROB_BENCH_SLOWDOWN", raising=False)
    monkeypatch.delenv("FASTPROB_BENCH_SIZES", raising=False)
    import torch

    from bench import suite

    c = _Collect()
    n_threads = torch.get_num_threads()
    try:
        rc = pytest.main([os.path.join(ROOT, "bench"), "-q", "-p", "no:cacheprovider", "--benchmark-disable",
                          "--bench-tier=quick", "--rootdir", ROOT, "-o", "addopts="], plugins=[c])
    finally:  # the suites pin threads for themselves; give the rest of this session its own
        suite.release_threads()
        torch.set_num_threads(n_threads)
    assert rc == 0 and not c.failed, c.failed
    names = " ".join(c.passed)
    # every suite ran, with the fastprob op and its anchor peer
    needed = ["test_count_tokens[numpy]", "test_text_to_csr[fastprob]", "test_text_to_csr[sklearn-CountVectorizer]",
              "test_estep[dapper-numba]", "test_estep_reference[numpy]", "test_coupling[fastprob-checkerboard]",
              "test_coupling[torch-plain-channel]", "test_squeeze[fastprob]", "test_layer[fastprob-invconv1x1]"]
    # peers from fastprob[test] (and the compiled Cython backend) where they are installed
    import importlib.util

    from fastprob import _dispatch

    needed += [n for n, mod in (("test_estep[gensim-LdaModel-1pass]", "gensim"),
                                ("test_estep[tomotopy-LDA-1sweep]", "tomotopy")) if importlib.util.find_spec(mod)]
    try:
        _dispatch.resolve("count_tokens", "cython")
        needed.append("test_count_tokens[cython]")
    except _dispatch.BackendUnavailable:
        pass
    for n in needed:
        assert n in names, (n, c.passed, c.skipped)


def test_measure_alternating_interleaves_calls_and_times_each_one():
    """The alternating timer must time every call of each function on its own and swap the
    order every round: a fake clock that advances by the calling function's cost shows both."""
    sys.path.insert(0, ROOT)
    from bench.harness import measure_alternating

    now, order = [0.0], []

    def clock():
        return now[0]

    def make(name, cost):
        def f():
            order.append(name)
            now[0] += cost
        return f

    sa, sb = measure_alternating(make("a", 1.0), make("b", 3.0), repeat=4, warmup=1, clock=clock)
    assert order == ["a", "b", "a", "b", "b", "a", "a", "b", "b", "a"]
    assert sa["median"] == 1.0 and sb["median"] == 3.0 and sa["n"] == sb["n"] == 4
