"""Held-out PWLL of DAPPER vs LDA-family baselines at equal training time.

    python -m bench.bench_pwll [--corpus sotu|dap] [--budget 20] [--no-save]

Every model trains on the same training documents for about the same wall-clock budget
(DAPPER's own training time when --budget is 0), then is scored by the same
document-completion code (fastprob.topics.evaluate): each test document's tokens are
split in two halves with a fixed seed, topic proportions are inferred from the observed
half with the model's own inference, and held-out tokens are scored by
log sum_k pi_k beta_kw.  Baselines: gensim LdaModel, scikit-learn
LatentDirichletAllocation, tomotopy LDAModel, CTModel and DTModel (DTM's topics depend
on the time step, so its beta is taken at the document's step).
"""
import argparse
import logging
import time

import warnings

import numpy as np

warnings.filterwarnings("ignore", message="The training result may differ")

from bench.harness import Recorder, pin_threads, print_header
from fastprob.topics.evaluate import split_halves


def _words(c, d):
    s, e = c.indptr[d], c.indptr[d + 1]
    return np.repeat(c.indices[s:e], c.counts[s:e])


def _score(pi, beta_of_doc, held):
    """Mean log-likelihood of held-out tokens; beta_of_doc(d) -> (K, V)."""
    ll, n = 0.0, 0
    for d in range(held.n_docs):
        s, e = held.indptr[d], held.indptr[d + 1]
        if e == s:
            continue
        p = pi[d] @ beta_of_doc(d)[:, held.indices[s:e]]
        ll += float(np.sum(held.counts[s:e] * np.log(np.maximum(p, 1e-300))))
        n += int(held.counts[s:e].sum())
    return ll / n


def _until(budget, step):
    t0 = time.perf_counter()
    n = 0
    while True:
        step()
        n += 1
        if time.perf_counter() - t0 >= budget:
            return time.perf_counter() - t0, n


def run_gensim(tr, obs, held, K, budget):
    from gensim.models import LdaModel

    logging.getLogger("gensim").setLevel(logging.ERROR)
    bow = lambda c: [list(zip(c.indices[c.indptr[d]:c.indptr[d + 1]].tolist(),  # noqa: E731
                              c.counts[c.indptr[d]:c.indptr[d + 1]].tolist())) for d in range(c.n_docs)]
    B = bow(tr)
    m = LdaModel(num_topics=K, id2word={i: w for i, w in enumerate(tr.vocab)}, random_state=0, eval_every=None)
    secs, n = _until(budget, lambda: m.update(B))
    gamma, _ = m.inference(bow(obs))
    pi = gamma / gamma.sum(1, keepdims=True)
    beta = m.get_topics()
    return _score(pi, lambda d: beta, held), secs, f"{n} passes"


def run_sklearn(tr, obs, held, K, budget):
    from sklearn.decomposition import LatentDirichletAllocation

    X = tr.to_scipy()
    m = LatentDirichletAllocation(n_components=K, learning_method="online", max_iter=1,
                                  random_state=0, n_jobs=1)
    secs, n = _until(budget, lambda: m.partial_fit(X))
    pi = m.transform(obs.to_scipy())
    beta = m.components_ / m.components_.sum(1, keepdims=True)
    return _score(pi, lambda d: beta, held), secs, f"{n} online passes"


def tomotopy_model(kind, tr, K, seed=0):
    """A tomotopy LDA / CTM / DTM with the training documents added (DTM: one time point per step)."""
    import tomotopy as tp

    if kind == "DTModel":
        m = tp.DTModel(k=K, t=tr.n_steps, seed=seed)
        for d in range(tr.n_docs):
            m.add_doc([tr.vocab[i] for i in _words(tr, d)], timepoint=int(tr.times[d]))
    else:
        m = getattr(tp, kind)(k=K, seed=seed)
        for d in range(tr.n_docs):
            m.add_doc([tr.vocab[i] for i in _words(tr, d)])
    return m


