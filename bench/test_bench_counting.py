"""Corpus pipeline: token ids -> CSR counts, and text -> CSR.

Groups
------
count_tokens
    fastprob's Cython ``count_tokens`` vs the NumPy reference (anchor) and the SciPy path a
    user would write (COO of (document, word) ones -> CSR -> ``sum_duplicates``), on Zipf
    token ids with ~100-token documents, V = 10,000; outputs checked equal.
remap_csr
    fastprob's Cython ``remap_csr`` (a vocabulary map: drop, permute and merge columns) vs
    the NumPy reference (anchor) and SciPy's sparse product ``X @ M`` with the 0/1 map
    matrix ``M`` (then ``sort_indices``), on the counts of the ``count_tokens`` group mapped
    onto 5,000 of the 10,000 words; outputs checked equal.
tokenizer
    fastprob's Cython hashing tokenizer vs its pure-Python reference (anchor; ``re.findall``
    over the letter class, a dict for the ids) on SOTU paragraphs; ids checked equal.
text_to_csr
    ``fastprob.corpus.build_corpus`` vs scikit-learn's ``CountVectorizer`` (anchor) on SOTU
    paragraphs, same tokenization and stop words, full vocabulary.
"""
import numpy as np
import pytest

from bench import suite

V = 10_000


