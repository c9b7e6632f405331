"""Put a corpus in a fitted model's terms: word ids, author rows and time rows.

Training corpora map one to one.  For other corpora: words are matched by spelling
(unknown words dropped), authors by name (unknown authors use the Dirichlet prior of
kappa) and time steps by value (steps outside the training ones use the Brownian-motion
prediction from the nearest earlier training step, or the first one, with the variance
grown by process_noise * gap).  Every fallback is counted and reported.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.special import digamma

from .. import _dispatch


@dataclass
class Aligned:
    indptr: np.ndarray
    indices: np.ndarray
    counts: np.ndarray
    authors: np.ndarray      # rows of elogk
    times: np.ndarray        # rows of alpha / alpha_sq
    elogk: np.ndarray        # (A', P)
    alpha: np.ndarray        # (T', P, K)
    alpha_sq: np.ndarray     # (T', P)
    notes: dict = field(default_factory=dict)


def align(model, corpus, warn: bool = True) -> Aligned:
    K, P = model.n_topics, model.n_personas
    elogk = model._elogk()
    alpha, var = model.alpha_, model.alpha_var_
    notes = {}
    indptr, indices, counts = corpus.indptr, corpus.indices, corpus.counts
    if corpus.vocab is not model.vocab_ and list(corpus.vocab) != list(model.vocab_):
        known = {w: i for i, w in enumerate(model.vocab_)}
        mapping = np.asarray([known.get(w, -1) for w in corpus.vocab], dtype=np.int32).reshape(-1)
        dropped = int(counts[mapping[indices] < 0].sum()) if indices.size else 0
        indptr, indices, counts = _dispatch.resolve("remap_csr")(indptr, indices, counts, mapping,
                                                                 len(model.vocab_))
        notes["unknown_word_tokens_dropped"] = dropped
    # authors
    if list(corpus.author_names) == list(model.author_names_):
        authors = corpus.authors
    else:
        known = {a: i for i, a in enumerate(model.author_names_)}
        amap = np.asarray([known.get(a, -1) for a in corpus.author_names], dtype=np.int64).reshape(-1)
        authors = amap[corpus.authors] if corpus.n_docs else corpus.authors
        unseen = authors < 0
        if unseen.any():
            notes["documents_by_unseen_authors"] = int(unseen.sum())
            prior = digamma(model.omega_) - digamma(P * model.omega_)
            elogk = np.vstack([elogk, np.full((1, P), prior)])
            authors = np.where(unseen, elogk.shape[0] - 1, authors)
    # time steps
    tv = model.time_values_
    ctv = corpus.time_values
    if ctv.shape == tv.shape and np.array_equal(ctv, tv):
        times = corpus.times
        alpha_x, var_x = alpha, var
    else:
        pos = np.searchsorted(tv, ctv)
        exact = (pos < tv.shape[0]) & (tv[np.minimum(pos, tv.shape[0] - 1)] == ctv)
        tmap = np.where(exact, pos, -1)
        extra_a, extra_v = [], []
        for i in np.flatnonzero(~exact):
            j = max(pos[i] - 1, 0)  # nearest earlier step (or the first)
            gap = abs(ctv[i] - tv[j])
            extra_a.append(alpha[j])
            extra_v.append(var[j] + model.process_noise * gap)
            tmap[i] = tv.shape[0] + len(extra_a) - 1
        times = tmap[corpus.times] if corpus.n_docs else corpus.times
        alpha_x, var_x = alpha, var
        if extra_a:
            alpha_x = np.concatenate([alpha, np.stack(extra_a)])
            var_x = np.concatenate([var, np.stack(extra_v)])
            n_out = int(np.isin(corpus.times, np.flatnonzero(~exact)).sum())
            if n_out:
                notes["documents_outside_training_time_steps"] = n_out
    alpha_sq = np.einsum("tpk,tpk->tp", alpha_x, alpha_x) + K * var_x
    if notes and warn:
        msg = ", ".join(f"{k}={v}" for k, v in notes.items())
        warnings.warn(f"corpus differs from the training corpus; using priors where needed: {msg}",
                      stacklevel=3)
    return Aligned(np.ascontiguousarray(indptr, np.int64), np.ascontiguousarray(indices, np.int32),
                   np.ascontiguousarray(counts), np.ascontiguousarray(authors, np.int64),
                   np.ascontiguousarray(times, np.int64), np.ascontiguousarray(elogk),
                   np.ascontiguousarray(alpha_x), np.ascontiguousarray(alpha_sq), notes)