def tomotopy_score(m, kind, tr, obs, held, K, threads=1):
    """Document-completion PWLL of a trained tomotopy model: topic proportions inferred by
    tomotopy from the observed halves, topic-word matrices mapped back onto fastprob's
    vocabulary (DTM: the matrix of each held-out document's time step)."""
    V = tr.n_words
    pos = {w: i for i, w in enumerate(tr.vocab)}
    cols = np.asarray([pos[w] for w in m.used_vocabs])

    def beta_at(t=None):
        B = np.full((K, V), 1e-12)
        for k in range(K):
            B[k, cols] = m.get_topic_word_dist(k) if t is None else m.get_topic_word_dist(k, timepoint=t)
        return B / B.sum(1, keepdims=True)

    docs = []
    for d in range(obs.n_docs):
        ws = [obs.vocab[i] for i in _words(obs, d) if obs.vocab[i] in pos]
        docs.append(m.make_doc(ws, **({"timepoint": int(obs.times[d])} if kind == "DTModel" else {})))
    dists, _ = m.infer(docs, workers=threads)
    pi = np.asarray([np.asarray(x, dtype=np.float64) for x in dists])
    pi /= pi.sum(1, keepdims=True)
    if kind == "DTModel":
        cache = {}

        def beta_of_doc(d):
            t = int(held.times[d])
            if t not in cache:
                cache[t] = beta_at(t)
            return cache[t]
    else:
        B = beta_at()
        beta_of_doc = lambda d: B  # noqa: E731
    return _score(pi, beta_of_doc, held)


def _tomotopy(kind, tr, obs, held, K, budget, threads):
    m = tomotopy_model(kind, tr, K)
    secs, n = _until(budget, lambda: m.train(10, workers=threads))
    return tomotopy_score(m, kind, tr, obs, held, K, threads), secs, f"{n * 10} Gibbs iterations"


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", choices=["sotu", "dap"], default="sotu")
    ap.add_argument("--topics", type=int, default=25)
    ap.add_argument("--personas", type=int, default=15)
    ap.add_argument("--budget", type=float, default=0, help="seconds per model (0: DAPPER's time)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default="dapper,gensim,sklearn,LDAModel,CTModel,DTModel")
    ap.add_argument("--no-save", action="store_true")
    a = ap.parse_args(argv)
    pin_threads(a.threads)
    h = print_header(f"held-out PWLL at equal training time ({a.corpus})")
    from fastprob.datasets import load_sotu, make_dap_corpus
    from fastprob.topics import DAPPER

    if a.corpus == "sotu":
        c = load_sotu()
    else:
        c, _ = make_dap_corpus(n_authors=200, docs_per_author=30, n_topics=a.topics, n_personas=a.personas,
                               n_words=2000, n_steps=10, doc_length=80, seed=0)
    tr, te = c.split(0.1, seed=0)
    obs, held = split_halves(te, seed=0)
    K = a.topics
    case = f"{a.corpus} K={K} train={tr.n_docs} test={te.n_docs}"
    rec = Recorder("pwll", h)
    models = a.models.split(",")
    t0 = time.perf_counter()
    m = DAPPER(K, a.personas, max_epochs=1000, tol=1e-5, time_budget=a.budget or 30, n_jobs=a.threads,
               random_state=0, progress=False).fit(tr)
    dsecs = time.perf_counter() - t0
    budget = a.budget or dsecs
    dp = m.score(te)
    rec.add(case, "fastprob-DAPPER", "pwll", dp, "nats/tok",
            notes=f"{dsecs:.1f}s, {m.epoch_} epochs, {a.threads} threads, P={a.personas}")
    runs = {"gensim": ("gensim-LdaModel", lambda: run_gensim(tr, obs, held, K, budget)),
            "sklearn": ("sklearn-LDA(online)", lambda: run_sklearn(tr, obs, held, K, budget))}
    for kind in ("LDAModel", "CTModel", "DTModel"):
        runs[kind] = (f"tomotopy-{kind}", lambda kind=kind: _tomotopy(kind, tr, obs, held, K, budget, a.threads))
    for key in models:
        if key == "dapper":
            continue
        name, fn = runs[key]
        try:
            pw, secs, what = fn()
        except Exception as exc:  # a baseline failing must not hide the others; say so
            print(f"   {name} failed: {exc!r}")
            continue
        rec.add(case, name, "pwll", pw, "nats/tok", baseline="fastprob-DAPPER", ratio=None,
                notes=f"{secs:.1f}s, {what}; DAPPER - this = {dp - pw:+.4f}")
    rec.save(not a.no_save)


if __name__ == "__main__":
    main()
