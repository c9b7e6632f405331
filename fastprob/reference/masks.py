"""Coupling masks (flows-model.md section 1)."""
from __future__ import annotations

import torch


def checkerboard(h: int, w: int, parity: int, device=None, dtype=torch.bool) -> torch.Tensor:
    """b[h, w] = (h + w + parity) mod 2 (1 = transformed), shape (h, w)."""
    ii = torch.arange(h, device=device)[:, None]
    jj = torch.arange(w, device=device)[None, :]
    return ((ii + jj + parity) % 2).to(dtype)


def channel_split(c: int, parity: int):
    """(first transformed channel, number transformed) for a channel mask over ``c`` channels.

    parity 0: the first c // 2 channels condition and the rest are transformed;
    parity 1: the first c - c // 2 channels are transformed and the rest condition.
    """
    n_cond = c // 2
    n_trans = c - n_cond
    return (n_cond, n_trans) if parity == 0 else (0, n_trans)
