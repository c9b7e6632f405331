"""Training and evaluation of compressive flows on image sets, and compression of an already
trained flow (``fastprob flows train --compress ...``, ``fastprob flows compress``).

bits/dim always divides by the dimension of the *data* (C H W), never by the latent size
(flows-model.md section 1; the thesis' erratum).
"""
from __future__ import annotations

import json
import math
import os
import time

import numpy as np
import torch

from .._io import atomic_torch_save
from .compressive import CompressiveFlow, SliceStep, intermixed_flow, latent_size
from .data import load_images
from .maxpool import MaxPoolStep, maxpool_count
from .ppca import PPCAStep
from .preprocess import UniformDequantizer, VariationalDequantizer, bits_per_dim
from .train import build_model, evaluate_bpd, save_sample_grid
from .vae_steps import LinearVAEStep, VAEStep

KINDS = ("none", "slice", "ppca", "linear-vae", "vae", "intermixed", "maxpool")


def build_compressive(kind, shape, fraction, hidden=64, depth=3, vae_hidden=(256, 128), model="realnvp",
                      pool_hidden=None):
    """A RealNVP or Glow bijective part (fastprob's multi-scale builders) followed by one
    compressive step of the given kind, or the intermixed architecture (RealNVP-style
    couplings); ``none`` is the plain flow.  ``maxpool``: the flow's latent read in the data's
    image shape, then one 2x2 max-pool surjection per factor 4 (fraction 0.25: one, 0.0625 or
    0.06: two), each with a conv scale net of width ``pool_hidden`` (default ``hidden``; 0:
    per-channel scales only)."""
    if kind not in KINDS:
        raise ValueError(f"unknown compression {kind!r}; choose one of {', '.join(KINDS)}")
    if kind == "intermixed":
        return intermixed_flow(shape, fraction, n_couplings=depth, hidden=hidden)
    n_pools = maxpool_count(fraction) if kind == "maxpool" else 0  # refuse a bad fraction before building
    bij = build_model(model, shape, hidden, depth)
    if kind == "maxpool":
        steps, s = [], tuple(shape)
        for i in range(n_pools):
            steps.append(MaxPoolStep(s, hidden=hidden if pool_hidden is None else pool_hidden, seed=i))
            s = steps[-1].z_shape
        return CompressiveFlow([bij] + steps, shape)
    if kind == "none":
        return CompressiveFlow([bij], shape)
    D = int(math.prod(shape))
    d = latent_size(D, fraction)
    step = {"slice": lambda: SliceStep(D, d), "ppca": lambda: PPCAStep(D, d),
            "linear-vae": lambda: LinearVAEStep(D, d), "vae": lambda: VAEStep(D, d, hidden=vae_hidden)}[kind]()
    return CompressiveFlow([bij, step], shape)


@torch.no_grad()
def _latents(model, dq, pixels, seed=0, batch_size=512):
    """z' (input of the first compressive step) for every image, with seeded dequantization."""
    g = torch.random.fork_rng()
    with g:
        torch.manual_seed(seed)
        return torch.cat([model.compressed_input(dq(pixels[i:i + batch_size])[0])[0]
                          for i in range(0, pixels.shape[0], batch_size)])


@torch.no_grad()
def evaluate_iw(model, pixels, n_bins, k=100, seed=0, batch_size=128):
    """Mean test bits/dim from the importance-weighted bound with k samples."""
    g = torch.random.fork_rng()
    dq = UniformDequantizer(n_bins)
    with g:
        torch.manual_seed(seed)
        dim = int(np.prod(pixels.shape[1:]))
        tot = 0.0
        for i in range(0, pixels.shape[0], batch_size):
            x, _ = dq(pixels[i:i + batch_size])
            tot += float(bits_per_dim(model.log_prob_iw(x, k), dim, n_bins).sum())
    return tot / pixels.shape[0]


