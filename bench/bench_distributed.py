"""Distributed E-step: serial vs Dask vs Ray on this machine (1 and 2 workers).

    python -m bench.bench_distributed [--shards 8] [--no-save]

One E-step over all shards of a sampled corpus (K = 50, P = 10, ~100-token documents)
per iteration; medians over repeated iterations.  Reports per-iteration time, the
speed-up over the serial single-thread loop, the time the shard tasks themselves took
inside the workers, and the engine's per-iteration overhead (wall time minus the
longest worker's task time).  Variants probe why a naive Dask set-up scales badly:
globals sent with every task instead of broadcast once, and two Numba threads per
worker (oversubscribing 2 cores with 2 workers).
"""
import argparse
import os
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
    a = ap.parse_args(argv)
    os.environ.setdefault("NUMBA_NUM_THREADS", "2")
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


if __name__ == "__main__":
    main()
