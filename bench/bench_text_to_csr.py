"""End-to-end text -> CSR on the SOTU paragraphs: fastprob vs CountVectorizer vs gensim.

    python -m bench.bench_text_to_csr [--repeat 5] [--no-save]

All three use the same tokenization (lower-case, letter runs of >= 3 code points, the
same stop-words) and the same vocabulary size (top 5,000 words); fastprob's output is
checked to equal CountVectorizer's counts.  Target (issue 2): >= 3x CountVectorizer.
"""
import argparse

import numpy as np

from bench.harness import Recorder, measure, pin_threads, print_header
from fastprob.corpus import build_corpus, english_stopwords
from fastprob.datasets import sotu_records
from fastprob.reference.tokenize import LETTER_CLASS


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--max-features", type=int, default=5000)
    ap.add_argument("--no-save", action="store_true")
    a = ap.parse_args(argv)
    pin_threads(1)
    h = print_header("text -> CSR (SOTU paragraphs)")
    recs = list(sotu_records())
    texts = [r[2] for r in recs]
    stop = english_stopwords()
    n_chars = sum(map(len, texts))
    rec = Recorder("text_to_csr", h)
    case = f"sotu {len(texts)} paras, {n_chars/1e6:.1f}M chars"

    from sklearn.feature_extraction.text import CountVectorizer

    def sk(max_features=a.max_features):
        cv = CountVectorizer(lowercase=True, token_pattern=f"[{LETTER_CLASS}]{{3,}}", stop_words=stop,
                             max_features=max_features)
        return cv, cv.fit_transform(texts)

    def fp(max_features=a.max_features):
        return build_corpus(((0, 0.0, t) for t in texts), max_features=max_features, min_words=0,
                            verbose=False)

    import re

    from gensim.corpora import Dictionary

    rx = re.compile(f"[{LETTER_CLASS}]{{3,}}")
    stopset = set(stop)

    def gs():
        toks = [[w for w in rx.findall(t.lower()) if w not in stopset] for t in texts]
        d = Dictionary(toks)
        d.filter_extremes(no_below=1, no_above=1.0, keep_n=a.max_features)
        return [d.doc2bow(t) for t in toks]

    # correctness on the full vocabulary (top-k cut-offs break frequency ties differently):
    # identical counts to CountVectorizer, columns aligned by word, empty documents aside
    cv, X = sk(None)
    c = fp(None)
    cols = [cv.vocabulary_[w] for w in c.vocab]
    ours = c.to_scipy()
    mask = np.flatnonzero(np.asarray(X.sum(1)).ravel() > 0)
    assert set(c.vocab) == set(cv.vocabulary_), "vocabularies differ"
    assert (X[mask][:, cols] != ours).nnz == 0, "counts differ from CountVectorizer"
    print(f"   check: identical vocabulary ({len(c.vocab)}) and counts to CountVectorizer")

    n_tok = int(X.sum())
    del X, c, ours
    base = measure(sk, repeat=a.repeat)
    rec.add(case, "sklearn-CountVectorizer", "seconds", base, "s")
    g = measure(gs, repeat=a.repeat)
    rec.add(case, "gensim-doc2bow", "seconds", g, "s", baseline="sklearn-CountVectorizer",
            ratio=base["median"] / g["median"])
    f = measure(fp, repeat=a.repeat)
    rec.add(case, "fastprob", "seconds", f, "s", baseline="sklearn-CountVectorizer",
            ratio=base["median"] / f["median"], notes=f"{n_tok / f['median'] / 1e6:.1f}M kept tok/s")
    rec.save(not a.no_save)


if __name__ == "__main__":
    main()
