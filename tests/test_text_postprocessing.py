"""fastprob.text's loop-free ``_sort_features`` / ``_limit_features`` against scikit-learn's
own (the oracle) on tie-heavy corpora: the same selection at the ``max_features`` cut (ties
included), the same vocabulary (order and value types) and the same matrix, for both
vectorizers, both counting paths, with document-frequency limits, binary counts and other
dtypes; and the methods called directly, as scikit-learn calls them."""
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction import text as sk

from fastprob import text as fpt


def _tie_docs(n_docs, n_terms, seed):
    """Documents in which most terms share their total count: each document repeats a few
    terms drawn from a small pool, so many terms end up with equal totals and equal
    document frequencies (the argsort at the max_features cut must break the ties)."""
    rng = np.random.default_rng(seed)
    terms = [f"w{i:03d}{chr(97 + i % 26)}" for i in range(n_terms)]
    docs = []
    for _ in range(n_docs):
        pick = rng.choice(n_terms, size=rng.integers(1, 6), replace=False)
        docs.append(" ".join(terms[j] for j in pick))
    rng.shuffle(docs)
    return docs


def _vocab_items(v):
    return [(k, type(x), int(x)) for k, x in v.vocabulary_.items()]


def _assert_same(a, b, Xa, Xb):
    assert _vocab_items(a) == _vocab_items(b)
    assert type(Xa) is type(Xb) and Xa.shape == Xb.shape and Xa.dtype == Xb.dtype
    assert Xa.indices.dtype == Xb.indices.dtype and Xa.indptr.dtype == Xb.indptr.dtype
    assert np.array_equal(Xa.indptr, Xb.indptr) and np.array_equal(Xa.indices, Xb.indices)
    assert np.array_equal(Xa.data, Xb.data) and Xa.has_sorted_indices == Xb.has_sorted_indices


CONFIGS = [dict(max_features=k) for k in (1, 8, 30, 31, 64, 199)] + [
    dict(max_features=20, min_df=2), dict(max_features=15, max_df=3), dict(max_features=12, binary=True),
    dict(max_features=25, dtype=np.float32), dict(max_features=10, analyzer="char"),  # scikit-learn's counting
    dict(min_df=3), dict(max_df=0.01), dict()]


@pytest.mark.parametrize("kw", CONFIGS, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()) or "defaults")
@pytest.mark.parametrize("cls", ["CountVectorizer", "TfidfVectorizer"])
@pytest.mark.parametrize("seed", [0, 1])
def test_same_as_scikit_learn_on_ties(cls, kw, seed):
    docs = _tie_docs(300, 200, seed)
    a, b = getattr(sk, cls)(**kw), getattr(fpt, cls)(**kw)
    Xa, Xb = a.fit_transform(docs), b.fit_transform(docs)
    _assert_same(a, b, Xa, Xb)


@pytest.mark.parametrize("seed", [0, 1])
def test_the_corpus_has_ties_at_the_cuts(seed):
    """The corpus does what it is for: at these max_features cuts several terms share the
    total count at the cut, some kept and some dropped."""
    tf = np.asarray(sk.CountVectorizer().fit_transform(_tie_docs(300, 200, seed)).sum(0)).ravel()
    desc = np.sort(tf)[::-1]
    for k in (8, 30, 31, 64):
        cut = desc[k - 1]
        assert (tf > cut).sum() < k < (tf >= cut).sum()


def test_methods_called_directly_match_scikit_learns():
    """On a random count matrix with a shuffled vocabulary (values not in insertion order):
    the sorted dict and remapped matrix, then the limited dict and matrix."""
    rng = np.random.default_rng(5)
    n = 400
    X = sp.random(60, n, density=0.05, format="csr", random_state=6, data_rvs=lambda k: rng.integers(1, 4, k))
    X = X.astype(np.int64)
    terms = [f"t{j}" for j in rng.permutation(n)]
    perm = rng.permutation(n)
    ours, theirs = fpt.CountVectorizer(), sk.CountVectorizer()
    v1, v2 = {t: int(perm[i]) for i, t in enumerate(terms)}, {t: int(perm[i]) for i, t in enumerate(terms)}
    Y1, Y2 = ours._sort_features(X.copy(), v1), theirs._sort_features(X.copy(), v2)
    assert [(k, type(x), x) for k, x in v1.items()] == [(k, type(x), x) for k, x in v2.items()]
    assert np.array_equal(Y1.indices, Y2.indices) and Y1.indices.dtype == Y2.indices.dtype
    Z1 = ours._limit_features(Y1, v1, high=40, low=2, limit=50)
    Z2 = theirs._limit_features(Y2, v2, high=40, low=2, limit=50)
    if isinstance(Z2, tuple):  # older scikit-learn: (matrix, removed terms)
        assert Z1[1] == Z2[1]
        Z1, Z2 = Z1[0], Z2[0]
    assert [(k, type(x), int(x)) for k, x in v1.items()] == [(k, type(x), int(x)) for k, x in v2.items()]
    assert (Z1 != Z2).nnz == 0 and Z1.dtype == Z2.dtype and np.array_equal(Z1.indices, Z2.indices)


def test_nothing_left_raises_scikit_learns_error():
    docs = ["aa bb", "cc dd"]  # no term in 2 documents
    with pytest.raises(ValueError) as theirs:
        sk.CountVectorizer(min_df=2).fit(docs)
    with pytest.raises(ValueError) as ours:
        fpt.CountVectorizer(min_df=2).fit(docs)
    assert str(ours.value) == str(theirs.value) and "no terms remain" in str(ours.value)
