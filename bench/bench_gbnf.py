"""GBNF experiments: 2-D toys (thesis figures 14-15), tabular data (table 7), cost.

    python -m bench.bench_gbnf toys    [--epochs 30] [--no-save]
    python -m bench.bench_gbnf tabular [--epochs 60] [--no-save]
    python -m bench.bench_gbnf cost    [--no-save]
    python -m bench.bench_gbnf match   [--steps 1500] [--no-save]

toys: held-out log-likelihood of single RealNVPs with K = 1, 2, 4, 8 blocks (a block is
two couplings, one per half) against additive GBNF with C = 4 and 8 components of K = 1
block each, on 8gaussians, moons, spirals, checkerboard and pinwheel; density PNGs in
bench/figures/.  tabular: RealNVP vs boosted RealNVP and Glow vs boosted Glow (C = 4) on
data sets scikit-learn ships (breast cancer, 30-D; diabetes, 10-D; wine, 13-D),
standardized, 70/15/15 split, mean +- std over 3 seeds.  cost: seconds per component
and sampling throughput against a single flow of equal total depth.
"""
import argparse
import os
import time

import numpy as np
import torch

from bench.harness import Recorder, pin_threads, print_header
from fastprob.datasets.toy2d import TOYS, sample_toy
from fastprob.flows import glow_vector, realnvp_vector
from fastprob.models import BoostedFlow
from fastprob.models.plots import plot_densities

FIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "figures")


def train_single(flow, x, xv, epochs, lr=1e-3, batch=256, seed=0):
    """Maximum likelihood for ``epochs`` epochs (a one-component BoostedFlow is the plain flow)."""
    b = BoostedFlow(lambda c: flow, 1)
    b.fit(x, xv, epochs=epochs, lr=lr, batch_size=batch, seed=seed, progress=False)
    return b


def toys(a, rec):
    os.makedirs(FIG, exist_ok=True)
    for name in TOYS:
        pts = torch.tensor(sample_toy(name, a.n + 10000, seed=0), dtype=torch.float32)
        x, xv, xt = pts[: a.n], pts[a.n:a.n + 5000], pts[a.n + 5000:]
        panels = []
        for K in (1, 2, 4, 8):
            torch.manual_seed(0)
            m = train_single(realnvp_vector(2, n_layers=2 * K, hidden=a.hidden), x, xv, a.epochs)
            with torch.no_grad():
                ll = float(m.log_prob(xt).mean())
            rec.add(f"{name}", f"RealNVP K={K}", "test_loglik", ll, "nats")
            panels.append((f"RealNVP K={K}\n{ll:.3f}", m.log_prob))
        for C in (4, 8):
            def make(c):
                torch.manual_seed(c)
                return realnvp_vector(2, n_layers=2, hidden=a.hidden)

            b = BoostedFlow(make, C).fit(x, xv, epochs=a.epochs, seed=0, progress=False)
            with torch.no_grad():
                ll = float(b.log_prob(xt).mean())
            rec.add(f"{name}", f"GBNF C={C} (K=1 each)", "test_loglik", ll, "nats",
                    notes="rho=" + ",".join(f"{r:.2f}" for r in b.rho.tolist()))
            panels.append((f"GBNF C={C}\n{ll:.3f}", b.log_prob))
        plot_densities(panels, os.path.join(FIG, f"gbnf_{name}.png"), data=x.numpy())


def _tabular(name):
    from sklearn import datasets

    X = {"breast_cancer": datasets.load_breast_cancer, "diabetes": datasets.load_diabetes,
         "wine": datasets.load_wine}[name]().data.astype(np.float32)
    return X


