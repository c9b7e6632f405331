"""``fastprob gbnf vae``: train and evaluate a VAE with a boosted flow posterior on binarized
images (digits, Fashion-MNIST; Bernoulli decoder) or gray levels (the LFW subset; discretized
logistic decoder over 256 levels, NLL also in bits/dim)."""
from __future__ import annotations

import json
import os
import time


def add_vae_command(pg):
    v = pg.add_parser("vae", help="VAE with a gradient boosted flow posterior on binarized or gray images")
    v.add_argument("--data", default="digits", choices=list(DATASETS),
                   help="digits, fashion-mnist: dynamically binarized; lfw (100 faces, 70/10/20) or lfw-all "
                        "(200 images, 140/20/40): 256 gray levels, discretized logistic decoder")
    v.add_argument("--components", type=int, default=4, help="C boosted components (1: single-flow VAE)")
    v.add_argument("--depth", type=int, default=2, help="coupling layers per component (0: diagonal Gaussian)")
    v.add_argument("--latent", type=int, default=8)
    v.add_argument("--hidden", type=int, default=128, help="encoder/decoder width")
    v.add_argument("--flow-hidden", type=int, default=64)
    v.add_argument("--epochs", type=int, default=30, help="epochs per boosting component")
    v.add_argument("--finetune-epochs", type=int, default=0, help="epochs per component in the fine-tuning pass")
    v.add_argument("--kl-anneal", type=float, default=5, help="KL annealing epochs (reset each component)")
    v.add_argument("--mitigation", choices=["sample", "batch", "off"], default="sample",
                   help="decoder-shock mitigation: per-sample, whole-batch, or off")
    v.add_argument("--objective", choices=["boosting", "mixture"], default="boosting")
    v.add_argument("--log-prev-floor", type=float, default=-10.0,
                   help="floor on log G_{c-1} in the eq. 4.21 objective (training only; reported)")
    v.add_argument("--batch-size", type=int, default=100)
    v.add_argument("--lr", type=float, default=1e-3)
    v.add_argument("--limit", type=int, default=None, help="use only this many training images")
    v.add_argument("--k", type=int, default=1000, help="importance samples for the test NLL")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--threads", type=int, default=1, help="torch threads")
    v.add_argument("--out", default="runs/gbnf-vae")
    v.set_defaults(fn=cmd_vae)


DATASETS = ("digits", "fashion-mnist", "lfw", "lfw-all")


def load_vae_data(name, seed=0, limit=None):
    """(train, val, test, shape, model kwargs, dynamic_binarize) for ``--data name``.

    Binarized sets come from :func:`load_binarized`; the LFW variants from
    :func:`fastprob.models.vae_data.load_lfw` with a split fixed at seed 0 (``seed`` and
    ``limit`` do not change it)."""
    if name.startswith("lfw"):
        from .vae_data import load_lfw

        xt, xv, xte, shape, n_bins = load_lfw(name, split_seed=0)
        return xt, xv, xte, shape, {"likelihood": "logistic", "n_bins": n_bins}, False
    xt, xv, xte, shape = load_binarized(name, seed, limit)
    return xt, xv, xte, shape, {"likelihood": "bernoulli"}, True


