"""Held-out evaluation by document completion (dapper-model.md section 4).

Each test document's tokens are shuffled with a fixed seed and split into an observed
half and a held-out half.  The local step runs on the observed half with the globals
fixed; each held-out token w is scored by log sum_k pi_k beta_kw with pi = softmax(m) and
beta_k = lambda_k / sum_v lambda_kv.  PWLL is the mean over held-out tokens.
"""
from __future__ import annotations

import numpy as np

from .. import _dispatch


def split_halves(corpus, seed: int = 0):
    """(observed, held_out) corpora: a seeded random half of each document's tokens.

    Documents with fewer than 2 tokens have nothing to hold out and are left out of both.
    """
    lengths = corpus.doc_lengths
    keep = np.flatnonzero(lengths >= 2)
    c = corpus.subset(keep)
    lengths = lengths[keep]
    tokens = np.repeat(c.indices, c.counts)
    doc = np.repeat(np.arange(c.n_docs), lengths)
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(tokens.shape[0]), doc))  # shuffle within each document
    tokens = tokens[order]
    starts = np.concatenate([[0], np.cumsum(lengths)])
    pos = np.arange(tokens.shape[0]) - starts[doc]
    observed = pos < lengths[doc] // 2
    count = _dispatch.resolve("count_tokens")
    V = corpus.n_words

    def part(mask):
        ptr = np.concatenate([[0], np.cumsum(np.bincount(doc[mask], minlength=c.n_docs))])
        ip, ix, ct = count(tokens[mask], ptr, V)
        return c._with(indptr=ip, indices=ix, counts=ct)

    return part(observed), part(~observed)


def document_completion(model, corpus, seed: int = 0) -> dict:
    """PWLL (and perplexity) of ``model`` on ``corpus`` by document completion."""
    observed, held = split_halves(corpus, seed)
    if held.n_tokens == 0:
        raise ValueError("no held-out tokens: test documents need at least 2 tokens each")
    _, (m, v, tau), _ = model._run_estep(observed, collect=False, keep_locals=True)
    pi = np.exp(m - m.max(axis=1, keepdims=True))
    pi /= pi.sum(axis=1, keepdims=True)
    beta = model.topic_word_
    # map held-out words onto the model's vocabulary (observed/held share the corpus vocab)
    from .align import align

    al = align(model, held, warn=False)
    rows = np.repeat(np.arange(held.n_docs), np.diff(al.indptr))
    p = np.einsum("nk,kn->n", pi[rows], beta[:, al.indices])
    ll = float(np.sum(al.counts * np.log(p)))
    n = int(al.counts.sum())
    return {"pwll": ll / n, "perplexity": float(np.exp(-ll / n)), "held_out_tokens": n,
            "documents": held.n_docs}


def lda_completion_pwll(doc_topic_fn, topic_word, corpus, seed: int = 0) -> float:
    """The same document-completion PWLL for baseline models (LDA from other libraries).

    ``doc_topic_fn(observed_corpus) -> (D, K)`` topic proportions fitted on the observed
    halves; ``topic_word`` (K, V) normalized topics over the corpus vocabulary.
    """
    observed, held = split_halves(corpus, seed)
    pi = np.asarray(doc_topic_fn(observed), dtype=np.float64)
    pi = pi / pi.sum(axis=1, keepdims=True)
    rows = np.repeat(np.arange(held.n_docs), np.diff(held.indptr))
    p = np.einsum("nk,kn->n", pi[rows], topic_word[:, held.indices])
    return float(np.sum(held.counts * np.log(p)) / held.counts.sum())
