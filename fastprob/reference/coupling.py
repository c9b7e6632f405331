"""Plain PyTorch reference of the fused affine coupling (same signature as the Triton op).

    coupling(x, s, t, mask, parity, scale_map, a=None, inverse=False) -> (y, logdet)

* ``mask="checkerboard"``: ``s`` and ``t`` have the shape of ``x`` (B, C, H, W); positions
  with (h + w + parity) odd are transformed, the others copied.
* ``mask="channel"``: ``s`` and ``t`` have shape (B, C_t, H, W) for the C_t transformed
  channels (see :func:`fastprob.reference.masks.channel_split`); the others are copied.
* forward: y = x * exp(g(s)) + t on transformed positions, logdet = sum g(s) over them.
  inverse: y = (x - t) * exp(-g(s)), logdet = -sum g(s).
* ``a``: the tanh scale, a tensor of shape (C_s,) (per channel of ``s``) or a scalar.

Gradients come from autograd; this is the oracle of the fused forward and backward.
"""
from __future__ import annotations

import torch

from .masks import channel_split, checkerboard
from .scale_maps import apply_scale_map, check_scale_map


def _a_view(a, s):
    if a is None or not torch.is_tensor(a) or a.dim() == 0:
        return a
    return a.view(1, -1, *([1] * (s.dim() - 2)))


def coupling(x, s, t, mask: str, parity: int, scale_map: str, a=None, inverse: bool = False):
    check_scale_map(scale_map)
    g = apply_scale_map(s, scale_map, _a_view(a, s))
    if mask == "checkerboard":
        if x.dim() != 4:
            raise ValueError("checkerboard coupling needs NCHW input")
        b = checkerboard(x.shape[2], x.shape[3], parity, device=x.device, dtype=x.dtype)
        g = g * b
        y = x * torch.exp(g) + t * b if not inverse else (x - t * b) * torch.exp(-g)
        logdet = g.flatten(1).sum(1)
    elif mask == "channel":
        c0, ct = channel_split(x.shape[1], parity)
        xt = x[:, c0:c0 + ct]
        yt = xt * torch.exp(g) + t if not inverse else (xt - t) * torch.exp(-g)
        y = torch.cat([x[:, :c0], yt, x[:, c0 + ct:]], dim=1)
        logdet = g.flatten(1).sum(1)
    else:
        raise ValueError(f"mask must be 'checkerboard' or 'channel', got {mask!r}")
    return y, (-logdet if inverse else logdet)
