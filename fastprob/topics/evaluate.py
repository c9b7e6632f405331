"""Held-out evaluation by document completion (dapper-model.md section 4).

Each test document's tokens are shuffled with a fixed seed and split into an observed
half and a held-out half.  The local step runs on the observed half with the globals
fixed; each held-out token w is scored by log sum_k pi_k beta_kw with pi = softmax(m) and
beta_k = lambda_k / sum_v lambda_kv.  PWLL is the mean over held-out tokens.
"""
from __future__ import annotations

import numpy as np


_HG_LIMIT = 10**9  # numpy's hypergeometric needs ngood, nbad < 1e9


def _hypergeometric(rng, ngood, nbad, nsample):
    """Vectorized hypergeometric draws; where ``ngood`` or ``nbad`` reach numpy's 1e9 limit,
    the normal approximation (same mean and variance), rounded and clipped to the support.
    At such counts the approximation error is far below one token in a billion."""
    ngood, nbad, nsample = (np.asarray(x, dtype=np.int64) for x in (ngood, nbad, nsample))
    out = np.empty(ngood.shape, dtype=np.int64)
    big = (ngood >= _HG_LIMIT) | (nbad >= _HG_LIMIT)
    small = ~big
    if small.any():
        out[small] = rng.hypergeometric(ngood[small], nbad[small], nsample[small])
    if big.any():
        g, b, m = (x[big].astype(np.float64) for x in (ngood, nbad, nsample))
        N = g + b
        mean = m * g / N
        var = m * (g / N) * (b / N) * (N - m) / np.maximum(N - 1.0, 1.0)
        draw = np.rint(rng.normal(mean, np.sqrt(np.maximum(var, 0.0))))
        lo = np.maximum(0.0, m - b)
        out[big] = np.clip(draw, lo, np.minimum(g, m)).astype(np.int64)
    return out


def split_halves(corpus, seed: int = 0):
    """(observed, held_out) corpora: a seeded random half of each document's tokens.

    The observed half is a uniformly random subset of ``floor(n / 2)`` of a document's
    ``n`` tokens (what shuffling the tokens and taking the first half gives), drawn
    without expanding tokens: word by word, the number taken from a word with ``c``
    tokens is hypergeometric given the tokens still to draw and the tokens left in the
    document's later words.  Memory is O(nnz) whatever the counts (a count of 2e9 used
    to expand into 2e9 token ids).  Documents with fewer than 2 tokens have nothing to
    hold out and are left out of both.
    """
    lengths = corpus.doc_lengths
    keep = np.flatnonzero(lengths >= 2)
    c = corpus.subset(keep)
    lengths = lengths[keep]
    ip = c.indptr
    cnt = c.counts.astype(np.int64)
    nnz_d = np.diff(ip)
    # tokens in the same document after each entry (the "bad" balls of its draw)
    csum = np.cumsum(cnt)
    doc_end = np.repeat(csum[ip[1:] - 1] if c.nnz else np.zeros(0, np.int64), nnz_d)
    rem_after = doc_end - csum
    need = lengths // 2
    obs = np.zeros(c.nnz, dtype=np.int64)
    rng = np.random.default_rng(seed)
    # position k of every document at once (a loop over the longest document's nnz)
    by_len = np.argsort(-nnz_d, kind="stable")  # documents with more than k entries: a prefix
    n_longer = np.searchsorted(-nnz_d[by_len], -np.arange(int(nnz_d.max()) if c.n_docs else 0), side="left")
    for k in range(n_longer.shape[0]):
        docs = by_len[:n_longer[k]]
        pos = ip[docs] + k
        draw = _hypergeometric(rng, cnt[pos], rem_after[pos], need[docs])
        obs[pos] = draw
        need[docs] -= draw
    held = cnt - obs

    def part(take):
        nz = take > 0
        row = np.repeat(np.arange(c.n_docs), nnz_d)
        ptr = np.concatenate([[0], np.cumsum(np.bincount(row[nz], minlength=c.n_docs))])
        return c._with(indptr=ptr, indices=c.indices[nz], counts=take[nz])

    return part(obs), part(held)


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
