"""Train an image flow with maximum likelihood; report test bits/dim; sample grids; checkpoints."""
from __future__ import annotations

import json
import math
import os
import time

import numpy as np
import torch

from .. import _config
from .._io import atomic_torch_save
from ..profiling import make_timer
from .builders import glow, realnvp_image
from .data import load_images
from .preprocess import UniformDequantizer, VariationalDequantizer, bits_per_dim


def build_model(kind, shape, hidden, depth, backend=None):
    if kind == "realnvp":
        n_scales = 2 if min(shape[1:]) <= 8 else 3
        while min(shape[1:]) // 2 ** (n_scales - 1) < 2 or shape[1] % 2 ** (n_scales - 1):
            n_scales -= 1
        return realnvp_image(shape, n_scales=max(n_scales, 1), n_couplings=depth, hidden=hidden, backend=backend)
    if kind == "glow":
        n_levels = 2
        return glow(shape, n_levels=n_levels, depth=depth, hidden=hidden, backend=backend)
    raise ValueError(f"unknown model {kind!r}; choose 'realnvp' or 'glow'")


@torch.no_grad()
def evaluate_bpd(model, dequant, pixels, n_bins, batch_size=256, seed=0):
    """Mean test bits/dim (with the dequantizer's bound; uniform noise is seeded)."""
    model.eval()
    dequant.eval()
    g = torch.random.fork_rng()
    with g:
        torch.manual_seed(seed)
        dim = int(np.prod(pixels.shape[1:]))
        tot = 0.0
        for i in range(0, pixels.shape[0], batch_size):
            x, log_q = dequant(pixels[i:i + batch_size])
            lp = model.log_prob(x) - log_q
            tot += float(bits_per_dim(lp, dim, n_bins).sum())
    return tot / pixels.shape[0]


def save_sample_grid(model, path, temperatures=(0.5, 0.7, 0.85, 1.0), n=8, seed=0):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    model.eval()
    torch.manual_seed(seed)
    fig, axes = plt.subplots(len(temperatures), n, figsize=(1.1 * n, 1.2 * len(temperatures)), squeeze=False)
    for r, temp in enumerate(temperatures):
        x = model.sample(n, temperature=temp).clamp(0, 1).cpu()
        for c in range(n):
            ax = axes[r, c]
            img = x[c].permute(1, 2, 0).squeeze(-1).numpy()
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(f"T={temp}", fontsize=8)
    fig.suptitle("samples at several temperatures", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def train(data="digits", model="realnvp", epochs=30, batch_size=64, lr=1e-3, hidden=64, depth=3,
          dequant="uniform", out="runs/flows", resume=False, seed=0, device="auto", limit=None,
          grad_clip=100.0, progress=True, profile=False):
    """Train; with ``profile`` every history entry gets ``phases`` (data, forward, backward,
    optimizer, eval, checkpoint, ...) and ``epoch_wall`` in seconds, and metrics a total."""
    T = make_timer(profile)
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                       ("cpu" if device == "auto" else device))
    torch.manual_seed(seed)
    tr, te, n_bins = load_images(data, seed=seed, limit=limit)
    shape = tuple(tr.shape[1:])
    net = build_model(model, shape, hidden, depth).to(dev)
    dq = (VariationalDequantizer(shape, n_bins, hidden=max(hidden // 2, 8)) if dequant == "variational"
          else UniformDequantizer(n_bins)).to(dev)
    params = list(net.parameters()) + list(dq.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    os.makedirs(out, exist_ok=True)
    ckpt = os.path.join(out, "checkpoint.pt")
    start, history = 0, []
    if resume and os.path.exists(ckpt):
        # the checkpoint is fastprob's own file (tensors and plain containers only)
        state = torch.load(ckpt, map_location=dev, weights_only=True)
        if state["config"]["model"] != model or state["config"]["data"] != data:
            raise ValueError(f"{ckpt} is for {state['config']}, not model={model} data={data}")
        net.load_state_dict(state["model"])
        dq.load_state_dict(state["dequant"])
        opt.load_state_dict(state["opt"])
        start, history = state["epoch"], state["history"]
        torch.set_rng_state(state["rng"])
    tr, te = tr.to(dev), te.to(dev)
    dim = int(np.prod(shape))
    cfg = dict(data=data, model=model, epochs=epochs, batch_size=batch_size, lr=lr, hidden=hidden, depth=depth,
               dequant=dequant, seed=seed)
    bar = None
    if progress and _config.config.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs, initial=start, desc=f"{model} on {data}", unit="epoch")
    for epoch in range(start, epochs):
        T.start_epoch()
        net.train()
        dq.train()
        t0 = time.perf_counter()
        with T.phase("data"):
            perm = torch.randperm(tr.shape[0], device=dev)
        tot = 0.0
        for i in range(0, tr.shape[0], batch_size):
            with T.phase("data"):
                pix = tr[perm[i:i + batch_size]]
            # on a GPU these phases time the launches (the queue drains in later phases'
            # synchronizing calls such as float(loss)); on the CPU they are exact
            with T.phase("forward"):
                x, log_q = dq(pix)
                loss = bits_per_dim(net.log_prob(x) - log_q, dim, n_bins).mean()
                finite = bool(torch.isfinite(loss))
            if not finite:
                raise FloatingPointError(f"non-finite loss at epoch {epoch + 1}; lower --lr (the last "
                                         f"checkpoint {ckpt} is intact)")
            with T.phase("backward"):
                opt.zero_grad()
                loss.backward()
            with T.phase("optimizer"):
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
                opt.step()
                tot += float(loss.detach()) * pix.shape[0]
        with T.phase("eval"):
            rec = {"epoch": epoch + 1, "train_bpd": tot / tr.shape[0],
                   "test_bpd": evaluate_bpd(net, dq, te, n_bins), "seconds": time.perf_counter() - t0}
        history.append(rec)
        with T.phase("checkpoint"):
            atomic_torch_save({"model": net.state_dict(), "dequant": dq.state_dict(), "opt": opt.state_dict(),
                          "epoch": epoch + 1, "history": history, "rng": torch.get_rng_state(), "config": cfg}, ckpt)
        if bar is not None:
            bar.set_postfix(train_bpd=f"{rec['train_bpd']:.3f}", test_bpd=f"{rec['test_bpd']:.3f}")
            bar.update(1)
        if T.enabled:
            rec.update(T.end_epoch())
    if bar is not None:
        bar.close()
    save_sample_grid(net, os.path.join(out, "samples.png"))
    metrics = {"config": cfg, "test_bpd": history[-1]["test_bpd"] if history else math.nan,
               "history": history, "n_params": sum(p.numel() for p in net.parameters()),
               "test_images": int(te.shape[0]), "device": str(dev)}
    if T.enabled and T.records:
        from ..profiling import format_table, plot_phases, summarize

        metrics["profile"] = summarize(T.records)
        print(format_table(T.records, f"{model} time per phase"))
        plot_phases(T.records, os.path.join(out, "phases.png"), f"{model} on {data}: time per phase and epoch")
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1)
    return net, metrics