def load_binarized(name, seed=0, limit=None, n_val=200):
    """(train pixel probabilities (N, D) in [0, 1], validation and test binarized once
    with a fixed seed, image shape).  Training images are binarized afresh per batch."""
    import torch

    from ..flows.data import load_images

    train, test, n_bins = load_images(name, seed=seed)
    shape = tuple(train.shape[2:])
    train = train.flatten(1).float() / (n_bins - 1)
    test = test.flatten(1).float() / (n_bins - 1)
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(train.shape[0], generator=g)
    val, train = train[perm[:n_val]], train[perm[n_val:]]
    if limit:
        train, test = train[:limit], test[: max(limit // 5, 200)]
    return train, torch.bernoulli(val, generator=g), torch.bernoulli(test, generator=g), shape


def cmd_vae(a):
    import torch

    from .boosted_vae import BoostedVAE
    from .vae_data import bits_per_dim
    from .vae_plots import plot_images, plot_training_curves
    from .vae_training import fit_boosted_vae

    torch.set_num_threads(a.threads)
    os.makedirs(a.out, exist_ok=True)
    try:
        xt, xv, xte, shape, lik, dynamic = load_vae_data(a.data, a.seed, a.limit)
    except (FileNotFoundError, ImportError) as exc:
        raise SystemExit(f"fastprob: {exc}") from exc
    m = BoostedVAE(xt.shape[1], latent_dim=a.latent, n_components=a.components, depth=a.depth, hidden=a.hidden,
                   flow_hidden=a.flow_hidden, seed=a.seed, **lik)
    ck = os.path.join(a.out, "checkpoint.pt")
    if os.path.exists(ck):
        print(f"resuming from {ck}")
    t0, c0 = time.perf_counter(), time.process_time()
    hist = fit_boosted_vae(m, xt, xv, epochs=a.epochs, finetune_epochs=a.finetune_epochs, batch_size=a.batch_size,
                           lr=a.lr, kl_anneal_epochs=a.kl_anneal, mitigation=a.mitigation, objective=a.objective,
                           log_prev_floor=a.log_prev_floor, dynamic_binarize=dynamic, seed=a.seed, checkpoint=ck)
    train_wall, train_cpu = time.perf_counter() - t0, time.process_time() - c0
    m.save(os.path.join(a.out, "model.pt"))
    t0, c0 = time.perf_counter(), time.process_time()
    ev = m.evaluate(xte, k=a.k)
    eval_wall, eval_cpu = time.perf_counter() - t0, time.process_time() - c0
    if not dynamic:  # gray levels: also in bits per dimension (nats / (D ln 2); discrete 256-level likelihood)
        for key in ("neg_elbo", "nll", "neg_elbo_se", "nll_se"):
            ev[key + "_bpd"] = bits_per_dim(ev[key], xte.shape[1])
    scale = 1.0 if dynamic else 1.0 / (m.n_bins - 1)  # images shown in [0, 1]
    torch.manual_seed(a.seed)
    n = 10
    plot_images([r.numpy() * scale for r in (xte[:n], m.reconstruct(xte[:n]), m.sample(n), m.sample(n))],
                shape, os.path.join(a.out, "reconstructions_samples.png"),
                ["data", "reconstr.", "samples", "samples"])
    plot_training_curves([(f"C={a.components}", hist)], os.path.join(a.out, "training_curve.png"),
                         title=f"boosted VAE on {a.data}: dotted lines = new component / fine-tuning stage")
    ep_boost = [r for r in hist["epochs"] if r["stage"] == "boost"]
    metrics = {"data": a.data, "args": {k: v for k, v in vars(a).items() if k != "fn"},
               "test": ev, "rho": m.posterior.rho.tolist(), "weights": m.posterior.weights().tolist(),
               "rho_updates": hist["rho"], "train_wall_s": train_wall, "train_cpu_s": train_cpu,
               "eval_wall_s": eval_wall, "eval_cpu_s": eval_cpu,
               "mean_epoch_s": sum(r["seconds"] for r in ep_boost) / max(len(ep_boost), 1),
               "history": hist["epochs"]}
    with open(os.path.join(a.out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1)
    print(f"test -ELBO {ev['neg_elbo']:.2f} ± {ev['neg_elbo_se']:.2f}, NLL (IS, k={a.k}) "
          f"{ev['nll']:.2f} ± {ev['nll_se']:.2f} nats"
          + (f" ({ev['nll_bpd']:.4f} ± {ev['nll_se_bpd']:.4f} bits/dim)" if not dynamic else "")
          + f"; rho {[round(r, 3) for r in m.posterior.rho.tolist()]}")
    print(f"wrote {a.out}/metrics.json, model.pt, reconstructions_samples.png, training_curve.png")
