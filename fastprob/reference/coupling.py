"""Plain PyTorch reference of the fused affine coupling (same signature as the Triton op).

    coupling(x, s, t, mask, parity, scale_map, a=None, inverse=False, split=None, const=None)
        -> (y, logdet)
    coupling_packed(x, h, mask, parity, scale_map, layout="st", ...) -> (y, logdet)

* ``mask="checkerboard"``: ``s`` and ``t`` have the shape of ``x`` (B, C, H, W); positions
  with (h + w + parity) odd are transformed, the others copied.
* ``mask="channel"``: ``s`` and ``t`` have shape (B, C_t, H, W) for the C_t transformed
  channels c0 .. c0 + C_t - 1; the others are copied.  ``split=(c0, C_t)`` sets them
  (any block of channels); without it ``parity`` picks one of the two halves of
  :func:`fastprob.reference.masks.channel_split`.
* forward: y = x * exp(g(s)) + t on transformed positions, logdet = sum g(s) over them.
  inverse: y = (x - t) * exp(-g(s)), logdet = -sum g(s).
* ``scale_map``: see :mod:`fastprob.reference.scale_maps`; ``a`` is the tanh scale, a
  tensor of shape (C_s,) (per channel of ``s``) or a scalar; ``const`` the eps of
  ``sigmoid_eps`` or the clamp of ``atan``.
* ``coupling_packed`` takes the coupling network's output ``h`` (B, 2 C_s, H, W) instead of
  ``s`` and ``t``; ``layout`` says where they are in it: ``"st"`` (s = first half, fastprob),
  ``"ts"`` (t = first half, nflows) or ``"ts_interleaved"`` (t = even channels, s = odd
  channels, normflows).

Gradients come from autograd; this is the oracle of the fused forward and backward.
"""
from __future__ import annotations

import torch

from .masks import channel_split, checkerboard
from .scale_maps import apply_scale_map, check_scale_map

LAYOUTS = ("st", "ts", "ts_interleaved")


def _a_view(a, s):
    if a is None or not torch.is_tensor(a) or a.dim() == 0:
        return a
    return a.view(1, -1, *([1] * (s.dim() - 2)))


def resolve_split(n_channels: int, parity: int, split=None):
    """(c0, C_t) of a channel mask: ``split`` when given (checked), else the parity half."""
    if split is None:
        return channel_split(n_channels, int(parity) % 2)
    try:
        c0, ct = (int(v) for v in split)
    except (TypeError, ValueError):
        raise ValueError(f"split must be a pair (first transformed channel, number transformed), "
                         f"got {split!r}") from None
    if ct < 1 or c0 < 0 or c0 + ct > n_channels:
        raise ValueError(f"split {(c0, ct)} does not fit {n_channels} channels: need 0 <= c0, 1 <= C_t "
                         f"and c0 + C_t <= {n_channels}")
    return c0, ct


def split_packed(h: torch.Tensor, layout: str):
    """(s, t) views of a packed network output ``h`` (B, 2 C_s, ...) in ``layout``."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown parameter layout {layout!r}; choose one of {LAYOUTS}")
    if h.dim() < 2 or h.shape[1] % 2:
        raise ValueError(f"the packed network output needs an even channel count, got shape {tuple(h.shape)}")
    # split / unbind rather than slices: their backward is one concatenation, where each
    # slice's backward would allocate and fill a zero tensor of h's full size
    if layout == "ts_interleaved":
        t, s = h.unflatten(1, (h.shape[1] // 2, 2)).unbind(2)
        return s, t
    first, second = torch.chunk(h, 2, dim=1)
    return (first, second) if layout == "st" else (second, first)


def coupling(x, s, t, mask: str, parity: int, scale_map: str, a=None, inverse: bool = False, split=None,
             const=None):
    check_scale_map(scale_map)
    g = apply_scale_map(s, scale_map, _a_view(a, s), const)
    if mask == "checkerboard":
        if x.dim() != 4:
            raise ValueError("checkerboard coupling needs NCHW input")
        if split is not None:
            raise ValueError("split applies to the channel mask only")
        b = checkerboard(x.shape[2], x.shape[3], parity, device=x.device, dtype=x.dtype)
        g = g * b
        y = x * torch.exp(g) + t * b if not inverse else (x - t * b) * torch.exp(-g)
        logdet = g.flatten(1).sum(1)
    elif mask == "channel":
        c0, ct = resolve_split(x.shape[1], parity, split)
        c1 = x.shape[1] - c0 - ct
        # split + cat of the non-empty pieces only (one backward concatenation); with every
        # channel transformed no copy at all
        sizes = [n for n in (c0, ct, c1) if n]
        pieces = list(torch.split(x, sizes, dim=1)) if len(sizes) > 1 else [x]
        k = 1 if c0 else 0
        xt = pieces[k]
        pieces[k] = xt * torch.exp(g) + t if not inverse else (xt - t) * torch.exp(-g)
        y = torch.cat(pieces, dim=1) if len(pieces) > 1 else pieces[0]
        logdet = g.sum(tuple(range(1, g.dim())))  # one op (g may be a 2-D to 4-D view)
    else:
        raise ValueError(f"mask must be 'checkerboard' or 'channel', got {mask!r}")
    return y, (-logdet if inverse else logdet)


def coupling_packed(x, h, mask: str, parity: int, scale_map: str, layout: str = "st", a=None,
                    inverse: bool = False, split=None, const=None):
    s, t = split_packed(h, layout)
    return coupling(x, s, t, mask, parity, scale_map, a, inverse, split, const)
