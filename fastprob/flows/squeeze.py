"""Squeeze / unsqueeze transforms and the multi-scale splits."""
from __future__ import annotations

from torch import nn

from . import ops
from .base import Split, Transform


class Squeeze(Transform):
    """Space-to-depth: (B, C, H, W) -> (B, 4C, H/2, W/2); order "standard" or "checkerboard"."""

    def __init__(self, order: str = "standard"):
        super().__init__()
        if order not in ("standard", "checkerboard"):
            raise ValueError(f"unknown squeeze order {order!r}; choose 'standard' or 'checkerboard'")
        self.order = order

    def forward(self, x, context=None):
        return ops.squeeze(x, self.order), x.new_zeros(x.shape[0])

    def inverse(self, z, context=None):
        return ops.unsqueeze(z, self.order), z.new_zeros(z.shape[0])

    def out_shape(self, shape):
        C, H, W = shape
        if H % 2 or W % 2:
            raise ValueError(f"squeeze needs even height and width, got {H}x{W}")
        return (4 * C, H // 2, W // 2)


class ChannelSplit(Split):
    """Factor out the first ``n_out`` channels (default half) of z; keep the rest."""

    def __init__(self, n_out: int | None = None):
        super().__init__()
        self.n_out = n_out

    def _n(self, C):
        n = self.n_out if self.n_out is not None else C // 2
        if not 0 < n < C:
            raise ValueError(f"cannot factor out {n} of {C} channels")
        return n

    def split(self, z):
        n = self._n(z.shape[1])
        return z[:, n:], z[:, :n]

    def merge(self, kept, factored):
        import torch

        return torch.cat([factored, kept], 1)

    def shapes(self, shape):
        n = self._n(shape[0])
        return (shape[0] - n, *shape[1:]), (n, *shape[1:])


class SqueezeSplit(Split):
    """Checkerboard squeeze fused with the channel split (one kernel on GPU).

    (B, C, H, W) -> keeps the (h + w) odd pixels as (B, 2C, H/2, W/2) and factors out the
    (h + w) even ones: exactly a checkerboard split of the image.
    """

    order = "checkerboard"

    def split(self, z):
        even, odd = ops.squeeze_split(z, self.order)
        return odd, even

    def merge(self, kept, factored):
        return ops.unsqueeze_merge(factored, kept, self.order)

    def shapes(self, shape):
        C, H, W = shape
        if H % 2 or W % 2:
            raise ValueError(f"squeeze needs even height and width, got {H}x{W}")
        return (2 * C, H // 2, W // 2), (2 * C, H // 2, W // 2)


__all__ = ["ChannelSplit", "Squeeze", "SqueezeSplit", "nn"]