def tabular(a, rec):
    for name in ("breast_cancer", "diabetes", "wine"):
        X = _tabular(name)
        res = {}
        for seed in range(3):
            rng = np.random.default_rng(seed)
            perm = rng.permutation(X.shape[0])
            n1, n2 = int(0.7 * len(perm)), int(0.85 * len(perm))
            tr, va, te = X[perm[:n1]], X[perm[n1:n2]], X[perm[n2:]]
            mu, sd = tr.mean(0), tr.std(0) + 1e-6
            tr, va, te = [torch.tensor((v - mu) / sd) for v in (tr, va, te)]
            D = X.shape[1]
            builders = {"RealNVP": lambda c: realnvp_vector(D, n_layers=4, hidden=a.hidden),
                        "Glow": lambda c: glow_vector(D, depth=2, hidden=a.hidden, seed=c)}
            for kind, mk in builders.items():
                def make(c, mk=mk, seed=seed):
                    torch.manual_seed(seed * 100 + c)
                    return mk(c)

                for C in (1, 4):
                    try:
                        b = BoostedFlow(make, C).fit(tr, va, epochs=a.epochs, batch_size=64, lr=a.lr, seed=seed,
                                                     progress=False)
                        with torch.no_grad():
                            ll = float(b.log_prob(te).mean())
                    except FloatingPointError:  # a diverged run is reported, not hidden
                        ll = float("nan")
                    res.setdefault(f"{kind} C={C}", []).append(ll)
        for k, v in res.items():
            rec.add(f"{name} ({X.shape[0]}x{X.shape[1]})", ("boosted " if "C=4" in k else "") + k, "test_loglik",
                    float(np.mean(v)), "nats", notes=f"std {np.std(v):.3f} over 3 seeds: " +
                    ",".join(f"{x:.3f}" for x in v))


def cost(a, rec):
    pts = torch.tensor(sample_toy("moons", 20000, seed=0), dtype=torch.float32)
    x, xv = pts[:15000], pts[15000:]
    C = 4

    def make(c):
        torch.manual_seed(c)
        return realnvp_vector(2, n_layers=2, hidden=a.hidden)

    t0 = time.perf_counter()
    b = BoostedFlow(make, C).fit(x, xv, epochs=5, seed=0, progress=False)
    tb = time.perf_counter() - t0
    t0 = time.perf_counter()
    s = train_single(realnvp_vector(2, n_layers=2 * C, hidden=a.hidden), x, xv, 5 * C)
    ts = time.perf_counter() - t0
    rec.add("moons, 5 epochs/component", f"GBNF C={C}", "s/component", tb / C, "s")
    rec.add("moons, same total epochs", f"RealNVP depth {2 * C}", "s/(5 epochs)", ts / C, "s",
            baseline=f"GBNF C={C}", ratio=(tb / C) / (ts / C))
    for label, model in ((f"GBNF C={C}", b), (f"RealNVP depth {2 * C}", s)):
        t0 = time.perf_counter()
        n = 0
        while time.perf_counter() - t0 < 2.0:
            model.sample(10000, seed=n)
            n += 1
        rate = n * 10000 / (time.perf_counter() - t0)
        rec.add("sampling", label, "samples/s", rate, "1/s")


def match(a, rec):
    """Density matching by reverse KL on U1..U4: one flow vs an additive GBNF of C = 4."""
    from fastprob.datasets.toy2d import ENERGIES, energy
    from fastprob.models import fit_boosted_reverse_kl, fit_flow_reverse_kl

    os.makedirs(FIG, exist_ok=True)
    for name in ENERGIES:
        u = lambda z, name=name: energy(name, z)  # noqa: E731

        def make(c):
            torch.manual_seed(c)
            return realnvp_vector(2, n_layers=2, hidden=a.hidden, scale_map="bounded")

        kl1 = fit_flow_reverse_kl(make(0), u, steps=a.steps)
        b = BoostedFlow(make, 4)
        kls = fit_boosted_reverse_kl(b, u, steps=a.steps)
        rec.add(name, "RealNVP 2 couplings", "KL - logZ", kl1, "nats")
        rec.add(name, "GBNF C=4 of 2 couplings", "KL - logZ", kls[-1], "nats",
                notes="after each component: " + ",".join(f"{k:.3f}" for k in kls) +
                "; rho=" + ",".join(f"{r:.2f}" for r in b.rho.tolist()))
        plot_densities([("target", lambda p: -u(p)), ("GBNF C=4", b.log_prob)],
                       os.path.join(FIG, f"gbnf_match_{name}.png"), lim=4.0)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["toys", "tabular", "cost", "match"])
    ap.add_argument("--steps", type=int, default=1500, help="reverse-KL steps per flow / component")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--no-save", action="store_true")
    a = ap.parse_args(argv)
    pin_threads(2)
    h = print_header(f"GBNF {a.what}")
    rec = Recorder(f"gbnf_{a.what}", h)
    {"toys": toys, "tabular": tabular, "cost": cost, "match": match}[a.what](a, rec)
    rec.save(not a.no_save)


if __name__ == "__main__":
    main()
