"""DAPPER with and without empirical Bayes for eta on the Debian changelogs: ELBO, fitted eta
and held-out PWLL every 5 epochs (same split and seed as bench_pwll_curve, 1 thread).

    python -m bench.bench_eb_eta [K] [EPOCHS]      # defaults 50 20
"""
import os
import sys

os.environ["NUMBA_NUM_THREADS"] = "1"
os.environ["FASTPROB_PROGRESS"] = "0"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    K = int(argv[0]) if argv else 50
    E = int(argv[1]) if len(argv) > 1 else 20
    from fastprob.datasets import load_debian_changelogs
    from fastprob.topics import DAPPER

    c = load_debian_changelogs(time_width=365.25)  # the binning of the recorded run
    tr, te = c.split(0.1, seed=0)
    for fe in (False, True):
        m = DAPPER(K, 10, max_epochs=1, tol=0, n_jobs=1, random_state=0, progress=False, fit_eta=fe)
        m.fit(tr)
        cpu = m.history_[-1]["cpu_seconds"]
        for e in range(2, E + 1):
            m.max_epochs = e
            m.fit(tr, resume=True)
            cpu += m.history_[-1]["cpu_seconds"]
            if e % 5 == 0:
                print(f"K={K} fit_eta={fe} epoch {e} cpu {cpu:.1f} eta {m.eta_:.4g} "
                      f"elbo {m.history_[-1]['elbo']:.4f} pwll {m.score(te):.4f}", flush=True)


if __name__ == "__main__":
    main()