def train_compressive(data="digits", compress="ppca", latent_fraction=0.25, epochs=20, batch_size=64, lr=1e-3,
                      hidden=64, depth=3, anneal_epochs=None, dual_base=None, refit_ppca=True, iw_samples=0,
                      seed=0, limit=None, out=None, grad_clip=100.0, model="realnvp", log=None, pool_hidden=None):
    """Train a compressive flow with maximum likelihood (or its bound) and report test bits/dim.

    Parameters
    ----------
    compress : "none" | "slice" | "ppca" | "linear-vae" | "vae" | "intermixed" | "maxpool"
    latent_fraction : float
        d / D of the final latent (ignored for "none"; 0.25 or 0.0625 for "maxpool").
    anneal_epochs : int, optional
        alpha of the dual-base objective rises linearly 0 -> 1 over this many epochs
        (default: half of ``epochs``).
    dual_base : bool, optional
        Train with the corrected eq. 5.6 (default: for every kind but "none", "slice" and
        "maxpool", whose likelihood is exact and needs no warm-up).
    refit_ppca : bool
        After each epoch refit the PPCA step in closed form on the training latents.
    iw_samples : int
        Also report the importance-weighted bits/dim with this many samples (stochastic steps).
    pool_hidden : int, optional
        Width of the max-pool steps' scale net (default ``hidden``; 0: per-channel scales).

    Returns
    -------
    (model, metrics dict)
    """
    torch.manual_seed(seed)
    t0, c0 = time.perf_counter(), time.process_time()
    tr, te, n_bins = load_images(data, seed=seed, limit=limit)
    shape = tuple(tr.shape[1:])
    D = int(np.prod(shape))
    kind = model
    model = build_compressive(compress, shape, latent_fraction, hidden, depth, model=kind, pool_hidden=pool_hidden)
    dq = UniformDequantizer(n_bins)
    if dual_base is None:
        dual_base = compress not in ("none", "slice", "maxpool")
    n_batches = -(-tr.shape[0] // batch_size)
    anneal_steps = (epochs // 2 if anneal_epochs is None else anneal_epochs) * n_batches
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    step, history = 0, []
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(tr.shape[0])
        tot = 0.0
        for i in range(0, tr.shape[0], batch_size):
            x, _ = dq(tr[perm[i:i + batch_size]])
            alpha = min(1.0, step / anneal_steps) if anneal_steps > 0 else 1.0
            obj = model.dual_base_objective(x, alpha) if dual_base else model.log_prob(x)
            loss = -obj.mean() / (D * math.log(2))
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss at epoch {epoch + 1} ({compress}); lower the learning rate")
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            opt.step()
            step += 1
            tot += float(loss.detach()) * x.shape[0]
        if compress == "ppca" and refit_ppca:
            model.eval()
            model.layers[-1].fit(_latents(model, dq, tr, seed=epoch).to(torch.float32))
        rec = {"epoch": epoch + 1, "alpha": alpha, "train_objective": tot / tr.shape[0],
               "test_bpd": evaluate_bpd(model, dq, te, n_bins)}
        history.append(rec)
        if log is not None:
            log(f"{compress} f={latent_fraction} epoch {epoch + 1}: test bits/dim {rec['test_bpd']:.4f}")
    metrics = {"config": dict(data=data, model=kind, compress=compress, latent_fraction=latent_fraction, epochs=epochs,
                              batch_size=batch_size, lr=lr, hidden=hidden, depth=depth, seed=seed,
                              dual_base=dual_base, anneal_epochs=anneal_steps // n_batches,
                              **({} if pool_hidden is None else {"pool_hidden": pool_hidden})),
               "data_dim": D, "latent_dim": model.latent_dim, "kept_fraction": model.latent_dim / D,
               "test_bpd": history[-1]["test_bpd"] if history else math.nan,
               "exact": compress in ("none", "slice", "ppca", "maxpool"),
               "n_params": sum(p.numel() for p in model.parameters()), "history": history,
               "test_images": int(te.shape[0])}
    if iw_samples and compress in ("vae", "intermixed"):
        metrics["test_bpd_iw"] = evaluate_iw(model, te, n_bins, iw_samples)
        metrics["iw_samples"] = iw_samples
    if compress == "linear-vae":  # the decoder's exact marginal: the ELBO's gap is the encoder's fault
        exact_model = CompressiveFlow([model.layers[0], model.layers[1].as_ppca()], shape)
        metrics["test_bpd_exact_marginal"] = evaluate_bpd(exact_model, dq, te, n_bins)
    metrics["seconds"] = time.perf_counter() - t0
    metrics["cpu_seconds"] = time.process_time() - c0
    if out:
        os.makedirs(out, exist_ok=True)
        atomic_torch_save({"model": model.state_dict(), "config": metrics["config"]}, os.path.join(out, "checkpoint.pt"))
        save_sample_grid(model, os.path.join(out, "samples.png"))
        with open(os.path.join(out, "metrics.json"), "w") as f:
            json.dump(metrics, f, indent=1)
    return model, metrics


def load_trained_flow(path):
    """A bijective flow saved by ``fastprob flows train`` (a run directory or its checkpoint.pt).

    Returns (flow, dequantizer, config)."""
    ckpt = os.path.join(path, "checkpoint.pt") if os.path.isdir(path) else path
    if not os.path.exists(ckpt):
        raise FileNotFoundError(f"{ckpt} not found: give the --out directory of `fastprob flows train` or its "
                                "checkpoint.pt")
    state = torch.load(ckpt, map_location="cpu", weights_only=True)  # fastprob's own file: tensors only
    cfg = state.get("config", {})
    if cfg.get("compress", "none") != "none":
        raise ValueError(f"{ckpt} holds a {cfg['compress']!r} compressive flow; `flows compress` takes a "
                         "bijective flow (trained with --compress none or without --compress)")
    tr, _, n_bins = load_images(cfg["data"], seed=cfg.get("seed", 0))
    shape = tuple(tr.shape[1:])
    sd = state["model"]
    if any(k.startswith("layers.0.") for k in sd):  # saved inside a CompressiveFlow
        sd = {k[len("layers.0."):]: v for k, v in sd.items() if k.startswith("layers.0.")}
    net = build_model(cfg.get("model", "realnvp"), shape, cfg["hidden"], cfg["depth"])
    net.load_state_dict(sd)
    if cfg.get("dequant") == "variational":
        dq = VariationalDequantizer(shape, n_bins, hidden=max(cfg["hidden"] // 2, 8))
        dq.load_state_dict(state["dequant"])
    else:
        dq = UniformDequantizer(n_bins)
    return net.eval(), dq.eval(), cfg


@torch.no_grad()
def compress_trained(path, fractions=(0.5, 0.25, 0.12, 0.06), out=None, seed=0, limit=None):
    """Closed-form PPCA on the latents of a trained bijective flow (no retraining).

    For each kept fraction f: d = round(f D), PPCA fit (Tipping & Bishop) on the training
    latents z' = g^-1(x); test log p(x) = log|det J| + log PPCA(z') - log q(u | x).

    Returns
    -------
    dict with the uncompressed test bits/dim and one row per fraction.
    """
    t0, c0 = time.perf_counter(), time.process_time()
    net, dq, cfg = load_trained_flow(path)
    tr, te, n_bins = load_images(cfg["data"], seed=cfg.get("seed", 0), limit=limit)
    D = int(np.prod(tr.shape[1:]))

    def latents(pix, s):
        g = torch.random.fork_rng()
        with g:
            torch.manual_seed(s)
            zs, lds, lqs = [], [], []
            for i in range(0, pix.shape[0], 512):
                x, lq = dq(pix[i:i + 512])
                z, ld = net(x)
                zs.append(z.double()), lds.append(ld.double()), lqs.append(lq.double())
        return torch.cat(zs), torch.cat(lds), torch.cat(lqs)

    z_tr, _, _ = latents(tr, seed + 1)
    z_te, ld_te, lq_te = latents(te, seed)
    base = -0.5 * (z_te * z_te).sum(1) - 0.5 * D * math.log(2 * math.pi)
    full = float(bits_per_dim(base + ld_te - lq_te, D, n_bins).mean())
    # the ceiling of PPCA as d -> D: a full-covariance Gaussian refit to the training latents
    mean, cov = z_tr.mean(0), torch.cov(z_tr.T) + 1e-9 * torch.eye(D, dtype=z_tr.dtype)
    refit_lp = torch.distributions.MultivariateNormal(mean, covariance_matrix=cov).log_prob(z_te)
    refit = float(bits_per_dim(refit_lp + ld_te - lq_te, D, n_bins).mean())
    rows, steps = [], {}
    for f in fractions:
        d = latent_size(D, f)
        p = PPCAStep(D, d).double().fit(z_tr)
        bpd = float(bits_per_dim(p.log_prob(z_te) + ld_te - lq_te, D, n_bins).mean())
        rows.append({"fraction": f, "latent_dim": d, "test_bpd": bpd, "delta_bpd": bpd - full, "s2": float(p.s2)})
        steps[f] = p
    report = {"model": os.path.abspath(path), "config": cfg, "data_dim": D, "uncompressed_test_bpd": full,
              "full_gaussian_refit_test_bpd": refit, "rows": rows, "test_images": int(te.shape[0]), "seconds": time.perf_counter() - t0,
              "cpu_seconds": time.process_time() - c0}
    if out:
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "compress_report.json"), "w") as fh:
            json.dump(report, fh, indent=1)
        plot_bpd_vs_fraction({"PPCA on trained latents": [(r["fraction"], r["test_bpd"]) for r in rows]},
                             os.path.join(out, "bpd_vs_fraction.png"), none_bpd=full,
                             title=f"closed-form PPCA on a trained {cfg.get('model', 'realnvp')} ({cfg['data']})")
        f_min = min(fractions)
        comp = CompressiveFlow([net.double(), steps[f_min]], tuple(tr.shape[1:])).eval()
        save_sample_grid(_Float(comp), os.path.join(out, "samples.png"))
        net.float()
    return report


class _Float(torch.nn.Module):
    """Sampling wrapper that returns float32 images from a float64 model."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def sample(self, n, temperature=1.0):
        return self.m.sample(n, temperature).float()


def plot_bpd_vs_fraction(series, path, none_bpd=None, title=""):
    """series: {label: [(fraction, bpd), ...]} -> a PNG of bits/dim against kept fraction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    for label, pts in series.items():
        pts = sorted(pts)
        xs = [p[0] * 100 for p in pts]
        ax.plot(xs, [p[1] for p in pts], "o-", label=label)
        if pts and len(pts[0]) > 2:
            ax.errorbar(xs, [p[1] for p in pts], yerr=[p[2] for p in pts], fmt="none", capsize=2, color="gray")
    if none_bpd is not None:
        ax.axhline(none_bpd, ls="--", color="k", lw=1, label="no compression")
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xlim(5, 60)
    ax.set_xticks([6, 12, 25, 50])
    ax.set_xticklabels(["6%", "12%", "25%", "50%"])
    ax.set_xlabel("kept fraction of dimensions (latent size / data size)")
    ax.set_ylabel("test bits/dim (per data dimension)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
