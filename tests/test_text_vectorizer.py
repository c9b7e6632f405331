"""fastprob.text.CountVectorizer / TfidfVectorizer against scikit-learn (the oracle): identical
vocabulary (order included) and matrices (dtype, index dtypes, sorted indices) on tricky
Unicode text; the compiled word counter against its Python reference and ``re.findall``."""
import re

import numpy as np
import pytest
from sklearn.feature_extraction import text as sk

from conftest import compiled_available
from fastprob import text as fpt
from fastprob.compat import counters, reset_counters
from fastprob.reference.word_counts import WordCounter as RefCounter

# letters of several scripts, digits, underscore, a combining mark, non-word symbols,
# astral letters (mathematical bold), a Roman numeral (numeric), typographic punctuation
POOL = list("abcdeABCDE019_ ,.;-'\n\t") + ["é", "É", "ß", "ǅ", "Σ", "ς", "д", "日本", "\u0301", "½", "²", "\u2160",
                                          "𝐀", "𝐛", "\u2019", "\u00a0", "\u3000", "٣", "—", "İ"]


def _docs(n, seed):
    rng = np.random.default_rng(seed)
    words = ["".join(rng.choice(POOL, size=rng.integers(1, 7))) for _ in range(300)]
    return [" ".join(rng.choice(words, size=rng.integers(0, 40))) for _ in range(n)]


def _assert_same(Xa, Xb):
    assert type(Xa) is type(Xb)
    assert Xa.shape == Xb.shape and Xa.dtype == Xb.dtype
    assert Xa.indices.dtype == Xb.indices.dtype and Xa.indptr.dtype == Xb.indptr.dtype
    assert np.array_equal(Xa.indptr, Xb.indptr) and np.array_equal(Xa.indices, Xb.indices)
    assert np.array_equal(Xa.data, Xb.data)
    assert Xa.has_sorted_indices == Xb.has_sorted_indices


CONFIGS = [dict(), dict(stop_words="english"), dict(stop_words=["ab", "é", "日本"], lowercase=False),
           dict(max_features=40), dict(min_df=2, max_df=0.3), dict(binary=True, dtype=np.float32),
           dict(token_pattern=r"(?u)\b\w+\b"), dict(token_pattern=r"\b\w\w+\b", max_features=25, min_df=3),
           dict(vocabulary=["ab", "cd", "𝐀𝐛", "zz", "é1"]), dict(vocabulary={"dd": 1, "ab": 0}, stop_words=["ab"])]


@pytest.mark.parametrize("kw", CONFIGS)
@pytest.mark.parametrize("cls", ["CountVectorizer", "TfidfVectorizer"])
def test_identical_to_sklearn(backend_mode, cls, kw):
    if cls == "TfidfVectorizer" and kw.get("dtype") is np.float32:
        kw = dict(kw, dtype=np.float64)
    docs, new = _docs(150, 1), _docs(40, 2)
    a, b = getattr(sk, cls)(**kw), getattr(fpt, cls)(**kw)
    reset_counters()
    Xa, Xb = a.fit_transform(docs), b.fit_transform(docs)
    _assert_same(Xa, Xb)
    assert list(a.vocabulary_.items()) == list(b.vocabulary_.items())
    _assert_same(a.transform(new), b.transform(new))
    assert np.array_equal(a.get_feature_names_out(), b.get_feature_names_out())
    c = counters()[b._adapter]
    assert c["fast"] == 2 and c["fallback"] == 0, c


def test_fit_then_transform_and_generators():
    docs = _docs(60, 3)
    a, b = sk.CountVectorizer(), fpt.CountVectorizer()
    a.fit(iter(docs))
    b.fit(iter(docs))
    _assert_same(a.transform(iter(docs)), b.transform(iter(docs)))


@pytest.mark.parametrize("kw,reason", [(dict(ngram_range=(1, 2)), "ngram_range"), (dict(analyzer="char"), "analyzer"),
                                       (dict(strip_accents="unicode"), "strip_accents"),
                                       (dict(token_pattern=r"[a-z]+"), "token_pattern"),
                                       (dict(tokenizer=str.split, token_pattern=None), "tokenizer")])
def test_unsupported_configurations_defer_to_sklearn(kw, reason):
    docs = _docs(50, 4)
    reset_counters()
    a, b = sk.CountVectorizer(**kw), fpt.CountVectorizer(**kw)
    _assert_same(a.fit_transform(docs), b.fit_transform(docs))
    c = counters()["sklearn.CountVectorizer"]
    assert c["fast"] == 0 and c["fallback"] == 1 and reason in next(iter(c["reasons"])), c


def test_errors_are_sklearns():
    with pytest.raises(ValueError, match="empty vocabulary"):
        fpt.CountVectorizer(stop_words=["ab"]).fit(["ab ab", "a b"])
    with pytest.raises(ValueError, match="np.nan is an invalid document"):
        fpt.CountVectorizer().fit(["ab cd", np.nan])
    with pytest.raises(ValueError, match="string object received"):
        fpt.CountVectorizer().fit_transform("ab cd")


@pytest.mark.skipif(not compiled_available("word_counts", "cython"), reason="Cython extension not built")
@pytest.mark.parametrize("min_len", [1, 2, 3])
def test_compiled_counter_matches_reference_and_re(min_len):
    from fastprob._csrc.word_counts import WordCounter

    docs = _docs(200, 5) + ["", "_", "a_b", "x" * 5000, "\ud800ab cd"]  # a lone surrogate separates
    stop = ["ab", "日本"]
    c, r = WordCounter(min_len, stop), RefCounter(min_len, stop)
    got, want = c.count(docs), r.count(docs)
    for u, v in zip(got, want):
        assert u.dtype == v.dtype and np.array_equal(u, v)
    assert c.words == r.words
    # the tokens are re.findall's, in first-seen order
    pat = re.compile(r"(?u)\b\w{%d,}\b" % min_len)
    seen = {}
    for d in docs:
        for t in pat.findall(d):
            if t not in stop:
                seen.setdefault(t, len(seen))
    assert c.words == list(seen)
    fixed = {"ab": 0, "cd": 1, "𝐀𝐛": 2}
    got = WordCounter(min_len, stop, fixed).count(docs)
    want = RefCounter(min_len, stop, fixed).count(docs)
    for u, v in zip(got, want):
        assert np.array_equal(u, v)


def test_reference_counter_bad_input():
    with pytest.raises(ValueError, match="min_len"):
        RefCounter(0)
    with pytest.raises(ValueError, match="vocabulary index"):
        RefCounter(2, (), {"ab": -1})


def test_backends_report_lists_the_adapters():
    from fastprob.compat._report import adapter_report

    rows = dict(adapter_report())
    assert "fast path" in rows["sklearn.CountVectorizer"]
    for name in ("nflows.AffineCouplingTransform", "normflows.AffineCouplingBlock"):
        if name in rows:  # present when the [compat] extra is installed
            assert "fast path" in rows[name], rows
