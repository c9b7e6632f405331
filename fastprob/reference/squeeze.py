"""Plain PyTorch references of squeeze / unsqueeze in both orders, and squeeze + split.

``standard``: output channel c*4 + 2i + j holds x[c, 2h+i, 2w+j] (= pixel_unshuffle).
``checkerboard``: four blocks of C channels in sub-grid order (0,0), (1,1), (0,1), (1,0),
so the first 2C channels are the pixels with (h + w) even.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

ORDERS = ("standard", "checkerboard")
_CB = ((0, 0), (1, 1), (0, 1), (1, 0))


def _check(x, order):
    if order not in ORDERS:
        raise ValueError(f"unknown squeeze order {order!r}; choose one of {ORDERS}")
    if x.dim() != 4:
        raise ValueError(f"squeeze needs an NCHW tensor, got shape {tuple(x.shape)}")


def squeeze(x, order: str = "standard"):
    """(B, C, H, W) -> (B, 4C, H/2, W/2)."""
    _check(x, order)
    B, C, H, W = x.shape
    if H % 2 or W % 2:
        raise ValueError(f"squeeze needs even height and width, got {H}x{W}; pad or crop the input")
    if B == 0:  # pixel_unshuffle returns the input shape for an empty batch (torch 2.x)
        return x.new_empty(0, 4 * C, H // 2, W // 2)
    if order == "standard":
        return F.pixel_unshuffle(x, 2)
    return torch.cat([x[:, :, i::2, j::2] for i, j in _CB], dim=1)


def unsqueeze(z, order: str = "standard"):
    """(B, 4C, H, W) -> (B, C, 2H, 2W), the exact inverse of :func:`squeeze`."""
    _check(z, order)
    B, C4, H, W = z.shape
    if C4 % 4:
        raise ValueError(f"unsqueeze needs a channel count divisible by 4, got {C4}")
    if B == 0:  # as in squeeze: pixel_shuffle mis-shapes an empty batch
        return z.new_empty(0, C4 // 4, 2 * H, 2 * W)
    if order == "standard":
        return F.pixel_shuffle(z, 2)
    C = C4 // 4
    x = z.new_empty(B, C, 2 * H, 2 * W)
    for k, (i, j) in enumerate(_CB):
        x[:, :, i::2, j::2] = z[:, k * C:(k + 1) * C]
    return x


def squeeze_split(x, order: str = "checkerboard"):
    """Squeeze and split the 4C channels into two halves of 2C: (z1, z2)."""
    z = squeeze(x, order)
    C2 = z.shape[1] // 2
    return z[:, :C2].contiguous(), z[:, C2:].contiguous()


def unsqueeze_merge(z1, z2, order: str = "checkerboard"):
    """Inverse of :func:`squeeze_split`."""
    return unsqueeze(torch.cat([z1, z2], dim=1), order)