@pytest.fixture(scope="module")
def token_ids(sizes):
    n = sizes["count_tokens"]
    rng = np.random.default_rng(0)
    p = 1.0 / np.arange(1, V + 1)  # Zipf-like word frequencies, as in text
    toks = rng.choice(V, size=n, p=p / p.sum()).astype(np.int32)
    lens = np.maximum(rng.poisson(100, size=n // 100 + 1), 1)
    ptr = np.concatenate([[0], np.minimum(np.cumsum(lens), n)]).astype(np.int64)
    ptr = ptr[: np.searchsorted(ptr, n) + 1]
    ptr[-1] = n
    return toks, ptr


def _scipy_counts(toks, ptr):
    import scipy.sparse as sp

    rows = np.repeat(np.arange(ptr.shape[0] - 1), np.diff(ptr))
    m = sp.csr_matrix((np.ones(toks.shape[0], dtype=np.int32), (rows, toks)), shape=(ptr.shape[0] - 1, V))
    m.sum_duplicates()
    return m


def _impl(name):
    from fastprob import _dispatch

    if name == "scipy-csr-sum_duplicates":
        return _scipy_counts
    fn = _dispatch.resolve("count_tokens", name)
    return lambda toks, ptr: fn(toks, ptr, V)


@pytest.mark.parametrize("impl", ["cython", "numpy", "scipy-csr-sum_duplicates"])
def test_count_tokens(benchmark, token_ids, sizes, impl):
    from fastprob import _dispatch

    toks, ptr = token_ids
    try:
        fn = _impl(impl)
    except _dispatch.BackendUnavailable as exc:
        pytest.skip(f"{impl}: {exc}")
    out = suite.run(benchmark, f"count_tokens {toks.size / 1e6:g}M tok V={V}",
                    "fastprob" if impl == "cython" else "peer", lambda: fn(toks, ptr),
                    anchor=impl == "numpy", rounds=sizes["rounds"], tokens=int(toks.size))
    p = ptr[:2001]  # the first 2,000 documents, checked against the reference
    ref = _dispatch.resolve("count_tokens", "numpy")(toks[:p[-1]], p, V)
    small = fn(toks[:p[-1]], p)
    if impl.startswith("scipy"):
        small = (small.indptr, small.indices, small.data)
    for a, b in zip(small, ref):
        np.testing.assert_array_equal(a, b)
    assert out is not None


def _scipy_remap(X, M):
    out = (X @ M).tocsr()
    out.sort_indices()
    return out


@pytest.mark.parametrize("impl", ["cython", "numpy", "scipy-matmul"])
def test_remap_csr(benchmark, token_ids, sizes, impl):
    import scipy.sparse as sp

    from fastprob import _dispatch

    toks, ptr = token_ids
    csr = _dispatch.resolve("count_tokens", "numpy")(toks, ptr, V)
    rng = np.random.default_rng(1)
    # a pruning + lemmatization map: half the words dropped, the rest merged onto 5,000
    mapping = np.where(rng.random(V) < 0.5, -1, rng.integers(0, 5000, V)).astype(np.int32)
    if impl == "scipy-matmul":
        keep = np.flatnonzero(mapping >= 0)
        M = sp.csr_matrix((np.ones(keep.size, np.int32), (keep, mapping[keep])), shape=(V, 5000))
        X = sp.csr_matrix((csr[2], csr[1], csr[0]), shape=(ptr.shape[0] - 1, V))

        def fn():
            return _scipy_remap(X, M)
    else:
        try:
            f = _dispatch.resolve("remap_csr", impl)
        except _dispatch.BackendUnavailable as exc:
            pytest.skip(f"{impl}: {exc}")

        def fn():
            return f(*csr, mapping, 5000)
    out = suite.run(benchmark, f"remap_csr {csr[1].size / 1e6:.3g}M nnz V={V}->5000",
                    "fastprob" if impl == "cython" else "peer", fn, anchor=impl == "numpy",
                    rounds=sizes["rounds"], nnz=int(csr[1].size))
    ref = _dispatch.resolve("remap_csr", "numpy")(*csr, mapping, 5000)
    got = (out.indptr, out.indices, out.data) if impl == "scipy-matmul" else out
    for a, b in zip(got, ref):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("impl", ["cython", "python"])
def test_tokenizer(benchmark, sotu_texts, sizes, impl):
    from fastprob import _dispatch
    from fastprob.corpus import english_stopwords

    try:
        cls = _dispatch.resolve("tokenizer", impl)
    except _dispatch.BackendUnavailable as exc:
        pytest.skip(f"{impl}: {exc}")
    stop = english_stopwords()

    def fn():
        tok = cls(min_len=3, stopwords=stop)
        return tok.encode_many(sotu_texts)
    n_chars = sum(map(len, sotu_texts))
    ids, _ = suite.run(benchmark, f"tokenizer sotu {len(sotu_texts)} paragraphs",
                       "fastprob" if impl == "cython" else "peer", fn, anchor=impl == "python",
                       rounds=sizes["rounds"], chars=n_chars)
    ref, _ = _dispatch.resolve("tokenizer", "python")(min_len=3, stopwords=stop).encode_many(sotu_texts[:500])
    np.testing.assert_array_equal(ids[:ref.size], ref)


@pytest.fixture(scope="module")
def sotu_texts(sizes):
    from fastprob.datasets import sotu_records

    texts = [r[2] for r in sotu_records()]
    n = sizes["sotu_paragraphs"]
    return texts[:n] if n else texts


@pytest.mark.parametrize("impl", ["fastprob", "sklearn-CountVectorizer"])
def test_text_to_csr(benchmark, sotu_texts, sizes, impl):
    from fastprob.corpus import build_corpus, english_stopwords
    from fastprob.reference.tokenize import LETTER_CLASS

    stop = english_stopwords()
    if impl == "fastprob":
        def fn():
            return build_corpus(((0, 0.0, t) for t in sotu_texts), min_words=0, verbose=False)
    else:
        from sklearn.feature_extraction.text import CountVectorizer

        def fn():
            cv = CountVectorizer(lowercase=True, token_pattern=f"[{LETTER_CLASS}]{{3,}}", stop_words=stop)
            return cv.fit_transform(sotu_texts), cv
    n_chars = sum(map(len, sotu_texts))
    out = suite.run(benchmark, f"text_to_csr sotu {len(sotu_texts)} paragraphs",
                    "fastprob" if impl == "fastprob" else "peer", fn, anchor=impl != "fastprob",
                    rounds=sizes["rounds"], chars=n_chars)
    # both give the same number of kept tokens (identical counts are checked in tests/)
    n_tok = out.n_tokens if impl == "fastprob" else int(out[0].sum())
    assert n_tok > 0
    benchmark.extra_info["tokens"] = n_tok
