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
    if backend not in (None, "triton", "torch"):
        raise ValueError(f"backend must be None, 'triton' or 'torch', got {backend!r}")
    return _dispatch.resolve_for(op, tensors, backend)[1]


def _c(t):
    # the Triton kernels read unit-stride memory; a no-op for the usual contiguous inputs
    return t.contiguous()


def coupling(x, s, t, mask, parity, scale_map, a=None, inverse=False, backend=None):
    """Fused affine coupling; see :func:`fastprob.reference.coupling.coupling`."""
    _check_devices(x, s, t, a)
    f = _impl("coupling", backend, (x, s, t))
    return f(_c(x), _c(s), _c(t), mask, parity, scale_map, a, inverse)


def squeeze(x, order="standard", backend=None):
    return _impl("squeeze", backend, (x,))(_c(x), order)


def unsqueeze(z, order="standard", backend=None):
    return _impl("unsqueeze", backend, (z,))(_c(z), order)


def squeeze_split(x, order="checkerboard", backend=None):
    return _impl("squeeze_split", backend, (x,))(_c(x), order)


def unsqueeze_merge(z1, z2, order="checkerboard", backend=None):
    _check_devices(z1, z2)
    return _impl("unsqueeze_merge", backend, (z1, z2))(_c(z1), _c(z2), order)
