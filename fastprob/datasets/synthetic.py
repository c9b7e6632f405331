"""Sample corpora from the DAP generative model (dapper-model.md section 2)."""
from __future__ import annotations

import numpy as np

from .. import _dispatch
from ..corpus import Corpus


def make_dap_corpus(n_authors: int = 50, docs_per_author: int = 20, n_topics: int = 10,
                    n_personas: int = 4, n_words: int = 500, n_steps: int = 8,
                    doc_length: int = 100, eta: float = 0.05, omega: float = 0.1,
                    sigma0: float = 2.0, process_noise: float = 0.2, doc_noise: float = 1.0,
                    irregular_times: bool = False, seed=0):
    """Sample a corpus and return it with the true parameters.

    Parameters
    ----------
    docs_per_author : int
        Each author writes this many documents at uniformly random time steps.
    doc_length : int
        Mean document length (Poisson, at least 1 token).
    eta, omega : float
        Dirichlet concentrations of topics over words and authors over personas (small
        values give sharp, recoverable topics and authors concentrated on one persona).
    sigma0 : float
        Prior std of the first persona state (spreads personas apart).
    process_noise, doc_noise : float
        Brownian-motion variance per unit time, and the document noise variance σ_d².
    irregular_times : bool
        Draw time gaps from Exponential(1) instead of unit gaps.

    Returns
    -------
    corpus : Corpus
    truth : dict
        ``beta`` (K, V) topic-word distributions, ``kappa`` (A, P) author-persona
        distributions, ``alpha`` (T, P, K) persona trajectories, ``persona`` (D,) and
        ``theta`` (D, K) of every document.
    """
    for name, v in (("n_authors", n_authors), ("docs_per_author", docs_per_author),
                    ("n_topics", n_topics), ("n_personas", n_personas), ("n_words", n_words),
                    ("n_steps", n_steps), ("doc_length", doc_length)):
        if int(v) < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")
    rng = np.random.default_rng(seed)
    K, P, V, T, A = n_topics, n_personas, n_words, n_steps, n_authors
    beta = rng.dirichlet(np.full(V, eta), size=K)
    kappa = rng.dirichlet(np.full(P, omega), size=A)
    gaps = rng.exponential(1.0, size=T) if irregular_times else np.ones(T)
    gaps[0] = 1.0
    time_values = np.cumsum(gaps) - 1.0
    alpha = np.empty((T, P, K))
    alpha[0] = rng.normal(0.0, sigma0, size=(P, K))
    for t in range(1, T):
        alpha[t] = alpha[t - 1] + rng.normal(0.0, np.sqrt(process_noise * gaps[t]), size=(P, K))
    D = A * docs_per_author
    authors = np.repeat(np.arange(A, dtype=np.int32), docs_per_author)
    times = rng.integers(0, T, size=D).astype(np.int32)
    # persona of each document from its author's kappa (inverse CDF, vectorized)
    cum = np.cumsum(kappa, axis=1)[authors]
    persona = np.minimum((cum < rng.random(D)[:, None]).sum(axis=1), P - 1)
    theta = alpha[times, persona] + rng.normal(0.0, np.sqrt(doc_noise), size=(D, K))
    pi = np.exp(theta - theta.max(axis=1, keepdims=True))
    pi /= pi.sum(axis=1, keepdims=True)
    lengths = np.maximum(rng.poisson(doc_length, size=D), 1)
    topic_counts = rng.multinomial(lengths, pi)  # (D, K)
    # words topic by topic, then regrouped by document
    doc_of, word_of = [], []
    for k in range(K):
        nk = topic_counts[:, k]
        doc_of.append(np.repeat(np.arange(D, dtype=np.int64), nk))
        word_of.append(rng.choice(V, size=int(nk.sum()), p=beta[k]).astype(np.int32))
    doc_of = np.concatenate(doc_of)
    word_of = np.concatenate(word_of)
    order = np.argsort(doc_of, kind="stable")
    tokens = word_of[order]
    doc_ptr = np.zeros(D + 1, dtype=np.int64)
    np.cumsum(lengths, out=doc_ptr[1:])
    indptr, indices, counts = _dispatch.resolve("count_tokens")(tokens, doc_ptr, V)
    corpus = Corpus(indptr, indices, counts, authors, times, time_values[times],
                    [f"w{v}" for v in range(V)], [f"author{a}" for a in range(A)], time_values,
                    time_mode="absolute", time_width=1.0,
                    report={"source": "make_dap_corpus", "seed": seed if isinstance(seed, int) else None})
    truth = dict(beta=beta, kappa=kappa, alpha=alpha, persona=persona, theta=theta,
                 doc_noise=doc_noise, process_noise=process_noise)
    return corpus, truth
