"""Records -> Corpus: tokenization, pruning, time modes, bad input; both backends."""
import datetime as dt
import math
import warnings

import numpy as np
import pytest

from fastprob.corpus import Corpus, CorpusError, build_corpus, english_stopwords

RECORDS = [
    ("ann", "2020-01-01", "apple banana cherry apple the and"),
    ("ann", "2020-01-09", "banana banana durian elderberry apple"),
    ("bob", "2020-01-03", "cherry durian fig apple grape"),
    ("bob", "2020-02-01", "fig fig fig grape grape apple"),
    ("cat", 18300.0, "apple apple banana"),
]


def test_build_basic(backend_mode):
    c = build_corpus(RECORDS, min_words=1, time_mode="absolute", time_width=7.0)
    assert isinstance(c, Corpus) and c.n_docs == 5
    assert "the" not in c.vocab and "and" not in c.vocab
    # vocabulary ordered by decreasing frequency, ties by word
    tf = {w: 0 for w in c.vocab}
    for r in RECORDS:
        for w in r[2].split():
            if w in tf:
                tf[w] += 1
    assert c.vocab == sorted(tf, key=lambda w: (-tf[w], w))
    X = c.to_scipy().toarray()
    assert X[0, c.vocab.index("apple")] == 2 and X[3, c.vocab.index("fig")] == 3
    assert c.author_names == ["ann", "bob", "cat"]
    # absolute weeks from 2020-01-01 (= day 18262); 18300 is day 38 -> week 5
    assert c.time_values.tolist() == [0.0, 1.0, 4.0, 5.0]
    assert c.times.tolist() == [0, 1, 0, 2, 3]


def test_relative_time(backend_mode):
    c = build_corpus(RECORDS, min_words=1, time_mode="relative", time_width=1.0)
    # days since each author's first document
    assert sorted(set(c.time_values.tolist())) == c.time_values.tolist()
    days = c.time_values[c.times]
    assert days.tolist() == [0.0, 8.0, 0.0, 29.0, 0.0]


def test_pruning_and_min_words(backend_mode):
    c = build_corpus(RECORDS, min_words=3, max_features=3, verbose=False)
    assert c.n_words == 3 and c.vocab[0] == "apple"
    assert c.report["vocabulary_before_pruning"] == 7
    assert (c.doc_lengths >= 3).all()
    assert c.report["documents_too_short"] == 5 - c.n_docs
    c2 = build_corpus(RECORDS, min_words=1, min_df=2, max_df=0.5, verbose=False)
    X = c2.to_scipy().toarray() > 0
    assert ((X.sum(0) >= 2) & (X.sum(0) <= 2)).all()


def test_user_tokenizer_and_lemmatizer(backend_mode):
    c = build_corpus(RECORDS, min_words=1, tokenizer=str.split, stopwords=None,
                     lemmatizer=lambda w: "fruit" if w in ("apple", "banana") else w)
    assert "fruit" in c.vocab and "apple" not in c.vocab and "the" in c.vocab
    X = c.to_scipy().toarray()
    assert X[0, c.vocab.index("fruit")] == 3


def test_bad_records_are_counted(backend_mode):
    bad = RECORDS + [
        ("dan", "2020-01-01", ""), ("dan", "2020-01-01", "   \n"),
        ("dan", "2020-01-01", b"\xff\xfe broken"), ("dan", float("nan"), "apple banana"),
        ("dan", None, "apple banana"), ("dan", "not a date", "apple"), (None, 1.0, "apple"),
        ("", 1.0, "apple"), ("only two",),
    ]
    with pytest.warns(UserWarning, match="dropped"):
        c = build_corpus(bad, min_words=1)
    s = c.report["records_skipped"]
    assert s == {"empty_text": 2, "undecodable": 1, "bad_timestamp": 3, "missing_author": 2,
                 "malformed_record": 1}
    assert c.n_docs == 5 and "dan" not in c.author_names
    for r in bad[5:]:
        with pytest.raises(CorpusError):
            build_corpus(RECORDS + [r], errors="raise", min_words=1)


def test_like_builds_compatible_test_set(backend_mode):
    train = build_corpus(RECORDS, min_words=1, time_width=7.0)
    test_records = [("bob", "2020-01-02", "apple kiwi kiwi fig"), ("zed", "2020-01-02", "apple fig"),
                    ("ann", "2031-01-01", "apple fig")]
    with pytest.warns(UserWarning):
        te = build_corpus(test_records, like=train, min_words=1)
    assert te.vocab == train.vocab and te.author_names == train.author_names
    assert te.n_docs == 1 and te.report["out_of_vocabulary_tokens"] == 2
    assert te.report["records_skipped"] == {"unseen_author": 1, "unseen_time_step": 1}
    assert te.times.tolist() == [0]


def test_empty_input(backend_mode):
    c = build_corpus([], verbose=False)
    assert c.n_docs == 0 and c.n_words == 0


def test_stopwords_shipped():
    sw = english_stopwords()
    assert "the" in sw and len(sw) > 100


def test_corpus_validation_errors():
    ok = dict(indptr=[0, 2], indices=[0, 1], counts=[1, 1], authors=[0], times=[0],
              timestamps=[0.0], vocab=["a", "b"], author_names=["x"], time_values=[0.0])
    Corpus(**ok)
    with pytest.raises(CorpusError, match="vocabulary"):
        Corpus(**{**ok, "vocab": ["a"]})
    with pytest.raises(CorpusError, match="CSR arrays disagree"):
        Corpus(**{**ok, "indptr": [0, 3]})
    with pytest.raises(CorpusError, match="author ids"):
        Corpus(**{**ok, "authors": [3]})
    with pytest.raises(CorpusError, match="strictly increasing"):
        Corpus(**{**ok, "time_values": [1.0, 1.0]})


def test_split_holds_out_per_author():
    from fastprob.datasets import make_dap_corpus

    c, _ = make_dap_corpus(n_authors=20, docs_per_author=20, seed=1)
    tr, te = c.split(0.1, seed=3)
    assert tr.n_docs + te.n_docs == c.n_docs
    assert np.bincount(te.authors, minlength=20).tolist() == [2] * 20
    tr2, te2 = c.split(0.1, seed=3)
    np.testing.assert_array_equal(te.timestamps, te2.timestamps)
    with pytest.raises(ValueError):
        c.split(1.5)


def test_iter_batches_cover_all():
    from fastprob.datasets import make_dap_corpus

    c, _ = make_dap_corpus(n_authors=5, docs_per_author=7, seed=2)
    seen = np.concatenate([b.timestamps for b in c.iter_batches(8, seed=0)])
    assert seen.shape[0] == 35
    assert sorted(seen.tolist()) == sorted(c.timestamps.tolist())
