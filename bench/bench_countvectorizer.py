"""fastprob.text.CountVectorizer vs scikit-learn's: fit_transform time, identical output checked.

    python -m bench.bench_countvectorizer [--repeat 5] [--no-save]

Corpora: the State of the Union paragraphs (the ``sotu`` package, 25k paragraphs, 12 MB)
and a synthetic text of 20 Newsgroups size (11,314 documents, ~3 M words, Zipfian
vocabulary of 120k types with capitals, digits, e-mail addresses, punctuation, a few
accented words; seeded).  Configurations: defaults; English stop words + min_df=2;
max_features=5000.  Before timing, every output is compared with scikit-learn's (vocabulary
with its order, matrix dtype, indices, indptr, data, sorted flag); a mismatch aborts.
Timed by CPU time of this (single-threaded) process, median of ``--repeat`` calls of each after a
warm-up, scikit-learn's and fastprob's calls alternating one by one: on the shared 2-core machine the wall time of a call swings 5x with other
processes' load while its CPU time does not.
"""
import argparse
import time

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer as SkCV


from bench.harness import Recorder, measure_alternating, print_header
from fastprob.text import CountVectorizer as FpCV

CONFIGS = {"default": {}, "english+min_df2": dict(stop_words="english", min_df=2),
           "max_features5000": dict(max_features=5000)}


def sotu_docs():
    from fastprob.datasets.sotu import sotu_records

    return [p for _, _, p in sotu_records()]


def newsgroups_like(n_docs=11314, n_types=120_000, seed=0):
    """Synthetic text with 20 Newsgroups' size (documents, words) and a Zipfian vocabulary."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("etaoinshrdlcumwfgypbvkjxqz"))
    p = 1.0 / np.arange(1, 27) ** 0.9
    lens = rng.integers(2, 12, size=n_types)
    chars = letters[rng.choice(26, size=lens.sum(), p=p / p.sum())].tolist()
    ends = np.cumsum(lens)
    types = ["".join(chars[e - k:e]) for k, e in zip(lens, ends)]
    for i in rng.choice(n_types, size=n_types // 20, replace=False):
        types[i] = types[i].capitalize()
    for i in rng.choice(n_types, size=n_types // 50, replace=False):
        types[i] = f"{types[i]}{rng.integers(0, 1000)}"
    for i in rng.choice(n_types, size=n_types // 100, replace=False):
        types[i] = f"{types[i]}@{types[(i + 1) % n_types].lower()}.edu"
    for i in rng.choice(n_types, size=n_types // 200, replace=False):
        types[i] = types[i] + "é"
    zipf = 1.0 / np.arange(1, n_types + 1) ** 1.05
    zipf /= zipf.sum()
    punct = np.array([" ", " ", " ", " ", " ", " ", ", ", ". ", "\n", " - ", "'s ", ": ", "? "])
    lens = np.maximum(rng.lognormal(5.0, 0.9, size=n_docs).astype(int), 5)
    ends = np.cumsum(lens)
    words = np.asarray(types, dtype=object)[rng.choice(n_types, size=ends[-1], p=zipf)]
    seps = punct[rng.integers(0, len(punct), size=ends[-1])]
    toks = (words + seps).tolist()
    return ["".join(toks[e - n:e]) for n, e in zip(lens, ends)]


def same(a, b, Xa, Xb):
    return (list(a.vocabulary_.items()) == list(b.vocabulary_.items()) and type(Xa) is type(Xb)
            and Xa.dtype == Xb.dtype and Xa.indices.dtype == Xb.indices.dtype
            and np.array_equal(Xa.indptr, Xb.indptr) and np.array_equal(Xa.indices, Xb.indices)
            and np.array_equal(Xa.data, Xb.data) and Xa.has_sorted_indices == Xb.has_sorted_indices)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-save", action="store_true")
    a = ap.parse_args(argv)
    h = print_header("CountVectorizer.fit_transform: fastprob.text vs scikit-learn")
    rec = Recorder("countvectorizer", h)
    corpora = {"sotu-paragraphs": sotu_docs(), "20ng-sized-synthetic": newsgroups_like()}
    for cname, docs in corpora.items():
        n_chars = sum(map(len, docs))
        print(f"   {cname}: {len(docs)} docs, {n_chars / 1e6:.1f} M chars")
        for kname, kw in CONFIGS.items():
            sk, fp = SkCV(**kw), FpCV(**kw)
            Xs, Xf = sk.fit_transform(docs), fp.fit_transform(docs)
            if not same(sk, fp, Xs, Xf):
                raise SystemExit(f"output differs from scikit-learn on {cname} / {kname}")
            # call by call in alternation: a load change on the shared machine hits both alike
            sks, fps = measure_alternating(lambda: SkCV(**kw).fit_transform(docs),
                                           lambda: FpCV(**kw).fit_transform(docs),
                                           repeat=a.repeat, clock=time.process_time)
            stats = {"sklearn": sks, "fastprob": fps}
            case = f"{cname} {kname}"
            note = f"{len(docs)} docs, {Xs.nnz} nnz, vocab {len(sk.vocabulary_)}; identical output"
            rec.add(case, "sklearn-CountVectorizer", "fit_transform cpu", stats["sklearn"], "s", notes=note)
            rec.add(case, "fastprob.text", "fit_transform cpu", stats["fastprob"], "s", baseline="sklearn-CountVectorizer",
                    ratio=stats["sklearn"]["median"] / stats["fastprob"]["median"],
                    notes=f"{note}; ratio = sklearn / fastprob")
    rec.save(not a.no_save)


if __name__ == "__main__":
    main()
