"""Peak memory of mini-batch DAPPER streamed from shards: 1x vs 4x corpus.

    python -m bench.bench_dapper_memory [--docs 20000] [--no-save]

Each case trains one epoch (batch 1,024) in a fresh subprocess from saved shards and
reports the process' peak RSS (VmHWM) and the peak of Python/NumPy allocations.
Target (issue 3): the 4x corpus within 10% of the 1x corpus.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

from bench.harness import Recorder, print_header

CHILD = r"""
import json, sys, tracemalloc
from fastprob.corpus import ShardSet
from fastprob.topics import DAPPER
ss = ShardSet(sys.argv[1])
m = DAPPER(20, 5, batch_size=int(sys.argv[2]), max_epochs=1, random_state=0, progress=False, n_jobs=1)
tracemalloc.start()
m.fit(ss)
cur, peak = tracemalloc.get_traced_memory()
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({"rss_mb": int(hwm) / 1024, "heap_mb": peak / 2**20, "updates": m.n_updates_}))
"""


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=20000)
    ap.add_argument("--shard-docs", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--no-save", action="store_true")
    a = ap.parse_args(argv)
    h = print_header("mini-batch DAPPER from shards: peak memory vs corpus size")
    from fastprob.datasets import make_dap_corpus

    rec = Recorder("dapper_memory", h)
    res = {}
    with tempfile.TemporaryDirectory() as d:
        for mult in (1, 4):
            c, _ = make_dap_corpus(n_authors=mult * a.docs // 100, docs_per_author=100, n_words=5000, n_topics=20,
                                   n_personas=5, doc_length=100, seed=mult)
            path = os.path.join(d, f"c{mult}")
            c.save(path, shard_docs=a.shard_docs)
            ntok = c.n_tokens
            del c
            r = json.loads(subprocess.check_output([sys.executable, "-c", CHILD, path, str(a.batch)]))
            res[mult] = r
            case = f"{mult}x ({mult * a.docs} docs, {ntok / 1e6:.1f}M tok)"
            base = None if mult == 1 else "1x"
            rec.add(case, "DAPPER-minibatch-shards", "peak_rss", r["rss_mb"], "MB", baseline=base,
                    ratio=None if mult == 1 else r["rss_mb"] / res[1]["rss_mb"], notes=f"{r['updates']} updates")
            rec.add(case, "DAPPER-minibatch-shards", "peak_heap", r["heap_mb"], "MB", baseline=base,
                    ratio=None if mult == 1 else r["heap_mb"] / res[1]["heap_mb"])
    rec.save(not a.no_save)


if __name__ == "__main__":
    main()
