"""Squeeze / unsqueeze (both orders) and squeeze fused with the channel split, in Triton.

One kernel moves data between an NCHW image x (B, C, H, W) and its squeezed form
(B, 4C, H/2, W/2), optionally stored as two tensors (the first ``split`` channels and
the rest) so that a squeeze followed by a split writes both halves directly.  The same
kernel runs in both directions (squeeze: gather from x; unsqueeze: scatter into x).
Pure data movement: results are bit-exact with the reference
(``fastprob.reference.squeeze``).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

_ORDERS = {"standard": 0, "checkerboard": 1}
BLOCK = 1024


@triton.jit
def _squeeze_index(C, H, W, SPLIT, ORDER: tl.constexpr, BLOCK: tl.constexpr):
    """This program's block of squeezed offsets of one sample: (in bounds, index into x, in
    first half, index into the first half, index into the second half).  The sample index
    is int64, so the per-sample bases cannot overflow once a tensor has 2**31 elements."""
    b = tl.program_id(0).to(tl.int64)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    Ho = H // 2
    Wo = W // 2
    plane = Ho * Wo
    n_per = 4 * C * plane
    inb = offs < n_per
    oc = offs // plane
    r = offs % plane
    oh = r // Wo
    ow = r % Wo
    if ORDER == 0:
        c = oc // 4
        k = oc % 4
        i = k // 2
        j = k % 2
    else:
        blk = oc // C
        c = oc % C
        # sub-grid order (0,0), (1,1), (0,1), (1,0)
        i = tl.where((blk == 1) | (blk == 3), 1, 0)
        j = tl.where((blk == 1) | (blk == 2), 1, 0)
    src = b * (C * H * W) + c * (H * W) + (2 * oh + i) * W + (2 * ow + j)
    first = oc < SPLIT
    i1 = b * (SPLIT * plane) + offs
    i2 = b * ((4 * C - SPLIT) * plane) + (offs - SPLIT * plane)
    return inb, src, first, i1, i2


@triton.jit
def _squeeze_kernel(x_ptr, o1_ptr, o2_ptr, C, H, W, SPLIT, ORDER: tl.constexpr, FORWARD: tl.constexpr,
                    BLOCK: tl.constexpr):
    inb, src, first, i1, i2 = _squeeze_index(C, H, W, SPLIT, ORDER, BLOCK)
    if FORWARD:
        v = tl.load(x_ptr + src, mask=inb)
        tl.store(o1_ptr + i1, v, mask=inb & first)
        tl.store(o2_ptr + i2, v, mask=inb & (~first))
    else:
        v1 = tl.load(o1_ptr + i1, mask=inb & first, other=0)
        v2 = tl.load(o2_ptr + i2, mask=inb & (~first), other=0)
        tl.store(x_ptr + src, tl.where(first, v1, v2), mask=inb)


def _launch(x, o1, o2, C, H, W, split, order, forward):
    B = x.shape[0]
    grid = (B, triton.cdiv(4 * C * (H // 2) * (W // 2), BLOCK))
    if grid[1] > 65535:  # the second grid axis of a CUDA launch
        raise ValueError(f"one image has {C * H * W} elements; the Triton squeeze handles at most "
                         f"{65535 * BLOCK} per image; use backend='torch'")
    _squeeze_kernel[grid](x, o1, o2, C, H, W, split, ORDER=_ORDERS[order], FORWARD=forward, BLOCK=BLOCK)


def _check_order(order):
    if order not in _ORDERS:
        raise ValueError(f"unknown squeeze order {order!r}; choose one of {tuple(_ORDERS)}")


def _squeeze_fwd(x, order, split):
    B, C, H, W = x.shape
    o1 = torch.empty(B, split, H // 2, W // 2, device=x.device, dtype=x.dtype)
    o2 = torch.empty(B, 4 * C - split, H // 2, W // 2, device=x.device, dtype=x.dtype) if split < 4 * C else o1
    _launch(x, o1, o2, C, H, W, split, order, True)
    return o1, o2


def _squeeze_bwd(o1, o2, order, split, C, H, W):
    B = o1.shape[0]
    x = torch.empty(B, C, H, W, device=o1.device, dtype=o1.dtype)
    _launch(x, o1.contiguous(), o2.contiguous(), C, H, W, split, order, False)
    return x


class _SqueezeFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, order, split):
        ctx.cfg = (order, split, *x.shape[1:])
        o1, o2 = _squeeze_fwd(x, order, split)
        return (o1, o2) if split < 4 * x.shape[1] else (o1,)

    @staticmethod
    def backward(ctx, *grads):
        order, split, C, H, W = ctx.cfg
        g1 = grads[0] if grads[0] is not None else None
        g2 = grads[1] if len(grads) > 1 else g1
        if g1 is None or g2 is None:  # one half unused downstream: its gradient is zero
            shape = lambda n: (ctx_batch(grads), n, H // 2, W // 2)  # noqa: E731
            ref = grads[0] if grads[0] is not None else grads[1]
            g1 = g1 if g1 is not None else torch.zeros(shape(split), device=ref.device, dtype=ref.dtype)
            g2 = g2 if g2 is not None else torch.zeros(shape(4 * C - split), device=ref.device, dtype=ref.dtype)
        return _squeeze_bwd(g1, g2, order, split, C, H, W), None, None


def ctx_batch(grads):
    return next(g for g in grads if g is not None).shape[0]


class _UnsqueezeFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, o1, o2, order, split, C, H, W):
        ctx.cfg = (order, split)
        return _squeeze_bwd(o1, o2, order, split, C, H, W)

    @staticmethod
    def backward(ctx, gx):
        order, split = ctx.cfg
        g1, g2 = _squeeze_fwd(gx.contiguous(), order, split)
        if split == 4 * gx.shape[1]:
            return g1, None, None, None, None, None, None
        return g1, g2, None, None, None, None, None


def _validate(x, what):
    if x.dim() != 4:
        raise ValueError(f"{what} needs an NCHW tensor, got shape {tuple(x.shape)}")
    if not x.is_contiguous():
        raise ValueError(f"{what}: the Triton kernel needs a contiguous tensor; call .contiguous()")


def squeeze_triton(x, order: str = "standard"):
    """(B, C, H, W) -> (B, 4C, H/2, W/2)."""
    _check_order(order)
    _validate(x, "squeeze")
    B, C, H, W = x.shape
    if H % 2 or W % 2:
        raise ValueError(f"squeeze needs even height and width, got {H}x{W}; pad or crop the input")
    return _SqueezeFn.apply(x, order, 4 * C)[0]


def unsqueeze_triton(z, order: str = "standard"):
    """Inverse of :func:`squeeze_triton`."""
    _check_order(order)
    _validate(z, "unsqueeze")
    B, C4, H, W = z.shape
    if C4 % 4:
        raise ValueError(f"unsqueeze needs a channel count divisible by 4, got {C4}")
    return _UnsqueezeFn.apply(z, z, order, C4, C4 // 4, 2 * H, 2 * W)


def squeeze_split_triton(x, order: str = "checkerboard"):
    """Squeeze and split into two halves of 2C channels in one pass: (z1, z2)."""
    _check_order(order)
    _validate(x, "squeeze_split")
    B, C, H, W = x.shape
    if H % 2 or W % 2:
        raise ValueError(f"squeeze needs even height and width, got {H}x{W}; pad or crop the input")
    return _SqueezeFn.apply(x, order, 2 * C)


def unsqueeze_merge_triton(z1, z2, order: str = "checkerboard"):
    """Inverse of :func:`squeeze_split_triton`."""
    _check_order(order)
    _validate(z1, "unsqueeze_merge")
    _validate(z2, "unsqueeze_merge")
    if z1.shape != z2.shape or z1.device != z2.device:
        raise ValueError("the two halves must have the same shape and device")
    B, C2, H, W = z1.shape
    return _UnsqueezeFn.apply(z1, z2, order, C2, C2 // 2, 2 * H, 2 * W)
