"""bench.check_regression: catches a planted 2x slowdown, passes the unslowed kernel.

Most checks feed synthetic pytest-benchmark JSONs (deterministic); one small real run
plants a 2x slowdown of the Cython ``count_tokens`` through ``FASTPROB_BENCH_SLOWDOWN``
and runs the real suite through pytest-benchmark.
"""
import json
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench import check_regression as cr  # noqa: E402

# two groups: (fastprob benchmark, anchor peer, other peer) with "true" times in seconds
GROUPS = {
    "count": [("test_count[cython]", "fastprob", 0.010), ("test_count[numpy]", "anchor", 0.030),
              ("test_count[scipy]", "peer", 0.020)],
    "estep": [("test_estep[dapper]", "fastprob", 0.100), ("test_estep[gensim]", "anchor", 0.900)],
}


def fake_run(path, rng, noise=0.05, scale=None, machine=1.0, tier="quick"):
    """A pytest-benchmark JSON with lognormal noise; ``scale`` multiplies chosen benchmarks'
    times, ``machine`` all of them (a slower or busier machine)."""
    scale = scale or {}
    bs = []
    for g, members in GROUPS.items():
        for name, role, t in members:
            med = t * machine * scale.get(name, 1.0) * float(np.exp(rng.normal(0, noise)))
            bs.append({"name": name, "group": g, "stats": {"median": med},
                       "extra_info": {"role": "fastprob" if role == "fastprob" else "peer",
                                      "anchor": role == "anchor", "tier": tier}})
    with open(path, "w") as f:
        json.dump({"benchmarks": bs, "machine_info": {"fastprob": {"tier": tier, "cpu": "x", "cores": 2}},
                   "commit_info": {"id": "abc"}}, f)
    return str(path)


@pytest.fixture
def baselines(tmp_path):
    rng = np.random.default_rng(0)
    runs = [fake_run(tmp_path / f"b{i}.json", rng) for i in range(5)]
    d = tmp_path / "baselines"
    assert cr.main(runs + ["--update", "--baselines", str(d)]) == 0
    return d


def _verdicts(tmp_path, d, seed, **kw):
    rng = np.random.default_rng(seed)
    runs = [fake_run(tmp_path / f"c{seed}_{i}.json", rng, **kw) for i in range(3)]
    comb = cr.combine([cr.load_results(p) for p in runs])
    return {r["name"]: r["verdict"] for r in cr.check(comb, str(d))}, runs


def test_baseline_files_hold_ratio_and_justified_margin(baselines):
    files = sorted(os.listdir(baselines))
    assert files == ["quick__test_count_cython.json", "quick__test_estep_dapper.json"]
    b = json.loads((baselines / files[0]).read_text())
    assert b["anchor"] == "test_count[numpy]" and len(b["ratio_runs"]) == 5
    assert b["ratio"] == pytest.approx(1 / 3, rel=0.15)
    spread = max(b["ratio_runs"]) / min(b["ratio_runs"]) - 1
    assert b["margin"] == pytest.approx(min(cr.MAX_MARGIN, max(cr.MIN_MARGIN, cr.SPREAD_FACTOR * spread)))


def test_planted_2x_slowdown_is_caught_and_only_there(tmp_path, baselines):
    v, runs = _verdicts(tmp_path, baselines, 1, scale={"test_count[cython]": 2.0})
    assert v == {"test_count[cython]": "REGRESSION", "test_estep[dapper]": "ok"}
    assert cr.main(runs + ["--baselines", str(baselines)]) == 1


@pytest.mark.parametrize("seed", range(5))
def test_unslowed_passes(tmp_path, baselines, seed):
    v, runs = _verdicts(tmp_path, baselines, 10 + seed)
    assert set(v.values()) == {"ok"}
    assert cr.main(runs + ["--baselines", str(baselines)]) == 0


def test_whole_machine_slower_is_not_a_regression(tmp_path, baselines):
    # 3x slower machine (or heavy load from other tenants): ratios to the anchor unchanged
    v, _ = _verdicts(tmp_path, baselines, 2, machine=3.0)
    assert set(v.values()) == {"ok"}


def test_slower_anchor_reads_as_faster_not_as_regression(tmp_path, baselines):
    v, _ = _verdicts(tmp_path, baselines, 3, scale={"test_estep[gensim]": 2.0})
    assert v["test_estep[dapper]"] == "faster"


def test_margin_cap_always_catches_2x():
    assert cr.MAX_MARGIN < 1.0
    assert cr.margin_from_spread(10.0) == cr.MAX_MARGIN
    assert cr.margin_from_spread(None) == cr.MIN_MARGIN == cr.margin_from_spread(0.01)


