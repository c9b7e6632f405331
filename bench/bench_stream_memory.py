"""Peak memory of streaming a shard set in mini-batches: 1x vs 4x corpus size.

    python -m bench.bench_stream_memory [--docs 20000] [--no-save]

Each case runs in a fresh subprocess that opens the saved shards, iterates over all
mini-batches (touching every count) and reports its peak RSS and the peak of Python /
NumPy allocations (tracemalloc).  Target (issue 2): the 4x case within 10% of the 1x case.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

from bench.harness import Recorder, print_header

CHILD = r"""
import json, sys, tracemalloc, resource
import numpy as np
from fastprob.corpus import ShardSet
tracemalloc.start()
ss = ShardSet(sys.argv[1])
total = 0
for b in ss.iter_batches(int(sys.argv[2]), seed=0):
    total += int(b.counts.sum())
cur, peak = tracemalloc.get_traced_memory()
# VmHWM is this process image's own peak (ru_maxrss would inherit the parent's across exec)
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({"tokens": total, "rss_mb": int(hwm) / 1024,
                  "heap_mb": peak / 2**20}))
"""


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=20000, help="documents in the 1x corpus")
    ap.add_argument("--shard-docs", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--no-save", action="store_true")
    a = ap.parse_args(argv)
    h = print_header("streaming shards: peak memory vs corpus size")
    from fastprob.datasets import make_dap_corpus

    rec = Recorder("stream_memory", h)
    out = {}
    with tempfile.TemporaryDirectory() as d:
        for mult in (1, 4):
            c, _ = make_dap_corpus(n_authors=mult * a.docs // 100, docs_per_author=100, n_words=5000,
                                   n_topics=20, doc_length=100, seed=mult)
            path = os.path.join(d, f"c{mult}")
            c.save(path, shard_docs=a.shard_docs)
            del c
            res = json.loads(subprocess.check_output([sys.executable, "-c", CHILD, path, str(a.batch)]))
            out[mult] = res
            case = f"{mult}x ({mult * a.docs} docs, {res['tokens']/1e6:.1f}M tok)"
            base = None if mult == 1 else "1x"
            rec.add(case, "ShardSet.iter_batches", "peak_rss", res["rss_mb"], "MB", baseline=base,
                    ratio=None if mult == 1 else res["rss_mb"] / out[1]["rss_mb"])
            rec.add(case, "ShardSet.iter_batches", "peak_heap", res["heap_mb"], "MB", baseline=base,
                    ratio=None if mult == 1 else res["heap_mb"] / out[1]["heap_mb"])
    rec.save(not a.no_save)


if __name__ == "__main__":
    main()
