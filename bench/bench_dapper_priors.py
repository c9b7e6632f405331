"""Held-out PWLL of DAPPER at equal training CPU time under different priors (issue 10).

    python -m bench.bench_dapper_priors --corpus glibc --topics 50 --budget 30 \\
        --configs '{"doc_noise": 1.0}' '{"doc_noise": 2.0}' '{"fit_doc_noise": true}'

Each configuration is a JSON dict of DAPPER keyword arguments (``"P"`` sets the number of
personas, default 10).  DAPPER runs one epoch at a time, 1 thread, until ``budget``
training CPU seconds (scoring excluded), scored after every epoch by document completion
on the same held-out split as ``bench.bench_pwll_curve`` (10% of documents, seed 0).
Prints one JSON line per configuration (final and best PWLL, epochs, a thinned curve) and
appends them to bench/results_dapper_priors.json.
"""
import argparse
import json
import os
import time
import warnings

warnings.filterwarnings("ignore")
os.environ.setdefault("FASTPROB_PROGRESS", "0")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

from bench import real_corpora  # noqa: E402
from bench.bench_pwll_curve import dapper_curve  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "results_dapper_priors.json")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", choices=real_corpora.NAMES, default="glibc")
    ap.add_argument("--topics", type=int, default=50)
    ap.add_argument("--budget", type=float, default=30.0, help="training CPU seconds per configuration")
    ap.add_argument("--configs", nargs="+", default=['{"doc_noise": 1.0}', '{"doc_noise": 2.0}'],
                    help="JSON dicts of DAPPER keyword arguments (\"P\": personas)")
    ap.add_argument("--no-save", action="store_true")
    a = ap.parse_args(argv)
    configs = [json.loads(c) for c in a.configs]
    c = real_corpora.load(a.corpus)
    tr, te = real_corpora.split(c)
    print(f"{a.corpus}: {c}; K={a.topics}; budget {a.budget} CPU-s per configuration, 1 thread", flush=True)
    rows = []
    for kw in configs:
        kw = dict(kw)
        P = kw.pop("P", 10)
        t0 = time.perf_counter()
        pts = dapper_curve(tr, te, a.topics, P, a.budget, **kw)
        best = max(pts, key=lambda p: p[1])
        row = {"corpus": a.corpus, "K": a.topics, "P": P, "kwargs": kw, "budget_cpu_s": a.budget,
               "final_pwll": round(pts[-1][1], 4), "final_cpu_s": round(pts[-1][0], 1), "epochs": pts[-1][2],
               "best_pwll": round(best[1], 4), "best_at_cpu_s": round(best[0], 1),
               "curve": [(round(x, 1), round(y, 4)) for x, y, _ in pts[::5]] + [(round(pts[-1][0], 1), round(pts[-1][1], 4))],
               "wall_s": round(time.perf_counter() - t0, 1), "date": time.strftime("%Y-%m-%d")}
        rows.append(row)
        print(json.dumps(row), flush=True)
    if not a.no_save:
        old = json.load(open(OUT)) if os.path.exists(OUT) else []
        with open(OUT, "w") as f:
            json.dump(old + rows, f, indent=1)


if __name__ == "__main__":
    main()
