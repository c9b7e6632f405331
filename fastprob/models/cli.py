"""``fastprob gbnf train`` (2-D toys), ``fastprob gbnf match`` (reverse KL on U1..U4) and
``fastprob gbnf vae`` (VAE with a boosted flow posterior, see vae_cli.py)."""
from __future__ import annotations

import json
import os


def add_commands(sub):
    pg = sub.add_parser("gbnf", help="gradient boosted normalizing flows").add_subparsers(dest="sub", required=True)
    t = pg.add_parser("train", help="density estimation on a 2-D toy: single flow vs boosted")
    t.add_argument("--data", default="8gaussians",
                   choices=["8gaussians", "moons", "spirals", "checkerboard", "pinwheel"])
    t.add_argument("--components", type=int, default=4)
    t.add_argument("--mixture", choices=["additive", "multiplicative"], default="additive")
    t.add_argument("--depth", type=int, default=2, help="coupling layers per component")
    t.add_argument("--hidden", type=int, default=64)
    t.add_argument("--epochs", type=int, default=60, help="epochs per component")
    t.add_argument("--n", type=int, default=20000, help="training points")
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", default="runs/gbnf")
    t.set_defaults(fn=cmd_train)
    m = pg.add_parser("match", help="density matching by reverse KL on an energy U1..U4")
    m.add_argument("--energy", default="U1", choices=["U1", "U2", "U3", "U4"])
    m.add_argument("--components", type=int, default=4)
    m.add_argument("--depth", type=int, default=2)
    m.add_argument("--steps", type=int, default=1500)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--out", default="runs/gbnf-match")
    m.set_defaults(fn=cmd_match)
    from .vae_cli import add_vae_command

    add_vae_command(pg)


def _maker(depth, hidden, seed, scale_map="tanh"):
    import torch

    from ..flows import realnvp_vector

    def make(c):
        torch.manual_seed(seed * 1000 + c)
        return realnvp_vector(2, n_layers=depth, hidden=hidden, scale_map=scale_map)

    return make


def cmd_train(a):
    import torch

    from ..datasets.toy2d import sample_toy
    from .gbnf import BoostedFlow
    from .plots import plot_densities

    os.makedirs(a.out, exist_ok=True)
    pts = torch.tensor(sample_toy(a.data, a.n + 2 * 5000, seed=a.seed), dtype=torch.float32)
    x, xv, xt = pts[: a.n], pts[a.n:a.n + 5000], pts[a.n + 5000:]
    b = BoostedFlow(_maker(a.depth, a.hidden, a.seed), a.components, a.mixture)
    b.fit(x, xv, epochs=a.epochs, lr=a.lr, seed=a.seed)
    b.save(os.path.join(a.out, "gbnf.pt"))
    panels = []
    with torch.no_grad():
        test_ll = float(b.log_prob(xt).mean())
        single = float(b.components[0].log_prob(xt).mean())
    for c in range(1, a.components + 1):
        sub = BoostedFlow(b.make_component, c, a.mixture)
        sub.components.extend(b.components[:c])
        sub.set_rho(b.rho[:c].cpu())
        if a.mixture == "multiplicative" and c > 1:
            sub.log_z, sub.log_z_se = sub.estimate_log_z()
        panels.append((f"C={c}", lambda p, s=sub: s.log_prob(p)))
    plot_densities(panels, os.path.join(a.out, "density.png"), data=x.numpy())
    metrics = {"data": a.data, "mixture": a.mixture, "components": a.components, "depth": a.depth,
               "test_loglik": test_ll, "test_loglik_first_component": single, "rho": b.rho.tolist(),
               "log_z": b.log_z, "log_z_se": b.log_z_se, "history": b.history}
    with open(os.path.join(a.out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1)
    print(f"held-out log-likelihood: boosted C={a.components} {test_ll:.4f}, first component alone {single:.4f}")
    print(f"wrote {a.out}/density.png, metrics.json, gbnf.pt")


def cmd_match(a):
    import torch

    from ..datasets.toy2d import energy
    from .density_matching import fit_boosted_reverse_kl
    from .gbnf import BoostedFlow
    from .plots import plot_densities

    os.makedirs(a.out, exist_ok=True)
    u = lambda z: energy(a.energy, z)  # noqa: E731
    # reverse KL samples through the inverse, where an unbounded scale can throw a few
    # samples very far (heavy tails make the KL estimates useless): bounded scale map
    b = BoostedFlow(_maker(a.depth, 64, a.seed, "bounded"), a.components, "additive")
    kls = fit_boosted_reverse_kl(b, u, steps=a.steps, seed=a.seed)
    panels = [("target exp(-U)", lambda p: -u(p))] + [("GBNF", b.log_prob)]
    plot_densities(panels, os.path.join(a.out, "density.png"), lim=4.0)
    with open(os.path.join(a.out, "metrics.json"), "w") as f:
        json.dump({"energy": a.energy, "kl_minus_logZ_per_component": kls, "rho": b.rho.tolist()}, f, indent=1)
    print("KL(q||p) - log Z_p after each component:", " ".join(f"{k:.4f}" for k in kls))
    print(f"wrote {a.out}/density.png, metrics.json")
