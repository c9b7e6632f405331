"""Held-out PWLL against training CPU seconds: DAPPER vs Gibbs LDA (tomotopy LDA, CTM, DTM),
gensim and scikit-learn, on real corpora (this machine's Debian changelogs, glibc's ChangeLogs
from Debian's glibc-source, SOTU).

    python -m bench.bench_pwll_curve [--corpus debian|sotu|glibc] [--topics 25] [--budget 60] [--seed 0]

One thread for every model; time is process CPU time spent in training (scoring excluded),
so the comparison holds on a loaded machine.  Every model is scored by the same
document-completion code: held-out tokens of each test document scored by
log sum_k pi_k beta_kw with pi inferred from the observed half (fastprob.topics.evaluate).
Writes bench/figures/pwll_curve_<corpus>_K<K>.png and appends the final points to
bench/results_pwll_curve.json.
"""
import argparse
import json
import logging
import os
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")
os.environ.setdefault("FASTPROB_PROGRESS", "0")

from bench import real_corpora  # noqa: E402
from bench.bench_pwll import _score, tomotopy_model, tomotopy_score  # noqa: E402
from fastprob.topics.evaluate import split_halves  # noqa: E402


def _curve(step, score, budget):
    pts, cpu = [], 0.0
    while cpu < budget:
        c0 = time.process_time()
        what = step()
        cpu += time.process_time() - c0
        pts.append((cpu, score(), what))
    return pts


def dapper_curve(tr, te, K, P, budget, **kw):
    from fastprob.topics import DAPPER

    kw.setdefault("random_state", 0)
    m = DAPPER(K, P, max_epochs=10_000, tol=0, n_jobs=1, progress=False, **kw)
    state = {"cpu": 0.0}
    pts = []
    # one epoch per fit call, resumed from the previous state (warm starts kept in memory)
    m.max_epochs = 1
    m.fit(tr)
    while True:
        h = m.history_[-1]
        state["cpu"] += h["cpu_seconds"]
        pts.append((state["cpu"], m.score(te), f"{m.epoch_} epochs"))
        if state["cpu"] >= budget or getattr(m, "stop_reason_", None) == "early_stopping":
            # early stopping ends the curve at the restored best epoch (validation time included)
            return pts
        m.max_epochs += 1
        m.fit(tr, resume=True)


def tomotopy_curve(kind, tr, obs, held, K, budget, seed=0):
    m = tomotopy_model(kind, tr, K, seed=seed)
    it = {"n": 0}

    def step():
        m.train(20, workers=1)
        it["n"] += 20
        return f"{it['n']} iterations"

    return _curve(step, lambda: tomotopy_score(m, kind, tr, obs, held, K), budget)


def gensim_curve(tr, obs, held, K, budget):
    from gensim.models import LdaModel

    logging.getLogger("gensim").setLevel(logging.ERROR)
    bow = lambda c: [list(zip(c.indices[c.indptr[d]:c.indptr[d + 1]].tolist(),  # noqa: E731
                              c.counts[c.indptr[d]:c.indptr[d + 1]].tolist())) for d in range(c.n_docs)]
    B, O = bow(tr), bow(obs)
    m = LdaModel(num_topics=K, id2word={i: w for i, w in enumerate(tr.vocab)}, random_state=0, eval_every=None)
    n = {"p": 0}

    def step():
        m.update(B)
        n["p"] += 1
        return f"{n['p']} passes"

    def score():
        gamma, _ = m.inference(O)
        return _score(gamma / gamma.sum(1, keepdims=True), lambda d: m.get_topics(), held)

    return _curve(step, score, budget)