def test_bad_inputs_say_what_is_wrong(tmp_path, baselines, capsys):
    assert cr.main([str(tmp_path / "missing.json")]) == 2
    assert "no such result file" in capsys.readouterr().err
    (tmp_path / "x.json").write_text("{}")
    assert cr.main([str(tmp_path / "x.json")]) == 2
    assert "not a pytest-benchmark result file" in capsys.readouterr().err
    rng = np.random.default_rng(0)
    a = fake_run(tmp_path / "q.json", rng)
    b = fake_run(tmp_path / "f.json", rng, tier="full")
    assert cr.main([a, b, "--baselines", str(baselines)]) == 2
    assert "different tiers" in capsys.readouterr().err
    # a group with no anchor
    data = json.loads(open(a).read())
    for x in data["benchmarks"]:
        x["extra_info"]["anchor"] = False
    (tmp_path / "na.json").write_text(json.dumps(data))
    assert cr.main([str(tmp_path / "na.json")]) == 2
    assert "anchors" in capsys.readouterr().err


def _real_run(tmp_path, tag, monkeypatch, slowdown=None):
    """One in-process pytest-benchmark run of the count_tokens group (Cython vs NumPy)."""
    import pytest as _pytest

    if slowdown:
        monkeypatch.setenv("FASTPROB_BENCH_SLOWDOWN", slowdown)
    else:
        monkeypatch.delenv("FASTPROB_BENCH_SLOWDOWN", raising=False)
    monkeypatch.setenv("FASTPROB_BENCH_SIZES", json.dumps({"count_tokens": 1_000_000, "rounds": 15}))
    out = tmp_path / f"{tag}.json"
    rc = _pytest.main([os.path.join(ROOT, "bench", "test_bench_counting.py"), "-q", "-p", "no:cacheprovider",
                       "-k", "test_count_tokens and (cython or numpy) and not scipy", "--benchmark-only",
                       f"--benchmark-json={out}", "--rootdir", ROOT, "-o", "addopts="])
    assert rc == 0
    return str(out)


def test_real_planted_slowdown(tmp_path, monkeypatch):
    """Real pytest-benchmark runs, interleaved as the README prescribes: after one warm-up run,
    three rounds of (baseline run, clean run, slowed run) where the slowed run makes the
    Cython kernel do its work twice.  Baselines from the baseline runs; the median ratio of
    the clean runs passes, that of the slowed runs fails.  Baseline and checked runs come
    from the same minutes, as they must on a shared machine: with the baseline taken first
    and apart, the anchor's (NumPy's) warm-up and the load drift moved the clean runs by
    up to 1.47x on a loaded CI machine."""
    import torch

    from bench import suite
    from fastprob import _dispatch

    try:
        _dispatch.resolve("count_tokens", "cython")
    except _dispatch.BackendUnavailable:
        from conftest import missing_compiled

        missing_compiled("the Cython count_tokens is not built here")
    n_threads = torch.get_num_threads()
    try:
        _real_run(tmp_path, "warmup", monkeypatch)
        base, clean, slow = [], [], []
        for i in range(3):
            base.append(_real_run(tmp_path, f"base{i}", monkeypatch))
            clean.append(_real_run(tmp_path, f"clean{i}", monkeypatch))
            slow.append(_real_run(tmp_path, f"slow{i}", monkeypatch, slowdown="test_count_tokens[cython]:2"))
        d = str(tmp_path / "bl")
        assert cr.main(base + ["--update", "--baselines", d]) == 0
        # a fixed 40% margin, far from both the clean runs (about 1.0x) and the planted 2x
        assert cr.main(clean + ["--baselines", d, "--margin", "0.4"]) == 0
        planted = {b["name"]: b["extra_info"].get("planted_slowdown") for b in json.load(open(slow[0]))["benchmarks"]}
        assert planted == {"test_count_tokens[cython]": 2, "test_count_tokens[numpy]": None}
        assert cr.main(slow + ["--baselines", d, "--margin", "0.4"]) == 1
    finally:  # the suite pins threads for itself; give the rest of this session its own
        suite.release_threads()
        torch.set_num_threads(n_threads)


def test_noisy_benchmark_is_reported_not_gated(tmp_path):
    rng = np.random.default_rng(5)
    runs = [fake_run(tmp_path / f"n{i}.json", rng, noise=0.0) for i in range(3)]
    # make the estep ratio wildly unstable across the baseline runs (spread 1.0)
    for i, p in enumerate(runs):
        data = json.load(open(p))
        for b in data["benchmarks"]:
            if b["name"] == "test_estep[dapper]":
                b["stats"]["median"] *= (1.0, 2.0, 1.5)[i]
        json.dump(data, open(p, "w"))
    d = tmp_path / "bl"
    assert cr.main(runs + ["--update", "--baselines", str(d)]) == 0
    assert json.loads((d / "quick__test_estep_dapper.json").read_text())["gated"] is False
    assert json.loads((d / "quick__test_count_cython.json").read_text())["gated"] is True
    v, _ = _verdicts(tmp_path, d, 6, noise=0.0, scale={"test_estep[dapper]": 3.0})
    assert v["test_estep[dapper]"] == "slower, not gated (noisy)"
