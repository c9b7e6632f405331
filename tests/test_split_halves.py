"""Document completion's split into observed / held-out halves, without expanding tokens
(issue 11, case 2): the right distribution, exact totals, seeded, and O(nnz) memory."""
import numpy as np
import pytest
from scipy import stats

from fastprob.corpus import Corpus
from fastprob.datasets import make_dap_corpus
from fastprob.topics import DAPPER, split_halves


def _repeated(counts, n_docs):
    counts = np.asarray(counts)
    V = counts.shape[0]
    return Corpus(np.arange(n_docs + 1) * V, np.tile(np.arange(V), n_docs), np.tile(counts, n_docs),
                  np.zeros(n_docs, int), np.zeros(n_docs, int), np.zeros(n_docs), [f"w{i}" for i in range(V)],
                  ["a"], [0.0])


def _dense(c):
    X = np.zeros((c.n_docs, c.n_words), dtype=np.int64)
    rows = np.repeat(np.arange(c.n_docs), np.diff(c.indptr))
    X[rows, c.indices] = c.counts
    return X


def test_observed_counts_are_hypergeometric():
    """Shuffling a document's 16 tokens and keeping 8: each word's kept count follows
    scipy's hypergeometric law (the oracle), and every document keeps exactly 8."""
    counts = [5, 3, 7, 1]
    c = _repeated(counts, 4000)
    obs, held = split_halves(c, seed=3)
    O, H = _dense(obs), _dense(held)
    np.testing.assert_array_equal(O + H, np.tile(counts, (4000, 1)))
    assert (O.sum(1) == 8).all()
    for j in (0, 2):
        emp = np.bincount(O[:, j], minlength=counts[j] + 1) / 4000
        pmf = stats.hypergeom(16, counts[j], 8).pmf(np.arange(counts[j] + 1))
        assert np.abs(emp - pmf).max() < 0.03, (j, emp, pmf)  # ~4 standard errors


def test_split_is_seeded_and_keeps_document_structure():
    c, _ = make_dap_corpus(n_authors=10, docs_per_author=6, n_topics=3, n_personas=2, n_words=40,
                           n_steps=2, doc_length=30, seed=4)
    a, b = split_halves(c, seed=7), split_halves(c, seed=7)
    np.testing.assert_array_equal(a[0].counts, b[0].counts)
    np.testing.assert_array_equal(a[0].indices, b[0].indices)
    other = split_halves(c, seed=8)[0]
    assert not (other.nnz == a[0].nnz and np.array_equal(other.counts, a[0].counts))
    keep = c.doc_lengths >= 2
    np.testing.assert_array_equal(a[0].doc_lengths, c.doc_lengths[keep] // 2)
    np.testing.assert_array_equal(_dense(a[0]) + _dense(a[1]), _dense(c.subset(keep)))
    assert (a[0].counts > 0).all() and (a[1].counts > 0).all()


def test_huge_counts_do_not_expand_tokens():
    """2e9 tokens per word (expanding would need 16 GB per entry): exact totals, and the
    normal approximation used beyond numpy's 1e9 limit keeps the mean near one half."""
    c = _repeated([2_000_000_000, 1_999_999_999, 7], 50)
    obs, held = split_halves(c, seed=0)
    O = _dense(obs)
    n = 2_000_000_000 + 1_999_999_999 + 7
    assert (O.sum(1) == n // 2).all()
    np.testing.assert_array_equal(O + _dense(held), _dense(c))
    # hypergeometric sd of word 0 is about 11,000 tokens; the mean over 50 documents is within 4 sd/sqrt(50)
    assert abs(O[:, 0].mean() - 2_000_000_000 * (n // 2) / n) < 4 * 11_200 / np.sqrt(50)


def test_score_on_huge_counts():
    c, _ = make_dap_corpus(n_authors=8, docs_per_author=5, n_topics=3, n_personas=2, n_words=30, n_steps=2,
                           doc_length=30, seed=1)
    m = DAPPER(3, 2, max_epochs=1, random_state=0, progress=False).fit(c)
    huge = c._with(counts=np.full(c.nnz, 2_000_000_000, np.int32))
    s = m.score(huge)
    assert np.isfinite(s) and s == pytest.approx(m.score(huge))  # seeded: the same split each call
