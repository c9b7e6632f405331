"""Dequantization of discrete images and the logit pre-transform.

bits/dim = -(log p(x) - D log n_bins) / (D log 2) for x = (pixel + u) / n_bins
(flows-model.md section 1, with n_bins = 256 for 8-bit images).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import Transform
from .coupling import AffineCoupling


class Logit(Transform):
    """y = logit(alpha + (1 - 2 alpha) x) for x in [0, 1] (RealNVP's pre-processing)."""

    def __init__(self, alpha: float = 0.05):
        super().__init__()
        self.alpha = alpha

    def forward(self, x, context=None):
        lo, hi = torch.aminmax(x.detach()) if x.numel() else (0.0, 1.0)
        if not (float(lo) >= 0.0 and float(hi) <= 1.0):  # the negation also catches NaN
            raise ValueError(f"Logit expects data in [0, 1], got values in [{float(lo):g}, {float(hi):g}]; "
                             "scale integer pixels with n_bins levels to x = (pixels + u) / n_bins, e.g. with "
                             "UniformDequantizer(n_bins)")
        p = self.alpha + (1 - 2 * self.alpha) * x
        y = torch.log(p) - torch.log1p(-p)
        ld = (math.log(1 - 2 * self.alpha) - torch.log(p) - torch.log1p(-p)).flatten(1).sum(1)
        return y, ld

    def inverse(self, y, context=None):
        p = torch.sigmoid(y)
        x = (p - self.alpha) / (1 - 2 * self.alpha)
        ld = (-math.log(1 - 2 * self.alpha) + F.logsigmoid(y) + F.logsigmoid(-y)).flatten(1).sum(1)
        return x, ld


class UniformDequantizer(nn.Module):
    """x = (pixel + u) / n_bins with u ~ U(0, 1); log q(u | pixel) = 0."""

    def __init__(self, n_bins: int = 256):
        super().__init__()
        self.n_bins = n_bins

    def forward(self, pixels):
        u = torch.rand_like(pixels, dtype=torch.float32)
        return (pixels.float() + u) / self.n_bins, torch.zeros(pixels.shape[0], device=pixels.device)


class VariationalDequantizer(nn.Module):
    """Flow++-style learned dequantization: u = sigmoid(h), h = g(eps | pixel), eps ~ N(0, I).

    Returns x = (pixel + u) / n_bins and log q(u | pixel), to be subtracted from log p(x).
    """

    def __init__(self, shape, n_bins: int = 256, n_layers: int = 4, hidden: int = 32):
        super().__init__()
        C, H, W = shape
        self.n_bins = n_bins
        self.layers = nn.ModuleList(
            AffineCoupling(C, "checkerboard", i % 2, "bounded", hidden, context_channels=C) for i in range(n_layers))

    def forward(self, pixels):
        ctx = pixels.float() / (self.n_bins - 1) - 0.5
        eps = torch.randn_like(ctx)
        log_q = (-0.5 * eps * eps - 0.5 * math.log(2 * math.pi)).flatten(1).sum(1)
        h = eps
        for layer in self.layers:
            h, ld = layer(h, ctx)
            log_q = log_q - ld
        u = torch.sigmoid(h)
        log_q = log_q - (F.logsigmoid(h) + F.logsigmoid(-h)).flatten(1).sum(1)
        return (pixels.float() + u) / self.n_bins, log_q


def bits_per_dim(log_px, dim: int, n_bins: int = 256):
    """-(log p(x) - D log n_bins) / (D log 2), per sample."""
    return -(log_px - dim * math.log(n_bins)) / (dim * math.log(2))
