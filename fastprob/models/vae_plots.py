"""PNG figures of a boosted VAE run: training curve with component boundaries, images."""
from __future__ import annotations

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def stage_boundaries(epochs):
    """[(index of the first epoch of a stage, label)] from a history's ``epochs`` records."""
    out, last = [], None
    for i, r in enumerate(epochs):
        key = (r["stage"], r["component"])
        if key != last:
            out.append((i, f"{'c' if r['stage'] == 'boost' else 'ft'}{r['component']}"))
            last = key
    return out


def plot_training_curves(runs, path, title=None):
    """runs: list of (label, history); training loss and validation -ELBO against epoch,
    with a dotted line where each stage (boosting component or fine-tuning) begins."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for label, h in runs:
        ep = h["epochs"]
        x = np.arange(1, len(ep) + 1)
        axes[0].plot(x, [r["loss"] for r in ep], label=label, lw=1.2)
        fixed = [r["val_neg_elbo_fixed"] if r["val_neg_elbo_fixed"] is not None else r["val_neg_elbo_new"]
                 for r in ep]
        axes[1].plot(x, fixed, label=label, lw=1.2)
    for i, lab in stage_boundaries(runs[0][1]["epochs"])[1:]:
        for ax in axes:
            ax.axvline(i + 0.5, color="k", ls=":", lw=0.8)
        axes[1].text(i + 0.7, axes[1].get_ylim()[1], lab, va="top", fontsize=7)
    axes[0].set_title("training objective (per datum)", fontsize=9)
    axes[1].set_title("validation -ELBO of the trained mixture G (nats)", fontsize=9)
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    lo = min(min(r["val_neg_elbo_new"] for r in h["epochs"]) for _, h in runs)
    axes[1].set_ylim(lo - 1, lo + 15)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_images(rows, shape, path, labels=None):
    """rows: list of (n, H*W) arrays in [0, 1]; one image row each."""
    plt = _plt()
    H, W = shape
    n = max(r.shape[0] for r in rows)
    fig, axes = plt.subplots(len(rows), n, figsize=(0.7 * n, 0.75 * len(rows)), squeeze=False)
    for i, r in enumerate(rows):
        for j in range(n):
            ax = axes[i][j]
            if j < r.shape[0]:
                ax.imshow(np.asarray(r[j]).reshape(H, W), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        if labels:
            axes[i][0].set_ylabel(labels[i], fontsize=7, rotation=0, ha="right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
