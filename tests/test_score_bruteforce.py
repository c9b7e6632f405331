"""DAPPER's held-out score (document completion, PWLL) against a brute-force loop written
here: token by token, words matched by spelling, topics normalized from lambda."""
import math

import numpy as np
import pytest
import scipy.sparse as sp

from fastprob.datasets import make_dap_corpus
from fastprob.topics import DAPPER, split_halves


@pytest.fixture(scope="module")
def fitted():
    c, _ = make_dap_corpus(n_authors=15, docs_per_author=10, n_topics=4, n_personas=2, n_words=60,
                           n_steps=3, doc_length=25, seed=11)
    tr, te = c.split(0.2, seed=2)
    return DAPPER(4, 2, max_epochs=3, tol=0, random_state=0, progress=False).fit(tr), te


def _shuffled_vocab_corpus(te, rng):
    """The same documents under a reversed vocabulary with a word the model never saw, plus a
    one-token document (nothing to hold out: scored in neither half)."""
    X = te.to_scipy().toarray()[:, ::-1]
    extra = rng.integers(0, 3, size=(X.shape[0], 1))
    X = np.vstack([np.hstack([X, extra]), np.eye(1, X.shape[1] + 1, 5, dtype=X.dtype)])
    m = sp.csr_matrix(X)
    m.sort_indices()
    return te._with(indptr=m.indptr, indices=m.indices, counts=m.data, authors=np.append(te.authors, 0),
                    times=np.append(te.times, 0), timestamps=np.append(te.timestamps, 0.0),
                    vocab=list(reversed(te.vocab)) + ["never-seen-word"])


def _brute_force_pwll(model, corpus, seed):
    obs, held = split_halves(corpus, seed)
    # the split itself: each scored document's tokens are divided into floor(n/2) observed
    # and the rest held out, word by word; documents of fewer than 2 tokens are left out
    X = corpus.to_scipy().toarray()
    long_docs = np.flatnonzero(X.sum(1) >= 2)
    O, H = obs.to_scipy().toarray(), held.to_scipy().toarray()
    np.testing.assert_array_equal(O + H, X[long_docs])
    np.testing.assert_array_equal(O.sum(1), X[long_docs].sum(1) // 2)
    assert (O >= 0).all() and (H >= 0).all()
    _, topics = model.transform(obs)  # softmax of each document's posterior mean, observed half only
    lam = np.asarray(model.lambda_, dtype=np.float64)
    where = {w: i for i, w in enumerate(model.vocab_)}
    ll, n = 0.0, 0
    for d in range(held.n_docs):
        for j in range(held.indptr[d], held.indptr[d + 1]):
            word = held.vocab[held.indices[j]]
            if word not in where:  # unknown words are not scored
                continue
            v = where[word]
            p = sum(topics[d, k] * lam[k, v] / lam[k].sum() for k in range(model.n_topics))
            for _ in range(int(held.counts[j])):
                ll += math.log(p)
                n += 1
    return ll / n


def test_score_equals_brute_force_loop(fitted):
    model, te = fitted
    for seed in (0, 1):
        assert model.score(te, seed=seed) == pytest.approx(_brute_force_pwll(model, te, seed), rel=1e-12)


@pytest.mark.filterwarnings("ignore:corpus differs from the training corpus")
def test_score_matches_words_by_spelling(fitted):
    model, te = fitted
    other = _shuffled_vocab_corpus(te, np.random.default_rng(0))
    got = model.score(other, seed=3)
    assert got == pytest.approx(_brute_force_pwll(model, other, 3), rel=1e-12)
