"""Distributed DAPPER: the E-step alone, and end-to-end fits (1 process vs local Dask).

    python -m bench.bench_distributed [--part estep|fit|all] [--shards 8] [--no-save]
    python -m bench.bench_distributed --part fit --epochs 2,10 --repeat 3

Part "estep": one E-step over all shards of a sampled corpus (K = 50, P = 10, ~100-token
documents) per iteration; medians over repeated iterations.  Reports per-iteration time,
the speed-up over the serial single-thread loop, the time the shard tasks themselves took
inside the workers, and the engine's per-iteration overhead (wall time minus the longest
worker's task time).  Variants probe why a naive Dask set-up scales badly: globals sent
with every task instead of broadcast once, and two Numba threads per worker
(oversubscribing 2 cores with 2 workers).

Part "fit": whole ``DAPPER.fit`` calls on the same 1M-token corpus, each configuration in
a fresh Python process that fits twice - the cold first fit (imports, cluster start,
kernels loaded from Numba's cache) and a second fit in the same process (the shared local
cluster is reused) - for 2 and 10 epochs.  Configurations run interleaved (one repeat of
each, then the next repeat), medians over repeats; wall seconds, CPU seconds of the client
plus the Dask workers, and the ratio to the single-process fit with the same local solves:

* ``1 process warm`` - the default in-process fit (warm starts, growing local-iteration cap);
* ``dask 2w warm`` - ``distributed_warm_start=True``: the same computation on 2 workers;
* ``1 process cold`` / ``dask 2w cold`` - every document solved from scratch each epoch
  (the distributed default; what earlier versions computed).

The load average of the machine is recorded with each result (shared machine: run the
benchmark under ``nice`` and alone).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from bench.harness import Recorder, print_header


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--authors", type=int, default=200)
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--engines", default="dask,ray")
    ap.add_argument("--no-save", action="store_true")
    ap.add_argument("--part", choices=("estep", "fit", "all"), default="all")
    ap.add_argument("--epochs", default="2,10", help="epoch counts of the end-to-end fits")
    ap.add_argument("--configs", default=",".join(FIT_CONFIGS))
    ap.add_argument("--child", nargs=3, metavar=("CONFIG", "EPOCHS", "CORPUS"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        return _child(*a.child)
    os.environ.setdefault("NUMBA_NUM_THREADS", "2")
    if a.part in ("estep", "all"):
        estep_part(a)
    if a.part in ("fit", "all"):
        fit_part(a)


def estep_part(a):
    h = print_header("distributed E-step over shards")
    from fastprob.corpus import ShardSet
    from fastprob.datasets import make_dap_corpus
    from fastprob.distributed.tasks import add_stats, estep_shard, tree_reduce
    from fastprob.topics import DAPPER

    c, _ = make_dap_corpus(n_authors=a.authors, docs_per_author=50, n_topics=50, n_personas=10, n_words=5000,
                           doc_length=100, seed=0)
    d = tempfile.mkdtemp()
    c.save(os.path.join(d, "c"), shard_docs=-(-c.n_docs // a.shards))
    ss = ShardSet(os.path.join(d, "c"))
    paths = [os.path.join(ss.path, s["file"]) for s in ss.manifest["shards"]]
    m = DAPPER(50, 10, max_epochs=1, random_state=0, progress=False).fit(c)
    g = m._payload()
    case = f"{c.n_tokens / 1e6:.1f}M tok, {len(paths)} shards, K=50"
    rec = Recorder("distributed", h)
    ref = tree_reduce([estep_shard(p, g, False, 1) for p in paths], add_stats)

    def serial(threads):
        return tree_reduce([estep_shard(p, g, False, threads) for p in paths], add_stats)

    times = {}
    for th in (1, 2):
        ts = []
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            serial(th)
            ts.append(time.perf_counter() - t0)
        times[f"serial-{th}t"] = np.median(ts)
        rec.add(case, f"in-process {th} thread(s)", "s/iteration", float(np.median(ts)), "s",
                baseline="in-process 1 thread(s)" if th == 2 else None,
                ratio=times["serial-1t"] / np.median(ts) if th == 2 else None)
    base = times["serial-1t"]

    def run_engine(label, ex, runner=None, workers=2):
        run = runner or (lambda: ex.run(paths, g))
        out = run()  # warm-up (starts workers, JIT-loads the kernel from cache)
        for k in ("S_betaT", "S_kappa", "n_tp", "M"):
            assert np.allclose(out[k], ref[k], rtol=1e-9, atol=1e-9), f"{label}: statistics differ"
        ts, inside = [], []
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            out = run()
            ts.append(time.perf_counter() - t0)
            inside.append(out["task_seconds"])
        med = float(np.median(ts))
        rec.add(case, label, "s/iteration", med, "s", baseline="in-process 1 thread(s)", ratio=base / med,
                notes=f"tasks inside workers {np.median(inside):.3f}s total; overhead "
                      f"{med - np.median(inside) / workers:.3f}s/iteration")

    for eng in a.engines.split(","):
        for workers in (1, 2):
            if eng == "dask":
                from fastprob.distributed import DaskExecutor

                ex = DaskExecutor(n_workers=workers)
                run_engine(f"dask {workers}w x 1t (broadcast)", ex, workers=workers)
                if workers == 2:
                    # naive variant: the globals pickled into every task
                    from fastprob.distributed.tasks import add_stats as add

                    def naive():
                        futs = [ex.client.submit(estep_shard, p, g, False, 1, pure=False) for p in paths]
                        return tree_reduce(futs, lambda x, y: ex.client.submit(add, x, y, pure=False)).result()

                    run_engine("dask 2w x 1t (globals per task)", ex, naive, workers=2)
                ex.close()
                if workers == 2:
                    ex = DaskExecutor(n_workers=2, threads_per_worker=2)
                    run_engine("dask 2w x 2 numba threads (oversubscribed)", ex, workers=2)
                    ex.close()
            else:
                from fastprob.distributed import RayExecutor

                ex = RayExecutor(n_workers=workers)
                run_engine(f"ray {workers}w x 1t (ray.put)", ex, workers=workers)
                ex.close()
    # engine overhead alone: 8 tiny shards (compute ~ 0), same statistic sizes (V x K)
    tiny, _ = make_dap_corpus(n_authors=8, docs_per_author=10, n_topics=50, n_personas=10, n_words=5000,
                              doc_length=20, seed=1)
    tiny.save(os.path.join(d, "tiny"), shard_docs=10)
    tss = ShardSet(os.path.join(d, "tiny"))
    tpaths = [os.path.join(tss.path, s["file"]) for s in tss.manifest["shards"]]
    gt = DAPPER(50, 10, max_epochs=1, random_state=0, progress=False).fit(tiny)._payload()
    for eng in a.engines.split(","):
        from fastprob.distributed import make_executor

        ex = make_executor(eng, n_workers=2)
        ex.run(tpaths, gt)
        ts = []
        for _ in range(15):
            t0 = time.perf_counter()
            ex.run(tpaths, gt)
            ts.append(time.perf_counter() - t0)
        ex.close()
        q = np.percentile(ts, [25, 50, 75])
        rec.add("engine overhead (8 tiny shards, 2 MB stats each)", f"{eng} 2w", "s/iteration",
                {"median": q[1], "p25": q[0], "p75": q[2]}, "s")
    rec.save(not a.no_save)


# ---------------------------------------------------------------------------- end-to-end fits
# config -> DAPPER keyword arguments (all: K = 50, P = 10, tol = 0, 1 Numba thread per process)
FIT_CONFIGS = {
    "1 process warm": dict(),
    "dask 2w warm": dict(backend="dask", n_workers=2, distributed_warm_start=True),
    "1 process cold": dict(warm_start=False),
    "dask 2w cold": dict(backend="dask", n_workers=2, distributed_warm_start=False),
}
BASELINE = {"dask 2w warm": "1 process warm", "dask 2w cold": "1 process cold"}


def _fit_corpus(d, n_authors=200):
    """The sampled corpus of the E-step part (200 authors: 1M tokens), saved once as 8 shards in ``d``."""
    from fastprob.datasets import make_dap_corpus

    c, _ = make_dap_corpus(n_authors=n_authors, docs_per_author=50, n_topics=50, n_personas=10, n_words=5000,
                           doc_length=100, seed=0)
    path = os.path.join(d, "fit-corpus")
    if not os.path.exists(path):
        c.save(path, shard_docs=-(-c.n_docs // 8))
    return path


def _workers_cpu(client) -> float:
    return float(sum(client.run(time.process_time).values()))


def _child(config, epochs, corpus):
    """One fresh process: two fits of ``config``; prints a JSON line with their costs."""
    t_start = time.perf_counter()
    os.environ["NUMBA_NUM_THREADS"] = "1"
    os.environ["FASTPROB_PROGRESS"] = "0"
    from fastprob.corpus import ShardSet, load_corpus
    from fastprob.topics import DAPPER

    kw = FIT_CONFIGS[config]
    dist = "backend" in kw
    data = ShardSet(corpus) if dist else load_corpus(corpus, mmap=False)
    out = {"config": config, "epochs": int(epochs), "import_s": time.perf_counter() - t_start}
    for which in ("first", "second"):
        client = None
        if dist:
            from fastprob.distributed import local

            e = local._CLUSTERS.get((2, 1))
            client = e[1] if e else None
        w0 = _workers_cpu(client) if client is not None else 0.0
        t0, c0 = time.perf_counter(), time.process_time()
        m = DAPPER(50, 10, max_epochs=int(epochs), tol=0, random_state=0, progress=False, n_jobs=1, **kw).fit(data)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if dist:
            from fastprob.distributed import local

            cpu += _workers_cpu(local._CLUSTERS[(2, 1)][1]) - w0
        out[which] = {"wall": wall, "cpu": cpu, "elbo": m.history_[-1]["elbo"],
                      "epoch_s": [h["seconds"] for h in m.history_]}
    print("RESULT " + json.dumps(out), flush=True)


def fit_part(a):
    import statistics

    h = print_header("DAPPER end-to-end fits: 1 process vs local Dask (2 workers)")
    d = tempfile.mkdtemp()
    path = _fit_corpus(d, a.authors)
    mtok = a.authors * 50 * 100 / 1e6
    configs = [c.strip() for c in a.configs.split(",")]
    epochs = [int(e) for e in a.epochs.split(",")]
    runs: dict = {}
    for r in range(a.repeat):
        for ep in epochs:
            for cfg in configs:  # interleaved: one fit of each, then the next repeat
                load = os.getloadavg()[0]
                p = subprocess.run([sys.executable, "-m", "bench.bench_distributed", "--child", cfg, str(ep), path],
                                   capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(
                                       os.path.abspath(__file__))))
                line = [x for x in p.stdout.splitlines() if x.startswith("RESULT ")]
                if p.returncode != 0 or not line:
                    raise RuntimeError(f"{cfg}, {ep} epochs failed:\n{p.stderr[-3000:]}")
                res = json.loads(line[0][7:])
                res["load"] = load
                runs.setdefault((cfg, ep), []).append(res)
                print(f"   repeat {r}: {cfg:16s} {ep:2d} epochs  first {res['first']['wall']:6.2f} s  "
                      f"second {res['second']['wall']:6.2f} s  (load {load:.2f})", flush=True)
    rec = Recorder("distributed_fit", h)
    for ep in epochs:
        case = f"{mtok:g}M tok, 8 shards, K=50 P=10, {ep} epochs"
        med = {}
        for cfg in configs:
            rs = runs[(cfg, ep)]
            for which in ("first", "second"):
                med[(cfg, which)] = statistics.median(x[which]["wall"] for x in rs)
        for cfg in configs:
            rs = runs[(cfg, ep)]
            for which in ("first", "second"):
                walls = sorted(x[which]["wall"] for x in rs)
                q = statistics.quantiles(walls, n=4) if len(walls) >= 2 else [walls[0]] * 3
                cpu = statistics.median(x[which]["cpu"] for x in rs)
                base = BASELINE.get(cfg)
                ratio = med[(base, which)] / med[(cfg, which)] if base in configs else None
                elbo = rs[0][which]["elbo"]
                same = ""
                if base in configs:
                    ref = runs[(base, ep)][0][which]["elbo"]
                    same = f"; final ELBO rel. diff to {base} {abs(elbo - ref) / abs(ref):.1e}"
                loads = ", ".join(f"{x['load']:.2f}" for x in rs)
                rec.add(case, f"{cfg} ({which} fit)", "s/fit", {"median": med[(cfg, which)], "p25": q[0], "p75": q[2]},
                        "s", baseline=f"{base} ({which} fit)" if base in configs else None, ratio=ratio,
                        notes=f"CPU {cpu:.2f} s (client + workers); {len(rs)} repeats; load avg {loads}{same}")
    rec.save(not a.no_save)


if __name__ == "__main__":
    main()
