"""Real-corpus regression numbers under the old and the new default time binning.

    python -m bench.real_corpus_time_bins

The 150-package Debian changelog sample of ``tests/test_real_corpus.py``, built with
``time_width=365.25`` (years counted from the first entry, the old default of the loader)
and ``"year"`` (calendar years, the new one); for each: steps, held-out PWLL of the floor
test's fit (K = 10, P = 5, 15 epochs), and at regularization 0 the smallest relative ELBO
increase between epochs and max |alpha| (the monotonicity test's fit).
"""
import os
import time

import numpy as np

os.environ.setdefault("FASTPROB_PROGRESS", "0")


def main():
    from fastprob.datasets import load_debian_changelogs
    from fastprob.topics import DAPPER

    for width in (365.25, "year"):
        c = load_debian_changelogs(max_files=150, time_width=width)
        tr, te = c.split(0.1, seed=0)
        t0 = time.process_time()
        m = DAPPER(10, 5, max_epochs=15, tol=0, random_state=0, progress=False).fit(tr)
        m0 = DAPPER(10, 5, regularization=0.0, max_epochs=15, tol=0, random_state=0, progress=False).fit(tr)
        e = np.array([h["elbo"] for h in m0.history_])
        print(f"time_width={width!r}: {c.n_steps} steps ({c.time_bins()['first_bin_start']} .. "
              f"{c.time_bins()['last_bin_start']}); PWLL {m.score(te):.4f}; rho=0: smallest relative "
              f"ELBO increase {np.min(np.diff(e) / np.abs(e[1:])):.2e}, max |alpha| {np.abs(m0.alpha_).max():.2f}; "
              f"{time.process_time() - t0:.1f} CPU-s")


if __name__ == "__main__":
    main()
