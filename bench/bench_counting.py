"""Counting throughput: token ids -> CSR (Cython vs scipy vs the NumPy reference).

    python -m bench.bench_counting [--tokens 20000000] [--no-save]

Baseline: ``scipy.sparse.csr_matrix((ones, ids, doc_ptr), shape).sum_duplicates()``, the
one-liner a user would write (identical output: indptr, sorted indices, counts).
Targets: >= 20 M tokens/s on one core (issue 2) and >= 1.5x the scipy path (issue 11).
"""
import argparse

import numpy as np
import scipy.sparse as sp

from bench.harness import Recorder, measure, pin_threads, print_header
from fastprob import _dispatch


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=20_000_000)
    ap.add_argument("--doc-length", type=int, default=100)
    ap.add_argument("--vocab", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-save", action="store_true")
    a = ap.parse_args(argv)
    pin_threads(1)
    h = print_header("count_tokens: token ids -> CSR, one core")
    rng = np.random.default_rng(0)
    # Zipf-like word frequencies, as in text
    p = 1.0 / np.arange(1, a.vocab + 1)
    p /= p.sum()
    toks = rng.choice(a.vocab, size=a.tokens, p=p).astype(np.int32)
    lens = np.maximum(rng.poisson(a.doc_length, size=a.tokens // a.doc_length + 1), 1)
    ptr = np.concatenate([[0], np.minimum(np.cumsum(lens), a.tokens)]).astype(np.int64)
    ptr = ptr[: np.searchsorted(ptr, a.tokens) + 1]
    ptr[-1] = a.tokens
    rec = Recorder("counting", h)
    case = f"{a.tokens/1e6:.0f}M tok, ~{a.doc_length}/doc, V={a.vocab}"
    ref = _dispatch.resolve("count_tokens", "numpy")

    def scipy_count():
        m = sp.csr_matrix((np.ones(a.tokens, dtype=np.int32), toks, ptr), shape=(ptr.shape[0] - 1, a.vocab))
        m.sum_duplicates()
        return m

    sc = measure(scipy_count, repeat=a.repeat)
    rec.add(case, "scipy-sum_duplicates", "tokens/s", {"median": a.tokens / sc["median"],
                                                        "p25": a.tokens / sc["p75"], "p75": a.tokens / sc["p25"]},
            "tok/s")
    base = measure(lambda: ref(toks, ptr, a.vocab), repeat=max(2, a.repeat // 2))
    rec.add(case, "numpy-reference", "tokens/s", {k: a.tokens / v for k, v in base.items() if k != "n"} |
            {"p25": a.tokens / base["p75"], "p75": a.tokens / base["p25"]}, "tok/s")
    try:
        cy = _dispatch.resolve("count_tokens", "cython")
    except _dispatch.BackendUnavailable as exc:
        print("   cython backend unavailable:", exc)
    else:
        s = measure(lambda: cy(toks, ptr, a.vocab), repeat=a.repeat)
        got = cy(toks, ptr, a.vocab)
        for x, y in zip(got, ref(toks, ptr, a.vocab)):
            assert np.array_equal(x, y), "cython and reference disagree"
        m = scipy_count()
        assert all(np.array_equal(x, y) for x, y in zip(got, (m.indptr, m.indices, m.data))), "scipy differs"
        rec.add(case, "cython", "tokens/s", {"median": a.tokens / s["median"], "p25": a.tokens / s["p75"],
                                             "p75": a.tokens / s["p25"]}, "tok/s",
                baseline="scipy-sum_duplicates", ratio=sc["median"] / s["median"])
        print(f"   cython vs numpy reference: {base['median'] / s['median']:.1f}x")
    rec.save(not a.no_save)


if __name__ == "__main__":
    main()
