"""Dispatch of the flow kernels through the backend registry (:mod:`fastprob._dispatch`).

``backend=None`` picks Triton for CUDA tensors (when Triton imports and is not disabled)
and the PyTorch reference otherwise; ``backend="triton"`` or ``"torch"`` insists, and a
request that cannot be honoured raises :class:`fastprob.BackendUnavailable` with the reason.
The per-call device condition lives with the Triton registrations in ``_dispatch``.
"""
from __future__ import annotations

import torch

from .. import _dispatch
from .._dispatch import BackendUnavailable  # noqa: F401  (re-exported for callers of ops)


def _check_devices(*tensors):
    devs = {t.device for t in tensors if torch.is_tensor(t)}
    if len(devs) > 1:
        raise ValueError(f"tensors are on different devices {sorted(map(str, devs))}; move them to one device")


def _impl(op, backend, tensors):
    """The implementation of ``op`` for ``tensors``; a Triton kernel gets its tensors made
    contiguous (it reads unit-stride memory), the PyTorch reference takes any strides, so
    sliced views reach it without a copy."""
    name, f = _resolve(op, tensors, backend)
    return f, (_contiguous if name == "triton" else _same)


def _resolve(op, tensors, backend):
    if backend not in (None, "triton", "torch"):
        raise ValueError(f"backend must be None, 'triton' or 'torch', got {backend!r}")
    return _dispatch.resolve_for(op, tensors, backend)


def backend_for(op, tensors, backend=None) -> str:
    """Name of the backend (``"triton"`` or ``"torch"``) that a call of ``op`` on ``tensors``
    with ``backend`` runs; raises as the call would when ``backend`` cannot be honoured."""
    return _resolve(op, tensors, backend)[0]


def _contiguous(t):
    return t.contiguous() if torch.is_tensor(t) else t


def _same(t):
    return t


def _nchw(c, x, mask):
    """A channel coupling of (B, C) or (B, C, L) tensors runs on the Triton kernel (NCHW
    only) as (B, C, L, 1) views; the reference takes them as they are (fewer views to trace
    through autograd on the CPU)."""
    if c is _same or mask != "channel" or not 2 <= x.dim() <= 3:
        return c, None
    return (lambda t: _contiguous(t).view(*t.shape, *([1] * (4 - t.dim())))), x.shape


def coupling(x, s, t, mask, parity, scale_map, a=None, inverse=False, backend=None, split=None, const=None):
    """Fused affine coupling; see :func:`fastprob.reference.coupling.coupling`.  With the
    channel mask x, s, t may also be (B, C) or (B, C, L)."""
    _check_devices(x, s, t, a)
    f, c = _impl("coupling", backend, (x, s, t))
    c, shape = _nchw(c, x, mask)
    y, ld = f(c(x), c(s), c(t), mask, parity, scale_map, a, inverse, split, const)
    return (y if shape is None else y.view(shape)), ld


def coupling_packed(x, h, mask, parity, scale_map, layout="st", a=None, inverse=False, backend=None, split=None,
                    const=None):
    """Fused affine coupling reading s and t from the network output ``h`` in ``layout``; see
    :func:`fastprob.reference.coupling.coupling_packed`.  With the channel mask x and h may
    also be (B, C) or (B, C, L)."""
    _check_devices(x, h, a)
    f, c = _impl("coupling_packed", backend, (x, h))
    c, shape = _nchw(c, x, mask)
    y, ld = f(c(x), c(h), mask, parity, scale_map, layout, a, inverse, split, const)
    return (y if shape is None else y.view(shape)), ld


def squeeze(x, order="standard", backend=None):
    f, c = _impl("squeeze", backend, (x,))
    return f(c(x), order)


def unsqueeze(z, order="standard", backend=None):
    f, c = _impl("unsqueeze", backend, (z,))
    return f(c(z), order)


def squeeze_split(x, order="checkerboard", backend=None):
    f, c = _impl("squeeze_split", backend, (x,))
    return f(c(x), order)


def unsqueeze_merge(z1, z2, order="checkerboard", backend=None):
    _check_devices(z1, z2)
    f, c = _impl("unsqueeze_merge", backend, (z1, z2))
    return f(c(z1), c(z2), order)
