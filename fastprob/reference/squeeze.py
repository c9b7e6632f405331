"""Plain PyTorch references of squeeze / unsqueeze in both orders, and squeeze + split.

``standard``: output channel c*4 + 2i + j holds x[c, 2h+i, 2w+j] (= pixel_unshuffle).  It is
written as view + permute + one copy rather than ``F.pixel_unshuffle`` / ``pixel_shuffle``:
same result bit for bit, but on the CPU their backward is 2-3x slower than a permute's
(``python -m bench.bench_compat_flows``, the nflows / normflows squeeze drop-ins).
``checkerboard``: four blocks of C channels in sub-grid order (0,0), (1,1), (0,1), (1,0),
so the first 2C channels are the pixels with (h + w) even.
"""
from __future__ import annotations

import torch

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
    if order == "standard":  # (B, C, H/2, i, W/2, j) -> (B, C, i, j, H/2, W/2): channel c*4 + 2i + j
        return x.reshape(B, C, H // 2, 2, W // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(B, 4 * C, H // 2, W // 2)
    if B == 0:
        return x.new_empty(0, 4 * C, H // 2, W // 2)
    return torch.cat([x[:, :, i::2, j::2] for i, j in _CB], dim=1)


def unsqueeze(z, order: str = "standard"):
    """(B, 4C, H, W) -> (B, C, 2H, 2W), the exact inverse of :func:`squeeze`."""
    _check(z, order)
    B, C4, H, W = z.shape
    if C4 % 4:
        raise ValueError(f"unsqueeze needs a channel count divisible by 4, got {C4}")
    C = C4 // 4
    if order == "standard":  # (B, C, i, j, H, W) -> (B, C, H, i, W, j)
        return z.reshape(B, C, 2, 2, H, W).permute(0, 1, 4, 2, 5, 3).reshape(B, C, 2 * H, 2 * W)
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
