"""Dispatch of the flow kernels: Triton on CUDA tensors when available, else the reference.

``backend=None`` picks Triton for CUDA tensors (when Triton imports and is not disabled)
and the PyTorch reference otherwise; ``backend="triton"`` or ``"torch"`` insists, and a
request that cannot be honoured raises :class:`fastprob.BackendUnavailable` with the reason.
"""
from __future__ import annotations

import os

import torch

from .. import _config
from .._dispatch import BackendUnavailable
from ..reference import coupling as _ref_coupling
from ..reference import squeeze as _ref_squeeze


def _triton_reason(tensors) -> str | None:
    """Why the Triton kernels cannot run on these tensors (None when they can)."""
    cfg = _config.config
    if cfg.purepython:
        return "FASTPROB_PUREPYTHON=1"
    if cfg.disable_triton:
        return "FASTPROB_DISABLE_TRITON=1"
    interp = os.environ.get("TRITON_INTERPRET", "0") == "1"
    if not interp and not all(t.is_cuda for t in tensors):
        return "tensors are not on a CUDA device (set TRITON_INTERPRET=1 to run the kernels on CPU for testing)"
    try:
        import triton  # noqa: F401
    except ImportError as exc:
        return f"triton is not importable ({exc}); pip install 'fastprob[gpu]'"
    return None


def _check_devices(*tensors):
    devs = {t.device for t in tensors if torch.is_tensor(t)}
    if len(devs) > 1:
        raise ValueError(f"tensors are on different devices {sorted(map(str, devs))}; move them to one device")


def _use_triton(backend, tensors) -> bool:
    if backend not in (None, "triton", "torch"):
        raise ValueError(f"backend must be None, 'triton' or 'torch', got {backend!r}")
    if backend == "torch":
        return False
    reason = _triton_reason(tensors)
    if backend == "triton":
        if reason:
            raise BackendUnavailable(f"Triton backend requested but unavailable: {reason}")
        return True
    # automatic: the interpreter is for tests only, never picked implicitly for CPU tensors
    return reason is None and all(t.is_cuda for t in tensors)


def coupling(x, s, t, mask, parity, scale_map, a=None, inverse=False, backend=None, split=None, const=None):
    """Fused affine coupling; see :func:`fastprob.reference.coupling.coupling`."""
    _check_devices(x, s, t, a)
    if _use_triton(backend, (x, s, t)):
        from ..kernels.triton.coupling import coupling_triton

        return coupling_triton(x.contiguous(), s.contiguous(), t.contiguous(), mask, parity, scale_map, a,
                               inverse, split, const)
    return _ref_coupling.coupling(x, s, t, mask, parity, scale_map, a, inverse, split, const)


def coupling_packed(x, h, mask, parity, scale_map, layout="st", a=None, inverse=False, backend=None, split=None,
                    const=None):
    """Fused affine coupling reading s and t from the network output ``h`` in ``layout``; see
    :func:`fastprob.reference.coupling.coupling_packed`."""
    _check_devices(x, h, a)
    if _use_triton(backend, (x, h)):
        from ..kernels.triton.coupling import coupling_packed_triton

        return coupling_packed_triton(x.contiguous(), h.contiguous(), mask, parity, scale_map, layout, a,
                                      inverse, split, const)
    return _ref_coupling.coupling_packed(x, h, mask, parity, scale_map, layout, a, inverse, split, const)


def squeeze(x, order="standard", backend=None):
    if _use_triton(backend, (x,)):
        from ..kernels.triton.squeeze import squeeze_triton

        return squeeze_triton(x.contiguous(), order)
    return _ref_squeeze.squeeze(x, order)


def unsqueeze(z, order="standard", backend=None):
    if _use_triton(backend, (z,)):
        from ..kernels.triton.squeeze import unsqueeze_triton

        return unsqueeze_triton(z.contiguous(), order)
    return _ref_squeeze.unsqueeze(z, order)


def squeeze_split(x, order="checkerboard", backend=None):
    if _use_triton(backend, (x,)):
        from ..kernels.triton.squeeze import squeeze_split_triton

        return squeeze_split_triton(x.contiguous(), order)
    return _ref_squeeze.squeeze_split(x, order)


def unsqueeze_merge(z1, z2, order="checkerboard", backend=None):
    _check_devices(z1, z2)
    if _use_triton(backend, (z1, z2)):
        from ..kernels.triton.squeeze import unsqueeze_merge_triton

        return unsqueeze_merge_triton(z1.contiguous(), z2.contiguous(), order)
    return _ref_squeeze.unsqueeze_merge(z1, z2, order)
