"""Density plots of 2-D models as PNG."""
from __future__ import annotations

import numpy as np
import torch


@torch.no_grad()
def density_grid(log_prob_fn, lim=5.0, n=200):
    g = torch.linspace(-lim, lim, n)
    xx, yy = torch.meshgrid(g, g, indexing="ij")
    pts = torch.stack([xx.flatten(), yy.flatten()], 1)
    return np.exp(log_prob_fn(pts).double().numpy().reshape(n, n)).T


def plot_densities(panels, path, lim=5.0, n=200, data=None):
    """panels: list of (title, log_prob_fn); data: optional (N, 2) points shown first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(panels) + (data is not None)
    fig, axes = plt.subplots(1, k, figsize=(2.6 * k, 2.8), squeeze=False)
    axes = axes[0]
    i = 0
    if data is not None:
        axes[0].hist2d(data[:, 0], data[:, 1], bins=100, range=[[-lim, lim], [-lim, lim]], cmap="magma")
        axes[0].set_title("data", fontsize=9)
        i = 1
    for ax, (title, fn) in zip(axes[i:], panels):
        ax.imshow(density_grid(fn, lim, n), origin="lower", extent=[-lim, lim, -lim, lim], cmap="magma")
        ax.set_title(title, fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