def sklearn_curve(tr, obs, held, K, budget):
    from sklearn.decomposition import LatentDirichletAllocation

    X = tr.to_scipy()
    m = LatentDirichletAllocation(n_components=K, learning_method="online", total_samples=X.shape[0],
                                  random_state=0, n_jobs=1)
    n = {"p": 0}

    def step():
        m.partial_fit(X)
        n["p"] += 1
        return f"{n['p']} passes"

    def score():
        beta = m.components_ / m.components_.sum(1, keepdims=True)
        return _score(m.transform(obs.to_scipy()), lambda d: beta, held)

    return _curve(step, score, budget)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", choices=real_corpora.NAMES, default="debian")
    ap.add_argument("--topics", type=int, default=25)
    ap.add_argument("--personas", type=int, default=10)
    ap.add_argument("--budget", type=float, default=60.0, help="training CPU seconds per model")
    ap.add_argument("--models", default="dapper,LDAModel,CTModel,DTModel,gensim,sklearn",
                    help="comma-separated; also dapper-eb (DAPPER with fit_eta=True) and dapper-es "
                         "(DAPPER with early_stopping=True)")
    ap.add_argument("--seed", type=int, default=0, help="DAPPER's random_state and tomotopy's seed")
    a = ap.parse_args(argv)
    os.environ["NUMBA_NUM_THREADS"] = "1"
    c = real_corpora.load(a.corpus)
    tr, te = real_corpora.split(c)
    obs, held = split_halves(te, seed=0)
    K = a.topics
    print(f"{a.corpus}: {c}; K={K}; budget {a.budget} CPU-s per model, 1 thread")
    curves = {}
    for name in a.models.split(","):
        t0 = time.perf_counter()
        if name == "dapper":
            pts = dapper_curve(tr, te, K, a.personas, a.budget, random_state=a.seed)
            name = f"fastprob DAPPER (P={a.personas})"
        elif name == "dapper-eb":  # empirical-Bayes topic prior
            pts = dapper_curve(tr, te, K, a.personas, a.budget, fit_eta=True, random_state=a.seed)
            name = f"fastprob DAPPER (P={a.personas}, fit_eta)"
        elif name == "dapper-es":  # early stopping on a validation split of the training documents
            pts = dapper_curve(tr, te, K, a.personas, a.budget, early_stopping=True, random_state=a.seed)
            name = f"fastprob DAPPER (P={a.personas}, early_stopping)"
        elif name in ("LDAModel", "CTModel", "DTModel"):
            pts = tomotopy_curve(name, tr, obs, held, K, a.budget, seed=a.seed)
            name = f"tomotopy {name}"
        elif name == "gensim":
            pts = gensim_curve(tr, obs, held, K, a.budget)
            name = "gensim LdaModel"
        else:
            pts = sklearn_curve(tr, obs, held, K, a.budget)
            name = "scikit-learn LDA (online)"
        curves[name] = pts
        best = max(p[1] for p in pts)
        print(f"  {name:32s} final {pts[-1][1]:.4f} at {pts[-1][0]:.1f} CPU-s ({pts[-1][2]}), best {best:.4f}"
              f"  [{time.perf_counter() - t0:.0f} s wall]", flush=True)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, pts in curves.items():
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", label=name)
    ax.set_xlabel("training CPU seconds (1 thread)")
    ax.set_ylabel("held-out PWLL (nats/token, document completion)")
    ax.set_title(f"{a.corpus}: {tr.n_docs} training documents, K = {K}" + (f", seed {a.seed}" if a.seed else ""))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs("bench/figures", exist_ok=True)
    tag = f"_seed{a.seed}" if a.seed else ""
    out = f"bench/figures/pwll_curve_{a.corpus}_K{K}{tag}.png"
    fig.savefig(out, dpi=110)
    print("wrote", out)
    res_path = "bench/results_pwll_curve.json"
    res = json.load(open(res_path)) if os.path.exists(res_path) else {}
    res[f"{a.corpus} K={K}" + (f" seed={a.seed}" if a.seed else "")] = {n: {"final_pwll": p[-1][1], "best_pwll": max(q[1] for q in p),
                                    "cpu_seconds": p[-1][0], "what": p[-1][2]} for n, p in curves.items()}
    with open(res_path, "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
